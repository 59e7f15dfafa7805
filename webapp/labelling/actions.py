"""Every change to labelling assignments: create (choose and hand out the images), mark done,
resolve and publish. Views call these; each checks who asks and writes in one transaction."""

import random
import uuid
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.accounts.models import Course, Membership, Role, User
from webapp.datasets import drafts
from webapp.datasets.models import Annotation, Dataset, Status, Version, Visibility
from webapp.datasets.queries import items_at
from webapp.errors import Refused
from webapp.jobs import kinds
from webapp.labelling import access, queries
from webapp.labelling.models import LabellingAssignment, LabellingResolution, LabellingTask

MAX_IMAGES = 2000  # images one assignment hands out (each to 1–3 students)
MAX_STUDENTS = 1000
PER_IMAGE = (1, 3)
MAX_SEED = 2**31 - 1
MODES = ("all", "random", "unlabelled")


class LabellingRefused(Refused):
    """A refused change to a labelling assignment; the message names what to fix."""


class NotAllowed(LabellingRefused):
    status = 403


# --- choosing and handing out the images -----------------------------------------------------


def distribute(item_uids: Sequence, student_ids: Sequence[int], per_image: int) -> list[tuple]:
    """(item uid, student) pairs: each image to `per_image` different students, the load
    balanced (any two students' counts differ by at most one). Deterministic: the students
    take turns in the order given, image after image, as if dealing cards round a table."""
    students = list(student_ids)
    if not 1 <= per_image <= len(students):
        raise ValueError("per_image must be between 1 and the number of students")
    pairs = []
    turn = 0
    for uid in item_uids:
        for _seat in range(per_image):  # per_image ≤ students: consecutive seats differ
            pairs.append((uid, students[turn % len(students)]))
            turn += 1
    return pairs


def choose_images(dataset: Dataset, mode: str, count: int | None, seed: int) -> list:
    """The uids of the pool's images to hand out: all of them, or `count` of them (or of the
    unlabelled ones) drawn at random with `seed`; in the order they will be handed out."""
    if mode not in MODES:
        raise LabellingRefused(_("Choose all, random or unlabelled images."), field="mode")
    items = items_at(dataset)
    if mode == "unlabelled":
        if kinds.shape(dataset.kind).one_label_per_image:
            items = items.filter(category_index__isnull=True)
        else:
            items = items.filter(~Exists(Annotation.objects.filter(item=OuterRef("pk"))))
    uids = list(items.order_by("id").values_list("uid", flat=True))
    if not uids:
        raise LabellingRefused(
            _("The dataset has no unlabelled images.")
            if mode == "unlabelled"
            else _("The dataset has no images."),
            field="mode",
        )
    if mode in ("all", "unlabelled") and count is None:
        if len(uids) > MAX_IMAGES:
            raise LabellingRefused(
                _(
                    "The dataset has %(n)s images; one assignment hands out at most %(max)s. "
                    "Choose a number of images drawn at random."
                )
                % {"n": len(uids), "max": MAX_IMAGES},
                field="count",
            )
        return uids
    if count is None or not 1 <= count <= MAX_IMAGES:
        raise LabellingRefused(
            _("Give the number of images, 1 to %(max)s.") % {"max": MAX_IMAGES}, field="count"
        )
    if mode == "all":
        return uids[:count]
    return random.Random(seed).sample(uids, min(count, len(uids)))  # noqa: S311 (a draw, not a secret)


def _students(course: Course, chosen: Sequence[int] | None) -> list[int]:
    """The active students of the class (all, or the chosen ones, each checked), by user id."""
    active = set(
        Membership.objects.active()
        .filter(course=course, role=Role.STUDENT)
        .values_list("user_id", flat=True)
    )
    if chosen is None:
        students = sorted(active)
    else:
        if len(chosen) > MAX_STUDENTS:
            raise LabellingRefused(
                _("Choose at most %(n)s students.") % {"n": MAX_STUDENTS}, field="students"
            )
        strangers = set(chosen) - active
        if strangers:
            raise LabellingRefused(
                _("Only active students of this class can be given images to label."),
                field="students",
            )
        students = sorted(set(chosen))
    if not students:
        raise LabellingRefused(_("Choose at least one student."), field="students")
    return students


def check_pool(user: User, course: Course, dataset: Dataset) -> None:
    """The pool must be one of the class's ready datasets the teacher may edit, never a hidden
    test set (students would see its images)."""
    if dataset.course_id != course.pk or not permissions.can_edit_dataset(user, dataset):
        raise LabellingRefused(_("Choose a dataset of this class you may edit."), field="dataset")
    if dataset.visibility == Visibility.HIDDEN_TEST:
        raise LabellingRefused(
            _("A hidden test set cannot be labelled by students: they would see its images."),
            field="dataset",
        )
    if dataset.status != Status.READY or not dataset.head:
        raise LabellingRefused(_("This dataset is not ready yet."), field="dataset")


