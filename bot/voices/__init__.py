"""Voices (issue #17): a character's voice, made once by Kling's create-voice from a short sample, carried by its
element in every shot with sound that names it."""
