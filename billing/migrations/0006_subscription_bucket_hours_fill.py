from django.db import migrations
from django.db.models import OuterRef, Subquery


def bucket_hours_fill(apps, schema_editor):
    """A bought bucket keeps the size it was sold with: its stored terms' hours, else (bought
    before terms were stored) the package's hours now. A bucket of no hours stays null."""
    Subscription = apps.get_model("packages", "Subscription")
    BilledTerms = apps.get_model("billing", "BilledTerms")
    stored = BilledTerms.objects.filter(
        subscription_id=OuterRef("pk"), billing_mode="one_time"
    ).order_by("month")
    buckets = Subscription.objects.filter(
        package__billing_mode="one_time", bucket_hours__isnull=True
    ).annotate(stored_hours=Subquery(stored.values("included_hours")[:1]))
    for subscription in buckets.select_related("package").iterator():
        hours = subscription.stored_hours
        if hours is None:
            hours = subscription.package.included_hours
        if hours > 0:
            subscription.bucket_hours = hours
            subscription.save(update_fields=["bucket_hours"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_billedterms_append_only"),
        ("packages", "0003_subscription_bucket_hours"),
    ]

    operations = [migrations.RunPython(bucket_hours_fill, migrations.RunPython.noop)]
