"""Read side of assignments: today's submissions, the leaderboard, the teacher's table of marks."""

from dataclasses import dataclass
from datetime import datetime, time

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from webapp.accounts.models import Membership, Role, User
from webapp.assignments.models import Assignment, Submission, SubmissionStatus
from webapp.jobs.models import Job, JobStatus


def start_of_today() -> datetime:
    """Midnight of today in the server's time zone: the daily limit starts again then."""
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def submissions_left_today(assignment: Assignment, user: User) -> int:
    """Submissions the student may still make today (failed scorings do not count)."""
    used = (
        assignment.submissions.filter(student=user, created_at__gte=start_of_today())
        .exclude(status=SubmissionStatus.FAILED)
        .count()
    )
    return max(0, assignment.daily_limit - used)


def submittable_jobs(assignment: Assignment, user: User) -> QuerySet[Job]:
    """The student's succeeded runs on the assignment's dataset, newest first."""
    return Job.objects.filter(
        owner=user,
        course=assignment.course_id,
        dataset=assignment.dataset_id,
        status=JobStatus.SUCCEEDED,
    ).order_by("-finished_at", "-pk")


def _students(assignment: Assignment) -> QuerySet[Membership]:
    return (
        Membership.objects.active()
        .filter(course=assignment.course_id, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )


@dataclass
class Entry:
    """One line of the leaderboard: a student's best score, reached first at `submitted_at`."""

    rank: int
    student: User
    score: float
    submitted_at: datetime
    submissions: int


def leaderboard(assignment: Assignment) -> list[Entry]:
    """Best score per current student; equal scores rank by who reached them first."""
    scored = (
        Submission.objects.filter(
            assignment=assignment,
            status=SubmissionStatus.SCORED,
            student__memberships__course=assignment.course_id,
            student__memberships__role=Role.STUDENT,
            student__memberships__removed_at__isnull=True,
        )
        .select_related("student")
        .order_by("-score", "created_at", "pk")
    )
    counts = {
        row["student"]: row["n"]
        for row in scored.order_by().values("student").annotate(n=Count("pk"))
    }
    best: dict[int, Entry] = {}
    for submission in scored:
        if submission.student_id not in best:
            best[submission.student_id] = Entry(
                rank=len(best) + 1,
                student=submission.student,
                score=submission.score,
                submitted_at=submission.created_at,
                submissions=counts.get(submission.student_id, 0),
            )
    return list(best.values())


@dataclass
class Mark:
    """A row of the teacher's table: every student, even one who has not submitted."""

    student: User
    best: float | None
    submissions: int
    last_submitted: datetime | None
    pending: int


def marks(assignment: Assignment) -> list[Mark]:
    """Every active student with their best score, number of submissions and the last one."""
    figures = {
        row["student"]: row
        for row in Submission.objects.filter(assignment=assignment)
        .values("student")
        .annotate(
            best=Max("score", filter=Q(status=SubmissionStatus.SCORED)),
            n=Count("pk"),
            last=Max("created_at"),
            pending=Count(
                "pk", filter=Q(status__in=[SubmissionStatus.QUEUED, SubmissionStatus.SCORING])
            ),
        )
    }
    rows = []
    for membership in _students(assignment):
        row = figures.get(membership.user_id, {})
        rows.append(
            Mark(
                student=membership.user,
                best=row.get("best"),
                submissions=row.get("n", 0),
                last_submitted=row.get("last"),
                pending=row.get("pending", 0),
            )
        )
    return rows


def best_scores(course_id: int, assignment_ids: list[int]) -> dict[tuple[int, int], float]:
    """{(student id, assignment id): best score} over the class's scored submissions."""
    rows = (
        Submission.objects.filter(
            assignment__course=course_id,
            assignment__in=assignment_ids,
            status=SubmissionStatus.SCORED,
        )
        .values("student", "assignment")
        .annotate(best=Max("score"))
    )
    return {(row["student"], row["assignment"]): row["best"] for row in rows}
