"""Make the role groups grant exactly the permissions supportbilling.roles lists. The lists now
live in that module; a change of them needs another migration like this one (the latest
migrations of the apps whose permissions they name as dependencies)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("customers", "0002_passwordresetrequest"),
        ("packages", "0002_price_min_money_validators"),
        ("tickets", "0003_billingperiod_billing_start"),
        ("billing", "0007_billingevent_portal_login_removed"),
    ]

    operations = [roles_sync_operation(missing_ok=True)]
