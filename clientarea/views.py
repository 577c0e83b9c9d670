"""The client portal's pages. Each view checks that a client user asks for their own client's
data, calls one selector or service of billing/tickets, and renders the result."""

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, cast

from axes.helpers import get_client_ip_address
from django.contrib import messages
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordResetView, redirect_to_login
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import SafeString
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from billing.calculations import Statement
from billing.exports import (
    CSV_CONTENT_TYPE,
    statement_pdf_response,
    work_log_csv,
    work_log_filename,
)
from billing.models import Statement as StatementRecord
from billing.selectors.disputes import client_month_disputes, disputes_visible
from billing.selectors.monthly_statements import (
    client_statement_get,
    client_statement_months,
    client_statements,
)
from billing.selectors.portal import (
    ClosedMonthWork,
    DisputeTarget,
    client_closed_month_work,
    client_dispute_target,
    client_history,
    client_subscription_get,
    client_subscription_usages,
)
from billing.selectors.portal_stamp import dashboard_stamp, history_stamp
from billing.selectors.portal_tickets import (
    client_ticket_badges,
    client_ticket_conversation,
    client_ticket_get,
    client_ticket_times,
    client_tickets,
)
from billing.selectors.statements import ZERO_HOURS
from billing.services.disputes import DisputeTargetNotFound, dispute_open
from clientarea.charts import FRAGMENTS_CACHE
from clientarea.forms import (
    DisputeForm,
    ExtraHoursForm,
    OverageApproveForm,
    OverageCapForm,
    ReplyForm,
    TicketCreateForm,
    TicketFilterForm,
)
from clientarea.templatetags.portal import clock, money, url_of_each
from customers.forms import NotificationPreferenceForm
from customers.models import Client, MailKind
from customers.selectors import unsubscribe_token_read
from customers.services import (
    notification_preference_set,
    notification_unsubscribe,
    password_reset_request_record,
)
from packages.models import BillingMode, BillingPeriod, Subscription
from supportbilling.periods import period_current, period_label, period_parse
from supportbilling.roles import CLIENT_USER, client_membership, is_staff_member
from supportbilling.snapshot import one_snapshot
from tickets.attachments import SAFE_TYPES, attachment_for_download
from tickets.models import MessageKind, Ticket, TicketAttachment, TicketStatus
from tickets.overage import OverageDecision, overage_cap_effective, overage_decisions
from tickets.services import ticket_create, ticket_message_add, ticket_status_set
from tickets.services_overage import overage_approve, subscription_client_cap_set
from tickets.templatetags.hours import hours

TICKETS_PER_PAGE = 25
FAVICON = Path(__file__).resolve().parent / "static" / "brand" / "favicon.ico"


# Why a request may not see a client's pages (None: it may).
ANONYMOUS, STAFF, NO_CLIENT = "anonymous", "staff", "no_client"


def _portal_client(request: HttpRequest) -> tuple[Client | None, str | None]:
    """The client the signed-in user acts for, or why there is none: one rule for the portal's
    pages and its JSON (one query for the membership, after the session's)."""
    if not request.user.is_authenticated:
        return None, ANONYMOUS
    if is_staff_member(request.user):
        return None, STAFF
    membership = client_membership(request.user)
    if membership is None:
        return None, NO_CLIENT
    return membership.client, None


def client_portal(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Anonymous users sign in first; staff belong in the admin, never in a client's pages;
    a user who acts for no client is refused. The view receives the user's client (a file
    download answers a FileResponse, hence HttpResponseBase)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        client, refused = _portal_client(request)
        if refused == ANONYMOUS:
            return redirect_to_login(request.get_full_path())
        if refused == STAFF:
            return redirect("admin:index")
        if client is None:
            return render(request, "clientarea/no_client.html", status=403)
        return view(request, client, *args, **kwargs)

    return wrapper


