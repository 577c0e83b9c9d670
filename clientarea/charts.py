"""The usage chart of the history page, drawn on the server as an SVG (no JavaScript, no CDN):
bars for the hours used per month (red when over the hours included), a line for the hours
included, and a hours axis in round steps."""

import hashlib
from decimal import ROUND_CEILING, Decimal

from django.core.cache import caches
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString

from billing.selectors.portal import ChartPoint

# Rendered pieces of the portal's pages, in each process's memory (settings.CACHES), keyed on
# a digest of everything they show: nothing to invalidate.
FRAGMENTS_CACHE = "fragments"
CHART_SECONDS = 3600

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 12, 30
AXIS_INTERVALS = 4  # at most this many steps from 0 to the top of the axis
MIN_SLOTS = 6  # a short history keeps bars of a readable width instead of filling the width
NICE_STEPS = (Decimal("1"), Decimal("2"), Decimal("2.5"), Decimal("5"), Decimal("10"))


def axis_step(top_value: Decimal, *, intervals: int = AXIS_INTERVALS) -> Decimal:
    """The smallest round step (1, 2, 2.5 or 5 times a power of ten) that reaches
    ``top_value`` in at most ``intervals`` steps: 15.75 h in 4 steps -> 5."""
    raw = top_value / intervals
    power = Decimal(1).scaleb(raw.adjusted())  # 10 ** the exponent of the leading digit
    return next(multiple * power for multiple in NICE_STEPS if multiple * power >= raw)


def axis_ticks(top_value: Decimal) -> list[Decimal]:
    """0, step, 2 x step, ... up to the first multiple of the step at or above ``top_value``."""
    step = axis_step(top_value)
    count = int((top_value / step).to_integral_value(rounding=ROUND_CEILING))
    return [step * index for index in range(count + 1)]


def tick_label(value: Decimal) -> str:
    """``5`` not ``5.00``, ``2.5`` not ``2.50``; never an exponent (``1E+1``)."""
    return format(value.normalize(), "f")


def usage_chart_svg(points: list[ChartPoint], *, title: str, chart_id: str) -> SafeString:
    """The chart, from the fragment cache when the same points were drawn before: drawing
    one costs about 5 ms, and a closed month's bar never changes."""
    if not points:
        return SafeString("")
    shown = (translation.get_language(), title, chart_id, points)
    key = "usage-chart:" + hashlib.blake2b(repr(shown).encode(), digest_size=20).hexdigest()
    fragments = caches[FRAGMENTS_CACHE]
    svg = fragments.get(key)
    if svg is None:
        svg = _usage_chart_draw(points, title=title, chart_id=chart_id)
        fragments.set(key, svg, CHART_SECONDS)
    return svg


def _usage_chart_draw(points: list[ChartPoint], *, title: str, chart_id: str) -> SafeString:
    highest = max(
        [point.used_hours for point in points] + [point.included_hours for point in points]
    )
    ticks = axis_ticks(max(highest, Decimal("1")))
    top_value = ticks[-1]
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = Decimal(plot_width) / max(len(points), MIN_SLOTS)

    def y_of(value: Decimal) -> Decimal:
        # Pixels, to a tenth; hours stay Decimal all the way.
        return (TOP + plot_height - value / top_value * plot_height).quantize(Decimal("0.1"))

    def px(value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.1"))

    bars = []
    for index, point in enumerate(points):
        x = LEFT + index * step
        bars.append(
            {
                "x": px(x + step * Decimal("0.2")),
                "width": px(step * Decimal("0.6")),
                "y": y_of(point.used_hours),
                "height": TOP + plot_height - y_of(point.used_hours),
                "label_x": px(x + step / 2),
                "month": point.month,
                "used": point.used_hours,
                "included": point.included_hours,
                "over": point.used_hours > point.included_hours,
                "included_y": y_of(point.included_hours),
                "included_x1": px(x + step * Decimal("0.1")),
                "included_x2": px(x + step * Decimal("0.9")),
            }
        )
    return render_to_string(
        "clientarea/_usage_chart.svg",
        {
            "bars": bars,
            "ticks": [{"y": y_of(value), "value": tick_label(value)} for value in ticks],
            "title": title,
            "chart_id": chart_id,
            "width": WIDTH,
            "height": HEIGHT,
            "left": LEFT,
            "right_edge": WIDTH - RIGHT,
            "baseline": TOP + plot_height,
            "label_y": HEIGHT - 10,
        },
    )
