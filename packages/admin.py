# Packages, prices and subscriptions (and clients) are administered in billing/admin.py: their
# pages show billing's audit of money changes. Their changes go through packages.services and
# customers.services all the same. The months (BillingPeriod) are administered by billing's
# periods page (billing/admin_views.py): closing a month is billing's work.
