"""Parsing, checking and showing hours. Hours are Decimal quarter hours, never floats."""

import re
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from tickets.models import HOURS_MAX_PER_ENTRY, HOURS_STEP

_CLOCK_RE = re.compile(r"^(\d{1,2}):([0-5]\d)$")  # 1:15
_MINUTES_RE = re.compile(r"^(\d{1,4})\s*m(?:in)?$")  # 75m, 75 min
_HOURS_MINUTES_RE = re.compile(r"^(\d{1,2})\s*h(?:\s*(\d{1,2})\s*m(?:in)?)?$")  # 1h, 1h 15m
_DECIMAL_RE = re.compile(r"^(\d{1,3}(?:[.,]\d{1,6})?)\s*h?$")  # 1.25, 1,25, 1.25h

PARSE_ERROR = "Enter hours as 1.25, 1:15 or 75m."


def hours_parse(value: object) -> Decimal:
    """Read hours from what a person or a client program typed: ``1.25``, ``1,25``, ``1:15``,
    ``75m``, ``1h 15m``, ``1.5h`` or a Decimal. Floats are refused: they cannot hold 0.1 exactly."""
    if isinstance(value, (bool, float)):
        raise ValidationError(PARSE_ERROR, code="hours_format")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(PARSE_ERROR, code="hours_format")
        return value
    if isinstance(value, int):
        return Decimal(value)
    text = str(value or "").strip().lower()
    minutes: int | None = None
    if match := _CLOCK_RE.match(text):
        minutes = int(match[1]) * 60 + int(match[2])
    elif match := _MINUTES_RE.match(text):
        minutes = int(match[1])
    elif match := _HOURS_MINUTES_RE.match(text):
        minutes = int(match[1]) * 60 + int(match[2] or 0)
    elif match := _DECIMAL_RE.match(text):
        try:
            return Decimal(match[1].replace(",", "."))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only digits
            raise ValidationError(PARSE_ERROR, code="hours_format") from exc
    if minutes is None:
        raise ValidationError(PARSE_ERROR, code="hours_format")
    return Decimal(minutes) / Decimal(60)


def hours_validate(hours: Decimal) -> Decimal:
    """Refuse what the database would refuse, with a message a person understands."""
    if hours <= 0:
        raise ValidationError("Hours must be more than zero.", code="hours_positive")
    if hours > HOURS_MAX_PER_ENTRY:
        raise ValidationError("One entry can hold at most 24 hours.", code="hours_max")
    if hours % HOURS_STEP:
        raise ValidationError(
            "Hours must be in steps of 0.25 (15 minutes), for example 0.25, 0.5 or 1.75.",
            code="hours_step",
        )
    return hours.quantize(Decimal("0.01"))


def hours_clean(value: object) -> Decimal:
    return hours_validate(hours_parse(value))


def hours_stepped(value: object, *, steps: int) -> Decimal:
    """What the workspace's -/+ buttons show: the typed hours snapped to the nearest quarter
    hour, moved by ``steps`` quarter hours, kept between one step and the most one entry can
    hold. An empty box counts as nothing typed yet (``+`` gives 0.25). Anything else that
    ``hours_parse`` refuses is refused with its message, so the box never guesses."""
    text = value.strip() if isinstance(value, str) else value
    hours = Decimal(0) if text == "" else hours_parse(text)
    quarters = (hours / HOURS_STEP).to_integral_value(rounding=ROUND_HALF_UP) + steps
    stepped = min(max(quarters * HOURS_STEP, HOURS_STEP), HOURS_MAX_PER_ENTRY)
    return stepped.quantize(Decimal("0.01"))


def hours_round_up_to_step(minutes: Decimal) -> Decimal:
    """Elapsed minutes -> hours rounded up to the next quarter hour (at least one step)."""
    # Not -(-m // 15): Decimal's // truncates toward zero, so that would round 16 min down.
    quarters = (Decimal(minutes) / 15).to_integral_value(rounding=ROUND_CEILING)
    return max(quarters, Decimal(1)) * HOURS_STEP


def hours_display(hours: Decimal) -> str:
    """``Decimal("1.25")`` -> ``"1.25 h"``."""
    return f"{hours.quantize(Decimal('0.01'))} h"


def hours_clock(hours: Decimal) -> str:
    """``Decimal("1.25")`` -> ``"1:15"``."""
    minutes = int((hours * 60).to_integral_value())
    sign = "-" if minutes < 0 else ""
    return f"{sign}{abs(minutes) // 60}:{abs(minutes) % 60:02d}"
