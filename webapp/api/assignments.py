"""`/api/v1/assignments/*`: list a class's assignments, hand in a run, read its score, rankings."""

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Router, Status
from ninja.errors import HttpError

from webapp.accounts import permissions
from webapp.accounts.models import Course
from webapp.api.base import READ, WRITE, errors
from webapp.api.job_schemas import (
    AssignmentOut,
    LeaderboardOut,
    SubmissionCreated,
    SubmissionIn,
    SubmissionOut,
)
from webapp.api.schemas import Id
from webapp.assignments import actions, queries, scoring
from webapp.assignments.models import Assignment, Submission
from webapp.assignments.text import render_markdown
from webapp.jobs.models import Job

router = Router(tags=["assignments"])


def _assignment(request, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("course", "dataset").filter(pk=assignment_id).first()
    )
    if assignment is None or not permissions.can_view_assignment(request.user, assignment):
        raise Http404
    return assignment


def assignment_out(assignment: Assignment, *, staff: bool) -> dict:
    out = {
        "id": assignment.pk,
        "course": assignment.course_id,
        "title": assignment.title,
        "description": assignment.description,
        "description_html": str(render_markdown(assignment.description)),
        "dataset": assignment.dataset_id,
        "dataset_version": assignment.dataset_version,
        "metric": assignment.metric,
        "deadline": assignment.deadline,
        "open": assignment.is_open,
        "daily_limit": assignment.daily_limit,
    }
    if staff:  # students learn that a hidden test set exists, not which dataset it is
        out["hidden_test"] = assignment.hidden_test_id
    return out


def submission_out(submission: Submission) -> dict:
    return {
        "id": submission.pk,
        "assignment": submission.assignment_id,
        "job": submission.job_id,
        "student": submission.student.username,
        "status": submission.status,
        "score": submission.score,
        "error": scoring.error_text(submission) if submission.error else "",
        "created_at": submission.created_at,
        "scored_at": submission.scored_at,
    }


@router.get(
    "/courses/{course_id}/assignments",
    response={200: list[AssignmentOut], **errors(*READ, 404)},
    exclude_unset=True,  # a student's answer has no hidden_test at all
)
def list_assignments(request, course_id: Id):
    """The class's assignments, latest deadline first."""
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_course(request.user, course):
        raise Http404
    staff = permissions.can_view_roster(request.user, course)
    return [assignment_out(a, staff=staff) for a in course.assignments.select_related("course")]


@router.post(
    "/assignments/{assignment_id}/submissions",
    response={201: SubmissionCreated, **errors(*WRITE, 404, 409, 429)},
)
def submit(request, assignment_id: Id, payload: SubmissionIn):
    """Hand in one of your succeeded runs; a worker scores it on the hidden test set."""
    assignment = _assignment(request, assignment_id)
    if not permissions.can_submit_to(request.user, assignment):
        raise HttpError(403, _("Only the class's students submit runs to its assignments."))
    job = Job.objects.select_related("dataset").filter(pk=payload.job).first()
    if job is None or not permissions.can_view_job(request.user, job):
        raise actions.SubmissionRefused(_("No run with this id is yours."), field="job")
    submission = actions.submit(request.user, assignment, job)
    return Status(201, {"id": submission.pk, "status": submission.status})


@router.get(
    "/assignments/{assignment_id}/submissions/{submission_id}",
    response={200: SubmissionOut, **errors(*READ, 404)},
)
def get_submission(request, assignment_id: Id, submission_id: Id):
    """A submission's status and score: for its student and the class's teachers and TAs."""
    assignment = _assignment(request, assignment_id)
    submission = (
        Submission.objects.select_related("student", "assignment__course")
        .filter(pk=submission_id, assignment=assignment)
        .first()
    )
    if submission is None or not permissions.can_view_submission(request.user, submission):
        raise Http404
    return submission_out(submission)


@router.get(
    "/assignments/{assignment_id}/leaderboard",
    response={200: LeaderboardOut, **errors(*READ, 404)},
)
def leaderboard(request, assignment_id: Id):
    """Best score per student, ties by who reached it first; names as the teacher chose."""
    assignment = _assignment(request, assignment_id)
    names = permissions.can_see_leaderboard_names(request.user, assignment)
    entries = []
    for entry in queries.leaderboard(assignment):
        you = entry.student.pk == request.user.pk
        entries.append(
            {
                "rank": entry.rank,
                "name": entry.student.label() if names or you else None,
                "username": entry.student.username if names or you else None,
                "you": you,
                "score": entry.score,
                "submitted_at": entry.submitted_at,
            }
        )
    return {"assignment": assignment.pk, "metric": assignment.metric, "entries": entries}
