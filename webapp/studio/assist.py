"""Model-assisted labelling: start a round in which a finished run pre-annotates images.

A person who may draft the dataset picks a run they may use (their own, or any of the class's
for its teachers and TAs: `permissions.can_view_job`, as Try it decides) of the same class and
the same kind, and how many images (1 to MAX_LIMIT). The images are chosen here, in the
person's draft view: unlabelled first (classification: no label; other kinds: no annotations),
then the rest, leaving out those that already wait with a proposal. The worker does the rest
(`webapp.studio.tasks.assist`); the request never waits for it.
"""

import json
from datetime import timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.datasets import drafts
from webapp.datasets.models import Dataset, Kind
from webapp.errors import Refused
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.predict import model_dir
from webapp.studio.models import OPEN, AssistRound, RoundStatus

MAX_LIMIT = 200  # images of one round
DEFAULT_LIMIT = 50
RUNS_LISTED = 50  # runs the panel offers, newest first
MAX_SCANNED = 20_000  # images looked through when choosing a round's (a page of the queue each)
PAGE = 200
MAX_CARD_BYTES = 1_000_000  # a model card is a few kB; a larger file is not read
STALE_AFTER = timedelta(minutes=30)  # an open round this old lost its worker: it no longer blocks


class AssistRefused(Refused):
    """A round that cannot start, with the reason and the field to change."""


class RoundOpen(AssistRefused):
    status = 409


class NotAllowed(AssistRefused):
    status = 403


def usable_runs(user, dataset: Dataset) -> QuerySet[Job]:
    """The finished runs of the dataset's class and kind this person may pre-annotate with."""
    runs = Job.objects.filter(
        course=dataset.course, status=JobStatus.SUCCEEDED, dataset__kind=dataset.kind
    )
    if not permissions.can_view_roster(user, dataset.course):
        runs = runs.filter(owner=user)
    return runs.select_related("dataset", "owner").order_by("-finished_at", "-pk")


def _card(job: Job) -> dict:
    """The run's model card (JSON, read without torch), or {} when it cannot be read."""
    path = model_dir(job.pk) / "model_card.json"
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            return {}
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def _shares_classes(card: dict, dataset: Dataset, user) -> bool:
    """Whether the run answers with at least one of the dataset's classes (or keypoints)."""
    rows = drafts.categories(dataset, drafts.draft_of(dataset, user))
    if kinds.shape(dataset.kind).has_keypoints:
        names = set((card.get("keypoints") or {}).get("names") or [])
        return any(names & set(row["keypoints"]) for row in rows)
    return bool(set(card.get("classes") or []) & {row["name"] for row in rows})


def check_run(user, dataset: Dataset, job_id: int) -> Job:
    """The run, when this person may pre-annotate this dataset with it; else AssistRefused
    naming `job`."""
    job = Job.objects.select_related("dataset", "course").filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(user, job):
        raise AssistRefused(_("No run with this id is yours."), field="job")
    if job.course_id != dataset.course_id:
        raise AssistRefused(
            _("This run belongs to another class; use a run of this dataset's class."),
            field="job",
        )
    kind = kinds.job_kind(job)
    if kind != dataset.kind:
        raise AssistRefused(
            _(
                "This run is for %(run)s and this dataset for %(dataset)s; pick a run of the "
                "same kind."
            )
            % {"run": Kind(kind).label, "dataset": Kind(dataset.kind).label},
            field="job",
        )
    if job.status != JobStatus.SUCCEEDED or not (model_dir(job.pk) / "model.safetensors").exists():
        raise AssistRefused(
            _("This run has no trained model; wait until it has succeeded."), field="job"
        )
    card = _card(job)
    if not card:
        raise AssistRefused(_("The run's model files are gone; train the run again."), field="job")
    if not _shares_classes(card, dataset, user):
        raise AssistRefused(
            _(
                "None of this run's classes is a class of this dataset, so it has nothing to "
                "propose."
            ),
            field="job",
        )
    return job


def choose_items(user, dataset: Dataset, limit: int) -> list[str]:
    """Up to `limit` image uids for a round, in the studio's "unlabelled first" order, leaving
    out the images that already have a proposal waiting; at most MAX_SCANNED looked at."""
    chosen: list[str] = []
    offset: int | None = 0
    while offset is not None and offset < MAX_SCANNED and len(chosen) < limit:
        page = drafts.queue(dataset, user, "unlabelled", offset, PAGE)
        chosen += [row["uid"] for row in page["items"] if not row["proposal"]]
        offset = page["next"]
    return chosen[:limit]


def start_round(user, dataset: Dataset, job_id: int, limit: int, language: str) -> AssistRound:
    """Queue a round: the run pre-annotates up to `limit` images into the person's draft."""
    from webapp.studio import tasks

    if not drafts.may_draft(user, dataset):
        permissions.require_writable(dataset.course)
        raise NotAllowed(_("You may not annotate this dataset."))
    if drafts.assigned_only(user, dataset):
        raise NotAllowed(
            _(
                "In a labelling assignment your own labels are asked for: a model's would "
                "blur the agreement between students."
            )
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise AssistRefused(
            _("Pre-annotate 1 to %(n)s images at a time.") % {"n": MAX_LIMIT}, field="limit"
        )
    job = check_run(user, dataset, job_id)
    now = timezone.now()
    AssistRound.objects.filter(
        dataset=dataset, user=user, status__in=OPEN, created_at__lt=now - STALE_AFTER
    ).update(
        status=RoundStatus.FAILED,
        error=_("No worker finished this round; start another."),
        finished_at=now,
    )
    with transaction.atomic():
        if (
            AssistRound.objects.select_for_update()
            .filter(dataset=dataset, user=user, status__in=OPEN)
            .exists()
        ):
            raise RoundOpen(
                _("A pre-annotation of this dataset is still running; wait until it is done."),
                field="job",
            )
        items = choose_items(user, dataset, limit)
        if not items:
            raise RoundOpen(
                _("Every image already has a proposal waiting; accept or reject them first."),
                field="limit",
            )
        round_ = AssistRound.objects.create(
            dataset=dataset, user=user, job=job, items=items, total=len(items)
        )
        transaction.on_commit(lambda: tasks.assist.delay(round_.pk, language))
    return round_


def latest_rounds(user, dataset: Dataset, count: int = 5) -> list[AssistRound]:
    """The person's last few rounds on this dataset, newest first."""
    return list(AssistRound.objects.filter(dataset=dataset, user=user).defer("items")[:count])


def run_out(job: Job) -> dict:
    """A run as the panel and the API list it: what it is, whose, and how good."""
    kind = kinds.job_kind(job)
    figure = kinds.primary(kind)
    return {
        "id": job.pk,
        "model": str((job.spec or {}).get("model") or ""),
        "dataset": job.dataset.name,
        "owner": job.owner.username,
        "finished_at": job.finished_at,
        "figure": str(figure.label),
        "value": figure.text(kinds.primary_value(kind, job.metrics)),
    }


def round_out(round_: AssistRound) -> dict:
    """A round's progress, as the API answers and the page polls it."""
    return {
        "id": round_.pk,
        "dataset": round_.dataset_id,
        "job": round_.job_id,
        "status": round_.status,
        "total": round_.total,
        "done": round_.done,
        "proposed": round_.proposed,
        "error": round_.error,
        "created_at": round_.created_at,
        "finished_at": round_.finished_at,
    }
