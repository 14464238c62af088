"""Reading a plan of shots (issue #16): lengths, separators, the checks of a /shot prompt, storyboard limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import UserError
from bot.scenes.models import PlannedShot
from bot.scenes.plan import check_sent_shots, parse_plan, split_shots

V3 = tuple(range(3, 16))


def plan(text: str, one_call: bool = False) -> list[PlannedShot]:
    return parse_plan(text, default_s=5, durations_s=V3, one_call=one_call)


def test_one_a_line_or_bars_with_optional_lengths():
    assert plan("4s: she opens the door\nshe looks back | 6 s - she runs") == [
        PlannedShot("she opens the door", 4),
        PlannedShot("she looks back", 5),
        PlannedShot("she runs", 6),
    ]
    assert split_shots(" a |\n\n| b ") == ["a", "b"]
    assert plan("10 seconds: a long look") == [PlannedShot("a long look", 10)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("\u200b\u200d \u2060", "is empty once invisible characters are removed"),
        (" | \n | ", "has no shots"),
        ("2s: too short", "Shot 1 is 2 s; the video model makes 3 to 15 s"),
        ("a\nb\n20s: too long", "Shot 3 is 20 s"),
        ("4s: \u200b", "Shot 1: The prompt of shot 1 is empty"),
        ("\n".join(f"shot {n}" for n in range(11)), "at most 10 shots"),
        ("ok\n" + "x" * 2600, "Shot 2"),
    ],
)
def test_bad_plans_are_refused_naming_the_shot(text, words):
    with pytest.raises(UserError) as caught:
        plan(text)
    assert words in caught.value.message, caught.value.message


def test_storyboard_limits_are_checked_before_spending():
    assert plan("1s: a\n2s: b", one_call=True) == [PlannedShot("a", 1), PlannedShot("b", 2)]
    for text, words in [
        ("5s: only one", "2 to 6 shots"),
        ("\n".join("2s: x" for _ in range(7)), "2 to 6 shots"),
        ("8s: a\n8s: b", "add up to 16 s"),
        ("1s: a\n1s: b", "add up to 2 s"),
        ("0s: a\n5s: b", "each shot is 1 to 15 s"),
        ("3s: " + "x" * 600 + "\n3s: b", "Shot 1"),
    ]:
        with pytest.raises(UserError) as caught:
            plan(text, one_call=True)
        assert words in caught.value.message, (text[:20], caught.value.message)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_a_plan_or_a_polite_refusal(text):
    try:
        shots = plan(text)
    except UserError as exc:
        assert exc.message
        return
    assert 1 <= len(shots) <= 10 and all(s.prompt.strip() and s.duration_s in V3 for s in shots)


def test_a_number_that_starts_a_prompt_is_not_a_length():
    """Found in review: "12:30 the clock strikes" was a 12 s shot of "30 the clock strikes" and "3-4 people walk
    in" a 3 s one. A length needs its unit ("4s:"), or a space after its separator ("3: she looks")."""
    read = parse_plan(
        "12:30 the clock strikes\n3-4 people walk in\n4s:she opens the door\n3: she looks back",
        default_s=5,
        durations_s=range(3, 16),
    )
    assert [(s.prompt, s.duration_s) for s in read] == [
        ("12:30 the clock strikes", 5),
        ("3-4 people walk in", 5),
        ("she opens the door", 4),
        ("she looks back", 3),
    ]


def test_a_shot_of_one_call_is_checked_as_sent_with_the_casts_references():
    typed = ("Mara looks at Grace. " * 30)[:500]
    sent = typed.replace("Mara", "@Element1").replace("Grace", "@Element2")
    check_sent_shots([typed, "Grace nods"])  # as typed: within 512
    with pytest.raises(UserError, match=r"Shot 1 comes to \d+ characters .* at most 512"):
        check_sent_shots([sent, "@Element2 nods"])