@transaction.atomic
def create_assignment(
    user: User,
    course: Course,
    dataset: Dataset,
    *,
    title: str,
    instructions: str = "",
    per_image: int = 2,
    mode: str = "all",
    count: int | None = None,
    seed: int = 0,
    students: Sequence[int] | None = None,
    deadline=None,
) -> LabellingAssignment:
    """Choose the pool's images and hand each to `per_image` students, the load balanced."""
    if not access.can_create(user, course):
        raise NotAllowed(_("Only the class's teachers and TAs create labelling assignments."))
    permissions.require_writable(course)
    title = (title or "").strip()
    if not title:
        raise LabellingRefused(_("Give the assignment a title."), field="title")
    check_pool(user, course, dataset)
    if not PER_IMAGE[0] <= per_image <= PER_IMAGE[1]:
        raise LabellingRefused(_("Each image goes to 1, 2 or 3 students."), field="per_image")
    if not 0 <= seed <= MAX_SEED:
        raise LabellingRefused(_("The seed is a whole number from 0."), field="seed")
    student_ids = _students(course, students)
    if per_image > len(student_ids):
        raise LabellingRefused(
            _("Each image goes to %(k)s students, but only %(n)s are chosen.")
            % {"k": per_image, "n": len(student_ids)},
            field="per_image",
        )
    uids = choose_images(dataset, mode, count, seed)
    assignment = LabellingAssignment.objects.create(
        course=course,
        dataset=dataset,
        title=title[:200],
        instructions=(instructions or "").strip()[:5000],
        per_image=per_image,
        created_by=user,
        deadline=deadline,
        selection={"mode": mode, "count": count, "seed": seed, "images": len(uids)},
    )
    LabellingTask.objects.bulk_create(
        LabellingTask(assignment=assignment, item_uid=uid, student_id=student)
        for uid, student in distribute(uids, student_ids, per_image)
    )
    return assignment


# --- the students' side ----------------------------------------------------------------------


def mark_done(
    assignment: LabellingAssignment, student: User, item_uids=None, done: bool = True
) -> int:
    """Mark the student's images of the assignment done (all of them, or those given), or not
    done again; returns how many changed."""
    permissions.require_writable(assignment.course)
    tasks = assignment.tasks.filter(student=student)
    if item_uids is not None:
        tasks = tasks.filter(item_uid__in=list(item_uids))
    if done:
        return tasks.filter(done_at__isnull=True).update(done_at=timezone.now())
    return tasks.filter(done_at__isnull=False).update(done_at=None)


# --- the teacher's side: resolve and publish --------------------------------------------------


def resolve(
    assignment: LabellingAssignment, user: User, item_uid, student_id: int | None
) -> LabellingResolution:
    """Settle one image: publish this student's version of it (as it is now), or none of them
    (`student_id` None: the image stays as the dataset has it)."""
    if not access.can_manage(user, assignment):
        raise NotAllowed(_("Only the class's teachers and TAs resolve images."))
    permissions.require_writable(assignment.course)
    state = queries.gather(assignment, [item_uid]).get(str(item_uid))
    if state is None:
        raise LabellingRefused(_("This image is not part of the assignment."), field="item")
    data: dict = {}
    if student_id is not None:
        if student_id not in state.students:
            raise LabellingRefused(_("This student was not given the image."), field="student")
        if not state.versions[student_id]["answered"]:
            raise LabellingRefused(
                _("This student has not labelled the image yet."), field="student"
            )
        data = queries.snapshot(state.versions[student_id])
    resolution, _created = LabellingResolution.objects.update_or_create(
        assignment=assignment,
        item_uid=state.uid,
        defaults={
            "chosen_id": student_id,
            "data": data,
            "resolved_by": user,
            "resolved_at": timezone.now(),
        },
    )
    return resolution


def unresolve(assignment: LabellingAssignment, user: User, item_uid) -> None:
    """Take back a decision: the image is judged by its agreement again."""
    if not access.can_manage(user, assignment):
        raise NotAllowed(_("Only the class's teachers and TAs resolve images."))
    permissions.require_writable(assignment.course)
    assignment.resolutions.filter(item_uid=item_uid).delete()


def _category_map(dataset: Dataset, user: User, states) -> dict[int, int]:
    """Classes the students added in their drafts, added to the publisher's draft by name:
    {student's index: the publisher's index}."""
    known = {c["index"] for c in drafts.categories(dataset)}
    wanted: dict[int, str] = {}
    students = {s for state in states for s in state.students}
    for draft in dataset.drafts.filter(user_id__in=students):
        for category in drafts.categories(dataset, draft):
            if category["index"] not in known:
                wanted.setdefault(category["index"], category["name"])
    if not wanted:
        return {}
    changes = [{"op": "category", "uid": str(uuid.uuid4()), "name": n} for n in wanted.values()]
    answer = drafts.apply(dataset, user, changes)
    index_of = {c["name"]: c["index"] for c in answer.get("categories", [])}
    return {index: index_of[name] for index, name in wanted.items() if name in index_of}


