"""Prompt advice (issue #12): a small rule set that warns before spending and never blocks."""

from __future__ import annotations

import pytest

from bot.consistency.advice import advice_keys, prompt_advice


@pytest.mark.parametrize(
    ("prompt", "keys"),
    [
        ("she smiles at the camera, soft light", []),
        ("seen from behind, she walks into the fog", ["face_hidden"]),
        ("he turns his back and leaves", ["face_hidden"]),
        ("back view of the knight on the hill", ["face_hidden"]),
        ("over-the-shoulder shot of the city", ["face_hidden"]),
        ("silhouette against the sunset", ["face_hidden"]),
        ("extreme close-up of her eyes", ["extreme_close_up"]),
        ("macro shot of the ring", ["extreme_close_up"]),
        ("close up on her lips", ["extreme_close_up"]),
        ("a close-up of her face, smiling", []),  # an ordinary close-up keeps the face
        ('she says "we leave at dawn"', ["dialogue"]),
        ("he whispers to the horse", ["dialogue"]),
        ('"Run!"', ["dialogue"]),
        ("seen from behind, she shouts at the storm", ["face_hidden", "dialogue"]),
        ("the backpack lies on the table", []),  # "back" inside a word is no back angle
        ("", []),
    ],
)
def test_rules(prompt, keys):
    assert advice_keys(prompt) == keys


def test_dialogue_advice_suggests_a_bound_voice_and_texts_are_short():
    [text] = prompt_advice('she says "hello"')
    assert "bound voice" in text or "bind a voice" in text
    for key_prompt in ("from behind", "extreme close-up", 'says "hi"'):
        for line in prompt_advice(key_prompt):
            assert len(line) < 200
