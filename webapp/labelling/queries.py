"""What each student made of each image of a labelling assignment, and how far they agree.

A student's version of an image is their draft view of it (the pool's head with their draft laid
over it, a model's unaccepted proposals left out). An image counts as answered by a student once
they changed something on it or marked it done; its agreement is computed once every student
given it has answered (for classification: has given it a label).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from webapp.datasets import drafts
from webapp.datasets.models import Draft, DraftChange, Item
from webapp.jobs import kinds
from webapp.labelling import agreement
from webapp.labelling.models import LabellingAssignment, LabellingResolution

# Below this mean IoU / OKS two students' boxes, masks or skeletons count as a disagreement (and
# the teacher decides); at or above it the image is published from the most central version.
AGREEMENT_THRESHOLD = 0.7

WAITING, AGREED, DISAGREE, RESOLVED = "waiting", "agreed", "disagree", "resolved"


@dataclass
class ImageState:
    """One image of the assignment: who has it, what each made of it, and where it stands."""

    uid: str
    item: Item | None  # the pool's current row (None: deleted from the pool since)
    students: list[int]
    versions: dict[int, dict] = field(default_factory=dict)  # student → label / annotations
    agreement: float | None = None
    status: str = WAITING
    chosen: int | None = None  # whose version is published (agreed or resolved)
    resolution: LabellingResolution | None = None

    @property
    def publishable(self) -> dict | None:
        """What publishing writes for this image: {"label"} or {"annotations"}, or None."""
        if self.resolution is not None:
            return self.resolution.data or None
        if self.status == AGREED and self.chosen is not None:
            return snapshot(self.versions[self.chosen])
        return None


def snapshot(version: dict) -> dict:
    """The part of a student's version that publishing writes."""
    if "label" in version:
        return {"label": version["label"]}
    return {"annotations": version["annotations"]}


def sigmas_by_category(dataset) -> dict[int, list[float]]:
    """OKS sigmas per keypoint class: its own (COCO's categories[].sigmas), else the trainer's
    defaults for its keypoint names."""
    from trainer.keypoint_metrics import default_sigmas

    return {
        c["index"]: (
            list(c["sigmas"])
            if len(c.get("sigmas") or []) == len(c["keypoints"])
            else default_sigmas(c["keypoints"])
        )
        for c in drafts.categories(dataset)
        if c["keypoints"]
    }


def _touched(assignment: LabellingAssignment, uids: list[str], students: set[int]) -> set:
    """(student, item uid) pairs a student changed in their draft (proposals do not count)."""
    rows = (
        DraftChange.objects.filter(
            draft__dataset_id=assignment.dataset_id,
            draft__user_id__in=students,
            item_uid__in=uids,
        )
        .exclude(data__has_key="proposal")
        .values_list("draft__user_id", "item_uid")
        .distinct()
    )
    return {(student, str(uid)) for student, uid in rows}


def gather(assignment: LabellingAssignment, item_uids=None, student=None) -> dict[str, ImageState]:
    """Every image of the assignment (or those given), in the order they were handed out; with
    `student`, only that student's versions (their own page: nobody else's work in it)."""
    dataset = assignment.dataset
    tasks = assignment.tasks.order_by("id")
    if item_uids is not None:
        tasks = tasks.filter(item_uid__in=list(item_uids))
    if student is not None:
        tasks = tasks.filter(student=student)
    states: dict[str, ImageState] = {}
    done: set[tuple[int, str]] = set()
    for uid, student, done_at in tasks.values_list("item_uid", "student_id", "done_at"):
        key = str(uid)
        state = states.setdefault(key, ImageState(uid=key, item=None, students=[]))
        state.students.append(student)
        if done_at is not None:
            done.add((student, key))
    if not states:
        return states
    items = {
        str(row.uid): row
        for row in Item.objects.filter(
            dataset=dataset, valid_to__isnull=True, uid__in=list(states)
        ).select_related("image")
    }
    by_student: dict[int, list[str]] = defaultdict(list)
    for key, state in states.items():
        state.item = items.get(key)
        state.students.sort()
        for student in state.students:
            by_student[student].append(key)
    touched = _touched(assignment, list(states), set(by_student))
    student_drafts = {
        d.user_id: d for d in Draft.objects.filter(dataset=dataset, user_id__in=list(by_student))
    }
    classification = kinds.shape(dataset.kind).one_label_per_image  # else: objects
    for student, keys in by_student.items():
        theirs = {key: items[key] for key in keys if key in items}
        views = drafts.overlay(dataset, student_drafts.get(student), theirs)
        for key in keys:
            view = views.get(key)
            version: dict[str, Any] = {
                "answered": (student, key) in touched or (student, key) in done,
                "done": (student, key) in done,
            }
            if classification:
                version["label"] = view["category"] if view else None
            else:
                annotations = view["annotations"].values() if view else []
                version["annotations"] = [a for a in annotations if not a["proposal"]]
            states[key].versions[student] = version
    for resolution in assignment.resolutions.filter(item_uid__in=list(states)):
        states[str(resolution.item_uid)].resolution = resolution
    sigmas = sigmas_by_category(dataset) if kinds.shape(dataset.kind).has_keypoints else {}
    for state in states.values():
        _judge(state, dataset.kind, sigmas)
    return states


