"""The annotation studio's own rows: model-assisted labelling rounds.

A round asks a finished run to pre-annotate a batch of a dataset's images for one person; a
worker writes the run's answers into that person's draft as proposals (webapp/studio/tasks.py),
and the round keeps the progress the page polls.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webapp.datasets.models import Dataset
from webapp.jobs.models import Job


class RoundStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


OPEN = (RoundStatus.QUEUED, RoundStatus.RUNNING)


class AssistRound(models.Model):
    """One run pre-annotating up to `total` images of a dataset into one person's draft."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="assist_rounds")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assist_rounds"
    )
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="assist_rounds")
    status = models.CharField(max_length=10, choices=RoundStatus.choices, default="queued")
    items = models.JSONField(default=list)  # the item uids chosen when it started, in order
    total = models.PositiveIntegerField(default=0)  # images to pre-annotate
    done = models.PositiveIntegerField(default=0)  # images the run has answered so far
    proposed = models.PositiveIntegerField(default=0)  # proposals written into the draft
    error = models.TextField(blank=True)  # why it failed, for the student
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["dataset", "user", "status"])]

    def __str__(self) -> str:
        return f"assist round {self.pk} ({self.status})"