def client_portal_json(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``client_portal`` for the portal's JSON: the same rule, answered in JSON that a script
    can read (401 to sign in, 403 with the reason) instead of redirects to HTML pages."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        client, refused = _portal_client(request)
        if refused == ANONYMOUS:
            return JsonResponse(
                {"detail": "Sign in first.", "login_url": reverse("clientarea:login")},
                status=401,
            )
        if refused == STAFF:
            return JsonResponse(
                {
                    "detail": "Staff use the admin; the client portal is for client users.",
                    "admin_url": reverse("admin:index"),
                },
                status=403,
            )
        if client is None:
            return JsonResponse(
                {"detail": "Your login is not linked to a client account."}, status=403
            )
        return view(request, client, *args, **kwargs)

    return wrapper


def _subscription_or_404(client: Client, pk: int) -> Subscription:
    try:
        return client_subscription_get(client_id=client.pk, subscription_id=pk)
    except Subscription.DoesNotExist as exc:
        raise Http404("No such subscription.") from exc


def _ticket_or_404(client: Client, pk: int) -> Ticket:
    try:
        return client_ticket_get(client_id=client.pk, ticket_id=pk)
    except Ticket.DoesNotExist as exc:
        raise Http404("No such ticket.") from exc


# --- Who is signed in ----------------------------------------------------------------------------


@require_GET
@client_portal_json
def me(request: HttpRequest, client: Client) -> JsonResponse:
    """The signed-in client user, their client and role, with the portal's addresses: what a
    script in the portal needs to greet the user and find its way (docs/decisions.md)."""
    user = cast(User, request.user)  # signed in: client_portal_json let it through
    return JsonResponse(
        {
            "user": {
                "id": user.pk,
                "username": user.get_username(),
                "name": user.get_full_name() or user.get_username(),
                "email": user.email,
            },
            "client": {"id": client.pk, "name": client.name, "currency": client.currency},
            "role": CLIENT_USER,
            "links": {
                "dashboard": reverse("clientarea:home"),
                "tickets": reverse("clientarea:tickets"),
                "new_ticket": reverse("clientarea:ticket_new"),
                "history": reverse("clientarea:history"),
                "notifications": reverse("clientarea:notifications"),
                "password_change": reverse("clientarea:password_change"),
                "logout": reverse("clientarea:logout"),
            },
        }
    )


# Closed months per package on the History page (docs/decisions.md, "Portal history").
HISTORY_MONTHS = 12


# --- Dashboard and cost calculator --------------------------------------------------------------


@require_GET
@client_portal
def dashboard(request: HttpRequest, client: Client) -> HttpResponse:
    month = period_current()
    if "subscription" in request.GET:
        cards = _dashboard_cards_with_estimate(request, client, month)
    else:
        cards = _dashboard_cards_kept(client, month)
    return render(
        request,
        "clientarea/dashboard.html",
        {
            "client": client,
            "month": month,
            "period": period_label(month),
            "cards": cards,
        },
    )


def _subscription_id_of(text: str) -> int | None:
    """The subscription id a query string asks for; None when it is no id a subscription
    can have (not a number, or beyond the database's integers: SQLite refuses to compare
    those)."""
    try:
        value = int(text)
    except ValueError:
        return None
    _, highest = connection.ops.integer_field_range(Subscription._meta.pk.get_internal_type())
    return value if 0 < value <= highest else None


def _dashboard_cards_with_estimate(
    request: HttpRequest, client: Client, month: dt.date
) -> list[dict[str, Any]]:
    """The cards with the cost calculator's answer (the calculator without JavaScript: the
    form reloads the page with ?subscription=&extra=), computed on each view."""
    estimate_for, estimate = None, None
    calculator_form = ExtraHoursForm(request.GET)
    estimate_for = _subscription_id_of(request.GET["subscription"])
    if estimate_for is not None and calculator_form.is_valid():
        found = client_subscription_usages(
            client_id=client.pk,
            month=month,
            subscription_id=estimate_for,
            extra_hours=calculator_form.cleaned_data["extra"],
        )
        estimate = found[0] if found else None
    return _dashboard_cards(
        client,
        month,
        calculator_form=calculator_form,
        estimate_for=estimate_for,
        estimate=estimate,
    )


# Dashboards and History pages kept between views, in the process's memory, under their stamp
# (settings.CACHES; docs/decisions.md, "Dashboard speed" and "Portal history").
DASHBOARDS_CACHE = "dashboards"
DASHBOARD_SECONDS = 3600


def _dashboard_cards_kept(client: Client, month: dt.date) -> list[dict[str, Any]]:
    """The cards as the last view computed them while nothing they show has changed
    (``dashboard_stamp``, one query), else computed and kept. Without a stamp (SQLite)
    computed on every view."""
    cards: list[dict[str, Any]] = _kept(
        ("dashboard", client.pk, month),
        stamp_of=lambda: dashboard_stamp(client_id=client.pk, month=month),
        compute=lambda: _dashboard_cards(client, month),
    )
    return cards


def _kept(
    shown: tuple[Any, ...],
    *,
    stamp_of: Callable[[], tuple[Any, ...] | None],
    compute: Callable[[], Any],
) -> Any:
    """What ``compute`` returned for ``shown`` (the page, the client, what else picks the
    content) in the request's language while the stamp of what it shows (``stamp_of``) is
    unchanged, else computed now and kept; without a stamp (SQLite) computed each time. None
    is not kept.

    A miss reads the stamp again and computes in the same snapshot (REPEATABLE READ), so what
    is kept is what that stamp describes: a change committed meanwhile, even one undone
    later (a row added, then deleted), is never kept under a stamp without it."""
    stamp = stamp_of()
    if stamp is None:
        return compute()
    kept = caches[DASHBOARDS_CACHE]
    value = kept.get(_kept_key(shown, stamp))
    if value is not None:
        return value
    with one_snapshot():
        stamp = stamp_of()
        value = compute()
    if value is not None:
        kept.set(_kept_key(shown, stamp), value, DASHBOARD_SECONDS)
    return value


def _kept_key(shown: tuple[Any, ...], stamp: tuple[Any, ...] | None) -> str:
    described = (*shown, translation.get_language(), stamp)
    return f"{shown[0]}:" + hashlib.blake2b(repr(described).encode(), digest_size=20).hexdigest()


def _dashboard_cards(
    client: Client,
    month: dt.date,
    *,
    calculator_form: ExtraHoursForm | None = None,
    estimate_for: int | None = None,
    estimate: Any = None,
) -> list[dict[str, Any]]:
    """Per subscription of the month: its usage (the notices), its card's HTML and its
    extra-hours panel's figures (rendered with the user's CSRF token by the page)."""
    usages = client_subscription_usages(client_id=client.pk, month=month)
    ticket_times = client_ticket_times(client_id=client.pk, month=month)
    # One reversal per URL name, not one per card (docs/decisions.md, "Dashboard speed").
    history_url = url_of_each("clientarea:subscription")
    estimate_url = url_of_each("clientarea:subscription_estimate")
    home_url = reverse("clientarea:home")
    decisions = overage_decisions(
        subscription_ids=[usage.subscription.pk for usage in usages],
        since=timezone.make_aware(dt.datetime.combine(month, dt.time())),
    )
    cards = []
    for usage in usages:
        pk = usage.subscription.pk
        card: dict[str, Any] = {
            "usage": usage,
            "history_url": history_url(pk),
            "estimate_url": estimate_url(pk),
            "tickets": [t for t in ticket_times if t.subscription_id == pk],
            "estimate": estimate if estimate_for == pk else None,
            "calculator_form": calculator_form
            if calculator_form is not None and estimate_for == pk
            else ExtraHoursForm(),
        }
        cards.append(
            {
                "usage": usage,
                "html": dashboard_card_html(card, home_url=home_url),
                "overage": _overage_panel(usage, decisions),
            }
        )
    return cards


def _overage_panel(usage: Any, decisions: list[OverageDecision]) -> dict[str, Any] | None:
    """The card's extra hours: the policy's figures, the month's decisions and the forms to
    approve hours or set the client's cap (outside the cached card: the forms carry the
    user's CSRF token)."""
    subscription = usage.subscription
    if usage.statement is None or subscription.package.billing_mode != BillingMode.RECURRING:
        return None
    pk = subscription.pk
    return {
        "subscription": subscription,
        "statement": usage.statement,
        "cap": overage_cap_effective(subscription),
        "decisions": [d for d in decisions if d.subscription_id == pk],
        "approve_url": reverse("clientarea:overage_approve", args=[pk]),
        "cap_url": reverse("clientarea:overage_cap", args=[pk]),
    }


@require_POST
@client_portal
def overage_approve_view(request: HttpRequest, client: Client, pk: int) -> HttpResponse:
    """The client approves extra hours for the current month (tickets.services_overage)."""
    subscription = _subscription_or_404(client, pk)
    form = OverageApproveForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError([e for errors in form.errors.values() for e in errors])
        approval = overage_approve(
            subscription=subscription, hours=form.cleaned_data["hours"], user=request.user
        )
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
        return redirect(reverse("clientarea:home") + f"#overage-{pk}")
    messages.success(
        request,
        f"{hours(approval.hours)} extra approved for {period_label(approval.month)}.",
    )
    return redirect(reverse("clientarea:home") + f"#overage-{pk}")


@require_POST
@client_portal
def overage_cap_view(request: HttpRequest, client: Client, pk: int) -> HttpResponse:
    """The client sets (or clears) their own monthly cap on extra hours."""
    subscription = _subscription_or_404(client, pk)
    form = OverageCapForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError([e for errors in form.errors.values() for e in errors])
        subscription = subscription_client_cap_set(
            subscription=subscription, cap_hours=form.cleaned_data["cap_hours"], user=request.user
        )
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
        return redirect(reverse("clientarea:home") + f"#overage-{pk}")
    cap = subscription.client_cap_hours
    messages.success(
        request,
        f"Your monthly cap is now {hours(cap)} of extra time."
        if cap is not None
        else "You have no monthly cap of your own now.",
    )
    return redirect(reverse("clientarea:home") + f"#overage-{pk}")


# Cards rendered in the last hour, in the process's memory (settings.CACHES; docs/decisions.md,
# "Dashboard speed").
DASHBOARD_CARD_SECONDS = 3600


def _dashboard_card_key(card: dict[str, Any], *, home_url: str) -> str | None:
    """The fragment cache key of a card: a digest of every value the card shows, so a cached
    card is only ever served for the very same figures, tickets and entries (nothing to
    invalidate). None for a card with a typed estimate, which is rendered each time."""
    if card["calculator_form"].is_bound:
        return None
    usage = card["usage"]
    subscription = usage.subscription
    package = subscription.package
    shown = (
        translation.get_language(),
        home_url,
        card["history_url"],
        card["estimate_url"],
        subscription.pk,
        subscription.status,
        subscription.overage_policy,
        subscription.client.currency,
        package.name,
        package.billing_mode,
        package.included_hours,
        usage.statement,  # every figure, the terms (billed or current)
        usage.blocks,  # the top-up blocks' lines
        card["tickets"],  # every ticket and entry: subject, date, hours, badge, work log
    )
    digest = hashlib.blake2b(repr(shown).encode(), digest_size=20).hexdigest()
    return f"dashboard-card:{digest}"


def dashboard_card_html(card: dict[str, Any], *, home_url: str) -> SafeString:
    """One card of the dashboard, from the fragment cache when the same card was rendered
    before: rendering a card costs about 2 ms, far more than its queries."""
    key = _dashboard_card_key(card, home_url=home_url)
    fragments = caches[FRAGMENTS_CACHE]
    if key is not None:
        cached = fragments.get(key)
        if cached is not None:
            return cached  # the SafeString stored below (the cache keeps its type)
    html = render_to_string("clientarea/_dashboard_card.html", {"card": card, "home_url": home_url})
    if key is not None:
        fragments.set(key, html, DASHBOARD_CARD_SECONDS)
    return html


def _statement_json(statement: Statement, extra_hours: Any) -> dict[str, Any]:
    return {
        "currency": statement.currency,
        "extra_hours": str(extra_hours),
        "included_hours": str(statement.included_hours),
        "used_hours": str(statement.used_hours),
        "remaining_hours": str(statement.remaining_hours),
        "overtime_hours": str(statement.overtime_hours),
        "hourly_rate": str(statement.hourly_rate.amount),
        "fee": str(statement.fee.amount),
        "overtime_amount": str(statement.overtime_amount.amount),
        "total": str(statement.total.amount),
        "used_percent": statement.used_percent,
        "display": {
            "used_hours": f"{hours(statement.used_hours)} ({clock(statement.used_hours)})",
            "overtime_hours": hours(statement.overtime_hours),
            "hourly_rate": money(statement.hourly_rate),
            "fee": money(statement.fee),
            "overtime_amount": money(statement.overtime_amount),
            "total": money(statement.total),
        },
    }


@require_GET
@client_portal
def subscription_estimate(request: HttpRequest, client: Client, pk: int) -> JsonResponse:
    """The cost calculator: this month's statement with ``?extra=`` hours added, computed by
    the same ``statement_compute`` the rollup bills with. JSON for the card's script."""
    subscription = _subscription_or_404(client, pk)
    form = ExtraHoursForm(request.GET)
    if not form.is_valid():
        return JsonResponse(form.errors, status=400)
    if subscription.package.billing_mode != BillingMode.RECURRING:
        return JsonResponse({"detail": "The cost calculator is for monthly packages."}, status=400)
    month = period_current()
    found = client_subscription_usages(
        client_id=client.pk,
        month=month,
        subscription_id=subscription.pk,
        extra_hours=form.cleaned_data["extra"],
    )
    if not found or found[0].statement is None:
        return JsonResponse(
            {"detail": "This subscription is not current or has no price; ask support."},
            status=400,
        )
    return JsonResponse(
        {
            "subscription": subscription.pk,
            "period": period_label(month),
            **_statement_json(found[0].statement, form.cleaned_data["extra"]),
        }
    )


# --- History --------------------------------------------------------------------------------


@require_GET
@client_portal
def history(request: HttpRequest, client: Client) -> HttpResponse:
    # The newest closed months of every package; each package's page lists all of them.
    content = _history_content_kept(client, subscription_id=None)
    return render(request, "clientarea/history.html", {"client": client, "content": content})


@require_GET
@client_portal
def subscription_history(request: HttpRequest, client: Client, pk: int) -> HttpResponse:
    content = _history_content_kept(client, subscription_id=pk)
    if content is None:
        raise Http404("No such subscription.")
    return render(request, "clientarea/history.html", {"client": client, "content": content})


def _history_content_kept(client: Client, *, subscription_id: int | None) -> SafeString | None:
    """The History page's content as the last view rendered it while nothing it shows has
    changed (``history_stamp``, one query), else rendered and kept; without a stamp (SQLite)
    rendered on every view (docs/decisions.md, "Portal history"). None: the client has no
    such subscription."""
    now = timezone.now()
    month = period_current(now)
    content: SafeString | None = _kept(
        ("history", client.pk, subscription_id, month),
        stamp_of=lambda: history_stamp(client_id=client.pk, month=month, now=now),
        compute=lambda: _history_content(client, subscription_id=subscription_id, now=now),
    )
    return content


def _history_content(
    client: Client, *, subscription_id: int | None, now: dt.datetime
) -> SafeString | None:
    """All packages with their newest closed months, or one package (``subscription_id``)
    with all of them; None: the client has no such subscription."""
    histories = client_history(
        client_id=client.pk,
        subscription_id=subscription_id,
        months=HISTORY_MONTHS if subscription_id is None else None,
        now=now,
    )
    if subscription_id is not None and not histories:
        return None
    return render_to_string(
        "clientarea/_history.html",
        {
            "histories": histories,
            "subscription": histories[0].subscription if subscription_id is not None else None,
            "months_shown": HISTORY_MONTHS,
            "decisions": _decisions_of(histories),
            "statement_months": client_statement_months(client_id=client.pk),
        },
    )


def _decisions_of(histories: list[Any]) -> dict[int, list[OverageDecision]]:
    """The overage decisions of each subscription shown (one query)."""
    found: dict[int, list[OverageDecision]] = {}
    for decision in overage_decisions(
        subscription_ids=[history.subscription.pk for history in histories], limit=200
    ):
        found.setdefault(decision.subscription_id, []).append(decision)
    return found


def _closed_month_or_404(client: Client, pk: int, period: str) -> ClosedMonthWork:
    try:
        return client_closed_month_work(
            client_id=client.pk, subscription_id=pk, month=period_parse(period)
        )
    except (ValidationError, Subscription.DoesNotExist, BillingPeriod.DoesNotExist) as exc:
        raise Http404("No such closed month.") from exc


@require_GET
@client_portal
def closed_month_work(request: HttpRequest, client: Client, pk: int, period: str) -> HttpResponse:
    """What was done in one closed month of a subscription: its time entries, the month's
    statement PDF (every revision); with a review window, also its items, the window and the
    client's disputes of them."""
    work = _closed_month_or_404(client, pk, period)
    review = client_month_disputes(
        client_id=client.pk, subscription_id=work.subscription.pk, month=work.month
    )
    by_entry = review.by_entry if review is not None else {}
    statements = client_statements(client_id=client.pk, subscription_id=pk, month=work.month)
    context: dict[str, Any] = {
        "client": client,
        "work": work,
        "review": review,
        "entry_rows": [(line, by_entry.get(line.entry.entry_id)) for line in work.lines],
        "statements": list(statements),
    }
    if review is not None:
        context["item_rows"] = [(item, review.by_item.get(item.pk)) for item in review.items]
    return render(request, "clientarea/closed_month.html", context)


@require_GET
@client_portal
def dispute_list(request: HttpRequest, client: Client) -> HttpResponse:
    """The client's disputes, newest first, with finance's answers."""
    return render(
        request,
        "clientarea/disputes.html",
        {"client": client, "disputes": disputes_visible(client_id=client.pk)[:200]},
    )


def _dispute_back(found: DisputeTarget | None) -> str:
    """Where the dispute form leads back to: the closed month of the object, or the disputes
    page (an item of no subscription)."""
    if found is None or not found.subscription_id:
        return reverse("clientarea:disputes")
    return reverse(
        "clientarea:closed_month", args=[found.subscription_id, period_label(found.month)]
    )


@require_POST
@client_portal
def dispute_new(request: HttpRequest, client: Client) -> HttpResponse:
    """Dispute one of the client's time entries or billable items of a month in review.
    The service checks that the object is the client's; another client's is a 404 here, as
    everywhere in the portal."""
    form = DisputeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("clientarea:disputes")
    entry_id, item_id = form.cleaned_data["time_entry"], form.cleaned_data["item"]
    try:
        dispute = dispute_open(
            client_id=client.pk,
            reason=form.cleaned_data["reason"],
            time_entry_id=entry_id,
            item_id=item_id,
            actor=request.user,
        )
    except DisputeTargetNotFound as exc:
        raise Http404("No such time entry or item.") from exc
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, f"The dispute was not opened: {message}")
        # Refused after the service found the object the client's: back to its month.
        found = client_dispute_target(client_id=client.pk, time_entry_id=entry_id, item_id=item_id)
        return redirect(_dispute_back(found))
    messages.success(
        request,
        f"Your dispute #{dispute.pk} is open: we hold the amounts concerned back from billing "
        "and answer it here and under Disputes.",
    )
    return redirect(_dispute_back(DisputeTarget(dispute.subscription_id, dispute.month)))


