"""Training jobs and their stored events. The database is the source of truth for a job."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webapp.accounts.models import Course
from webapp.datasets.models import Dataset


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobGroup(models.Model):
    """Runs submitted together to compare: the three transfer modes, or one setting's values."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="job_groups")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="job_groups"
    )
    title = models.CharField(max_length=200)
    variable = models.CharField(max_length=60)  # the spec field that differs, e.g. "transfer.mode"
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class Job(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="jobs")
    dataset_version = models.PositiveIntegerField()
    spec = models.JSONField()  # the trainer's job spec without its data (added at run time)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)  # also the fencing token of a run
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)  # why it failed, for a student
    result = models.JSONField(default=dict, blank=True)  # final metrics
    gpu_seconds = models.FloatField(default=0.0)
    # Bytes of its files (checkpoints, exported models, predictions): part of the owner's storage.
    artifact_bytes = models.BigIntegerField(default=0)
    group = models.ForeignKey(
        JobGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    label = models.CharField(max_length=120, blank=True)  # its value of the group's variable
    priority = models.IntegerField(default=0)  # teachers move jobs up the queue (higher first)
    progress = models.FloatField(default=0.0)  # 0 … 1, from the latest event
    metrics = models.JSONField(default=dict, blank=True)  # latest/best figures for dashboards
    created_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)  # handed to the train queue
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "dispatched_at"], name="job_queue_idx")]
        verbose_name = _("training job")
        verbose_name_plural = _("training jobs")

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"

    @property
    def run_key(self) -> str:
        """A cache key part for what a finished run left (its result, predictions, curves):
        it changes when the job is run again."""
        finished = self.finished_at.timestamp() if self.finished_at else 0
        return f"{self.pk}:{self.attempts}:{finished:.6f}"


class JobEvent(models.Model):
    """A trainer event, stored before it is broadcast; `number` orders a job's events."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    number = models.PositiveIntegerField()  # 1, 2, 3 … per job, across attempts
    attempt = models.PositiveIntegerField()
    seq = models.PositiveIntegerField()  # the trainer's own sequence number in that attempt
    kind = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="one_number_per_job_event")
        ]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.number} {self.kind}"

    def as_message(self) -> dict:
        """The event as pages and scripts see it: `seq` (the job-wide number), `type`, its data."""
        return {
            **self.data,
            "seq": self.number,
            "type": self.kind,
            "attempt": self.attempt,
            "time": self.created_at.isoformat(),
        }


class QueueLock(models.Model):
    """One row that dispatchers update first, so two of them never hand out the same slot."""

    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"queue lock ({self.at})"
