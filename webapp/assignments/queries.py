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
    return (
        Job.objects.filter(
            owner=user,
            course=assignment.course_id,
            dataset=assignment.dataset_id,
            status=JobStatus.SUCCEEDED,
        )
        .select_related("dataset")
        .defer("dataset__report")
        .order_by("-finished_at", "-pk")
    )


def students(assignment: Assignment) -> QuerySet[Membership]:
    """The class's active students, by user name: the rows of the marks table."""
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


def _ranking(assignment: Assignment) -> tuple[list[int], dict[int, tuple], dict[int, int]]:
    """Students in leaderboard order, each one's (-best, reached at, pk), and submission counts.

    Plain values only: an assignment of a big class has tens of thousands of submissions.
    """
    scored = Submission.objects.filter(
        assignment=assignment,
        status=SubmissionStatus.SCORED,
        student__memberships__course=assignment.course_id,
        student__memberships__role=Role.STUDENT,
        student__memberships__removed_at__isnull=True,
    ).order_by()
    best: dict[int, tuple] = {}  # student → (-score, when, pk) of their best, reached first
    counts: dict[int, int] = {}
    for student, score, created_at, pk in scored.values_list(
        "student", "score", "created_at", "pk"
    ):
        key = (-score, created_at, pk)
        if student not in best or key < best[student]:
            best[student] = key
        counts[student] = counts.get(student, 0) + 1
    return sorted(best, key=best.__getitem__), best, counts


def _entries(ranked: list[tuple[int, int]], best: dict, counts: dict) -> list[Entry]:
    students = User.objects.in_bulk([student for _rank, student in ranked])
    return [
        Entry(
            rank=rank,
            student=students[student],
            score=-best[student][0],
            submitted_at=best[student][1],
            submissions=counts[student],
        )
        for rank, student in ranked
    ]


def leaderboard(assignment: Assignment) -> list[Entry]:
    """Best score per current student; equal scores rank by who reached them first."""
    order, best, counts = _ranking(assignment)
    return _entries(list(enumerate(order, start=1)), best, counts)


def leaderboard_top(
    assignment: Assignment, shown: int, reader: User
) -> tuple[list, Entry | None, int]:
    """The first `shown` lines, the reader's own line when it is further down, and how many
    lines are left out: only those students are read."""
    order, best, counts = _ranking(assignment)
    ranked = list(enumerate(order[:shown], start=1))
    mine = next((rank for rank, student in enumerate(order, start=1) if student == reader.pk), 0)
    extra = [(mine, reader.pk)] if mine > shown else []
    entries = _entries(ranked + extra, best, counts)
    top, own = entries[: len(ranked)], (entries[len(ranked)] if extra else None)
    return top, own, len(order) - len(top) - len(extra)


@dataclass
class Mark:
    """A row of the teacher's table: every student, even one who has not submitted."""

    student: User
    best: float | None
    submissions: int
    last_submitted: datetime | None
    pending: int


def marks(assignment: Assignment, memberships=None) -> list[Mark]:
    """Every active student (or those of `memberships`, a page of `students(assignment)`)
    with their best score, number of submissions and the last one."""
    submissions = Submission.objects.filter(assignment=assignment)
    if memberships is None:
        memberships = students(assignment)
    else:
        memberships = list(memberships)
        submissions = submissions.filter(student__in=[m.user_id for m in memberships])
    figures = {
        row["student"]: row
        for row in submissions.values("student").annotate(
            best=Max("score", filter=Q(status=SubmissionStatus.SCORED)),
            n=Count("pk"),
            last=Max("created_at"),
            pending=Count(
                "pk", filter=Q(status__in=[SubmissionStatus.QUEUED, SubmissionStatus.SCORING])
            ),
        )
    }
    rows = []
    for membership in memberships:
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