@require_GET
@client_portal
def statement_download(
    request: HttpRequest, client: Client, pk: int, period: str, revision: int | None = None
) -> FileResponse:
    """The statement PDF of one closed month (the latest revision, or the one asked for), to
    the users of the subscription's client; a 404 for anyone else's."""
    try:
        statement = client_statement_get(
            client_id=client.pk,
            subscription_id=pk,
            month=period_parse(period),
            revision=revision,
        )
    except (ValidationError, StatementRecord.DoesNotExist) as exc:
        raise Http404("No such statement.") from exc
    return statement_pdf_response(statement)


@require_GET
@client_portal
def closed_month_work_csv(
    request: HttpRequest, client: Client, pk: int, period: str
) -> HttpResponse:
    work = _closed_month_or_404(client, pk, period)
    response = HttpResponse(work_log_csv(work), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{work_log_filename(work)}"'
    return response


# --- Tickets --------------------------------------------------------------------------------


@require_GET
@client_portal
def ticket_list(request: HttpRequest, client: Client) -> HttpResponse:
    filter_form = TicketFilterForm(request.GET or {"status": "active"})
    status = filter_form.cleaned_data["status"] if filter_form.is_valid() else ""
    tickets = client_tickets(client_id=client.pk, status=status)
    page = Paginator(tickets, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    badges = client_ticket_badges(client_id=client.pk, ticket_ids=[ticket.pk for ticket in page])
    rows = [{"ticket": ticket, "badge": badges.get(ticket.pk)} for ticket in page]
    return render(
        request,
        "clientarea/ticket_list.html",
        {
            "client": client,
            "page": page,
            "rows": rows,
            "filter_form": filter_form,
            "status": status,
        },
    )


@require_http_methods(["GET", "POST"])
@client_portal
def ticket_new(request: HttpRequest, client: Client) -> HttpResponse:
    form = TicketCreateForm(request.POST or None, request.FILES or None, client_id=client.pk)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = ticket_create(
                client=client,
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                author=request.user,
                kind=MessageKind.CLIENT_REPLY,
                subscription=form.cleaned_data["subscription"],
                attachments=form.cleaned_data["attachments"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Ticket #{ticket.pk} is open. We will answer soon.")
            return redirect("clientarea:ticket", pk=ticket.pk)
    return render(request, "clientarea/ticket_new.html", {"client": client, "form": form})


def _add_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _ticket_page(
    request: HttpRequest, client: Client, ticket: Ticket, reply_form: ReplyForm, status: int = 200
) -> HttpResponse:
    times = client_ticket_times(client_id=client.pk, ticket_ids=[ticket.pk])
    return render(
        request,
        "clientarea/ticket_detail.html",
        {
            "client": client,
            "ticket": ticket,
            "conversation": client_ticket_conversation(ticket=ticket),
            "times": times,
            "total_hours": sum((time.total_hours for time in times), ZERO_HOURS),
            "reply_form": reply_form,
            "is_closed": ticket.status == TicketStatus.CLOSED,
        },
        status=status,
    )


@require_GET
@client_portal
def ticket_detail(request: HttpRequest, client: Client, pk: int) -> HttpResponse:
    return _ticket_page(request, client, _ticket_or_404(client, pk), ReplyForm())


@require_POST
@client_portal
def ticket_reply(request: HttpRequest, client: Client, pk: int) -> HttpResponse:
    ticket = _ticket_or_404(client, pk)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            ticket_message_add(
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                kind=MessageKind.CLIENT_REPLY,
                attachments=form.cleaned_data["attachments"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Your reply was sent.")
            return redirect(reverse("clientarea:ticket", args=[ticket.pk]) + "#latest")
    return _ticket_page(request, client, ticket, form, status=400)


@require_POST
@client_portal
def ticket_close(request: HttpRequest, client: Client, pk: int) -> HttpResponse:
    ticket = _ticket_or_404(client, pk)
    ticket_status_set(ticket=ticket, status=TicketStatus.CLOSED, actor=request.user)
    messages.success(request, f"Ticket #{ticket.pk} is closed. Reply to it to open it again.")
    return redirect("clientarea:ticket", pk=ticket.pk)


# --- E-mail preferences ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@client_portal
def notifications(request: HttpRequest, client: Client) -> HttpResponse:
    """Which e-mails the signed-in user wants."""
    form = NotificationPreferenceForm.for_user(request.user, request.POST)
    if request.method == "POST" and form.is_valid():
        notification_preference_set(user=request.user, **form.cleaned_data)
        messages.success(request, "Your e-mail settings are saved.")
        return redirect("clientarea:notifications")
    return render(request, "clientarea/notifications.html", {"client": client, "form": form})


# Mail clients post the one-click unsubscribe (RFC 8058) without a session or a CSRF token;
# the signed token is the proof. A GET only asks to confirm: link scanners follow GETs.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    read = unsubscribe_token_read(token)
    if read is None:
        return render(request, "clientarea/unsubscribe_invalid.html", status=400)
    user_id, kind = read
    label = MailKind(kind).label.lower()
    if request.method == "POST":
        if notification_unsubscribe(user_id=user_id, kind=kind) is None:
            return render(request, "clientarea/unsubscribe_invalid.html", status=400)
        return render(request, "clientarea/unsubscribe.html", {"label": label, "done": True})
    return render(request, "clientarea/unsubscribe.html", {"label": label, "done": False})


class PortalPasswordResetView(PasswordResetView):
    """Django's reset page, sending the e-mail only while the address and the client address
    are within their hourly limits; over the limit the answer is the same page, so it tells
    nobody whether the address has an account or was limited."""

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        allowed = password_reset_request_record(
            email=form.cleaned_data["email"],
            # the address the sign-in throttle counts too (django-axes' setting)
            client_address=get_client_ip_address(self.request) or "",
        )
        if allowed:
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())


# --- Attachments -----------------------------------------------------------------------------


@require_GET
def attachment_download(request: HttpRequest, pk: int) -> HttpResponse | FileResponse:
    """A file of a ticket message, for whoever may see it: staff who read tickets, and the
    users of the ticket's client unless it belongs to an internal note (one rule:
    tickets.attachments). Always a download, never shown by the browser."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        attachment = attachment_for_download(user=request.user, attachment_id=pk)
        stored = attachment.file.open("rb")
    except (TicketAttachment.DoesNotExist, OSError) as exc:
        raise Http404("No such file.") from exc
    declared = attachment.content_type
    response = FileResponse(
        stored,
        as_attachment=True,
        filename=attachment.filename,
        content_type=declared if declared in SAFE_TYPES else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- The site's icon -------------------------------------------------------------------------


@require_safe
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links: the brand's icon, not a 404 in
    every log. Read from the app's folder, so it answers before and without collectstatic."""
    return HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
