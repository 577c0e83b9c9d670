"""Celery task of the WHMCS connector: a thin wrapper around whmcs.services."""

from celery import shared_task

from whmcs import services


@shared_task(name="whmcs.items_push")
def items_push(item_ids: list[int] | None = None, again: bool = False) -> dict[str, int]:
    """Hourly (beat) and from the admin: push the exportable items; a no-op while WHMCS is not
    configured."""
    return dict(services.items_push(item_ids=item_ids, again=again))
