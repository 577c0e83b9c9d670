"""What the portal's dashboard of one client in one month depends on, and what its History
pages depend on, each read in one query, so that the dashboard's cards and the History pages
can be kept between views and served again only while they are unchanged (docs/decisions.md,
"Dashboard speed" and "Portal history").

Time entries of a closed month never change (the time services refuse them), so the stamps
read the entries of the months not closed, and the closed months themselves: closing a month
changes the stamps, the locked entries are never read again. Everything else the dashboard's
stamp reads is a few rows of the client's (subscriptions with their blocks, packages, prices,
the month's items, terms, approvals, draws and overage decisions): it costs the same after 2 or
200 closed months. The History's stamp also reads the client's items, terms, approvals, draws
and statements of every month: a few rows a month, far fewer than the entries behind them."""

import datetime as dt
from typing import Any

from django.db import connection
from django.utils import timezone

from billing.models import ItemKind
from billing.selectors.review import review_days
from packages.models import BillingMode, PeriodStatus
from supportbilling.periods import period_previous
from supportbilling.sqltext import sql_composed
from tickets.overage import OVERAGE_ACTIONS

# Each part is a digest of whole rows (``row::text``: every column, so a column added later is
# covered without changing this query) with their ``xmin`` (the transaction that wrote that
# version of the row): every write changes the stamp, even one that puts an earlier value back.
# (A row added, then deleted, brings the earlier stamp back: a page is therefore computed in the
# same snapshot as the stamp it is kept under, clientarea.views._kept.)
# The parts both stamps read:
# the client, its subscriptions (blocks included), their packages and prices in its currency;
CLIENT_SUBSCRIPTIONS_PART = """
  (SELECT MD5(STRING_AGG(
            CONCAT_WS('|', c::text, c.xmin, s::text, s.xmin, p::text, p.xmin, pp::text, pp.xmin),
            ',' ORDER BY s.id))
     FROM customers_client c
     JOIN packages_subscription s ON s.client_id = c.id
     JOIN packages_supportpackage p ON p.id = s.package_id
     LEFT JOIN packages_packageprice pp ON pp.package_id = p.id AND pp.currency = c.currency
    WHERE c.id = %(client)s)"""
# the months closing or closed, with when they closed;
CLOSED_MONTHS_PART = """
  (SELECT STRING_AGG(CONCAT_WS('|', month, status, closed_at, xmin), ',' ORDER BY month)
     FROM packages_billingperiod WHERE status IN (%(closing)s, %(closed)s))"""
# the time entries of the month and of the months before it not closed ({shown}: what of them,
# {joined}: with what, the dashboard showing their ticket's subject and operator's name);
OPEN_MONTHS_ENTRIES_PART = """
  (SELECT MD5(STRING_AGG({shown}, ',' ORDER BY e.id))
     -- Per subscription and month, so that PostgreSQL reads the (subscription, work_date)
     -- index whatever share of the table the current month holds.
     FROM packages_subscription s
     CROSS JOIN LATERAL (
       SELECT CAST(%(first)s AS date) AS month, CAST('infinity' AS date) AS until
       UNION ALL
       -- The months before it that are not closed (as an array: PostgreSQL then plans for
       -- a few of them, not for a thousand)
       SELECT m, CAST(m + INTERVAL '1 month' AS date)
         FROM UNNEST(ARRAY(
                SELECT CAST(m AS date)
                  FROM GENERATE_SERIES(
                         DATE_TRUNC('month', s.start_date), CAST(%(previous)s AS timestamp),
                         INTERVAL '1 month') AS m
                 WHERE NOT EXISTS (
                         SELECT 1 FROM packages_billingperiod p
                          WHERE p.month = CAST(m AS date)
                            AND p.status IN (%(closing)s, %(closed)s)))) AS m
     ) AS o
     CROSS JOIN LATERAL (
       SELECT e.*, e.xmin AS version FROM tickets_timeentry e
        WHERE e.subscription_id = s.id AND e.work_date >= o.month AND e.work_date < o.until
       OFFSET 0  -- not flattened into a join: one index range per subscription and month
     ) AS e
     {joined}
    WHERE s.client_id = %(client)s)"""
# the overage decisions of its subscriptions (audit events: append-only, so their id and
# version), with their actor's name, since ``since`` (NULL: all of them).
OVERAGE_DECISIONS_PART = """
  (SELECT MD5(STRING_AGG(
            CONCAT_WS('|', a.id, a.xmin, u.username, u.first_name, u.last_name, u.xmin),
            ',' ORDER BY a.id))
     FROM tickets_auditevent a
     LEFT JOIN auth_user u ON u.id = a.actor_id
    WHERE a.subscription_id IN (
            SELECT id FROM packages_subscription WHERE client_id = %(client)s)
      AND a.action = ANY(%(overage_actions)s)
      AND (CAST(%(since)s AS timestamptz) IS NULL OR a.created_at >= %(since)s))"""

