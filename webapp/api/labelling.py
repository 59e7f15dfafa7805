"""`/api/v1/labelling/*`: labelling assignments, read-only — the assignment with its agreement
figures, its images page by page, and each student's progress.

Teachers and TAs of the class see everything; a student given images sees the assignment, their
own images and their own versions only; anybody else gets a 404.
"""

from typing import Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import Query, Router, Schema
from pydantic import Field

from webapp.accounts import permissions
from webapp.accounts.models import Course, User
from webapp.api.base import READ, errors
from webapp.api.dataset_schemas import Offset
from webapp.api.labelling_schemas import ImagePage, LabellingOut, ProgressPage
from webapp.api.schemas import Id
from webapp.labelling import access, queries
from webapp.labelling.models import LabellingAssignment

router = Router(tags=["labelling"])


class PageQuery(Schema):
    offset: Offset = 0
    limit: int = Field(100, ge=1, le=200)


class ImageQuery(PageQuery):
    status: Literal["all", "waiting", "agreed", "disagree", "resolved"] = "all"


def _assignment(request, assignment_id: int) -> LabellingAssignment:
    assignment = (
        LabellingAssignment.objects.select_related("course", "dataset")
        .defer("dataset__report")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or not access.can_view(request.user, assignment):
        raise Http404
    return assignment


def _out(assignment: LabellingAssignment, images: int, figures=None, own=None) -> dict:
    """The assignment; with the figures (staff) or with the caller's own counts (a student)."""
    out = {
        "id": assignment.pk,
        "course": assignment.course_id,
        "dataset": assignment.dataset_id,
        "kind": assignment.dataset.kind,
        "title": assignment.title,
        "instructions": assignment.instructions,
        "per_image": assignment.per_image,
        "deadline": assignment.deadline,
        "published_version": assignment.published_version,
        "images": images,
    }
    if figures is not None:
        out["figures"] = {**figures, "threshold": queries.AGREEMENT_THRESHOLD}
    if own is not None:
        out["given"], out["done"] = own.get("given", 0), own.get("done", 0)
    return out


@router.get(
    "/courses/{course_id}/labelling",
    response={200: list[LabellingOut], **errors(*READ, 404)},
    exclude_unset=True,
)
def list_labelling(request, course_id: Id, query: Query[PageQuery]):
    """The class's labelling assignments, newest first (a student: those that gave them
    images), without the agreement figures (read one assignment for them)."""
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_course(request.user, course):
        raise Http404
    staff = permissions.can_view_roster(request.user, course)
    rows = course.labelling.select_related("course", "dataset").defer("dataset__report")
    if not staff:
        rows = rows.filter(tasks__student=request.user).distinct()
    rows = list(rows.order_by("-created_at", "-pk")[query.offset : query.offset + query.limit])
    everyone = queries.task_counts([a.pk for a in rows])
    mine = {} if staff else queries.task_counts([a.pk for a in rows], request.user)
    return [
        _out(
            assignment,
            everyone.get(assignment.pk, {}).get("images", 0),
            own=None if staff else mine.get(assignment.pk, {}),
        )
        for assignment in rows
    ]


@router.get(
    "/labelling/{assignment_id}",
    response={200: LabellingOut, **errors(*READ, 404)},
    exclude_unset=True,
)
def get_labelling(request, assignment_id: Id):
    """One labelling assignment: with the agreement figures for teachers and TAs, with the
    caller's own progress for a student."""
    assignment = _assignment(request, assignment_id)
    images = queries.task_counts([assignment.pk]).get(assignment.pk, {}).get("images", 0)
    if access.can_manage(request.user, assignment):
        states = queries.gather(assignment)
        return _out(assignment, images, figures=queries.figures(assignment.dataset.kind, states))
    own = queries.task_counts([assignment.pk], request.user).get(assignment.pk, {})
    return _out(assignment, images, own=own)


def _version(version: dict, username: str) -> dict:
    out = {"student": username, "answered": version["answered"], "done": version["done"]}
    if "label" in version:
        out["label"] = version["label"]
    else:
        out["objects"] = len(version["annotations"])
    return out


@router.get(
    "/labelling/{assignment_id}/images",
    response={200: ImagePage, **errors(*READ, 404)},
    exclude_unset=True,
)
def labelling_images(request, assignment_id: Id, query: Query[ImageQuery]):
    """The assignment's images, in the order they were handed out, with each student's version
    (a student: only their images and their own version, with no `status`, `agreement` or
    `chosen`, which would speak of the others' work)."""
    assignment = _assignment(request, assignment_id)
    staff = access.can_manage(request.user, assignment)
    if staff:
        states = list(queries.gather(assignment).values())
        if query.status != "all":
            states = [s for s in states if s.status == query.status]
        total = len(states)
        page = states[query.offset : query.offset + query.limit]
    else:
        tasks = assignment.tasks.filter(student=request.user).order_by("id")
        total = tasks.count()
        uids = tasks.values_list("item_uid", flat=True)[query.offset : query.offset + query.limit]
        found = queries.gather(assignment, list(uids), student=request.user)
        page = list(found.values())
    people = dict(
        User.objects.filter(pk__in={s for state in page for s in state.students}).values_list(
            "pk", "username"
        )
    )
    images = []
    for state in page:
        images.append(
            {
                "item": state.uid,
                "path": state.item.original_path if state.item else None,
                "status": state.status if staff else None,
                "agreement": state.agreement if staff else None,
                "chosen": people.get(state.chosen) if staff else None,
                "versions": [
                    _version(state.versions[s], people.get(s, "")) for s in state.students
                ],
            }
        )
    following = query.offset + len(images)
    return {
        "images": images,
        "total": total,
        "offset": query.offset,
        "next": following if following < total else None,
    }


@router.get(
    "/labelling/{assignment_id}/progress",
    response={200: ProgressPage, **errors(*READ, 403, 404)},
)
def labelling_progress(request, assignment_id: Id, query: Query[PageQuery]):
    """Each student's images given, answered and marked done (teachers and TAs)."""
    assignment = _assignment(request, assignment_id)
    if not access.can_manage(request.user, assignment):
        raise PermissionDenied
    progress = queries.progress(assignment, queries.gather(assignment))
    people = {
        u.pk: u for u in User.objects.filter(pk__in=list(progress)).order_by("username", "pk")
    }
    ordered = [people[pk] for pk in sorted(people, key=lambda pk: people[pk].username)]
    page = ordered[query.offset : query.offset + query.limit]
    following = query.offset + len(page)
    return {
        "students": [{"student": u.username, "name": u.label(), **progress[u.pk]} for u in page],
        "total": len(ordered),
        "offset": query.offset,
        "next": following if following < len(ordered) else None,
    }