def _changes_for(state, data: dict, heads: list[dict], remap: dict[int, int]) -> list[dict]:
    """The deltas that make the image in the publisher's draft what `data` says."""
    item = str(state.item.uid)
    if "label" in data:
        label = remap.get(data["label"], data["label"])
        if label == state.item.category_index:
            return []  # the dataset has it already (published before, or the pool's label)
        return [{"op": "label", "item": item, "category": label}]
    mine = {a["uid"]: a for a in heads}
    chosen = data["annotations"]
    if _same(mine, chosen, remap):
        return []
    keep = {a["uid"] for a in chosen}
    changes = [
        {"op": "delete", "item": item, "uid": uid, "revision": a["revision"]}
        for uid, a in mine.items()
        if uid not in keep
    ]
    for annotation in chosen:
        fields = {k: annotation.get(k) for k in ("bbox", "segmentation", "keypoints", "iscrowd")}
        fields["category"] = remap.get(annotation["category"], annotation["category"])
        head = mine.get(annotation["uid"])
        if head is not None:
            changes.append(
                {
                    "op": "update",
                    "item": item,
                    "uid": annotation["uid"],
                    "revision": head["revision"],
                    "data": fields,
                }
            )
        else:  # new, or deleted from the pool meanwhile: a new annotation with a new id
            uid = annotation["uid"] if not annotation.get("revision") else str(uuid.uuid4())
            changes.append({"op": "create", "item": item, "uid": uid, "data": fields})
    return changes


SHAPE = ("bbox", "segmentation", "keypoints", "iscrowd")


def _same(heads: dict[str, dict], chosen: list[dict], remap: dict[int, int]) -> bool:
    """Whether the image's annotations already are the chosen ones (same ids, classes, shapes)."""
    if set(heads) != {a["uid"] for a in chosen}:
        return False
    for annotation in chosen:
        head = heads[annotation["uid"]]
        category = remap.get(annotation["category"], annotation["category"])
        if head["category"] != category or any(
            _plain(head.get(k)) != _plain(annotation.get(k)) for k in SHAPE
        ):
            return False
    return True


def _plain(value):
    """Numbers compared as floats (a box stored [10, 10, 20, 20] is [10.0, 10.0, 20.0, 20.0])."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, int | float):
        return float(value)
    return value


@transaction.atomic
def publish(assignment: LabellingAssignment, user: User) -> Version:
    """Write the agreed and resolved images into the publisher's draft of the pool and commit
    it as one new version; earlier versions (and the runs trained on them) stay as they were."""
    if not access.can_manage(user, assignment):
        raise NotAllowed(_("Only the class's teachers and TAs publish labelling assignments."))
    dataset = assignment.dataset
    permissions.require_writable(assignment.course)
    if not drafts.may_commit(user, dataset):
        raise NotAllowed(
            _("Only who may edit the dataset “%(name)s” publishes a version of it.")
            % {"name": dataset.shown_name}
        )
    if drafts.summary(dataset, user)["changes"]:
        raise LabellingRefused(
            _(
                "You have studio edits of this dataset that are not committed yet. Commit or "
                "discard them in the studio first, so that this version holds only the "
                "assignment's labels."
            )
        )
    states = [s for s in queries.gather(assignment).values() if s.item is not None]
    chosen = [(s, s.publishable) for s in states if s.publishable is not None]
    if not chosen:
        raise LabellingRefused(
            _("No image is agreed or resolved yet: there is nothing to publish.")
        )
    remap = _category_map(dataset, user, [s for s, _data in chosen])
    heads = _current_annotations(dataset, user, [s.uid for s, _data in chosen])
    changes = [
        change
        for state, data in chosen
        for change in _changes_for(state, data, heads.get(state.uid, []), remap)
    ]
    if not changes:
        raise LabellingRefused(
            _("The dataset already holds every agreed and resolved image: nothing to publish.")
        )
    for start in range(0, len(changes), drafts.MAX_CHANGES):
        answer = drafts.apply(dataset, user, changes[start : start + drafts.MAX_CHANGES])
        if answer["refused"] or answer["conflicts"]:
            first = (answer["refused"] or [{"detail": _("a conflict")}])[0]
            raise LabellingRefused(
                _("The dataset refused an image's labels (%(why)s); nothing was published.")
                % {"why": first["detail"]}
            )
    written = len({change["item"] for change in changes if "item" in change})
    message = _("Labelling assignment “%(title)s”: %(n)s images") % {
        "title": assignment.title,
        "n": written,
    }
    version = drafts.commit(dataset, user, message)
    assignment.published_version = version.number
    assignment.save(update_fields=["published_version"])
    return version


def _current_annotations(dataset: Dataset, user: User, uids: list[str]) -> dict[str, list]:
    """The annotations of those images in the publisher's draft view (proposals left out)."""
    if kinds.shape(dataset.kind).one_label_per_image:
        return {}
    items = {
        str(row.uid): row for row in items_at(dataset).filter(uid__in=uids).select_related("image")
    }
    views = drafts.overlay(dataset, drafts.draft_of(dataset, user), items)
    return {
        key: [a for a in view["annotations"].values() if not a["proposal"]]
        for key, view in views.items()
    }