# The dashboard: those parts and the month's items, stored terms, approvals and block draws.
DASHBOARD_STAMP_SQL = sql_composed(
    """
SELECT {client_subscriptions}, {closed_months},
  {open_months_entries},
  (SELECT MD5(STRING_AGG(CONCAT_WS('|', i::text, i.xmin), ',' ORDER BY i.id))
     FROM billing_billableitem i
    WHERE i.client_id = %(client)s AND (i.period = %(first)s OR i.kind = %(one_time)s)),
  (SELECT MD5(STRING_AGG(
            CONCAT_WS('|', bt::text, bt.xmin, a::text, a.xmin, d::text, d.xmin),
            ',' ORDER BY s.id, bt.id, a.id, d.id))
     FROM packages_subscription s
     LEFT JOIN billing_billedterms bt
       ON bt.subscription_id = s.id AND (bt.month = %(first)s OR bt.billing_mode = %(bucket)s)
     LEFT JOIN packages_overageapproval a ON a.subscription_id = s.id AND a.month = %(first)s
     LEFT JOIN packages_blockdraw d
       ON (d.block_id = s.id OR (d.subscription_id = s.id AND d.month = %(first)s))
    WHERE s.client_id = %(client)s),
  {overage_decisions}""",
    client_subscriptions=CLIENT_SUBSCRIPTIONS_PART,
    closed_months=CLOSED_MONTHS_PART,
    open_months_entries=sql_composed(
        OPEN_MONTHS_ENTRIES_PART,
        # (what the cards show of the ticket and the operator: a message on the ticket or
        # the operator signing in keeps them)
        shown="""CONCAT_WS('|', e::text, t.subject, u.username, u.first_name, u.last_name)""",
        joined="""JOIN tickets_ticket t ON t.id = e.ticket_id
     JOIN auth_user u ON u.id = e.operator_id""",
    ),
    overage_decisions=OVERAGE_DECISIONS_PART,
)

# The History pages: those parts (every decision), and all the items, stored terms, approvals,
# block draws and statements of the client's subscriptions (a few rows a month); last, the
# months whose review is running at ``now`` (a window that ends changes the page with no row
# written; a month released early leaves it).
HISTORY_STAMP_SQL = sql_composed(
    """
SELECT {client_subscriptions}, {closed_months},
  {open_months_entries},
  (WITH mine AS (SELECT id FROM packages_subscription WHERE client_id = %(client)s)
   SELECT MD5(STRING_AGG(version, ',' ORDER BY version))
     FROM (SELECT CONCAT_WS('|', 'item', i::text, i.xmin) FROM billing_billableitem i
            WHERE i.subscription_id IN (SELECT id FROM mine)
           UNION ALL
           SELECT CONCAT_WS('|', 'terms', t::text, t.xmin) FROM billing_billedterms t
            WHERE t.subscription_id IN (SELECT id FROM mine)
           UNION ALL
           SELECT CONCAT_WS('|', 'approval', a::text, a.xmin) FROM packages_overageapproval a
            WHERE a.subscription_id IN (SELECT id FROM mine)
           UNION ALL
           SELECT CONCAT_WS('|', 'draw', d::text, d.xmin) FROM packages_blockdraw d
            WHERE d.subscription_id IN (SELECT id FROM mine)
               OR d.block_id IN (SELECT id FROM mine)
           UNION ALL
           SELECT CONCAT_WS('|', 'statement', st.id, st.xmin) FROM billing_statement st
            WHERE st.client_id = %(client)s) AS billed (version)),
  {overage_decisions},
  (SELECT STRING_AGG(CAST(p.month AS text), ',' ORDER BY p.month)
     FROM packages_billingperiod p
    WHERE p.status = %(closed)s AND p.closed_at > %(review_since)s
      AND NOT EXISTS (SELECT 1 FROM billing_periodrelease r WHERE r.month = p.month))""",
    client_subscriptions=CLIENT_SUBSCRIPTIONS_PART,
    closed_months=CLOSED_MONTHS_PART,
    # (their hours only: the page names no ticket and no operator)
    open_months_entries=sql_composed(OPEN_MONTHS_ENTRIES_PART, shown="e::text", joined=""),
    overage_decisions=OVERAGE_DECISIONS_PART,
)


def dashboard_stamp(*, client_id: int, month: dt.date) -> tuple[Any, ...] | None:
    """A value that changes whenever anything the client's dashboard for ``month`` shows
    changes: time logged, changed or deleted in an open month (with its ticket's subject and
    its operator's name), a month being closed, the client's subscriptions and blocks, their
    packages and prices, the month's items, stored terms, approvals, block draws and overage
    decisions. One query.

    None where the stamp is not available (it is PostgreSQL's SQL; on SQLite, the laptop
    fallback, the dashboard is then computed on every view: slower, never stale)."""
    since = timezone.make_aware(dt.datetime.combine(month, dt.time()))
    return _stamp(DASHBOARD_STAMP_SQL, client_id=client_id, month=month, since=since)


def history_stamp(*, client_id: int, month: dt.date, now: dt.datetime) -> tuple[Any, ...] | None:
    """A value that changes whenever anything the client's History pages show changes, in
    ``month`` (the current one) at ``now``: what the dashboard's stamp reads (the open months'
    entries without their tickets and operators, which the pages do not name; every overage
    decision, not only the month's), the closed months with their closing time, all the
    items, stored terms, approvals, block draws and statements of the client's subscriptions,
    and which months are in review at ``now``. One query; None where it is not available
    (SQLite), as ``dashboard_stamp``."""
    days = review_days()
    return _stamp(
        HISTORY_STAMP_SQL,
        client_id=client_id,
        month=month,
        since=None,
        review_since=now - dt.timedelta(days=days) if days else None,
    )


def _stamp(
    query: str, *, client_id: int, month: dt.date, since: dt.datetime | None, **more: Any
) -> tuple[Any, ...] | None:
    if connection.vendor != "postgresql":
        return None
    params: dict[str, Any] = {
        "client": client_id,
        "first": month,
        "previous": period_previous(month),
        "closing": PeriodStatus.CLOSING.value,
        "closed": PeriodStatus.CLOSED.value,
        "one_time": ItemKind.ONE_TIME.value,
        "bucket": BillingMode.ONE_TIME.value,
        "overage_actions": list(OVERAGE_ACTIONS),
        "since": since,
        **more,
    }
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return tuple(cursor.fetchone() or ())
