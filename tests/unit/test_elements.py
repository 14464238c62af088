"""The character as @Element1 in a take's prompt."""

from __future__ import annotations

from bot.takes.elements import element_prompt


def test_name_and_the_character_become_element1_whole_words_any_case():
    assert (
        element_prompt("Mara turns; MARA smiles at Maral", "Mara")
        == "@Element1 turns; @Element1 smiles at Maral"
    )
    assert element_prompt("The character waves", None) == "@Element1 waves"
    assert element_prompt("the character and Dr. J.(x) meet", "Dr. J.(x)") == "@Element1 and @Element1 meet"
    assert element_prompt("a dog runs", "Mara") == "a dog runs"
