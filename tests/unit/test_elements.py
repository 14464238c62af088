"""The character as @Element1 in a take's prompt."""

from __future__ import annotations

import pytest

from bot.anchors.models import clean_name, element_names, named_in
from bot.errors import UserError
from bot.takes.elements import element_prompt


def test_name_and_the_character_become_element1_whole_words_any_case():
    assert (
        element_prompt("Mara turns; MARA smiles at Maral", "Mara")
        == "@Element1 turns; @Element1 smiles at Maral"
    )
    assert element_prompt("The character waves", None) == "@Element1 waves"
    assert element_prompt("the character and Dr. J.(x) meet", "Dr. J.(x)") == "@Element1 and @Element1 meet"
    assert element_prompt("a dog runs", "Mara") == "a dog runs"
    # a word goes on past a combining mark: "रामायण" (the epic) is not the name "राम" followed by a vowel sign
    assert element_prompt("राम पढ़ता है रामायण", "राम") == "@Element1 पढ़ता है रामायण"


def test_at_name_becomes_element1_without_a_second_at():
    assert element_prompt("@Mara waves at mara", "Mara") == "@Element1 waves at @Element1"


def test_quoted_dialogue_is_never_rewritten():
    assert (
        element_prompt('Mara says "Mara, the character is me" and \u201cMara!\u201d', "Mara")
        == '@Element1 says "Mara, the character is me" and \u201cMara!\u201d'
    )


CAST = ["Mara", "Old Tom", "Tom", "R2-D2", "Mira"]


def test_named_in_finds_whole_names_in_order_of_first_appearance():
    named = named_in("tom meets OLD  TOM, then @Mara and Mara again; Tomas and Maral are words", CAST)
    assert named.names == ("Tom", "Old Tom", "Mara") and named.unknown == ()


def test_named_in_reports_at_words_that_name_no_one_but_not_mail_mentions_or_discord_words():
    named = named_in("@Grace and @R2-D2 write to mara@example.com; <@123> @everyone @here", CAST)
    assert named.names == ("R2-D2",) and named.unknown == ("Grace",)


def test_case_insensitive_matching_and_case_folding_agree_on_dotless_and_dotted_i():
    """Found in review: `re.IGNORECASE` matches "Mıra" and "MİRA" to "Mira" where casefold() does not; the name
    is now told by the group that matched, never looked up again."""
    assert named_in("M\u0131ra waves, M\u0130RA too", CAST).names == ("Mira",)
    assert element_names("M\u0131ra waves", ["Mara", "Mira"]) == "@Element2 waves"


def test_names_in_quotes_are_spoken_not_named():
    prompt = 'Mara says "Tom, @Grace, we leave at dawn" to Old Tom'
    named = named_in(prompt, CAST)
    assert named.names == ("Mara", "Old Tom") and named.unknown == ()
    assert (
        element_names(prompt, list(named.names))
        == '@Element1 says "Tom, @Grace, we leave at dawn" to @Element2'
    )


def test_element_names_numbers_by_the_order_given():
    assert element_names("@Tom hugs mara; Old Tom watches", ["Mara", "Tom", "Old Tom"]) == (
        "@Element2 hugs @Element1; @Element3 watches"
    )


def test_a_character_still_called_main_is_named_by_at_main_only():
    """Found in review: every channel upgraded without an anchor name has a character called "main", and "the
    main street" made it an element."""
    assert named_in("Grace walks down the main street", ["main", "Grace"]).names == ("Grace",)
    assert named_in("@main and Grace talk", ["main", "Grace"]).names == ("main", "Grace")
    assert element_names("@Main waves on the main street", ["main"]) == "@Element1 waves on the main street"


@pytest.mark.parametrize("name", ["everyone", "Here", "Element1", "element 2", "ELEMENT"])
def test_words_discord_or_the_model_uses_are_not_cast_names(name):
    with pytest.raises(UserError, match="can't be a cast name"):
        clean_name(name)


@pytest.mark.parametrize("name", ["सीता", "राम", "ก้อง", "தமிழ்", "Zoë", "José Ñúñez"])
def test_names_in_scripts_whose_letters_carry_combining_marks_are_cast_names(name):
    """Found in review: Devanagari, Thai and Tamil vowel signs and viramas are combining marks, not isalnum(), and
    every such name was refused although the rule promises any script's letters."""
    assert clean_name(name) == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("\u093e\u0940", "at least one letter"),  # vowel signs with no letter at all
        ("R2 \u093e", "belong on a letter"),  # a mark after a space
        ("7\u0301", "belong on a letter"),  # a mark on a digit
        ("Ma" + "\u0316" * 5 + "ra", "at most 4"),  # five marks stacked on one letter (Zalgo)
    ],
)
def test_marks_on_no_letter_and_floods_of_marks_are_refused(name, words):
    with pytest.raises(UserError, match=words):
        clean_name(name)


def test_names_with_marks_are_found_as_whole_words_never_inside_other_words():
    cast = ["राम", "सीता", "ก้อง", "தமிழ்"]
    named = named_in("राम और सीता; रामा, कीराम, सीताजी, ก้องๆ, தமிழ்நாடு are other words", cast)
    assert named.names == ("राम", "सीता") and named.unknown == ()
    # A vowel sign before or after the name: it is inside another word.
    assert named_in("रामा और कीराम, सीताजी, ก้องๆ", cast).names == ()
    assert named_in("ก้อง waves at @தமிழ்", cast).names == ("ก้อง", "தமிழ்")
    # `@राम`: the whole name with its vowel sign is the @word (it used to stop at the first mark: "@र").
    assert named_in("@रामा waves", ["सीता"]).unknown == ("रामा",)
    assert element_names("राम and सीता, रामायण", cast) == "@Element1 and @Element2, रामायण"
