"""The labelling assignments' panel of the class page: the staff's newest assignments, or the
student's own with their progress."""

from django import template

from webapp.accounts import permissions
from webapp.labelling import access

register = template.Library()

SHOWN = 10  # the newest few; the class's labelling page lists them all


@register.inclusion_tag("labelling/_course_panel.html", takes_context=True)
def labelling_panel(context, course):
    """Rendered on the class page; nothing at all for a student with no labelling to do."""
    from webapp.labelling.views import with_counts  # views import forms; keep the tag light

    user = context["request"].user
    is_staff = permissions.can_view_roster(user, course)
    assignments = course.labelling.select_related("dataset").defer("dataset__report")
    if not is_staff:
        assignments = assignments.filter(tasks__student=user).distinct()
    rows = list(assignments.order_by("-created_at", "-pk")[: SHOWN + 1])
    return {
        "request": context["request"],
        "course": course,
        "is_staff": is_staff,
        "rows": with_counts(rows[:SHOWN], None if is_staff else user),
        "more": len(rows) > SHOWN,
        "can_create": access.can_create(user, course) and permissions.course_is_writable(course),
        "writable": permissions.course_is_writable(course),
    }
