"""/api/v1/... resources, /api/schema/ (OpenAPI 3) and /api/docs/ (browsable)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from api import views
from api.schema import KeptSchemaGenerator

router = DefaultRouter(use_regex_path=False)
router.include_root_view = False
# Paths end with "/" (docs/api.md); the ".json" twins of every route were undocumented and the
# extra actions (usage, users, time-entries, export) answered them with a 500.
router.include_format_suffixes = False
router.register("packages", views.PackageViewSet, basename="package")
router.register("clients", views.ClientViewSet, basename="client")
router.register("subscriptions", views.SubscriptionViewSet, basename="subscription")
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("time-entries", views.TimeEntryViewSet, basename="time-entry")
router.register("billable-items", views.BillableItemViewSet, basename="billable-item")
router.register("export-jobs", views.ExportJobViewSet, basename="export-job")
router.register("disputes", views.DisputeViewSet, basename="dispute")

app_name = "api"
urlpatterns = [
    path("v1/auth/token/", views.TokenView.as_view(), name="token"),
    path("v1/rollups/", views.RollupView.as_view(), name="rollups"),
    path("v1/", include(router.urls)),
    path(
        "schema/",
        SpectacularAPIView.as_view(generator_class=KeptSchemaGenerator),
        name="schema",
    ),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