def _pairwise(kind: str, state: ImageState, sigmas):
    size = (state.item.image.height, state.item.image.width) if state.item else (1, 1)

    def score(a: dict, b: dict) -> float:
        return agreement.object_agreement(
            kind, a["annotations"], b["annotations"], size=size, sigmas=sigmas
        )

    return score


def _judge(state: ImageState, kind: str, sigmas) -> None:
    """Set the image's agreement, status and the version an agreed image publishes."""
    versions = [state.versions[s] for s in state.students]
    one_label = kinds.shape(kind).one_label_per_image
    if one_label:
        complete = all(v["answered"] and v["label"] is not None for v in versions)
    else:
        complete = all(v["answered"] for v in versions)
    if state.resolution is not None:
        state.status = RESOLVED
        state.chosen = state.resolution.chosen_id
    if not complete or state.item is None:
        return
    if len(versions) < 2:
        state.agreement = None
        agreed, central = True, state.students[0]
    elif one_label:
        labels = [v["label"] for v in versions]
        state.agreement = agreement.pair_agreement(labels)
        agreed, central = len(set(labels)) == 1, state.students[0]
    else:
        pairwise = _pairwise(kind, state, sigmas)
        scores = {
            (a, b): pairwise(state.versions[a], state.versions[b])
            for a, b in combinations(state.students, 2)
        }
        state.agreement = sum(scores.values()) / len(scores)
        agreed = state.agreement >= AGREEMENT_THRESHOLD
        central = _most_central(state.students, scores)
    if state.resolution is None:
        state.status = AGREED if agreed else DISAGREE
        state.chosen = central if agreed else None


def _most_central(students: list[int], scores: dict[tuple[int, int], float]) -> int:
    """The student whose version agrees best with the others' (the first one on a tie)."""
    best, best_score = students[0], -1.0
    for student in students:
        mine = [v for pair, v in scores.items() if student in pair]
        score = sum(mine) / len(mine)
        if score > best_score + 1e-12:
            best, best_score = student, score
    return best


def figures(kind: str, states: dict[str, ImageState]) -> dict:
    """The assignment's overall agreement and counts, from every image's state."""
    counts = defaultdict(int)
    for state in states.values():
        counts[state.status] += 1
    complete = [s for s in states.values() if s.agreement is not None]
    out: dict[str, Any] = {
        "images": len(states),
        "compared": len(complete),
        "waiting": counts[WAITING],
        "agreed": counts[AGREED],
        "disagree": counts[DISAGREE],
        "resolved": counts[RESOLVED],
        "publishable": sum(1 for s in states.values() if s.publishable is not None),
        "mean": sum(s.agreement for s in complete) / len(complete) if complete else None,
    }
    if kinds.shape(kind).one_label_per_image:
        labels = {
            s.uid: {student: s.versions[student]["label"] for student in s.students}
            for s in complete
        }
        out.update(agreement.label_summary(labels))
    return out


def progress(assignment: LabellingAssignment, states: dict[str, ImageState]) -> dict[int, dict]:
    """Per student: images given, answered and marked done."""
    rows: dict[int, dict] = defaultdict(lambda: {"given": 0, "answered": 0, "done": 0})
    for state in states.values():
        for student, version in state.versions.items():
            row = rows[student]
            row["given"] += 1
            row["answered"] += bool(version["answered"])
            row["done"] += bool(version["done"])
    return dict(rows)


def task_counts(assignment_ids: list[int], student=None) -> dict[int, dict]:
    """{assignment: {"images", "given", "done"}} — one student's tasks, or everybody's."""
    from django.db.models import Count, Q

    from webapp.labelling.models import LabellingTask

    tasks = LabellingTask.objects.filter(assignment_id__in=assignment_ids)
    if student is not None:
        tasks = tasks.filter(student=student)
    rows = tasks.values("assignment_id").annotate(
        images=Count("item_uid", distinct=True),
        given=Count("id"),
        done=Count("id", filter=Q(done_at__isnull=False)),
    )
    return {row["assignment_id"]: row for row in rows}
