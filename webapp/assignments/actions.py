"""Saving assignments and handing in runs: write, commit, then queue the scoring, tell pages."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import get_text_list
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.accounts.actions import course_group
from webapp.accounts.models import Course, User
from webapp.assignments import queries, tasks
from webapp.assignments.models import Assignment, Metric, Submission, SubmissionStatus
from webapp.datasets import queries as dataset_queries
from webapp.datasets.models import Dataset, Status, Visibility
from webapp.errors import Refused
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)
HANDOUT_VISIBILITIES = (Visibility.HANDOUT, Visibility.SHARED)  # what students may train on
FIELDS = (
    "title",
    "description",
    "dataset",
    "dataset_version",
    "hidden_test",
    "metric",
    "deadline",
    "daily_limit",
    "show_names",
)


class AssignmentRefused(Refused):
    """An assignment that cannot be saved as asked; `field` names the input to fix."""


class SubmissionRefused(Refused):
    """A run that cannot be handed in, with the reason for the student."""


class DeadlinePassed(SubmissionRefused):
    status = 403


class AlreadySubmitted(SubmissionRefused):
    status = 409


class DailyLimitReached(SubmissionRefused):
    status = 429


# --- assignments ---------------------------------------------------------------------------


def check_datasets(course: Course, dataset: Dataset, version: int, hidden: Dataset) -> None:
    """The handed-out data and the hidden test set must belong together; say what is wrong."""
    if dataset.course_id != course.pk or dataset.visibility not in HANDOUT_VISIBILITIES:
        raise AssignmentRefused(
            _("Choose a dataset of this class that students can train on (handed out or shared)."),
            field="dataset",
        )
    if not kinds.scored(kinds.dataset_kind(dataset)):
        scored = get_text_list([kinds.kind_name(k) for k in kinds.ASSIGNMENT_METRICS], _("or"))
        raise AssignmentRefused(
            _(
                "Assignments score datasets for %(kinds)s; this dataset is for %(kind)s. Choose "
                "a dataset of one of those kinds."
            )
            % {"kinds": scored, "kind": kinds.kind_name(kinds.dataset_kind(dataset))},
            field="dataset",
        )
    if dataset.status != Status.READY or not dataset.head:
        raise AssignmentRefused(_("This dataset is not ready yet."), field="dataset")
    if not 1 <= version <= dataset.head:
        raise AssignmentRefused(
            _("The dataset has versions 1 to %(head)s.") % {"head": dataset.head},
            field="dataset_version",
        )
    if hidden.course_id != course.pk or hidden.visibility != Visibility.HIDDEN_TEST:
        raise AssignmentRefused(
            _("Choose a hidden test set of this class (a dataset whose visibility is “hidden”)."),
            field="hidden_test",
        )
    if hidden.status != Status.READY or not hidden.head:
        raise AssignmentRefused(_("The hidden test set is not ready yet."), field="hidden_test")
    if hidden.kind != dataset.kind:
        raise AssignmentRefused(
            _("The hidden test set is of another kind than the dataset."),
            field="hidden_test",
        )
    taught = {c.name for c in dataset_queries.categories_at(dataset, version)}
    unknown = [c.name for c in dataset_queries.categories_at(hidden) if c.name not in taught]
    if unknown:
        raise AssignmentRefused(
            _(
                "The hidden test set has classes that version %(version)s of the dataset lacks: "
                "%(names)s. Students could never get those images right; rename or remove them."
            )
            % {"version": version, "names": ", ".join(unknown[:10])},
            field="hidden_test",
        )


def check_metric(dataset: Dataset, metric: str) -> None:
    """The metric must be one the dataset's kind is scored by (kinds.ASSIGNMENT_METRICS)."""
    kind = kinds.dataset_kind(dataset)
    allowed = kinds.assignment_metrics(kind)
    if metric not in allowed:
        names = ", ".join(str(Metric(value).label) for value in allowed)
        raise AssignmentRefused(
            _("An assignment on a dataset for %(kind)s is scored by %(metrics)s.")
            % {"kind": kinds.kind_name(kind), "metrics": names},
            field="metric",
        )


