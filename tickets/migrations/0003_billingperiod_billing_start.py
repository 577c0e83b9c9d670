"""Record when billing began on an existing install: with subscriptions but no BillingPeriod
row yet, write the open row of the earliest subscription's start month, so the scheduled
close keeps closing every month from there (tickets.selectors.billing_start)."""

from django.db import migrations
from django.db.models import Min


def billing_start_record(apps, schema_editor):
    BillingPeriod = apps.get_model("tickets", "BillingPeriod")
    Subscription = apps.get_model("packages", "Subscription")
    if BillingPeriod.objects.exists():
        return
    first = Subscription.objects.aggregate(first=Min("start_date"))["first"]
    if first is not None:
        BillingPeriod.objects.create(month=first.replace(day=1), status="open")


class Migration(migrations.Migration):
    dependencies = [
        ("packages", "0002_price_min_money_validators"),
        ("tickets", "0002_billingperiod_protect"),
    ]

    operations = [
        migrations.RunPython(billing_start_record, migrations.RunPython.noop),
    ]
