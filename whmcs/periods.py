"""The WHMCS line of each month on billing's periods page (billing.admin_views.PERIOD_LINES):
how many pushes of the month's items failed or have an unknown outcome, linked to the push
log. Billing may not import this app; it registers the line in WhmcsConfig.ready."""

import datetime as dt

from django.db.models import Count
from django.urls import reverse

from whmcs.models import PushStatus, WhmcsPush


def push_lines(months: list[dt.date]) -> dict[dt.date, list[tuple[str, str]]]:
    """``{month: [("WHMCS: 2 push(es) failed, 1 of unknown outcome", url)]}`` for the months
    with such pushes; one query."""
    rows = (
        WhmcsPush.objects.filter(
            item__period__in=months, status__in=[PushStatus.FAILED, PushStatus.UNKNOWN]
        )
        .order_by()
        .values_list("item__period", "status")
        .annotate(count=Count("id"))
    )
    counts: dict[dt.date, dict[str, int]] = {}
    for month, status, count in rows:
        counts.setdefault(month, {})[status] = count
    log = reverse("admin:whmcs_whmcspush_changelist")
    lines: dict[dt.date, list[tuple[str, str]]] = {}
    for month, by_status in counts.items():
        failed, unknown = by_status.get(PushStatus.FAILED, 0), by_status.get(PushStatus.UNKNOWN, 0)
        status = "" if failed and unknown else PushStatus.FAILED if failed else PushStatus.UNKNOWN
        url = f"{log}?status__exact={status}" if status else log
        lines[month] = [
            (f"WHMCS: {failed} push(es) failed, {unknown} of unknown outcome", url),
        ]
    return lines
