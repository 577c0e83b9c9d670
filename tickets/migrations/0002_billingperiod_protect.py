"""PostgreSQL refuses to delete or reopen a month: a trigger on tickets_billingperiod raises on
any DELETE (an open row records when billing began: deleting the earliest would move the
billing start forward and leave its months unbilled), on an UPDATE that changes ``month``, on
one that moves ``status`` backwards (closed to anything else, closing to open), and on a change
of a closed row's ``closed_at`` or ``closed_by``, except ``closed_by`` set to NULL when that user
is deleted."""

from django.db import migrations

PROTECT = """
CREATE OR REPLACE FUNCTION tickets_billingperiod_protect() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'Billing period % is %: it can never be deleted.',
            to_char(OLD.month, 'YYYY-MM'), OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.month <> OLD.month THEN
        RAISE EXCEPTION 'The month of billing period % cannot change.',
            to_char(OLD.month, 'YYYY-MM')
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (OLD.status = 'closed' AND NEW.status <> 'closed')
            OR (OLD.status = 'closing' AND NEW.status = 'open') THEN
        RAISE EXCEPTION 'Billing period % is %: it can never be reopened.',
            to_char(OLD.month, 'YYYY-MM'), OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status = 'closed' AND (
            NEW.closed_at IS DISTINCT FROM OLD.closed_at
            OR (NEW.closed_by_id IS DISTINCT FROM OLD.closed_by_id
                AND NEW.closed_by_id IS NOT NULL)) THEN
        RAISE EXCEPTION 'Billing period % is closed: when and by whom cannot change.',
            to_char(OLD.month, 'YYYY-MM')
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS billingperiod_protect ON tickets_billingperiod;
CREATE TRIGGER billingperiod_protect
    BEFORE UPDATE OR DELETE ON tickets_billingperiod
    FOR EACH ROW EXECUTE FUNCTION tickets_billingperiod_protect();
"""

UNPROTECT = """
DROP TRIGGER IF EXISTS billingperiod_protect ON tickets_billingperiod;
DROP FUNCTION IF EXISTS tickets_billingperiod_protect();
"""


def protect(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PROTECT, params=None)


def unprotect(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNPROTECT, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(protect, unprotect),
    ]
