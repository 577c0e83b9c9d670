"""API v1 views: parse, check the role and the client, call one service or selector, render.

Services refuse with django's ValidationError; api.errors turns that into a 400 in one
place. A client user's querysets are cut to their own client, so anything else is a 404.
"""

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import DecimalField, Prefetch, Sum, Value
from django.db.models.functions import Coalesce
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.filters import BillableItemFilter, SubscriptionFilter, TicketFilter
from api.permissions import RolePolicy
from billing import exports
from billing.calculations import TERMS_BILLED
from billing.models import BillableItem, DisputeStatus
from billing.selectors.disputes import disputes_visible
from billing.selectors.exports import export_jobs_visible_to
from billing.selectors.review import items_with_hold
from billing.selectors.statements import (
    approved_hours_subquery,
    statement_for_subscription,
    subscription_block_lines,
)
from billing.services.disputes import dispute_open, dispute_resolve
from billing.services.exports import export_job_create
from billing.services.items import adjustment_create, billable_item_status_set
from billing.services.rollup import period_close
from customers.models import Client
from customers.services import client_create, client_update, client_user_create
from packages.models import PackagePrice, Subscription, SupportPackage
from packages.selectors import period_is_closed
from packages.services import (
    package_create,
    package_update,
    subscription_create,
    subscription_status_set,
)
from supportbilling.periods import period_current, period_label
from supportbilling.roles import ADMINISTRATOR as ADMIN
from supportbilling.roles import ALL_ROLES as EVERYONE
from supportbilling.roles import CLIENT_USER, FINANCE, OPERATOR, client_id_of
from supportbilling.roles import STAFF_ROLES as STAFF
from tickets import services as ticket_services
from tickets.models import Ticket, TicketPriority, TicketStatus, TimeEntry
from tickets.selectors import time_entries_with_billed
from tickets.services_overage import overage_approve, subscription_overage_set

ADMIN_ONLY = frozenset({ADMIN})
CLIENT_ONLY = frozenset({CLIENT_USER})
TICKET_WRITERS = frozenset({ADMIN, OPERATOR})
FINANCE_ROLES = frozenset({ADMIN, FINANCE})
HOURS_SUM = DecimalField(max_digits=12, decimal_places=2)
PERIOD_PARAMETER = OpenApiParameter("period", str, required=True, description="YYYY-MM")
CSV_TEXT = {"type": "string", "description": "CSV, UTF-8, a header row then one row per item"}


class ApiViewSet(viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, RolePolicy]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_converter = "int"  # ids are integers, in the URL and in the schema
    roles: dict[str, frozenset[str]] = {}

    def client_scope(self) -> int | None:
        """The client a client user is limited to (None: staff see every client)."""
        return client_id_of(self.request.user)


# --- Catalogue and clients -----------------------------------------------------------------


class PackageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.PackageSerializer
    roles = {"list": STAFF, "retrieve": STAFF, "create": ADMIN_ONLY, "partial_update": ADMIN_ONLY}

    def get_queryset(self):
        return SupportPackage.objects.prefetch_related(
            Prefetch("prices", queryset=PackagePrice.objects.order_by("currency"))
        ).order_by("id")

    def _render(self, package: SupportPackage, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=package.pk)).data, code)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        prices = fields.pop("prices")
        package = package_create(fields=fields, prices=prices, actor=request.user)
        return self._render(package, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        package = self.get_object()
        serializer = self.get_serializer(package, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        prices = fields.pop("prices", None)
        package = package_update(package=package, fields=fields, prices=prices, actor=request.user)
        return self._render(package)


class ClientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.ClientSerializer
    queryset = Client.objects.order_by("id")
    roles = {
        "list": STAFF,
        "retrieve": STAFF,
        "create": ADMIN_ONLY,
        "partial_update": ADMIN_ONLY,
        "users": ADMIN_ONLY,
        "user_create": ADMIN_ONLY,
    }

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client = client_create(fields=serializer.validated_data, actor=request.user)
        return Response(self.get_serializer(client).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        client = self.get_object()
        serializer = self.get_serializer(client, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        client = client_update(client=client, fields=serializer.validated_data, actor=request.user)
        return Response(self.get_serializer(client).data)

    @extend_schema(responses=s.ClientUserSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=s.ClientUserSerializer)
    def users(self, request, pk=None):
        client = self.get_object()
        users = get_user_model().objects.filter(client_membership__client=client).order_by("id")
        page = self.paginate_queryset(users)
        return self.get_paginated_response(s.ClientUserSerializer(page, many=True).data)

    @extend_schema(request=s.ClientUserSerializer, responses={201: s.ClientUserSerializer})
    @users.mapping.post
    def user_create(self, request, pk=None):
        client = self.get_object()
        serializer = s.ClientUserSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = client_user_create(
            client=client,
            username=serializer.validated_data["username"],
            email=serializer.validated_data.get("email", ""),
            password=serializer.validated_data["password"],
            actor=request.user,
        )
        return Response(s.ClientUserSerializer(user).data, status=status.HTTP_201_CREATED)


# --- Subscriptions -------------------------------------------------------------------------


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.SubscriptionSerializer
    filterset_class = SubscriptionFilter
    roles = {
        "list": EVERYONE,
        "retrieve": EVERYONE,
        "usage": EVERYONE,
        "create": TICKET_WRITERS,
        "partial_update": ADMIN_ONLY,
        "overage": ADMIN_ONLY,
        "approvals": CLIENT_ONLY,
    }

    def get_queryset(self):
        subscriptions = (
            Subscription.objects.select_related("client", "package")
            .annotate(approved_in_month=approved_hours_subquery(period_current()))
            .order_by("id")
        )
        client_id = self.client_scope()
        if client_id is not None:
            subscriptions = subscriptions.filter(client_id=client_id)
        return subscriptions

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_create(
            client=serializer.validated_data["client"],
            package=serializer.validated_data["package"],
            start_date=serializer.validated_data.get("start_date"),
            actor=request.user,
            topup_of=serializer.validated_data.get("topup_of"),
            expires_on=serializer.validated_data.get("expires_on"),
        )
        return Response(self.get_serializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SubscriptionStatusSerializer, responses=s.SubscriptionSerializer)
    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        serializer = s.SubscriptionStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_status_set(
            subscription=subscription,
            status=serializer.validated_data["status"],
            actor=request.user,
        )
        return Response(self.get_serializer(subscription).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("period", str, description="YYYY-MM; the current month when left out")
        ],
        responses=s.UsageSerializer,
    )
    @action(detail=True, methods=["get"], serializer_class=s.UsageSerializer, filter_backends=[])
    def usage(self, request, pk=None):
        subscription = self.get_object()
        query = s.UsageRequestSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("period") or period_current()
        return Response(self._usage_data(subscription, month))

    @staticmethod
    def _usage_data(subscription: Subscription, month: dt.date) -> Any:
        statement = statement_for_subscription(subscription=subscription, month=month)
        blocks = (
            subscription_block_lines(
                subscription=subscription,
                month=month,
                used=statement.used_hours,
                closed=statement.terms == TERMS_BILLED,
            )
            if statement.block_hours_available
            else []
        )
        data = {
            "subscription": subscription.pk,
            "period": month,
            "billing_mode": statement.billing_mode,
            "included_hours": statement.included_hours,
            "used_hours": statement.used_hours,
            "logged_hours": statement.logged_hours,
            "billed_hours": statement.billed_hours,
            "no_charge_hours": statement.no_charge_hours,
            "remaining_hours": statement.remaining_hours,
            "overtime_hours": statement.overtime_hours,
            "currency": statement.currency,
            "hourly_rate": statement.hourly_rate.amount,
            "fee": statement.fee.amount,
            "overtime_amount": statement.overtime_amount.amount,
            "closed": period_is_closed(month=month),
            "overage_policy": statement.overage_policy,
            "approved_hours": statement.approved_hours,
            "unapproved_hours": statement.unapproved_hours,
            "terms": statement.terms,
            "block_hours_available": statement.block_hours_available,
            "block_hours_used": statement.block_hours_used,
            "blocks": [
                {
                    "block": line.block_id,
                    "hours": line.hours,
                    "available": line.available,
                    "drawn": line.drawn,
                    "left": line.left,
                    "expires_on": line.expires_on,
                }
                for line in blocks
            ],
        }
        return s.UsageSerializer(data).data

    @extend_schema(request=s.SubscriptionOverageSerializer, responses=s.SubscriptionSerializer)
    @action(detail=True, methods=["post"], serializer_class=s.SubscriptionOverageSerializer)
    def overage(self, request, pk=None):
        """Staff set the overage policy (docs/billing-rules.md, "Overage policies")."""
        subscription = self.get_object()
        serializer = s.SubscriptionOverageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription_overage_set(
            subscription=subscription,
            policy=serializer.validated_data["policy"],
            cap_hours=serializer.validated_data.get("cap_hours"),
            actor=request.user,
        )
        return Response(s.SubscriptionSerializer(self.get_queryset().get(pk=subscription.pk)).data)

    @extend_schema(request=s.OverageApprovalRequestSerializer, responses=s.UsageSerializer)
    @action(
        detail=True,
        methods=["post"],
        serializer_class=s.OverageApprovalRequestSerializer,
        filter_backends=[],
    )
    def approvals(self, request, pk=None):
        """A client's user approves extra hours for the current month; the answer is the
        month's usage."""
        subscription = self.get_object()
        serializer = s.OverageApprovalRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = overage_approve(
            subscription=subscription, hours=serializer.validated_data["hours"], user=request.user
        )
        data = self._usage_data(subscription, approval.month)
        return Response(data, status=status.HTTP_201_CREATED)


# --- Tickets and time ----------------------------------------------------------------------


def _tickets_for(client_id: int | None):
    tickets = Ticket.objects.annotate(
        hours_logged=Coalesce(Sum("time_entries__hours"), Value(0), output_field=HOURS_SUM)
    ).order_by("-id")
    if client_id is not None:
        tickets = tickets.filter(client_id=client_id)
    return tickets


def _entries_for(client_id: int | None):
    entries = time_entries_with_billed(
        TimeEntry.objects.select_related("operator").order_by("work_date", "id")
    )
    if client_id is not None:
        # A client sees the entries of its own tickets, where the package shows the work log.
        entries = entries.filter(
            ticket__client_id=client_id, subscription__package__show_work_log=True
        )
    return entries


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.TicketSerializer
    filterset_class = TicketFilter
    roles = {
        "list": EVERYONE,
        "retrieve": EVERYONE,
        "time_entries": EVERYONE,
        "create": TICKET_WRITERS,
        "partial_update": TICKET_WRITERS,
        "time_entry_create": TICKET_WRITERS,
    }

    def get_queryset(self):
        return _tickets_for(self.client_scope())

    def _render(self, ticket: Ticket, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=ticket.pk)).data, code)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ticket = ticket_services.ticket_open(
            client=data["client"],
            subject=data["subject"],
            body=data.get("body"),
            author=request.user,
            subscription=data.get("subscription"),
            priority=data.get("priority", TicketPriority.NORMAL),
            track_time=data.get("track_time") is not False,
            status=data.get("status", TicketStatus.OPEN),
            assignee=data.get("assignee"),
        )
        return self._render(ticket, status.HTTP_201_CREATED)

    @extend_schema(request=s.TicketUpdateSerializer, responses=s.TicketSerializer)
    def partial_update(self, request, pk=None):
        ticket = self.get_object()
        serializer = s.TicketUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ticket_services.ticket_update(
            ticket=ticket,
            actor=request.user,
            subscription=data.get("subscription", ticket_services.UNCHANGED),
            track_time=data.get("track_time"),
            status=data.get("status"),
            assignee=data.get("assignee", ticket_services.UNCHANGED),
        )
        return self._render(ticket)

    @extend_schema(responses=s.TimeEntrySerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        url_path="time-entries",
        serializer_class=s.TimeEntrySerializer,
        filter_backends=[],
    )
    def time_entries(self, request, pk=None):
        ticket = self.get_object()
        entries = _entries_for(self.client_scope()).filter(ticket=ticket)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.TimeEntrySerializer(page, many=True).data)

    @extend_schema(request=s.TimeEntrySerializer, responses={201: s.TimeEntrySerializer})
    @time_entries.mapping.post
    def time_entry_create(self, request, pk=None):
        ticket = self.get_object()
        serializer = s.TimeEntrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entry = ticket_services.time_entry_log(
            ticket=ticket,
            operator=request.user,
            hours=data["hours"],
            work_date=data.get("work_date"),
            note=data.get("note", ""),
            no_charge=data.get("no_charge", False),
            no_charge_reason=data.get("no_charge_reason", ""),
            pending_ok=data.get("pending_approval", False),
        )
        entry = _entries_for(None).get(pk=entry.pk)
        return Response(s.TimeEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class TimeEntryViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ApiViewSet):
    serializer_class = s.TimeEntrySerializer
    roles = {
        "retrieve": EVERYONE,
        "partial_update": TICKET_WRITERS,
        "destroy": TICKET_WRITERS,
    }

    def get_queryset(self):
        return _entries_for(self.client_scope())

    @extend_schema(request=s.TimeEntryUpdateSerializer, responses=s.TimeEntrySerializer)
    def partial_update(self, request, pk=None):
        entry = self.get_object()
        serializer = s.TimeEntryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():  # both changes or neither
            if "no_charge" in data:
                # A refusal (permission, reason, closed month) changes nothing.
                entry = ticket_services.time_entry_no_charge_set(
                    entry=entry,
                    actor=request.user,
                    no_charge=data["no_charge"],
                    reason=data.get("no_charge_reason", ""),
                )
            elif "no_charge_reason" in data:
                raise DjangoValidationError(
                    {"no_charge_reason": "Send no_charge with the reason (true: no charge)."}
                )
            entry = ticket_services.time_entry_change(
                entry=entry,
                actor=request.user,
                hours=data.get("hours"),
                work_date=data.get("work_date"),
                note=data.get("note"),
                pending_ok=data.get("pending_approval", False),
            )
        return Response(self.get_serializer(self.get_queryset().get(pk=entry.pk)).data)

    def perform_destroy(self, instance):
        ticket_services.time_entry_delete(entry=instance, actor=self.request.user)


