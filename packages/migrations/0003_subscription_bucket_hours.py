from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("packages", "0002_price_min_money_validators"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="bucket_hours",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="One-time package: the size of the bucket when it was bought.",
                max_digits=6,
                null=True,
                verbose_name="hours bought",
            ),
        ),
        migrations.AddConstraint(
            model_name="subscription",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("bucket_hours__isnull", True), ("bucket_hours__gt", 0), _connector="OR"
                ),
                name="subscription_bucket_hours_gt_0",
            ),
        ),
    ]
