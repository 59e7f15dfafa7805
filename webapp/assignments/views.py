"""Assignment pages: the class's list, the teacher's form, the assignment with its leaderboard."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webapp.accounts import permissions
from webapp.accounts.course_views import course_for
from webapp.accounts.models import Course
from webapp.assignments import actions, queries, scoring
from webapp.assignments.forms import AssignmentForm, SubmitForm
from webapp.assignments.models import Assignment
from webapp.assignments.text import render_markdown
from webapp.datasets.models import Visibility
from webapp.errors import Refused

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # Excel would run such a cell as a formula
ASSIGNMENTS_PER_PAGE = 50
LEADERS_SHOWN = 50  # the top of the leaderboard (and the reader's own line below it)
MARKS_PER_PAGE = 100
RUNS_OFFERED = 100  # a student's newest finished runs offered for submission
CHOICES = 100  # datasets offered by the assignment form, of each kind (handouts, others)


def _assignment(request, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("course", "dataset", "hidden_test")
        .defer("dataset__report", "hidden_test__report")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or not permissions.can_view_assignment(request.user, assignment):
        raise Http404
    return assignment


@login_required
def course_assignments(request, course_id: int):
    course = course_for(request, course_id, permissions.can_view_course)
    page = Paginator(
        course.assignments.select_related("dataset")
        .defer("dataset__report")
        .order_by("-deadline", "-pk"),
        ASSIGNMENTS_PER_PAGE,
    ).get_page(request.GET.get("page"))
    assignments = list(page)
    best = queries.best_scores(course.pk, [a.pk for a in assignments])
    for assignment in assignments:
        assignment.my_best = best.get((request.user.pk, assignment.pk))
    return render(
        request,
        "assignments/list.html",
        {
            "course": course,
            "assignments": assignments,
            "page": page,
            "can_create": permissions.can_manage_assignment(request.user, course)
            and permissions.course_is_writable(course),
            "is_staff": permissions.can_view_roster(request.user, course),
        },
    )


def _offer_few(field, current_id: int | None) -> None:
    """Handed-out datasets, the newest others (a class may share thousands) and the current one."""
    choices = field.queryset
    newest = list(choices.order_by("-created_at", "-pk").values_list("pk", flat=True)[:CHOICES])
    handouts = choices.filter(visibility=Visibility.HANDOUT).values_list("pk", flat=True)
    keep = Q(pk__in=newest) | Q(pk__in=handouts[:CHOICES]) | Q(pk=current_id)
    field.queryset = choices.filter(keep)


def _edit(request, course: Course, assignment: Assignment | None):
    form = AssignmentForm(request.POST or None, instance=assignment, course=course)
    _offer_few(form.fields["dataset"], assignment.dataset_id if assignment else None)
    _offer_few(form.fields["hidden_test"], assignment.hidden_test_id if assignment else None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = actions.save_assignment(request.user, course, form.cleaned_data, assignment)
        except Refused as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, _("Assignment saved."))
            return redirect("assignment_detail", assignment_id=saved.pk)
    return render(
        request,
        "assignments/form.html",
        {"course": course, "form": form, "assignment": assignment},
    )


@login_required
def assignment_new(request, course_id: int):
    course = course_for(request, course_id, permissions.can_view_course)
    if not permissions.can_manage_assignment(request.user, course):
        raise PermissionDenied
    permissions.require_writable(course)  # a form that could never be saved: say why now
    return _edit(request, course, None)


@login_required
def assignment_edit(request, assignment_id: int):
    assignment = _assignment(request, assignment_id)
    if not permissions.can_manage_assignment(request.user, assignment.course):
        raise PermissionDenied
    permissions.require_writable(assignment.course)  # a form that could never be saved
    return _edit(request, assignment.course, assignment)


def _leaders(assignment: Assignment, user) -> dict:
    """The top of the leaderboard, the reader's own line when it is further down, and the rest."""
    top, mine, left_out = queries.leaderboard_top(assignment, LEADERS_SHOWN, user)
    return {"leaderboard": top, "my_entry": mine, "leaders_not_shown": left_out}


def _live_context(request, assignment: Assignment) -> dict:
    """What the live part of the page shows; students never get other students' details."""
    user = request.user
    context = {
        "assignment": assignment,
        "course": assignment.course,
        **_leaders(assignment, user),
        "names_visible": permissions.can_see_leaderboard_names(user, assignment),
        "is_staff": permissions.can_view_marks(user, assignment),
    }
    if context["is_staff"]:
        page = Paginator(queries.students(assignment), MARKS_PER_PAGE).get_page(
            request.GET.get("page")
        )
        context["marks_page"] = page
        context["marks"] = queries.marks(assignment, page.object_list)
    else:
        mine = list(
            assignment.submissions.filter(student=user)
            .select_related("job")
            .defer("job__result")[:50]
        )
        for submission in mine:
            submission.reason = scoring.error_text(submission) if submission.error else ""
        context["mine"] = mine
        context["left_today"] = queries.submissions_left_today(assignment, user)
    return context


@login_required
def assignment_detail(request, assignment_id: int):
    assignment = _assignment(request, assignment_id)
    context = _live_context(request, assignment)
    writable = permissions.course_is_writable(assignment.course)
    can_submit = writable and permissions.can_submit_to(request.user, assignment)
    context.update(
        description=render_markdown(assignment.description),
        can_submit=can_submit,
        can_edit=writable and permissions.can_manage_assignment(request.user, assignment.course),
        can_view_dataset=permissions.can_view_dataset(request.user, assignment.dataset),
    )
    if can_submit:
        jobs = queries.submittable_jobs(assignment, request.user)
        newest = list(jobs.values_list("pk", flat=True)[:RUNS_OFFERED])
        offered = jobs.filter(pk__in=newest).defer("result")  # labels read the run's metrics
        context["submit_form"] = SubmitForm(jobs=offered) if newest else None
    return render(request, "assignments/detail.html", context)


@login_required
def assignment_live(request, assignment_id: int):
    """The leaderboard and the marks (or one's own submissions): refreshed live by the page."""
    assignment = _assignment(request, assignment_id)
    return render(request, "assignments/_live.html", _live_context(request, assignment))


@login_required
@require_POST
def assignment_submit(request, assignment_id: int):
    assignment = _assignment(request, assignment_id)
    if not permissions.can_submit_to(request.user, assignment):
        raise PermissionDenied
    form = SubmitForm(request.POST, jobs=queries.submittable_jobs(assignment, request.user))
    if not form.is_valid():
        messages.error(request, _("Choose one of your finished runs on the assignment's dataset."))
        return redirect("assignment_detail", assignment_id=assignment.pk)
    try:
        actions.submit(request.user, assignment, form.cleaned_data["job"])
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Submitted. A worker is scoring it on the hidden test set."))
    return redirect("assignment_detail", assignment_id=assignment.pk)


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(CSV_FORMULA_START) else value


@login_required
def assignment_marks_csv(request, assignment_id: int):
    """Every student's best score as CSV, UTF-8 with a BOM so Excel reads Japanese names."""
    assignment = _assignment(request, assignment_id)
    if not permissions.can_view_marks(request.user, assignment):
        raise Http404
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="marks-{assignment.pk}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(["username", "name", "best score", "submissions", "last submitted"])
    for mark in queries.marks(assignment):
        last = mark.last_submitted
        writer.writerow(
            [
                _cell(mark.student.username),
                _cell(mark.student.label()),
                "" if mark.best is None else f"{mark.best:.4f}",
                mark.submissions,
                timezone.localtime(last).strftime("%Y-%m-%d %H:%M") if last else "",
            ]
        )
    return response
