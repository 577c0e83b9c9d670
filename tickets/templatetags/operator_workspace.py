"""Template tags of the operator's workspace: running timers on every admin page, and how an
audit event's details read."""

from typing import Any

from django import template
from django.utils import timezone

from supportbilling.roles import is_staff_member
from tickets import selectors
from tickets.models import AuditEvent

register = template.Library()


@register.filter
def audit_detail(event: AuditEvent) -> str:
    """``{"hours": ["1.00", "1.25"], "entry": 7}`` -> ``entry 7, hours 1.00 -> 1.25``."""
    parts = []
    for key, value in (event.detail or {}).items():
        label = key.replace("_", " ")
        if isinstance(value, list) and len(value) == 2:
            parts.append(f"{label} {value[0] or '(empty)'} \u2192 {value[1] or '(empty)'}")
        elif isinstance(value, list):
            parts.append(f"{label}: {'; '.join(str(v) for v in value)}")
        else:
            parts.append(f"{label} {value}")
    return ", ".join(parts)


@register.inclusion_tag("admin/tickets/running_timers.html", takes_context=True)
def running_timers(context: template.Context) -> dict[str, Any]:
    """The signed-in operator's running timers (one query), for staff only."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not is_staff_member(user):
        return {"timers": []}
    return {"timers": selectors.operator_timers(operator_id=user.pk), "now": timezone.now()}