# --- Finance -------------------------------------------------------------------------------


class RollupView(APIView):
    """Close a month: the same service as the scheduled task and ``manage.py rollup``."""

    permission_classes = [IsAuthenticated, RolePolicy]
    roles = {"post": FINANCE_ROLES}

    @extend_schema(
        request=s.RollupSerializer,
        responses={201: s.RollupSerializer, 200: s.RollupSerializer},
    )
    def post(self, request):
        serializer = s.RollupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = period_close(month=serializer.validated_data["period"], actor=request.user)
        body = {"period": result.period, "closed": True, "items_created": result.items_created}
        code = status.HTTP_200_OK if result.already_closed else status.HTTP_201_CREATED
        return Response(body, status=code)


class BillableItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.BillableItemSerializer
    filterset_class = BillableItemFilter

    def get_queryset(self):
        # Each item with where it stands in the review (in_review, held), in the same query.
        return items_with_hold(BillableItem.objects.order_by("id"))

    roles = {
        "list": FINANCE_ROLES,
        "retrieve": FINANCE_ROLES,
        "create": FINANCE_ROLES,
        "partial_update": FINANCE_ROLES,
        "export": FINANCE_ROLES,
        "export_csv": FINANCE_ROLES,
        "export_xlsx": FINANCE_ROLES,
    }

    @extend_schema(request=s.AdjustmentSerializer, responses={201: s.BillableItemSerializer})
    def create(self, request):
        serializer = s.AdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = adjustment_create(
            client=data["client"],
            month=data["period"],
            amount=data["amount"],
            reason=data["description"],
            subscription=data.get("subscription"),
            actor=request.user,
        )
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.BillableItemStatusSerializer, responses=s.BillableItemSerializer)
    def partial_update(self, request, pk=None):
        item = self.get_object()
        serializer = s.BillableItemStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = billable_item_status_set(
            item=item, status=serializer.validated_data["status"], actor=request.user
        )
        return Response(self.get_serializer(item).data)

    def perform_content_negotiation(self, request, force=False):
        # ``?format=csv`` belongs to the export, not to DRF's renderer override.
        if self.action in ("export", "export_csv", "export_xlsx"):
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)

    # One operation per format, each with one media type, so that a generated client knows
    # what it receives; /export/?format= stays for the callers that use it.
    @extend_schema(
        deprecated=True,
        description="Both formats at one URL: prefer export/csv/ and export/xlsx/.",
        parameters=[
            PERIOD_PARAMETER,
            OpenApiParameter("format", str, enum=["csv", "xlsx"], description="csv (default)"),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(CSV_TEXT),
            (200, exports.XLSX_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY),
        },
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def export(self, request):
        return self._export(request.query_params)

    @extend_schema(
        description="Every item of the period as CSV (UTF-8 text, a header row).",
        parameters=[PERIOD_PARAMETER],
        responses={(200, "text/csv"): OpenApiResponse(CSV_TEXT)},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="export/csv",
        filter_backends=[],
        pagination_class=None,
    )
    def export_csv(self, request):
        return self._export({**request.query_params.dict(), "format": "csv"})

    @extend_schema(
        deprecated=True,
        description=(
            "Every item of the period as an Excel workbook, sent as plain bytes "
            "(application/octet-stream, a file name ending in .xlsx). Built inside the "
            "request: prefer POST /api/v1/export-jobs/ (written in the background)."
        ),
        parameters=[PERIOD_PARAMETER],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="export/xlsx",
        filter_backends=[],
        pagination_class=None,
    )
    def export_xlsx(self, request):
        response = self._export({**request.query_params.dict(), "format": "xlsx"})
        # Bytes as every client generator reads them; the file name says what they are.
        response["Content-Type"] = "application/octet-stream"
        return response

    def _export(self, query) -> StreamingHttpResponse | FileResponse:
        serializer = s.ExportRequestSerializer(data=query)
        serializer.is_valid(raise_exception=True)
        month = serializer.validated_data["period"]
        if serializer.validated_data["format"] == "xlsx":
            return exports.billable_items_xlsx_response(month=month)
        return exports.billable_items_csv_response(month=month)


class ExportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Exports written in the background (docs/api.md, "Export jobs"): POST starts one (202),
    GET follows it, download/ sends its file once it is done. Finance sees its own jobs,
    administrators everyone's; anyone else's is a 404."""

    serializer_class = s.ExportJobSerializer
    filter_backends: list = []
    roles = {
        "list": FINANCE_ROLES,
        "retrieve": FINANCE_ROLES,
        "create": FINANCE_ROLES,
        "download": FINANCE_ROLES,
    }

    def get_queryset(self):
        return export_jobs_visible_to(self.request.user)

    @extend_schema(request=s.ExportJobRequestSerializer, responses={202: s.ExportJobSerializer})
    def create(self, request):
        serializer = s.ExportJobRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = export_job_create(
            requested_by=request.user,
            period=period_label(serializer.validated_data["period"]),
            format=serializer.validated_data["format"],
        )
        body = self.get_serializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    @extend_schema(
        description=(
            "The file of a done job: CSV as text/csv, XLSX as plain bytes "
            "(application/octet-stream, a file name ending in .xlsx). 409 while the job is "
            "queued or running, when it failed, or when its file was deleted (expired)."
        ),
        responses={
            (200, "text/csv"): OpenApiResponse(CSV_TEXT),
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            409: OpenApiResponse(
                {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}, "status": {"type": "string"}},
                    "required": ["detail", "status"],
                },
                description="Not ready: queued or running (try again later), failed, or "
                "expired (start a new job).",
            ),
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def download(self, request, pk=None):
        job = self.get_object()
        content_type = "text/csv" if job.format == "csv" else "application/octet-stream"
        try:
            return exports.export_job_download(job, content_type=content_type)
        except exports.ExportJobFileUnavailable as exc:
            return Response({"detail": str(exc), "status": job.status}, status=409)

    def perform_content_negotiation(self, request, force=False):
        # The file is not rendered by DRF; its refusals are JSON.
        if self.action == "download":
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)


class DisputeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Disputes of the review window (docs/api.md, "Disputes"): a client user opens one on
    its own time entry or item and sees its own; staff read all of them; finance and
    administrators resolve them."""

    serializer_class = s.DisputeSerializer
    filter_backends: list = []
    roles = {
        "list": EVERYONE,
        "retrieve": EVERYONE,
        "create": frozenset({CLIENT_USER}),
        "resolve": FINANCE_ROLES,
    }

    def get_queryset(self):
        disputes = disputes_visible(client_id=self.client_scope())
        wanted = self.request.query_params.get("status")
        if wanted in DisputeStatus.values:
            disputes = disputes.filter(status=wanted)
        return disputes

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=DisputeStatus.values)],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.DisputeCreateSerializer, responses={201: s.DisputeSerializer})
    def create(self, request):
        client_id = self.client_scope()
        if client_id is None:  # the role policy lets client users only; kept explicit
            return Response({"detail": "Only a client user opens a dispute."}, status=403)
        serializer = s.DisputeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dispute = dispute_open(
            client_id=client_id,
            reason=data["reason"],
            time_entry_id=data.get("time_entry"),
            item_id=data.get("item"),
            actor=request.user,
        )
        return Response(self.get_serializer(dispute).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DisputeResolveSerializer, responses=s.DisputeSerializer)
    @action(detail=True, methods=["post"], pagination_class=None)
    def resolve(self, request, pk=None):
        dispute = self.get_object()
        serializer = s.DisputeResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dispute = dispute_resolve(
            dispute=dispute,
            decision=data["decision"],
            answer=data["answer"],
            amount=data.get("amount"),
            actor=request.user,
        )
        return Response(self.get_serializer(dispute).data)


class TokenView(APIView):
    """Trade a username and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(request=s.TokenRequestSerializer, responses=s.TokenSerializer)
    def post(self, request):
        # The plain HttpRequest, so that sign-in throttling (axes) marks a locked-out caller.
        serializer = AuthTokenSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
