"""Per-student quotas in a class: storage (datasets, uploads arriving, the files of training runs)
from the class settings, and the number of datasets from the site's MAX_DATASETS_PER_STUDENT."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum

from webapp.accounts import permissions
from webapp.accounts.models import Course, User
from webapp.datasets.models import Dataset, Upload

MB = 1024 * 1024


@dataclass(frozen=True)
class StorageUse:
    """What a student stores in a class, in bytes; `limit` is None when no quota applies."""

    datasets: int  # images the student's datasets added
    arriving: int  # uploads still arriving
    job_files: int  # checkpoints, exported models and predictions of the student's runs
    limit: int | None

    @property
    def used(self) -> int:
        return self.datasets + self.arriving + self.job_files

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> int:
        """Of the quota, capped at 100 (0 without one)."""
        if not self.limit:
            return 100 if self.limit == 0 else 0
        return min(100, round(100 * self.used / self.limit))


def _exempt(user: User, course: Course) -> bool:
    return permissions.can_view_roster(user, course)  # teachers and TAs (and superusers)


def storage_use(user: User, course: Course) -> StorageUse:
    """Everything the user stores in the class, by kind, with the class's quota."""
    from webapp.jobs.models import Job  # jobs depends on datasets, not the other way round

    stored = Dataset.objects.filter(owner=user, course=course).aggregate(n=Sum("bytes_used"))["n"]
    arriving = Upload.objects.filter(
        owner=user, course=course, completed_at__isnull=True
    ).aggregate(n=Sum("received"))["n"]
    job_files = Job.objects.filter(owner=user, course=course).aggregate(n=Sum("artifact_bytes"))
    return StorageUse(
        datasets=stored or 0,
        arriving=arriving or 0,
        job_files=job_files["n"] or 0,
        limit=None if _exempt(user, course) else course.storage_mb_per_student * MB,
    )


def storage_used(user: User, course: Course) -> int:
    """Bytes the user's datasets, arriving uploads and training runs hold in the class."""
    return storage_use(user, course).used


def storage_left(user: User, course: Course) -> int | None:
    """Bytes the user may still store in the class; None when no quota applies (staff)."""
    if _exempt(user, course):
        return None
    return storage_use(user, course).left


def datasets_left(user: User, course: Course) -> int | None:
    """How many more datasets the user may create in the class; None for teachers and TAs."""
    if _exempt(user, course):
        return None
    owned = Dataset.objects.filter(owner=user, course=course).count()
    return max(0, settings.MAX_DATASETS_PER_STUDENT - owned)
