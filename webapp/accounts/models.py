"""Users, classes (called Course in code), memberships and API tokens."""

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# No 0/O, 1/I/L: join codes are read aloud and copied from a projector.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8


class User(AbstractUser):
    """A person. `is_teacher` lets them create classes; roles inside a class are memberships."""

    is_teacher = models.BooleanField(
        _("teacher"),
        default=False,
        help_text=_("May create classes. Roles inside a class are set per class."),
    )
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    # The class whose roster import or join-code registration made this account. Only that
    # class's teachers may ever reset its password (permissions.resettable_memberships); an
    # account made elsewhere is nobody's to take over.
    created_in_course = models.ForeignKey(
        "accounts.Course",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_accounts",
        verbose_name=_("created in class"),
    )

    def label(self) -> str:
        """Return the name shown in rosters."""
        return self.display_name or self.get_full_name() or self.username


def new_join_code() -> str:
    """Return a fresh random join code."""
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def normalize_join_code(code: str) -> str:
    """Return the code as stored: upper case, without spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


class Course(models.Model):
    """A class: its people, its join code and the limits later features enforce."""

    name = models.CharField(_("name"), max_length=120)
    join_code = models.CharField(_("join code"), max_length=16, unique=True, default=new_join_code)
    join_open = models.BooleanField(_("joining open"), default=True)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_courses"
    )
    created_at = models.DateTimeField(default=timezone.now)
    gpu_minutes_per_student = models.PositiveIntegerField(
        _("GPU minutes per student"),
        default=600,
        help_text=_("Training time each student may use in total."),
    )
    concurrent_jobs_per_student = models.PositiveIntegerField(
        _("concurrent jobs per student"),
        default=2,
        help_text=_("Jobs one student may have queued or running at once."),
    )
    storage_mb_per_student = models.PositiveIntegerField(
        _("storage per student (MB)"),
        default=2048,
        help_text=_("Uploaded images and trained models, in megabytes."),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("class")
        verbose_name_plural = _("classes")

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class Role(models.TextChoices):
    TEACHER = "teacher", _("Teacher")
    TA = "ta", _("TA")
    STUDENT = "student", _("Student")


class MembershipQuerySet(models.QuerySet):
    def active(self):
        return self.filter(removed_at__isnull=True)


class Membership(models.Model):
    """A person's role in one class. Removal is a timestamp: their work stays."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.STUDENT)
    joined_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "user"], name="one_membership_per_course")
        ]
        ordering = ["role", "user__username"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} in {self.course} as {self.role}"

    @property
    def is_active(self) -> bool:
        return self.removed_at is None


def hash_token(raw: str) -> str:
    """Return the stored form of a token: its SHA-256 hex digest."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for scripts. Only its hash is stored; revoking is a timestamp."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
