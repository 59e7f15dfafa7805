"""Assignments handed out in a class, and the runs students submit to be scored on a hidden set."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webapp.accounts.models import Course
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job


class Metric(models.TextChoices):
    """What a submission is ranked by; which of them fit an assignment's kind:
    webapp/jobs/kinds.py ASSIGNMENT_METRICS."""

    ACCURACY = "accuracy", _("Accuracy")
    MACRO_F1 = "macro_f1", _("Macro-averaged F1")
    MAP50 = "map50", _("mAP@0.5")
    MIOU = "miou", _("mIoU")
    OKS_AP = "oks_ap", _("OKS AP")


class Assignment(models.Model):
    """A task for the class: train on the handed-out data, be scored on the hidden test set."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assignments")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)  # Markdown
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("dataset")
    )
    dataset_version = models.PositiveIntegerField(_("dataset version"))
    hidden_test = models.ForeignKey(
        Dataset,
        on_delete=models.PROTECT,
        related_name="graded_assignments",
        verbose_name=_("hidden test set"),
    )
    metric = models.CharField(
        _("metric"), max_length=12, choices=Metric.choices, default=Metric.ACCURACY
    )
    deadline = models.DateTimeField(_("deadline"))
    daily_limit = models.PositiveIntegerField(_("submissions per day"), default=5)
    show_names = models.BooleanField(_("show names on the leaderboard"), default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-deadline", "-pk"]
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return timezone.now() < self.deadline


class SubmissionStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting to be scored")
    SCORING = "scoring", _("Scoring")
    SCORED = "scored", _("Scored")
    FAILED = "failed", _("Not scored")


class Submission(models.Model):
    """One finished run handed in; a worker scores it on the hidden test set."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="submissions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions"
    )
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="submissions")
    status = models.CharField(
        max_length=10, choices=SubmissionStatus.choices, default=SubmissionStatus.QUEUED
    )
    score = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)  # the scoring's figures, e.g. map50
    error = models.TextField(blank=True)  # why it could not be scored, for the student
    hidden_version = models.PositiveIntegerField()  # the hidden set's version it is scored on
    created_at = models.DateTimeField(default=timezone.now)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["assignment", "student", "created_at"], name="submission_day_idx"),
            models.Index(fields=["assignment", "status", "score"], name="submission_board_idx"),
        ]
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")

    def __str__(self) -> str:
        return f"submission {self.pk} ({self.status})"
