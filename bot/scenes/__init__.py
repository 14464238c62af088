"""Scenes (issue #16): shots in order, continued from one another, one take kept each, exported as one video."""