def save_assignment(user: User, course: Course, values: dict, assignment=None) -> Assignment:
    """Create an assignment, or change one (its submissions keep their scores)."""
    permissions.require_writable(course)
    check_datasets(course, values["dataset"], values["dataset_version"], values["hidden_test"])
    check_metric(values["dataset"], values["metric"])
    if assignment is None:
        assignment = Assignment(course=course, created_by=user)
    for name in FIELDS:
        setattr(assignment, name, values[name])
    with transaction.atomic():
        assignment.save()
        announce(assignment, "saved")
    return assignment


# --- submissions ---------------------------------------------------------------------------


def _check_job(assignment: Assignment, user: User, job: Job) -> None:
    if job.owner_id != user.pk or job.course_id != assignment.course_id:
        raise SubmissionRefused(_("Submit one of your own runs in this class."), field="job")
    wanted, trained = kinds.dataset_kind(assignment.dataset), kinds.job_kind(job)
    if trained != wanted:  # an assignment's kind is its dataset's
        raise SubmissionRefused(
            _(
                "This run is a model for %(trained)s; this assignment scores models for "
                "%(wanted)s. Submit a run trained on “%(dataset)s”."
            )
            % {
                "trained": kinds.kind_name(trained),
                "wanted": kinds.kind_name(wanted),
                "dataset": assignment.dataset.name,
            },
            field="job",
        )
    if job.dataset_id != assignment.dataset_id:
        raise SubmissionRefused(
            _(
                "This run was trained on “%(used)s”; the assignment asks for a run trained on "
                "“%(wanted)s” (any version of it)."
            )
            % {"used": job.dataset.name, "wanted": assignment.dataset.name},
            field="job",
        )
    if job.status != JobStatus.SUCCEEDED:
        raise SubmissionRefused(
            _("This run has not finished successfully (it is %(status)s); submit one that has.")
            % {"status": job.get_status_display().lower()},
            field="job",
        )
    if "folds" in (job.result or {}):
        raise SubmissionRefused(
            _("A cross-validation run holds one model per fold; submit a single run."),
            field="job",
        )


@transaction.atomic
def submit(user: User, assignment: Assignment, job: Job) -> Submission:
    """Hand in a finished run before the deadline, within today's limit; a worker scores it."""
    permissions.require_writable(assignment.course)
    # The row lock makes two quick clicks count as two against the daily limit, not zero.
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("dataset", "hidden_test", "course")
        .get(pk=assignment.pk)
    )
    if timezone.now() >= assignment.deadline:
        raise DeadlinePassed(
            _("The deadline (%(when)s) has passed; this assignment takes no more submissions.")
            % {"when": date_format(timezone.localtime(assignment.deadline), "DATETIME_FORMAT")}
        )
    _check_job(assignment, user, job)
    if assignment.submissions.filter(job=job).exclude(status=SubmissionStatus.FAILED).exists():
        raise AlreadySubmitted(
            _("You have already submitted this run; its score is on the assignment page."),
            field="job",
        )
    if queries.submissions_left_today(assignment, user) <= 0:
        raise DailyLimitReached(
            _(
                "You have used today's %(n)s submissions for this assignment; you can submit "
                "again after midnight."
            )
            % {"n": assignment.daily_limit}
        )
    hidden = assignment.hidden_test
    if hidden.status != Status.READY or not hidden.head:
        raise SubmissionRefused(
            _("The hidden test set is not ready; tell your teacher and try again later.")
        )
    submission = Submission.objects.create(
        assignment=assignment, student=user, job=job, hidden_version=hidden.head
    )
    submission_id = submission.pk
    transaction.on_commit(lambda: tasks.score.delay(submission_id))
    announce(assignment, "submitted")
    return submission


# --- live pages ----------------------------------------------------------------------------


def send_to_course(course_id: int, event: dict) -> None:
    """Send an event to every member's page of the class; a broker that is down loses only it."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            course_group(course_id), {"type": "course.event", "event": event}
        )
    except Exception:  # noqa: BLE001 - pages read the database when they refresh anyway
        log.warning("could not tell class %s about %s", course_id, event, exc_info=True)


def announce(assignment: Assignment, change: str) -> None:
    """After the commit: pages showing this assignment refresh (the event carries ids only)."""
    event = {"kind": "assignment", "assignment": assignment.pk, "change": change}
    course_id = assignment.course_id
    transaction.on_commit(lambda: send_to_course(course_id, event))
