"""The usage chart of the history page, drawn on the server as an SVG (no JavaScript, no CDN):
bars for the hours used per month, a line for the hours included."""

from decimal import Decimal

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from billing.selectors.portal import ChartPoint

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 12, 30


def usage_chart_svg(points: list[ChartPoint], *, title: str, chart_id: str) -> SafeString:
    if not points:
        return SafeString("")
    top_value = max(
        [point.used_hours for point in points] + [point.included_hours for point in points]
    )
    top_value = max(top_value, Decimal("1"))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_width / len(points)

    def y_of(value: Decimal) -> Decimal:
        # Pixels, to a tenth; hours stay Decimal all the way.
        return (TOP + plot_height - value / top_value * plot_height).quantize(Decimal("0.1"))

    bars = []
    for index, point in enumerate(points):
        x = LEFT + index * step
        over = point.used_hours > point.included_hours
        bars.append(
            {
                "x": round(x + step * 0.2, 1),
                "width": round(step * 0.6, 1),
                "y": y_of(point.used_hours),
                "height": TOP + plot_height - y_of(point.used_hours),
                "label_x": round(x + step / 2, 1),
                "month": point.month,
                "used": point.used_hours,
                "included": point.included_hours,
                "over": over,
                "included_y": y_of(point.included_hours),
                "included_x1": round(x + step * 0.1, 1),
                "included_x2": round(x + step * 0.9, 1),
            }
        )
    ticks = [
        {
            "y": y_of(top_value * fraction / 4),
            "value": (top_value * fraction / 4).quantize(Decimal("0.1")),
        }
        for fraction in range(5)
    ]
    return render_to_string(
        "clientarea/_usage_chart.svg",
        {
            "bars": bars,
            "ticks": ticks,
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
