"""The operator's "add a support service for the client" on a ticket's admin page.

It lives in billing because subscriptions are created by ``billing.services.subscription_create``
and tickets cannot import billing; the ticket page's form posts here by URL name
(``admin:billing_ticket_service_add``), and refusals are shown on the ticket page again.
"""

from typing import cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing.services.subscriptions import subscription_create
from packages.models import SupportPackage
from tickets.admin import TicketAdmin
from tickets.forms import ServiceAddForm
from tickets.models import Ticket


def ticket_service_add(request: HttpRequest, ticket_id: int) -> HttpResponse:
    if not (
        request.user.has_perm("packages.add_subscription")
        and request.user.has_perm("tickets.add_timeentry")
    ):
        raise PermissionDenied
    ticket = get_object_or_404(Ticket.objects.select_related("client"), pk=ticket_id)
    # The site's registry is typed by model only; Ticket's is tickets.admin.TicketAdmin.
    ticket_admin = cast(TicketAdmin, admin.site.get_model_admin(Ticket))
    form = ServiceAddForm(request.POST)
    if not form.is_valid():
        return ticket_admin.workspace_refuse(request, ticket, None, service_form=form)
    package = SupportPackage.objects.filter(pk=form.cleaned_data["package"]).first()
    try:
        if package is None:
            raise ValidationError("Choose one of the packages offered.")
        subscription = subscription_create(
            client=ticket.client, package=package, actor=request.user, ticket=ticket
        )
    except ValidationError as error:
        return ticket_admin.workspace_refuse(request, ticket, error, service_form=form)
    messages.success(
        request, f"{subscription.package.name} added for {ticket.client.name}; time goes to it."
    )
    return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]) + "#time")
