"""Money as integers: micro-dollars (1 USD = 1_000_000 µ$). Floats never hold a balance."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000


def usd_to_micros(text: str | Decimal | int) -> int:
    """Parse a dollar amount ("12.50", "$3", 7) into micro-dollars; raise ValueError on junk."""
    raw = str(text).strip().replace("$", "").replace(",", "").replace("_", "")
    if raw.upper() in {"USD", ""}:
        raise ValueError("empty amount")
    raw = raw.removesuffix("USD").removesuffix("usd").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    try:
        return int((value * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:  # too many digits to represent exactly: absurd for money
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
