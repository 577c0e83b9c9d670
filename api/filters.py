"""Query filters of the lists (docs/api.md): each refuses a value it cannot read with a 400."""

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet

from billing.models import BillableItem, ItemKind, ItemStatus
from customers.models import Client
from packages.models import Subscription
from supportbilling.periods import period_parse
from tickets.models import Ticket, TicketStatus


class PeriodFilter(django_filters.CharFilter):
    """``?period=YYYY-MM`` on a date column holding the first day of the month."""

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        try:
            month = period_parse(value)
        except DjangoValidationError as exc:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"period": exc.messages}) from exc
        return qs.filter(**{self.field_name: month})


class SubscriptionFilter(django_filters.FilterSet):
    client = django_filters.ModelChoiceFilter(queryset=Client.objects.all())

    class Meta:
        model = Subscription
        fields = ["client"]


class TicketFilter(django_filters.FilterSet):
    client = django_filters.ModelChoiceFilter(queryset=Client.objects.all())
    status = django_filters.ChoiceFilter(choices=TicketStatus.choices)

    class Meta:
        model = Ticket
        fields = ["client", "status"]


class BillableItemFilter(django_filters.FilterSet):
    period = PeriodFilter(field_name="period", help_text="YYYY-MM")
    status = django_filters.ChoiceFilter(choices=ItemStatus.choices)
    client = django_filters.ModelChoiceFilter(queryset=Client.objects.all())
    kind = django_filters.ChoiceFilter(choices=ItemKind.choices)
    currency = django_filters.ChoiceFilter(choices=settings.CURRENCY_CHOICES)

    class Meta:
        model = BillableItem
        fields = ["period", "status", "client", "kind", "currency"]
