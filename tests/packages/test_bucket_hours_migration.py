"""The data migration that gives every bucket bought before ``bucket_hours`` its size."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("packages", "0002_price_min_money_validators"),
    ("billing", "0005_billedterms_append_only"),
]
AFTER = [
    ("packages", "0003_subscription_bucket_hours"),
    ("billing", "0006_subscription_bucket_hours_fill"),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_buckets_bought_before_get_the_size_they_were_sold_with():
    apps = migrate(BEFORE)
    try:
        Client = apps.get_model("customers", "Client")
        Package = apps.get_model("packages", "SupportPackage")
        Subscription = apps.get_model("packages", "Subscription")
        BilledTerms = apps.get_model("billing", "BilledTerms")
        client = Client.objects.create(name="Acme", email="a@example.com", currency="EUR")
        # given a bucket package sold at 20 h, now 10 h, and a monthly package
        bucket = Package.objects.create(name="Bucket", billing_mode="one_time", included_hours=10)
        monthly = Package.objects.create(name="Gold", billing_mode="recurring", included_hours=10)
        start = dt.date(2026, 9, 1)
        with_terms, without_terms, recurring = (
            Subscription.objects.create(client=client, package=package, start_date=start)
            for package in (bucket, bucket, monthly)
        )
        BilledTerms.objects.create(
            subscription=with_terms,
            month=start,
            billing_mode="one_time",
            included_hours=Decimal("20"),
            fee=Decimal("1100"),
            currency="EUR",
            hourly_rate=Decimal("0"),
        )
        # when the migration runs
        apps = migrate(AFTER)
    finally:
        migrate_to_latest()  # later migrations were undone on the way back, too
    Subscription = apps.get_model("packages", "Subscription")
    sizes = dict(Subscription.objects.values_list("pk", "bucket_hours"))
    # then a bucket keeps its stored terms' hours, else (no terms) the package's hours now;
    # a monthly subscription has no bucket
    assert sizes == {
        with_terms.pk: Decimal("20.00"),
        without_terms.pk: Decimal("10.00"),
        recurring.pk: None,
    }
