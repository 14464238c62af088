"""Consistency (issue #12): the anchor's face, a face score for every take, auto re-rolls, prompt advice."""
