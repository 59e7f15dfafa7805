"""Class pages: my classes, the class page (teacher and student views), roster and settings."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webapp.accounts import actions, permissions
from webapp.accounts.forms import (
    CourseNameForm,
    JoinForm,
    LimitsForm,
    RoleForm,
    RosterImportForm,
)
from webapp.accounts.models import Course, Membership, Role

COURSES_PER_PAGE = 50
ROSTER_PER_PAGE = 100


def course_for(request, course_id: int, check) -> Course:
    """Return the class if the check allows; 404 to non-members so classes do not leak."""
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_course(request.user, course):
        raise Http404
    if not check(request.user, course):
        raise PermissionDenied
    return course


def _membership(course: Course, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, course=course
    )


def _refuse(request, exc: actions.AccountsError) -> None:
    messages.error(request, exc.message)


@login_required
def course_list(request):
    create_form = CourseNameForm(prefix="create")
    join_form = JoinForm(prefix="join")
    if request.method == "POST" and request.POST.get("action") == "create":
        if not permissions.can_create_course(request.user):
            raise PermissionDenied
        create_form = CourseNameForm(request.POST, prefix="create")
        if create_form.is_valid():
            course = actions.create_course(request.user, create_form.cleaned_data["name"])
            messages.success(request, _("Class created. Share the join code with your students."))
            return redirect("course_detail", course_id=course.pk)
    elif request.method == "POST" and request.POST.get("action") == "join":
        join_form = JoinForm(request.POST, prefix="join")
        if join_form.is_valid():
            try:
                membership = actions.join_course(request.user, join_form.cleaned_data["join_code"])
            except (actions.AccountsError, permissions.CourseArchived) as exc:
                join_form.add_error("join_code", exc.message)
            else:
                messages.success(request, _("You joined %(name)s.") % {"name": membership.course})
                return redirect("course_detail", course_id=membership.course_id)
    courses = permissions.visible_courses(request.user).order_by(
        "archived_at", "-created_at", "-pk"
    )
    page = Paginator(courses, COURSES_PER_PAGE).get_page(request.GET.get("page"))
    roles = dict(
        Membership.objects.active().filter(user=request.user).values_list("course_id", "role")
    )
    rows = [(course, roles.get(course.pk)) for course in page]
    return render(
        request,
        "courses/list.html",
        {
            "rows": rows,
            "page": page,
            "create_form": create_form,
            "join_form": join_form,
            "can_create": permissions.can_create_course(request.user),
        },
    )


def _staff_context(request, course: Course) -> dict:
    everyone = (
        Membership.objects.filter(course=course)
        .select_related("user")
        .order_by("removed_at", "role", "user__username", "pk")
    )
    page = Paginator(everyone, ROSTER_PER_PAGE).get_page(request.GET.get("page"))
    members = list(page)
    return {
        "members": members,
        "roster_page": page,
        "active_count": everyone.filter(removed_at__isnull=True).count(),
        "can_manage": permissions.can_manage_course(request.user, course),
        "writable": permissions.course_is_writable(course),
        "roles": Role.choices,
        "resettable": permissions.resettable_memberships(request.user, course, members),
    }


@login_required
def course_detail(request, course_id: int):
    course = course_for(request, course_id, permissions.can_view_course)
    context = {
        "course": course,
        "role": permissions.role_in(request.user, course),
        "is_staff_view": permissions.can_view_roster(request.user, course),
        "teachers": Membership.objects.active()
        .filter(course=course, role=Role.TEACHER)
        .select_related("user"),
    }
    if context["is_staff_view"]:
        context.update(_staff_context(request, course))
        if context["can_manage"]:
            context["name_form"] = CourseNameForm(initial={"name": course.name})
            context["limits_form"] = LimitsForm(instance=course)
            context["roster_form"] = RosterImportForm()
    return render(request, "courses/detail.html", context)


@login_required
def course_roster(request, course_id: int):
    """The roster table alone, for live refresh (HTMX) when someone joins or leaves."""
    course = course_for(request, course_id, permissions.can_view_roster)
    context = {"course": course, **_staff_context(request, course)}
    return render(request, "courses/_roster.html", context)


@login_required
@require_POST
def course_settings(request, course_id: int):
    course = course_for(request, course_id, permissions.can_manage_course)
    action = request.POST.get("action")
    try:
        if action == "rename":
            form = CourseNameForm(request.POST)
            if form.is_valid():
                actions.rename_course(course, form.cleaned_data["name"])
                messages.success(request, _("The class was renamed."))
            else:
                messages.error(request, _("Give the class a name (up to 120 characters)."))
        elif action == "limits":
            form = LimitsForm(request.POST, instance=Course.objects.get(pk=course.pk))
            if form.is_valid():
                actions.update_limits(
                    course, **{f: form.cleaned_data[f] for f in actions.LIMIT_FIELDS}
                )
                messages.success(request, _("The limits were saved."))
            else:
                for field, errors in form.errors.items():
                    label = form.fields[field].label if field in form.fields else field
                    messages.error(request, f"{label}: {' '.join(errors)}")
        elif action == "regenerate_code":
            actions.regenerate_join_code(course)
            messages.success(request, _("New join code made. The old code no longer works."))
        elif action in ("close_joining", "open_joining"):
            actions.set_join_open(course, action == "open_joining")
        elif action in ("archive", "restore"):
            actions.set_archived(course, action == "archive")
            messages.success(
                request,
                _("The class was archived. Nothing was deleted.")
                if action == "archive"
                else _("The class was restored."),
            )
    except actions.AccountsError as exc:
        _refuse(request, exc)
    return redirect("course_detail", course_id=course.pk)


@login_required
@require_POST
def member_action(request, course_id: int, membership_id: int):
    course = course_for(request, course_id, permissions.can_manage_course)
    membership = _membership(course, membership_id)
    action = request.POST.get("action")
    try:
        if action == "remove":
            actions.remove_member(course, membership)
            messages.success(
                request,
                _("%(name)s was removed from the class. Their work is kept.")
                % {"name": membership.user.label()},
            )
        elif action == "role":
            form = RoleForm(request.POST)
            if form.is_valid():
                actions.change_role(course, membership, form.cleaned_data["role"])
                messages.success(request, _("The role was changed."))
        elif action == "reset_password":
            if not permissions.can_reset_password(request.user, course, membership.user):
                raise PermissionDenied
            password = actions.reset_password(membership.user)
            return render(
                request,
                "courses/password_reset.html",
                {"course": course, "member": membership.user, "password": password},
            )
    except actions.AccountsError as exc:
        _refuse(request, exc)
    return redirect("course_detail", course_id=course.pk)


@login_required
@require_POST
def roster_import(request, course_id: int):
    course = course_for(request, course_id, permissions.can_manage_course)
    form = RosterImportForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("course_detail", course_id=course.pk)
    rows = actions.bulk_create_students(course, form.cleaned_data["roster"])
    return render(
        request,
        "courses/roster_result.html",
        {
            "course": course,
            "rows": rows,
            "file_name": request.FILES["roster"].name,
            "created": sum(1 for r in rows if r.status == "created"),
            "refused": sum(1 for r in rows if r.error),
        },
    )
