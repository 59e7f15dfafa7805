"""The class dashboard: every student × their runs, who is training now, the queue; live.

A fixed number of queries whatever the class size: one aggregate over the class's jobs grouped
by student, one over the scored submissions, and the running and waiting jobs.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, FloatField, Max, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.http import Http404
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from webapp.accounts import permissions
from webapp.accounts.models import Course, Membership, Role, User
from webapp.assignments import queries as assignment_queries
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.templatetags.job_results import percent

SCORE_COLUMNS = 3  # the latest assignments get a column each; the rest are one click away
LISTED = 15  # running and waiting jobs listed; the queue page has them all
STUDENTS_PER_PAGE = 100


def _float(path: str):
    return Cast(KT(path), FloatField())


def _primary(kind: str):
    """A run's primary figure of its kind (kinds.PRIMARY_KEYS: test, else validation, else the
    best epoch so far), in SQL. All from the small `metrics`; reading `result` (tens of KB per
    job) made SQLite copy every result while grouping."""
    return Coalesce(*(_float(f"metrics__{key}") for key in kinds.PRIMARY_KEYS[kind]))


def _best_per_kind() -> dict:
    """One aggregate column per kind: the best primary figure of the student's runs of it."""
    return {
        f"best_{kind}": Max(_primary(kind), filter=Q(dataset__kind=kind))
        for kind in kinds.PRIMARY_KEYS
    }


@dataclass
class Best:
    """A student's best figure of one kind, with the label saying what it is."""

    kind: str
    label: str
    value: float
    text: str


@dataclass
class StudentRow:
    """One student's line; figures come formatted, so 200 rows render in a few milliseconds."""

    student: User
    name: str
    runs: dict = field(default_factory=dict)  # status → count
    total: int = 0
    best: list[Best] = field(default_factory=list)  # per kind the student trained, in order
    gpu_minutes: float = 0.0
    gpu_text: str = "0.0"
    quota_percent: int = 0  # of the class's GPU minutes per student, capped at 100
    last_run_text: str = ""
    scores: list = field(default_factory=list)  # best score per shown assignment, or None
    score_texts: list = field(default_factory=list)


def _job_figures(course: Course) -> dict[int, dict]:
    counts = {
        status: Count("pk", filter=Q(status=status)) for status in JobStatus.values
    }  # one column per status, in one pass over the class's jobs
    rows = (
        Job.objects.filter(course=course)
        .order_by()
        .values("owner")
        .annotate(
            total=Count("pk"),
            gpu=Sum("gpu_seconds"),
            **_best_per_kind(),
            last=Max("created_at"),
            **counts,
        )
    )
    return {row["owner"]: row for row in rows}


def _best(row: dict) -> list[Best]:
    best = []
    for kind in kinds.PRIMARY_KEYS:
        value = row.get(f"best_{kind}")
        if value is not None:
            figure = kinds.primary(kind)
            best.append(Best(kind, str(figure.label), value, figure.text(value)))
    return best


def _minutes(minutes: float) -> str:
    return f"{minutes:.1f}" if minutes < 10 else f"{minutes:.0f}"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    return f"{local.month}/{local.day} {local:%H:%M}"


def _students(course: Course):
    return (
        Membership.objects.active()
        .filter(course=course, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )


def student_rows(
    course: Course, assignments: list, students=None, figures: dict | None = None
) -> list[StudentRow]:
    """Active students of the class (all, or the given memberships) with their figures."""
    students = _students(course) if students is None else students
    figures = _job_figures(course) if figures is None else figures
    best = assignment_queries.best_scores(course.pk, [a.pk for a in assignments])
    quota = course.gpu_minutes_per_student
    rows = []
    for membership in students:
        user, row = membership.user, figures.get(membership.user_id, {})
        minutes = (row.get("gpu") or 0.0) / 60
        scores = [best.get((user.pk, a.pk)) for a in assignments]
        rows.append(
            StudentRow(
                student=user,
                name=user.label(),
                runs={status: row.get(status, 0) for status in JobStatus.values},
                total=row.get("total", 0),
                best=_best(row),
                gpu_minutes=minutes,
                gpu_text=f"{minutes:.1f}",
                quota_percent=min(100, round(100 * minutes / quota)) if quota else 0,
                last_run_text=_when(row.get("last")),
                scores=scores,
                # Every metric an assignment ranks by is a share, shown as the job pages do
                score_texts=["" if score is None else percent(score) for score in scores],
            )
        )
    return rows


def dashboard_context(course: Course, page_number=None) -> dict:
    """Everything the dashboard shows (a page of students), in a fixed number of queries."""
    assignments = list(course.assignments.order_by("-deadline", "-pk")[:SCORE_COLUMNS])
    page = Paginator(_students(course), STUDENTS_PER_PAGE).get_page(page_number)
    figures = _job_figures(course)
    rows = student_rows(course, assignments, page.object_list, figures)
    student_ids = set(_students(course).values_list("user_id", flat=True))
    gpu_seconds = sum(
        row.get("gpu") or 0.0 for owner, row in figures.items() if owner in student_ids
    )
    # Results (confusion matrices, misclassified lists) are big and not shown here.
    jobs = Job.objects.filter(course=course).select_related("owner").defer("result")
    running = list(jobs.filter(status=JobStatus.RUNNING).order_by("started_at", "pk")[:LISTED])
    waiting = jobs.filter(status=JobStatus.QUEUED)
    shown = list(waiting.order_by("-priority", "created_at", "pk")[:LISTED])
    for job in running + shown:
        job.model_name = _model_name(job)
    return {
        "course": course,
        "rows": rows,
        "page": page,
        "student_count": page.paginator.count,
        "assignments": assignments,
        "running": running,
        "running_count": (
            len(running) if len(running) < LISTED else jobs.filter(status="running").count()
        ),
        "waiting": shown,
        "waiting_count": len(shown) if len(shown) < LISTED else waiting.count(),
        "quota": course.gpu_minutes_per_student,
        "queue_url": _queue_url(course),
        "gpu_minutes_total": _minutes(gpu_seconds / 60),
    }


def _model_name(job: Job) -> str:
    model = job.spec.get("model")
    return model if isinstance(model, str) else "layers"


def _queue_url(course: Course) -> str | None:
    """The teacher's queue page, once the jobs app has one."""
    try:
        return reverse("course_queue", args=[course.pk])
    except NoReverseMatch:
        return None


def _course(request, course_id: int) -> Course:
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_dashboard(request.user, course):
        raise Http404  # students (and everyone outside) never learn it exists
    return course


@login_required
def course_dashboard(request, course_id: int):
    course = _course(request, course_id)
    context = dashboard_context(course, request.GET.get("page"))
    return render(request, "front/dashboard.html", context)


@login_required
def dashboard_live(request, course_id: int):
    """The part of the dashboard the page refreshes when a job or a submission changes."""
    course = _course(request, course_id)
    context = dashboard_context(course, request.GET.get("page"))
    return render(request, "front/_dashboard_live.html", context)
