"""Export jobs: who sees which (docs/decisions.md, "Export jobs")."""

from typing import Any

from django.db.models import QuerySet

from billing.models import ExportJob
from supportbilling.roles import is_administrator

RECENT_EXPORT_JOBS = 20  # the admin's list of recent jobs


def export_jobs_visible_to(user: Any) -> QuerySet[ExportJob]:
    """Newest first: every job for an administrator, their own for finance (and anyone else
    granted ``billing.view_exportjob``), none for anyone else."""
    jobs = ExportJob.objects.select_related("requested_by").order_by("-created_at", "-id")
    if is_administrator(user):
        return jobs
    if user.is_authenticated and user.is_active and user.has_perm("billing.view_exportjob"):
        return jobs.filter(requested_by=user)
    return jobs.none()


def export_job_visible_to(user: Any, *, job_id: int) -> ExportJob | None:
    """The job ``job_id`` if ``user`` may see it; None whether it is missing or someone else's."""
    return export_jobs_visible_to(user).filter(pk=job_id).first()
