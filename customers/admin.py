# Clients and their portal logins are administered from billing/admin.py: their changes go
# through billing's services (a currency fixed by subscriptions, the audit of money changes).
