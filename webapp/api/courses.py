"""`/api/v1/courses/*`: the caller's classes, creating and joining them, rosters."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from webapp.accounts import actions, permissions
from webapp.accounts.models import Course, Membership
from webapp.api.base import READ, WRITE, errors
from webapp.api.schemas import (
    CourseCreated,
    CourseIn,
    CourseOut,
    CoursePatch,
    Id,
    JoinCodeOut,
    JoinIn,
    MemberOut,
    MemberPatch,
    PasswordOut,
)

router = Router(tags=["courses"])


def _course(request, course_id: int, check=permissions.can_view_course) -> Course:
    """Return the class; 404 for non-members (classes do not leak), 403 for a missing role."""
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_course(request.user, course):
        raise Http404
    if not check(request.user, course):
        raise PermissionDenied("Only the class's teachers may do this.")
    return course


def _course_out(user, course: Course) -> dict:
    staff = permissions.can_view_roster(user, course)
    return {
        "id": course.pk,
        "name": course.name,
        "role": permissions.role_in(user, course),
        "archived": course.is_archived,
        "join_code": course.join_code if staff else None,
        "join_open": course.join_open if staff else None,
        "limits": {f: getattr(course, f) for f in actions.LIMIT_FIELDS},
    }


def _member_out(m: Membership) -> dict:
    return {
        "id": m.user_id,
        "username": m.user.username,
        "display_name": m.user.display_name,
        "role": m.role,
        "joined_at": m.joined_at,
        "active": m.is_active,
    }


@router.get("/courses", response={200: list[CourseOut], **errors(401)})
def list_courses(request):
    """The classes the caller belongs to."""
    return [_course_out(request.user, c) for c in permissions.visible_courses(request.user)]


@router.post("/courses", response={201: CourseCreated, **errors(*WRITE)})
def create_course(request, payload: CourseIn):
    """Create a class (teachers only); the caller becomes its teacher."""
    if not permissions.can_create_course(request.user):
        raise PermissionDenied("Only teachers may create classes.")
    course = actions.create_course(request.user, payload.name)
    return Status(201, {"id": course.pk, "name": course.name, "join_code": course.join_code})


@router.post("/courses/join", response={200: CourseOut, **errors(*WRITE, 404, 409)})
def join_course(request, payload: JoinIn):
    """Join a class as a student with its join code."""
    membership = actions.join_course(request.user, payload.join_code)
    return _course_out(request.user, membership.course)


@router.get("/courses/{course_id}", response={200: CourseOut, **errors(*READ, 404)})
def get_course(request, course_id: Id):
    """One of the caller's classes (404 for a class they are not in)."""
    return _course_out(request.user, _course(request, course_id))


@router.patch("/courses/{course_id}", response={200: CourseOut, **errors(*WRITE, 404, 409)})
def update_course(request, course_id: Id, payload: CoursePatch):
    """Rename, archive or restore, open or close joining, set per-student limits (teachers)."""
    course = _course(request, course_id, permissions.can_manage_course)
    data = payload.dict(exclude_unset=True)
    if data.get("archived") is False:  # restore first: an archived class takes no other change
        actions.set_archived(course, False)
    if data.get("name") is not None:
        actions.rename_course(course, data["name"])
    if data.get("join_open") is not None:
        actions.set_join_open(course, data["join_open"])
    limits = {f: data[f] for f in actions.LIMIT_FIELDS if data.get(f) is not None}
    if limits:
        actions.update_limits(course, **limits)
    if data.get("archived") is True:  # archive last, after the changes asked with it
        actions.set_archived(course, True)
    return _course_out(request.user, course)


@router.post("/courses/{course_id}/join-code", response={200: JoinCodeOut, **errors(*WRITE, 404)})
def regenerate_join_code(request, course_id: Id):
    """Draw a new join code; the old one stops working."""
    course = _course(request, course_id, permissions.can_manage_course)
    return {"join_code": actions.regenerate_join_code(course)}


@router.get(
    "/courses/{course_id}/members", response={200: list[MemberOut], **errors(*READ, 403, 404)}
)
def list_members(request, course_id: Id):
    """The roster (teachers and TAs), removed members included with active=false."""
    course = _course(request, course_id, permissions.can_view_roster)
    members = Membership.objects.filter(course=course).select_related("user")
    return [_member_out(m) for m in members.order_by("role", "user__username")]


def _member(course: Course, user_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user"), course=course, user_id=user_id
    )


@router.patch(
    "/courses/{course_id}/members/{user_id}", response={200: MemberOut, **errors(*WRITE, 404, 409)}
)
def change_member_role(request, course_id: Id, user_id: Id, payload: MemberPatch):
    """Make a member a teacher, TA or student (a class keeps at least one teacher)."""
    course = _course(request, course_id, permissions.can_manage_course)
    membership = _member(course, user_id)
    actions.change_role(course, membership, payload.role)
    return _member_out(membership)


@router.delete(
    "/courses/{course_id}/members/{user_id}", response={204: None, **errors(*WRITE, 404, 409)}
)
def remove_member(request, course_id: Id, user_id: Id):
    """Remove someone from the class; their work is kept."""
    course = _course(request, course_id, permissions.can_manage_course)
    actions.remove_member(course, _member(course, user_id))
    return Status(204, None)


@router.post(
    "/courses/{course_id}/members/{user_id}/password",
    response={200: PasswordOut, **errors(*WRITE, 404)},
)
def reset_member_password(request, course_id: Id, user_id: Id):
    """Give a student of the class a new random password (their tokens are revoked)."""
    course = _course(request, course_id, permissions.can_manage_course)
    membership = _member(course, user_id)
    if not permissions.can_reset_password(request.user, course, membership.user):
        raise PermissionDenied("You may reset only your own students' passwords.")
    return {"password": actions.reset_password(membership.user)}
