"""clean_text: property tests (hypothesis, 1,000+ cases each) and a few worked examples."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.errors import UserError
from bot.text import clean_text

INVISIBLE = (
    "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u00ad"
)
CONTROLS = "".join(chr(c) for c in range(32) if chr(c) not in "\n\t") + "\x7f\x85"

# Any code point, surrogates included, with the awkward ones over-represented.
hostile = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, categories=None),
        st.sampled_from(INVISIBLE + CONTROLS + " \n\t\r\u00a0\u3000\u2028e\u0301\ud800\udfff"),
    ),
    max_size=120,
)
PROPS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _clean(text: str, max_chars: int = 80) -> str | None:
    try:
        return clean_text(text, field="prompt", max_chars=max_chars)
    except UserError as exc:
        assert "prompt" in exc.message
        return None


@PROPS
@given(hostile, st.integers(min_value=1, max_value=200))
@example("\ud800abc", 10)
@example("a" * 81, 80)
def test_never_raises_anything_but_user_error(text, max_chars):
    out = _clean(text, max_chars)
    if out is not None:
        assert 0 < len(out) <= max_chars
        out.encode("utf-8")  # always encodable


@PROPS
@given(hostile)
def test_output_has_no_format_or_control_characters(text):
    out = _clean(text)
    if out is not None:
        for ch in out:
            cat = unicodedata.category(ch)
            assert cat not in ("Cf", "Cs"), repr(ch)
            assert cat != "Cc" or ch in "\n\t", repr(ch)
        assert out == out.strip()
        assert unicodedata.is_normalized("NFC", out)


@PROPS
@given(hostile)
def test_idempotent(text):
    out = _clean(text, 10_000)
    if out is not None:
        assert clean_text(out, field="prompt", max_chars=10_000) == out


@PROPS
@given(st.text(alphabet=st.sampled_from(INVISIBLE + CONTROLS + " \n\t\u00a0\u3000"), max_size=60))
def test_invisible_only_input_is_refused(text):
    with pytest.raises(UserError, match="prompt is empty"):
        clean_text(text, field="prompt", max_chars=100)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  a  cat\u200b walks  ", "a cat walks"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),
        ("line one\r\n\n\n\n  line two\t\tend", "line one\n\nline two end"),
        ("\u202eevil\u202c name", "evil name"),
    ],
)
def test_examples(raw, expected):
    assert clean_text(raw, field="name", max_chars=100) == expected


def test_messages_name_the_field():
    with pytest.raises(UserError, match="anchor name is empty"):
        clean_text("\u200b\u200d", field="anchor name", max_chars=80)
    with pytest.raises(UserError, match="reason is 101 characters"):
        clean_text("x" * 101, field="reason", max_chars=100)
