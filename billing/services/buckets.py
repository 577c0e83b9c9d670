"""What billing writes when a one-time bucket is sold: its stored terms and its ``one_time``
item, in the month it starts (docs/decisions.md, "Stored terms of closed months")."""

from billing import signals
from billing.calculations import one_time_item_draft
from billing.models import BillableItem, BilledTerms
from billing.services.items import billable_item_from_draft
from packages.models import BillingMode, PackagePrice, Subscription
from supportbilling.periods import period_of


def bucket_sale_record(*, subscription: Subscription, price: PackagePrice) -> None:
    """Store the bucket's terms (its size and price, fixed at the sale) and write its
    ``one_time`` item. A recurring subscription is billed by the rollup instead: nothing now."""
    if subscription.bucket_hours is None:
        return
    month = period_of(subscription.start_date)
    client = subscription.client
    BilledTerms.objects.create(
        subscription=subscription,
        month=month,
        billing_mode=BillingMode.ONE_TIME,
        included_hours=subscription.bucket_hours,
        fee=price.fee,
        hourly_rate=price.hourly_rate,
    )
    draft = one_time_item_draft(
        package_name=subscription.package.name, fee=price.fee.amount, currency=client.currency
    )
    item = billable_item_from_draft(
        draft,
        client_id=client.pk,
        subscription_id=subscription.pk,
        month=month,
        currency=client.currency,
        invoice_action=subscription.package.invoice_action,
    )
    item.save()
    signals.items_created.send(sender=BillableItem, items=BillableItem.objects.filter(pk=item.pk))
