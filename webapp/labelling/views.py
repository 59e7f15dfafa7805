"""Labelling assignment pages: the teacher's form, overview (progress, agreement, disagreements),
resolve page and publish; the student's list of their images and "mark done"."""

import uuid
from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webapp.accounts import permissions
from webapp.accounts.course_views import course_for
from webapp.accounts.models import User
from webapp.datasets import dedup, drafts
from webapp.errors import Refused
from webapp.jobs import kinds
from webapp.labelling import access, actions, queries
from webapp.labelling.forms import LabellingForm
from webapp.labelling.models import LabellingAssignment

ASSIGNMENTS_PER_PAGE = 50
STUDENTS_PER_PAGE = 100
IMAGES_PER_PAGE = 100
DISAGREEMENTS_SHOWN = 20
SHAPES_SHOWN = 300  # drawn per student's version on the resolve page
FILTERS = ("all", queries.DISAGREE, queries.WAITING, queries.AGREED, queries.RESOLVED)


def status_words() -> dict[str, str]:
    return {
        queries.WAITING: _("Waiting for answers"),
        queries.AGREED: _("Agreed"),
        queries.DISAGREE: _("Disagreement"),
        queries.RESOLVED: _("Resolved"),
    }


def metric_word(kind: str) -> str:
    """What the per-image agreement of a kind is."""
    return str(kinds.view(kind).agreement)


