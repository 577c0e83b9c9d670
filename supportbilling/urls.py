"""Root URLs: the admin, the client portal, the API and the health check."""

from django.contrib import admin
from django.urls import include, path

from supportbilling.views import healthz

# The product's name instead of "Django administration"; the look: templates/admin/base_site.html.
admin.site.site_header = "Support by Time"
admin.site.site_title = "Support by Time"
admin.site.index_title = "Support desk and billing"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz/", healthz, name="healthz"),
    path("api/", include("api.urls")),
    path("", include("clientarea.urls")),
]
