"""Root URLs: the admin, the client portal, the API and the health check."""

from django.contrib import admin
from django.urls import include, path

from supportbilling.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz/", healthz, name="healthz"),
    path("api/", include("api.urls")),
    path("", include("clientarea.urls")),
]
