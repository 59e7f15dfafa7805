"""Per-student storage quota from the class settings."""

from django.db.models import Sum

from webapp.accounts import permissions
from webapp.accounts.models import Course, User
from webapp.datasets.models import Dataset, Upload

MB = 1024 * 1024


def storage_used(user: User, course: Course) -> int:
    """Bytes the user's datasets in the class hold, plus uploads still arriving."""
    stored = Dataset.objects.filter(owner=user, course=course).aggregate(n=Sum("bytes_used"))["n"]
    arriving = Upload.objects.filter(
        owner=user, course=course, completed_at__isnull=True
    ).aggregate(n=Sum("received"))["n"]
    return (stored or 0) + (arriving or 0)


def storage_left(user: User, course: Course) -> int | None:
    """Bytes the user may still store in the class; None when no quota applies (staff)."""
    if permissions.can_view_roster(user, course):
        return None
    return max(0, course.storage_mb_per_student * MB - storage_used(user, course))