def _assignment(request, assignment_id: int) -> LabellingAssignment:
    """The assignment if the reader may see it; a 404 otherwise, so nothing leaks."""
    assignment = (
        LabellingAssignment.objects.select_related("course", "dataset")
        .defer("dataset__report")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or not access.can_view(request.user, assignment):
        raise Http404
    return assignment


def _staff_assignment(request, assignment_id: int) -> LabellingAssignment:
    assignment = _assignment(request, assignment_id)
    if not access.can_manage(request.user, assignment):
        raise PermissionDenied
    return assignment


def studio_url(dataset, item_uid=None) -> str:
    """The studio's page for the dataset (the grid) or one of its images."""
    if item_uid:
        name, args = "studio_item", [dataset.pk, item_uid]
    else:
        name, args = "studio_home", [dataset.pk]
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # the studio's pages are another app's; their paths are the contract
        return f"/datasets/{dataset.pk}/studio/" + (f"{item_uid}/" if item_uid else "")


def student_link(dataset, item_uid) -> str:
    """Where a student labels an image: the grid (classification) or the canvas."""
    if kinds.shape(dataset.kind).one_label_per_image:
        return studio_url(dataset)
    return studio_url(dataset, item_uid)


def _names(user_ids) -> dict[int, str]:
    return {u.pk: u.label() for u in User.objects.filter(pk__in=list(user_ids))}


def _category_names(dataset) -> dict[int, str]:
    return {c["index"]: c["name"] for c in drafts.categories(dataset)}


# --- the teacher's pages -------------------------------------------------------------------


@login_required
def labelling_new(request, course_id: int):
    course = course_for(request, course_id, permissions.can_view_course)
    if not access.can_create(request.user, course):
        raise PermissionDenied
    permissions.require_writable(course)  # a form that could never be saved: say why now
    form = LabellingForm(request.POST or None, course=course, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            assignment = actions.create_assignment(
                request.user,
                course,
                data["dataset"],
                title=data["title"],
                instructions=data["instructions"],
                per_image=data["per_image"],
                mode=data["mode"],
                count=data["count"],
                seed=data["seed"],
                students=None if data["everyone"] else [u.pk for u in data["students"]],
                deadline=data["deadline"],
            )
        except Refused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                _("Handed out %(n)s images.") % {"n": assignment.selection["images"]},
            )
            return redirect("labelling_detail", assignment_id=assignment.pk)
    return render(request, "labelling/form.html", {"course": course, "form": form})


@login_required
def course_labelling(request, course_id: int):
    """The class's labelling assignments (staff), or the ones that gave the reader images."""
    course = course_for(request, course_id, permissions.can_view_course)
    is_staff = permissions.can_view_roster(request.user, course)
    assignments = course.labelling.select_related("dataset").defer("dataset__report")
    if not is_staff:
        assignments = assignments.filter(tasks__student=request.user).distinct()
    page = Paginator(assignments.order_by("-created_at", "-pk"), ASSIGNMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "labelling/list.html",
        {
            "course": course,
            "rows": with_counts(list(page), None if is_staff else request.user),
            "page": page,
            "is_staff": is_staff,
            "can_create": access.can_create(request.user, course)
            and permissions.course_is_writable(course),
        },
    )


def with_counts(assignments: list, student: User | None) -> list:
    """Each assignment with its images, tasks given and done (one student's, or everybody's)."""
    counts = queries.task_counts([a.pk for a in assignments], student)
    for assignment in assignments:
        row = counts.get(assignment.pk, {"images": 0, "given": 0, "done": 0})
        assignment.images, assignment.given, assignment.done = (
            row["images"],
            row["given"],
            row["done"],
        )
        assignment.studio = studio_url(assignment.dataset)
    return assignments


@login_required
def labelling_detail(request, assignment_id: int):
    assignment = _assignment(request, assignment_id)
    if access.can_manage(request.user, assignment):
        return _overview(request, assignment)
    return _student_page(request, assignment)


def _version_words(dataset, version: dict, names: dict[int, str]) -> str:
    """One student's version of an image in a few words: the class, or how many objects."""
    if not version["answered"]:
        return "—"
    if "label" in version:
        label = version["label"]
        return "—" if label is None else names.get(label, f"#{label}")
    n = len(version["annotations"])
    return _("%(n)s objects") % {"n": n} if n != 1 else _("1 object")


def _image_rows(assignment, states, people: dict[int, str], categories: dict[int, str]):
    dataset, words = assignment.dataset, status_words()
    rows = []
    for state in states:
        rows.append(
            {
                "uid": state.uid,
                "item": state.item,
                "status": state.status,
                "status_word": words[state.status],
                "agreement": state.agreement,
                "versions": [
                    {
                        "name": people.get(student, "?"),
                        "words": _version_words(dataset, state.versions[student], categories),
                        "done": state.versions[student]["done"],
                        "chosen": state.chosen == student,
                    }
                    for student in state.students
                ],
            }
        )
    return rows


def _overview(request, assignment: LabellingAssignment):
    dataset = assignment.dataset
    states = queries.gather(assignment)
    progress = queries.progress(assignment, states)
    people = _names(progress)
    categories = _category_names(dataset)
    students = sorted(progress.items(), key=lambda kv: (people.get(kv[0], ""), kv[0]))
    student_page = Paginator(students, STUDENTS_PER_PAGE).get_page(request.GET.get("students"))
    show = request.GET.get("show", "all")
    show = show if show in FILTERS else "all"
    shown = [s for s in states.values() if show == "all" or s.status == show]
    image_page = Paginator(shown, IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    disagreements = [s for s in states.values() if s.status == queries.DISAGREE]
    writable = permissions.course_is_writable(assignment.course)
    return render(
        request,
        "labelling/overview.html",
        {
            "assignment": assignment,
            "course": assignment.course,
            "dataset": dataset,
            "figures": queries.figures(dataset.kind, states),
            "threshold": queries.AGREEMENT_THRESHOLD,
            "metric": metric_word(dataset.kind),
            "classification": kinds.shape(dataset.kind).one_label_per_image,
            "student_rows": [
                {"name": people.get(student, "?"), **row} for student, row in student_page
            ],
            "student_page": student_page,
            "image_rows": _image_rows(assignment, image_page, people, categories),
            "image_page": image_page,
            "show": show,
            "filters": [("all", _("All"))] + list(status_words().items()),
            "disagreements": _image_rows(
                assignment, disagreements[:DISAGREEMENTS_SHOWN], people, categories
            ),
            "disagreements_more": max(0, len(disagreements) - DISAGREEMENTS_SHOWN),
            "can_publish": writable and drafts.may_commit(request.user, dataset),
            "writable": writable,
            "studio": studio_url(dataset),
        },
    )


def _shapes(dataset, annotations: list[dict], names: dict[int, str], keypoints) -> list[dict]:
    """SVG shapes of one student's annotations, drawn as the dataset's image page draws them."""
    rows = [
        SimpleNamespace(
            category_index=a.get("category") or 0,
            segmentation=a.get("segmentation"),
            bbox=a.get("bbox"),
            keypoints=a.get("keypoints"),
        )
        for a in annotations[:SHAPES_SHOWN]
    ]
    return dedup.overlay_shapes(rows, names, keypoints["names"], keypoints["skeleton"])


@login_required
def labelling_image(request, assignment_id: int, item_uid: uuid.UUID):
    """One image: each student's version side by side, "use this one", or none of them."""
    assignment = _staff_assignment(request, assignment_id)
    if request.method == "POST":
        return _resolve(request, assignment, item_uid)
    dataset = assignment.dataset
    state = queries.gather(assignment, [item_uid]).get(str(item_uid))
    if state is None:
        raise Http404
    people = _names(state.students)
    categories = drafts.categories(dataset)
    names = {c["index"]: c["name"] for c in categories}
    first = next((c for c in categories if c["keypoints"]), None)
    keypoints = {
        "names": first["keypoints"] if first else [],
        "skeleton": first["skeleton"] if first else [],
    }
    versions = []
    for student in state.students:
        version = state.versions[student]
        annotations = version.get("annotations", [])
        versions.append(
            {
                "student": student,
                "name": people.get(student, "?"),
                "words": _version_words(dataset, version, names),
                "answered": version["answered"],
                "done": version["done"],
                "chosen": state.chosen == student,
                "shapes": _shapes(dataset, annotations, names, keypoints) if state.item else [],
                "objects": len(annotations),
            }
        )
    return render(
        request,
        "labelling/image.html",
        {
            "assignment": assignment,
            "course": assignment.course,
            "dataset": dataset,
            "state": state,
            "status_word": status_words()[state.status],
            "metric": metric_word(dataset.kind),
            "versions": versions,
            "classification": kinds.shape(dataset.kind).one_label_per_image,
            "writable": permissions.course_is_writable(assignment.course),
            "shapes_shown": SHAPES_SHOWN,
            "point_r": _point_radius(state.item),
        },
    )


def _point_radius(item) -> str:
    """A keypoint's dot in image pixels: visible on a 64-pixel figure and on a 4,000-pixel photo."""
    side = max(item.image.width, item.image.height) if item else 100
    return f"{max(1.5, side / 120):.1f}"


def _resolve(request, assignment: LabellingAssignment, item_uid):
    action, choice = request.POST.get("action"), request.POST.get("student", "")
    try:
        if action == "unresolve":
            actions.unresolve(assignment, request.user, item_uid)
            messages.success(request, _("The decision was taken back."))
        elif action == "resolve" and (choice == "none" or choice.isdigit()):
            student = None if choice == "none" else int(choice)
            actions.resolve(assignment, request.user, item_uid, student)
            messages.success(request, _("Resolved."))
        else:
            raise Refused(_("Choose a student's version, or none."), field="student")
    except Refused as exc:
        messages.error(request, exc.message)
        return redirect("labelling_image", assignment_id=assignment.pk, item_uid=item_uid)
    return redirect(reverse("labelling_detail", args=[assignment.pk]) + "?show=disagree")


@login_required
@require_POST
def labelling_publish(request, assignment_id: int):
    assignment = _staff_assignment(request, assignment_id)
    try:
        version = actions.publish(assignment, request.user)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Published as version %(n)s of %(name)s.")
            % {"n": version.number, "name": assignment.dataset.shown_name},
        )
    return redirect("labelling_detail", assignment_id=assignment.pk)


# --- the student's pages -------------------------------------------------------------------


def _student_page(request, assignment: LabellingAssignment):
    dataset, user = assignment.dataset, request.user
    tasks = assignment.tasks.filter(student=user).order_by("id")
    page = Paginator(tasks, IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    states = queries.gather(assignment, [t.item_uid for t in page], student=user)
    names = _category_names(dataset)
    rows = []
    for task in page:
        state = states.get(str(task.item_uid))
        version = state.versions.get(user.pk) if state else None
        rows.append(
            {
                "uid": str(task.item_uid),
                "path": state.item.original_path if state and state.item else "—",
                "words": _version_words(dataset, version, names) if version else "—",
                "done": task.done_at is not None,
                "link": student_link(dataset, task.item_uid),
            }
        )
    counts = queries.task_counts([assignment.pk], user).get(assignment.pk, {})
    return render(
        request,
        "labelling/mine.html",
        {
            "assignment": assignment,
            "course": assignment.course,
            "dataset": dataset,
            "rows": rows,
            "page": page,
            "given": counts.get("given", 0),
            "done": counts.get("done", 0),
            "studio": studio_url(dataset) if rows else "",
            "writable": permissions.course_is_writable(assignment.course),
        },
    )


@login_required
@require_POST
def labelling_done(request, assignment_id: int):
    """A student marks their images done (all, or one: `item`), or not done (`done=0`)."""
    assignment = _assignment(request, assignment_id)
    if not access.is_labeller(request.user, assignment):
        raise PermissionDenied
    item = request.POST.get("item")
    uids = None
    if item:
        try:
            uids = [uuid.UUID(item)]
        except ValueError:
            messages.error(request, _("There is no such image in this assignment."))
            return redirect("labelling_detail", assignment_id=assignment.pk)
    done = request.POST.get("done", "1") != "0"
    try:
        changed = actions.mark_done(assignment, request.user, uids, done)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        if done:
            messages.success(request, _("Marked done: %(n)s images.") % {"n": changed})
        else:
            messages.success(request, _("Marked not done: %(n)s images.") % {"n": changed})
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return redirect(back)
    return redirect("labelling_detail", assignment_id=assignment.pk)
