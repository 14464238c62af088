"""Money as integers: micro-dollars (1 USD = 1_000_000 µ$). Floats never hold a balance."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, DecimalException

MICROS_PER_USD = 1_000_000
# A dollar amount as people type it: an optional sign, an optional "$", digits with an optional decimal part, commas
# only between groups of three ("1,250.50"), an optional "USD" after. No exponent ("1e3" is not how anyone writes
# money) and no comma as a decimal point ("5,00" is refused, never read as 500).
_AMOUNT = re.compile(
    r"(?P<sign>[+-]?)\s*\$?\s*(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)\s*(?:usd)?",
    re.IGNORECASE,
)


def usd_to_micros(text: str | Decimal | int) -> int:
    """Parse a dollar amount ("12.50", "$3", "-2.50", "1,250", 7) into micro-dollars; ValueError on anything else
    ("out of range" in its message for an amount too long to be money)."""
    if isinstance(text, int | Decimal):
        value = Decimal(text)
    else:
        found = _AMOUNT.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"not an amount in dollars: {text!r}")
        value = Decimal(found["sign"] + found["digits"].replace(",", ""))
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    try:
        return int((value * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except DecimalException:  # too many digits to represent exactly: absurd for money
        raise ValueError(f"amount out of range: {text!r}") from None


def format_usd(micros: int) -> str:
    """Show micro-dollars as dollars: cents normally, more digits only when needed ($0.112)."""
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    dollars, rest = divmod(micros, MICROS_PER_USD)
    if rest % 10_000 == 0:
        return f"{sign}${dollars:,}.{rest // 10_000:02d}"
    frac = f"{rest:06d}".rstrip("0")
    return f"{sign}${dollars:,}.{frac}"


def decimal_usd(micros: int) -> str:
    """Micro-dollars as a plain decimal with all six digits, for files: -2500000 -> "-2.500000" (no floats)."""
    dollars, rest = divmod(abs(micros), MICROS_PER_USD)
    return f"{'-' if micros < 0 else ''}{dollars}.{rest:06d}"
