# Packages, their prices and subscriptions are administered from billing/admin.py: their
# changes go through billing's services (rules on prices in use, the audit of money changes).
