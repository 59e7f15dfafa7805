"""Studio drafts: one person's uncommitted annotation edits of a dataset, committed as a version.

The studio saves every stroke as a delta (create, update or delete one annotation; label one
image; add a class). A delta replaces the draft's one row for that thing (`DraftChange`), so a
draft stays as small as what was touched. Reading an image in the studio shows the head version
with the reader's draft laid over it. Committing writes one new immutable version; runs keep the
versions they trained on.

Conflicts: every annotation carries a `revision` (+1 at each commit that changes it) and a
change remembers the revision it was made on (`base_revision`). When somebody else committed a
newer revision meanwhile, the change is a conflict: it stays in the draft (nothing is lost), both
sides are reported, and the commit waits until the owner keeps theirs or takes the other.

Proposals (a model's suggestions, `data["proposal"]`) are draft rows too; they are shown as such
and never committed until accepted.
"""

import contextlib
import math
import uuid
from collections import defaultdict

from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils.translation import gettext as _

from trainer.kinds import shape
from webapp.accounts import permissions
from webapp.datasets import actions
from webapp.datasets.models import (
    Annotation,
    Category,
    Dataset,
    Draft,
    DraftChange,
    Item,
    Op,
    Version,
)
from webapp.errors import Refused

MAX_CHANGES = 500  # per call; the studio sends one change per stroke
MAX_POLYGONS = 100
MAX_POLYGON_NUMBERS = 20_000  # 10,000 vertices
MAX_RLE_CHARS = 2_000_000
MAX_KEYPOINTS = 100
QUEUES = ("all", "unlabelled", "least_confident")
ORDER = ("original_path", "uid")  # stable across versions (a commit copies rows: ids change)
GEOMETRY = ("bbox", "segmentation", "keypoints")


class DraftConflict(Refused):
    """A commit that would overwrite somebody else's newer work."""

    status = 409

    def __init__(self, message: str, conflicts: list[dict]):
        super().__init__(message)
        self.conflicts = conflicts


class NotAllowed(Refused):
    status = 403


# --- who may do what -------------------------------------------------------------------------


def may_commit(user, dataset: Dataset) -> bool:
    """Whoever may edit the dataset commits drafts into versions."""
    return user.is_authenticated and permissions.can_edit_dataset(user, dataset)


def may_draft(user, dataset: Dataset, item_uid=None) -> bool:
    """May save studio edits: who may edit the dataset, or a student given that image (any of
    the dataset's images when `item_uid` is None) in a labelling assignment."""
    if not user.is_authenticated:
        return False
    if may_commit(user, dataset):
        return permissions.course_is_writable(dataset.course)
    from webapp.labelling.access import assigned_items, is_assigned

    if not permissions.course_is_writable(dataset.course):
        return False
    if item_uid is None:
        return assigned_items(user, dataset).exists()
    return is_assigned(user, dataset, item_uid)


def assigned_only(user, dataset: Dataset) -> bool:
    """Whether the studio shows this user only the images given to them (a labelling student
    who may not edit the dataset itself)."""
    from webapp.labelling.access import assigned_items

    return not may_commit(user, dataset) and assigned_items(user, dataset).exists()


def may_open(user, dataset: Dataset) -> bool:
    """May open the dataset in the studio (read-only without drafting rights)."""
    return permissions.can_view_images(user, dataset) or may_draft(user, dataset)


# --- shapes ----------------------------------------------------------------------------------


def annotation_out(row: Annotation, item_uid) -> dict:
    return {
        "uid": str(row.uid),
        "item": str(item_uid),
        "revision": row.revision,
        "category": row.category_index,
        "bbox": row.bbox,
        "segmentation": row.segmentation,
        "keypoints": row.keypoints,
        "iscrowd": row.iscrowd,
        "area": row.area,
        "proposal": None,
    }


def _change_out(change: DraftChange, revision: int) -> dict:
    data = change.data
    return {
        "uid": str(change.uid),
        "item": str(change.item_uid),
        "revision": revision,
        "category": data.get("category"),
        "bbox": data.get("bbox"),
        "segmentation": data.get("segmentation"),
        "keypoints": data.get("keypoints"),
        "iscrowd": bool(data.get("iscrowd", False)),
        "area": data.get("area", 0.0),
        "proposal": data.get("proposal"),
    }


def _uuid(value, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise Refused(_("This is not a valid id."), field=field) from None


def _number(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused(_("Expected a finite number."), field=field)
    return float(value)


def _clean_bbox(value, width: int, height: int) -> list[float]:
    if not isinstance(value, list) or len(value) != 4:
        raise Refused(_("A box is [x, y, width, height]."), field="bbox")
    x, y, w, h = (_number(v, "bbox") for v in value)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise Refused(_("The box has no area inside the image."), field="bbox")
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


def _clean_polygons(value, width: int, height: int) -> list[list[float]]:
    if not value or len(value) > MAX_POLYGONS:
        raise Refused(_("Give 1 to %(n)s polygons.") % {"n": MAX_POLYGONS}, field="segmentation")
    polygons = []
    for polygon in value:
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            raise Refused(_("A polygon needs at least three x, y points."), field="segmentation")
        if len(polygon) > MAX_POLYGON_NUMBERS:
            raise Refused(
                _("A polygon has at most %(n)s points.") % {"n": MAX_POLYGON_NUMBERS // 2},
                field="segmentation",
            )
        numbers = [_number(v, "segmentation") for v in polygon]
        clipped = []
        for i in range(0, len(numbers), 2):
            clipped += [
                round(min(max(numbers[i], 0.0), width), 2),
                round(min(max(numbers[i + 1], 0.0), height), 2),
            ]
        polygons.append(clipped)
    return polygons


def _clean_rle(value, width: int, height: int) -> dict:
    counts, size = value.get("counts"), value.get("size")
    if size != [height, width]:
        raise Refused(
            _("A mask's size must be the image's [height, width], [%(h)s, %(w)s].")
            % {"h": height, "w": width},
            field="segmentation",
        )
    if not isinstance(counts, str) or not counts or len(counts) > MAX_RLE_CHARS:
        raise Refused(
            _("A mask's counts must be a COCO compressed RLE string."), field="segmentation"
        )
    try:
        counts.encode("ascii")
    except UnicodeEncodeError:
        raise Refused(
            _("A mask's counts must be a COCO compressed RLE string."), field="segmentation"
        ) from None
    return {"size": [height, width], "counts": counts}


def _geometry_facts(segmentation, width: int, height: int) -> tuple[float, list[float] | None]:
    """(area, bbox) of polygons or an RLE mask, through pycocotools."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, dict):
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
        decoded_total = int(sum(mask_utils.decode(rle).shape))  # checks the string decodes
        if decoded_total != height + width:
            raise Refused(_("The mask does not decode to the image's size."), field="segmentation")
    else:
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    area = float(mask_utils.area(rle))
    box = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
    return area, (box if area > 0 else None)


def _clean_keypoints(value, category: dict | None) -> list[float]:
    names = (category or {}).get("keypoints") or []
    if not isinstance(value, list) or not value or len(value) % 3:
        raise Refused(_("Keypoints are x, y, visibility triples."), field="keypoints")
    if names and len(value) != 3 * len(names):
        raise Refused(
            _("This class has %(n)s keypoints; send %(m)s numbers.")
            % {"n": len(names), "m": 3 * len(names)},
            field="keypoints",
        )
    if len(value) > 3 * MAX_KEYPOINTS:
        raise Refused(_("At most %(n)s keypoints.") % {"n": MAX_KEYPOINTS}, field="keypoints")
    out = []
    for i in range(0, len(value), 3):
        x, y = _number(value[i], "keypoints"), _number(value[i + 1], "keypoints")
        v = value[i + 2]
        if v not in (0, 1, 2) or isinstance(v, bool):
            raise Refused(_("A keypoint's visibility is 0, 1 or 2."), field="keypoints")
        out += [round(x, 2), round(y, 2), int(v)] if v else [0, 0, 0]
    return out


def clean(data, item: Item, categories: dict[int, dict]) -> dict:
    """The annotation fields of a change, checked against the image and the classes; area and
    bbox filled in. Raises Refused naming the field."""
    if not isinstance(data, dict):
        raise Refused(_("A change needs its data."), field="data")
    width, height = item.image.width, item.image.height
    category = data.get("category")
    if isinstance(category, bool) or not isinstance(category, int) or category not in categories:
        raise Refused(_("There is no such class."), field="category")
    bbox = segmentation = keypoints = None
    area = 0.0
    if data.get("segmentation") is not None:
        raw = data["segmentation"]
        if isinstance(raw, dict):
            segmentation = _clean_rle(raw, width, height)
        elif isinstance(raw, list):
            segmentation = _clean_polygons(raw, width, height)
        else:
            raise Refused(_("A segmentation is polygons or a mask."), field="segmentation")
        area, box = _geometry_facts(segmentation, width, height)
        bbox = box
    if data.get("keypoints") is not None:
        keypoints = _clean_keypoints(data["keypoints"], categories[category])
        shown = [
            (keypoints[i], keypoints[i + 1])
            for i in range(0, len(keypoints), 3)
            if keypoints[i + 2]
        ]
        if bbox is None and shown:
            xs, ys = [p[0] for p in shown], [p[1] for p in shown]
            bbox = [min(xs), min(ys), max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0)]
    if data.get("bbox") is not None:
        bbox = _clean_bbox(data["bbox"], width, height)
    if bbox is None and segmentation is None and keypoints is None:
        raise Refused(_("An annotation needs a box, a shape or keypoints."), field="bbox")
    if bbox is not None and not area:
        area = round(bbox[2] * bbox[3], 2)
    return {
        "category": category,
        "bbox": bbox,
        "segmentation": segmentation,
        "keypoints": keypoints,
        "iscrowd": bool(data.get("iscrowd", False)),
        "area": area,
    }


# --- reading ---------------------------------------------------------------------------------


def draft_of(dataset: Dataset, user) -> Draft | None:
    if not user.is_authenticated:
        return None
    return Draft.objects.filter(dataset=dataset, user=user).first()


def categories(dataset: Dataset, draft: Draft | None = None) -> list[dict]:
    """The head's classes and the draft's new ones: {index, name, keypoints, skeleton, sigmas
    (the OKS sigmas; empty: the defaults)}."""
    rows = [
        {
            "index": c.index,
            "name": c.name,
            "keypoints": c.keypoints,
            "skeleton": c.skeleton,
            "sigmas": c.sigmas or [],
        }
        for c in Category.objects.filter(dataset=dataset, valid_to__isnull=True)
    ]
    if draft is not None:
        for change in draft.changes.filter(op=Op.CATEGORY):
            rows.append(
                {
                    "index": change.data["index"],
                    "name": change.data["name"],
                    "keypoints": change.data.get("keypoints", []),
                    "skeleton": change.data.get("skeleton", []),
                }
            )
    return sorted(rows, key=lambda row: row["index"])


def _head_items(dataset: Dataset, uids) -> dict[str, Item]:
    rows = Item.objects.filter(dataset=dataset, valid_to__isnull=True, uid__in=list(uids))
    return {str(row.uid): row for row in rows.select_related("image")}


def _head_annotations(items: dict[str, Item]) -> dict[str, list[Annotation]]:
    by_item_pk = {row.pk: key for key, row in items.items()}
    found: dict[str, list[Annotation]] = defaultdict(list)
    for row in Annotation.objects.filter(item_id__in=list(by_item_pk)).order_by("id"):
        found[by_item_pk[row.item_id]].append(row)
    return found


def _committer(item: Item) -> str | None:
    """Who committed the version this image's head row comes from (the other side of a
    conflict on it)."""
    found = (
        Version.objects.filter(dataset_id=item.dataset_id, number=item.valid_from)
        .values_list("created_by__display_name", "created_by__username")
        .first()
    )
    return (found[0] or found[1]) if found else None


def _conflict(change: DraftChange, head: Annotation | None, item: Item) -> dict:
    theirs = annotation_out(head, item.uid) if head is not None else None
    yours = None if change.op == Op.DELETE else _change_out(change, change.base_revision)
    return {
        "uid": str(change.uid),
        "item": str(item.uid),
        "theirs": theirs,
        "yours": yours,
        "by": _committer(item),
    }


def _is_conflict(change: DraftChange, head: Annotation | None) -> bool:
    if change.op == Op.CREATE:
        return False
    if head is None:
        return change.op == Op.UPDATE  # deleted meanwhile: an update has nothing to change
    return head.revision != change.base_revision


def _label_conflict(change: DraftChange, item: Item | None) -> dict | None:
    if item is None:
        return None
    was, now = change.data.get("was"), item.category_index
    if change.data.get("proposal") or now == was or now == change.data.get("category"):
        return None
    return {
        "uid": str(change.uid),
        "item": str(change.item_uid),
        "theirs": {"category": now},
        "yours": {"category": change.data.get("category")},
        "by": _committer(item),
    }


def overlay(dataset: Dataset, draft: Draft | None, items: dict[str, Item]) -> dict[str, dict]:
    """{item uid: {"annotations", "conflicts", "category", "proposal"}} of the head with the
    draft laid over it."""
    heads = _head_annotations(items)
    views = {}
    for key, item in items.items():
        views[key] = {
            "annotations": {str(a.uid): annotation_out(a, key) for a in heads.get(key, [])},
            "heads": {str(a.uid): a for a in heads.get(key, [])},
            "conflicts": [],
            "category": item.category_index,
            "proposal": None,
        }
    if draft is None:
        return views
    for change in draft.changes.filter(item_uid__in=list(items)).order_by("id"):
        view = views[str(change.item_uid)]
        uid = str(change.uid)
        if change.op == Op.LABEL:
            if change.data.get("proposal"):
                view["proposal"] = {
                    **change.data["proposal"],
                    "category": change.data.get("category"),
                }
            else:
                view["category"] = change.data.get("category")
                conflict = _label_conflict(change, items[str(change.item_uid)])
                if conflict:
                    view["conflicts"].append(conflict)
            continue
        head = view["heads"].get(uid)
        if _is_conflict(change, head):
            view["conflicts"].append(_conflict(change, head, items[str(change.item_uid)]))
        if change.op == Op.DELETE:
            view["annotations"].pop(uid, None)
        else:
            view["annotations"][uid] = _change_out(change, change.base_revision)
    return views


def item_view(dataset: Dataset, user, item_uid, version: int | None = None) -> dict:
    """One image for the studio: its annotations at a version, or in the caller's draft."""
    item_uid = _uuid(item_uid, "item")
    if version is not None:
        if not 1 <= version <= dataset.head:
            raise actions.NotFound(_("There is no such version."), field="version")
        from webapp.datasets.models import at_version

        item = (
            Item.objects.filter(at_version(version), dataset=dataset, uid=item_uid)
            .select_related("image")
            .first()
        )
        if item is None:
            raise actions.NotFound(_("This image is not in that version."), field="item")
        rows = Annotation.objects.filter(item=item).order_by("id")
        return {
            "item": _item_out(dataset, item, item.category_index, None),
            "version": version,
            "editable": False,
            "annotations": [annotation_out(a, item_uid) for a in rows],
            "conflicts": [],
            "others_editing": [],
        }
    items = _head_items(dataset, [item_uid])
    if not items:
        raise actions.NotFound(_("There is no such image in this dataset."), field="item")
    if assigned_only(user, dataset) and not may_draft(user, dataset, item_uid):
        raise actions.NotFound(_("There is no such image in this dataset."), field="item")
    editable = may_draft(user, dataset, item_uid)
    draft = draft_of(dataset, user) if editable else None
    view = overlay(dataset, draft, items)[str(item_uid)]
    item = items[str(item_uid)]
    others = (
        DraftChange.objects.filter(draft__dataset=dataset, item_uid=item_uid)
        .exclude(draft__user=user)
        .values_list("draft__user__display_name", "draft__user__username")
        .distinct()[:10]
        if editable
        else []
    )
    return {
        "item": _item_out(dataset, item, view["category"], view["proposal"]),
        "version": None,
        "editable": editable,
        "annotations": list(view["annotations"].values()),
        "conflicts": view["conflicts"],
        "others_editing": sorted({display or name for display, name in others}),
    }


def _item_out(dataset: Dataset, item: Item, category, proposal) -> dict:
    return {
        "uid": str(item.uid),
        "id": item.pk,
        "path": item.original_path,
        "width": item.image.width,
        "height": item.image.height,
        "image": reverse("dataset_image", args=[dataset.pk, item.pk]),
        "thumb": reverse("dataset_thumb", args=[dataset.pk, item.pk]),
        "split": item.split,
        "category": category,
        "proposal": proposal,
    }


def annotations_of(draft: Draft, item_uids=None) -> dict[str, list[dict]]:
    """The draft view (head + draft, proposals left out) of those images' annotations."""
    items = _scope(draft, item_uids)
    return {
        key: [a for a in view["annotations"].values() if not a["proposal"]]
        for key, view in overlay(draft.dataset, draft, items).items()
    }


def labels_of(draft: Draft, item_uids=None) -> dict[str, int | None]:
    """The draft view of those images' classes (classification)."""
    items = _scope(draft, item_uids)
    return {key: view["category"] for key, view in overlay(draft.dataset, draft, items).items()}


def _scope(draft: Draft, item_uids) -> dict[str, Item]:
    if item_uids is None:
        item_uids = draft.changes.exclude(item_uid=None).values_list("item_uid", flat=True)
    return _head_items(draft.dataset, {str(u) for u in item_uids})


def summary(dataset: Dataset, user) -> dict:
    draft = draft_of(dataset, user)
    if draft is None:
        return {
            "base": dataset.head,
            "head": dataset.head,
            "changes": 0,
            "items": 0,
            "proposals": 0,
            "conflicts": 0,
        }
    rows = list(draft.changes.all())
    proposals = sum(1 for row in rows if row.data.get("proposal"))
    items = _head_items(dataset, {str(r.item_uid) for r in rows if r.item_uid})
    conflicts = sum(len(v["conflicts"]) for v in overlay(dataset, draft, items).values())
    return {
        "base": draft.base,
        "head": dataset.head,
        "changes": len(rows) - proposals,
        "items": len({r.item_uid for r in rows if r.item_uid}),
        "proposals": proposals,
        "conflicts": conflicts,
    }


# --- writing ---------------------------------------------------------------------------------


class _Batch:
    """What one call to `apply` needs loaded once: images, head annotations, draft rows."""

    def __init__(self, dataset: Dataset, user, draft: Draft, changes: list):
        self.dataset, self.user, self.draft = dataset, user, draft
        item_keys, uids = set(), set()
        for change in changes:
            if isinstance(change, dict):
                for key, into in (("item", item_keys), ("uid", uids)):
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        into.add(str(uuid.UUID(str(change.get(key)))))
        self.items = _head_items(dataset, item_keys)
        # Only the annotations the changes name (an image may hold thousands).
        self.heads = {
            str(a.uid): a
            for a in Annotation.objects.filter(
                item_id__in=[item.pk for item in self.items.values()], uid__in=list(uids)
            )
        }
        self.rows = {str(r.uid): r for r in draft.changes.filter(uid__in=list(uids | item_keys))}
        self.categories = {c["index"]: c for c in categories(dataset, draft)}
        self.allowed: dict[str, bool] = {}

    def item(self, value) -> Item:
        key = str(_uuid(value, "item"))
        item = self.items.get(key)
        if item is None:
            raise Refused(_("There is no such image in this dataset."), field="item")
        if key not in self.allowed:
            self.allowed[key] = may_draft(self.user, self.dataset, item.uid)
        if not self.allowed[key]:
            raise NotAllowed(_("You may not label this image."), field="item")
        return item


def _save(batch: _Batch, row: DraftChange) -> None:
    row.save()
    batch.rows[str(row.uid)] = row


def _apply_one(batch: _Batch, change: dict, answer: dict) -> str:
    op = change.get("op")
    if op == Op.CATEGORY:
        return _add_category(batch, change, answer)
    if op not in (Op.CREATE, Op.UPDATE, Op.DELETE, Op.LABEL, "accept"):
        raise Refused(
            _("Unknown change; use create, update, delete, label, category or accept."), field="op"
        )
    item = batch.item(change.get("item"))
    if op == Op.LABEL:
        return _label(batch, item, change, answer)
    uid = str(_uuid(change.get("uid"), "uid"))
    row, head = batch.rows.get(uid), batch.heads.get(uid)
    if (
        row is not None
        and str(row.item_uid) != str(item.uid)
        or head is not None
        and head.item_id != item.pk
    ):
        raise Refused(_("This annotation belongs to another image."), field="uid")
    if op == "accept":
        if row is None or not row.data.get("proposal"):
            raise Refused(_("There is no such proposal."), field="uid")
        row.data = {k: v for k, v in row.data.items() if k != "proposal"}
        _save(batch, row)
        return uid
    if op == Op.CREATE:
        if head is not None:
            raise Refused(_("An annotation with this id exists already."), field="uid")
        data = clean(change.get("data"), item, batch.categories)
        row = row or DraftChange(draft=batch.draft, uid=uid, item_uid=item.uid)
        row.op, row.data, row.base_revision = Op.CREATE, data, 0
        _save(batch, row)
        return uid
    revision = change.get("revision")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise Refused(_("Send the revision you changed."), field="revision")
    if row is None and head is None:
        if op == Op.DELETE:
            return uid  # gone already
        raise Refused(_("There is no such annotation."), field="uid")
    if op == Op.DELETE:
        if row is not None and row.op == Op.CREATE:
            row.delete()
            batch.rows.pop(uid, None)
            return uid
        row = row or DraftChange(
            draft=batch.draft, uid=uid, item_uid=item.uid, base_revision=revision
        )
        row.op, row.data = Op.DELETE, {}
    else:
        data = clean(change.get("data"), item, batch.categories)
        if row is None:
            row = DraftChange(draft=batch.draft, uid=uid, item_uid=item.uid, base_revision=revision)
            row.op = Op.UPDATE
        elif row.op == Op.DELETE:
            row.op = Op.UPDATE
        row.data = data  # a proposal corrected is accepted: its `proposal` goes
    _save(batch, row)
    if _is_conflict(row, head):
        answer["conflicts"].append(_conflict(row, head, item))
    return uid


def _label(batch: _Batch, item: Item, change: dict, answer: dict) -> str:
    if not shape(batch.dataset.kind).one_label_per_image:
        raise Refused(_("Whole-image labels are for classification datasets."), field="op")
    category = change.get("category")
    if category is not None and (
        isinstance(category, bool)
        or not isinstance(category, int)
        or category not in batch.categories
    ):
        raise Refused(_("There is no such class."), field="category")
    uid = str(item.uid)
    row = batch.rows.get(uid) or DraftChange(
        draft=batch.draft, uid=item.uid, item_uid=item.uid, op=Op.LABEL
    )
    was = row.data.get("was", item.category_index) if row.pk else item.category_index
    row.data = {"category": category, "was": was}
    _save(batch, row)
    conflict = _label_conflict(row, item)  # somebody committed another class meanwhile
    if conflict:
        answer["conflicts"].append(conflict)
    return uid


def _add_category(batch: _Batch, change: dict, answer: dict) -> str:
    uid = str(_uuid(change.get("uid"), "uid"))
    name = change.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Refused(_("Give the class a name."), field="name")
    name = name.strip()[:200]
    same = [c for c in batch.categories.values() if c["name"] == name]
    if not same:
        if batch.draft.changes.filter(op=Op.CATEGORY).count() >= 1000:
            raise Refused(_("Too many new classes in one draft."), field="name")
        committed = Category.objects.filter(dataset=batch.dataset).aggregate(m=Max("index"))["m"]
        index = max([-1, committed if committed is not None else -1, *batch.categories]) + 1
        template = (
            next(iter(batch.categories.values()), {})
            if shape(batch.dataset.kind).has_keypoints
            else {}
        )
        data = {
            "name": name,
            "index": index,
            "keypoints": template.get("keypoints", []),
            "skeleton": template.get("skeleton", []),
        }
        _save(batch, DraftChange(draft=batch.draft, uid=uid, op=Op.CATEGORY, data=data))
        batch.categories[index] = {**data}
    answer["categories"] = sorted(batch.categories.values(), key=lambda c: c["index"])
    return uid


@transaction.atomic
def apply(dataset: Dataset, user, changes: list) -> dict:
    """Apply a batch of deltas to the caller's draft; the good ones are kept even when others
    are refused. Returns applied uids, refusals (with the field), conflicts and the draft."""
    if not isinstance(changes, list) or not 1 <= len(changes) <= MAX_CHANGES:
        raise Refused(_("Send 1 to %(n)s changes.") % {"n": MAX_CHANGES}, field="changes")
    if not may_draft(user, dataset):
        raise NotAllowed(_("You may not edit this dataset."))
    actions._require_ready(dataset)
    draft, _created = Draft.objects.get_or_create(
        dataset=dataset, user=user, defaults={"base": dataset.head}
    )
    batch = _Batch(dataset, user, draft, changes)
    answer: dict = {"applied": [], "refused": [], "conflicts": []}
    for index, change in enumerate(changes):
        try:
            if not isinstance(change, dict):
                raise Refused(_("A change is an object."), field="changes")
            with transaction.atomic():
                answer["applied"].append(_apply_one(batch, change, answer))
        except Refused as refused:
            answer["refused"].append(
                {
                    "index": index,
                    "uid": str(change.get("uid", "")) if isinstance(change, dict) else "",
                    "field": refused.field or "",
                    "detail": refused.message,
                }
            )
    Draft.objects.filter(pk=draft.pk).update(base=draft.base)  # touches updated_at
    answer["draft"] = {"base": draft.base, "head": dataset.head, "changes": draft.changes.count()}
    return answer


def resolve(dataset: Dataset, user, uid, keep: str) -> dict:
    """Settle one conflict: keep mine (made on the newest revision) or take theirs (mine goes).
    Answers what the image now shows for it: the annotation (null when gone) or the label."""
    if keep not in ("mine", "theirs"):
        raise Refused(_("Choose mine or theirs."), field="keep")
    draft = draft_of(dataset, user)
    uid = _uuid(uid, "uid")
    row = draft.changes.filter(uid=uid).first() if draft else None
    if row is None:
        raise actions.NotFound(_("There is no such change in your draft."), field="uid")
    items = _head_items(dataset, [row.item_uid])
    _settle(row, items.get(str(row.item_uid)), keep)
    view = overlay(dataset, draft, items).get(str(row.item_uid))
    return {
        "uid": str(uid),
        "kept": keep,
        "annotation": view["annotations"].get(str(uid)) if view else None,
        "category": view["category"] if view else None,
    }


def _settle(row: DraftChange, item: Item | None, keep: str) -> None:
    if keep == "theirs":
        row.delete()
        return
    if row.op == Op.LABEL:
        row.data["was"] = item.category_index if item else None
        row.save()
        return
    head = Annotation.objects.filter(item=item, uid=row.uid).first() if item else None
    if head is not None:
        row.base_revision = head.revision
    elif row.op == Op.DELETE:
        row.delete()
        return
    else:
        row.op, row.base_revision = Op.CREATE, 0  # they deleted it; mine brings it back
    row.save()


def discard(dataset: Dataset, user) -> None:
    Draft.objects.filter(dataset=dataset, user=user).delete()


def commit(dataset: Dataset, user, message: str) -> Version:
    """Write the draft's accepted changes as one new version (proposals stay in the draft)."""
    if not may_commit(user, dataset):
        raise NotAllowed(_("Only who may edit the dataset commits a version of it."))
    message = (message or "").strip()[:300] or _("Studio edits")
    holder: dict = {}

    def change(number: int) -> None:
        draft = Draft.objects.select_for_update().filter(dataset=dataset, user=user).first()
        rows = [r for r in (draft.changes.all() if draft else []) if not r.data.get("proposal")]
        if not rows:
            raise actions.Conflict(_("Your draft has no changes to commit."), field="message")
        items = _head_items(dataset, {str(r.item_uid) for r in rows if r.item_uid})
        conflicts = [c for v in overlay(dataset, draft, items).values() for c in v["conflicts"]]
        if conflicts:
            raise DraftConflict(
                _(
                    "Somebody committed newer work on %(n)s of your changes; keep yours or take "
                    "theirs for each, then commit."
                )
                % {"n": len(conflicts)},
                conflicts[:50],
            )
        _write(dataset, draft, rows, items, number)
        holder["draft"] = draft

    version = actions.new_version(dataset, user, message, change)
    draft = holder["draft"]
    if not draft.changes.exists():
        draft.delete()
    else:
        Draft.objects.filter(pk=draft.pk).update(base=version.number)
    return version


def _write(dataset: Dataset, draft: Draft, rows, items: dict[str, Item], number: int) -> None:
    remap: dict[int, int] = {}
    taken = set(Category.objects.filter(dataset=dataset).values_list("index", flat=True))
    for row in rows:
        if row.op != Op.CATEGORY:
            continue
        index = row.data["index"]
        if index in taken:  # somebody added a class with that index meanwhile
            remap[index] = index = max(taken) + 1
        taken.add(index)
        Category.objects.create(
            dataset=dataset,
            index=index,
            name=row.data["name"],
            keypoints=row.data.get("keypoints", []),
            skeleton=row.data.get("skeleton", []),
            valid_from=number,
        )
    labels = {str(r.item_uid): r.data.get("category") for r in rows if r.op == Op.LABEL}
    changes = {str(r.uid): r for r in rows if r.op in (Op.UPDATE, Op.DELETE)}
    creates = [r for r in rows if r.op == Op.CREATE]

    def change_item(item: Item) -> None:
        key = str(item.uid)
        if key in labels:
            category = labels[key]
            item.category_index = remap.get(category, category)

    def change_annotation(annotation: Annotation) -> None:
        row = changes.get(str(annotation.uid))
        if row is None or row.op != Op.UPDATE:
            return
        _fill(annotation, row.data, remap)
        annotation.revision += 1

    touched = Item.objects.filter(pk__in=[item.pk for item in items.values()])
    actions._rewrite_items(touched, number, change_item, change_annotation)
    copies = {str(i.uid): i for i in Item.objects.filter(dataset=dataset, valid_from=number)}
    deleted = [uid for uid, row in changes.items() if row.op == Op.DELETE]
    Annotation.objects.filter(item__in=list(copies.values()), uid__in=deleted).delete()
    new = []
    for row in creates:
        annotation = Annotation(item=copies[str(row.item_uid)], uid=row.uid, revision=1)
        _fill(annotation, row.data, remap)
        new.append(annotation)
    Annotation.objects.bulk_create(new)
    DraftChange.objects.filter(pk__in=[r.pk for r in rows]).delete()


def _fill(annotation: Annotation, data: dict, remap: dict[int, int]) -> None:
    annotation.category_index = remap.get(data["category"], data["category"])
    annotation.bbox = data.get("bbox")
    annotation.segmentation = data.get("segmentation")
    annotation.keypoints = data.get("keypoints")
    annotation.iscrowd = bool(data.get("iscrowd", False))
    annotation.area = float(data.get("area") or 0.0)


@transaction.atomic
def write_proposals(dataset: Dataset, user, job_id: int, proposals: list[dict]) -> int:
    """Put a model's suggestions into the user's draft: annotations ({"item", "category",
    "bbox"/"segmentation"/"keypoints", "score"}) or, for classification, labels ({"item",
    "category", "score", "scores"}). A new round replaces earlier proposals on those images.
    Returns how many were written (malformed ones are skipped)."""
    draft, _created = Draft.objects.get_or_create(
        dataset=dataset, user=user, defaults={"base": dataset.head}
    )
    items = _head_items(dataset, {str(p.get("item")) for p in proposals})
    cats = {c["index"]: c for c in categories(dataset, draft)}
    stale = [
        r.pk
        for r in draft.changes.filter(item_uid__in=[i.uid for i in items.values()])
        if r.data.get("proposal")
    ]
    DraftChange.objects.filter(pk__in=stale).delete()
    labelled = set(
        str(u)
        for u in draft.changes.filter(
            op=Op.LABEL, item_uid__in=[i.uid for i in items.values()]
        ).values_list("item_uid", flat=True)
    )
    rows = []
    for proposal in proposals:
        item = items.get(str(proposal.get("item")))
        if item is None:
            continue
        score = round(float(proposal.get("score", 0.0)), 4)
        if shape(dataset.kind).one_label_per_image:
            if str(item.uid) in labelled or proposal.get("category") not in cats:
                continue  # a label the student already chose is never replaced
            meta = {"score": score, "job": job_id, "scores": proposal.get("scores", {})}
            rows.append(
                DraftChange(
                    draft=draft,
                    uid=item.uid,
                    item_uid=item.uid,
                    op=Op.LABEL,
                    data={
                        "category": proposal["category"],
                        "was": item.category_index,
                        "proposal": meta,
                    },
                )
            )
            continue
        try:
            data = clean(proposal, item, cats)
        except Refused:
            continue
        data["proposal"] = {"score": score, "job": job_id}
        rows.append(
            DraftChange(draft=draft, uid=uuid.uuid4(), item_uid=item.uid, op=Op.CREATE, data=data)
        )
    DraftChange.objects.bulk_create(rows)
    return len(rows)


def accept_above(dataset: Dataset, user, threshold: float) -> int:
    """Accept every proposal of the user's draft scoring at least `threshold`."""
    draft = draft_of(dataset, user)
    if draft is None:
        return 0
    accepted = []
    for row in draft.changes.all():
        proposal = row.data.get("proposal")
        if proposal and proposal.get("score", 0.0) >= threshold:
            row.data = {k: v for k, v in row.data.items() if k != "proposal"}
            accepted.append(row)
    DraftChange.objects.bulk_update(accepted, ["data"])
    return len(accepted)


def reject_below(dataset: Dataset, user, threshold: float) -> int:
    """Drop every proposal of the user's draft scoring below `threshold`."""
    draft = draft_of(dataset, user)
    if draft is None:
        return 0
    gone = [
        row.pk
        for row in draft.changes.all()
        if row.data.get("proposal") and row.data["proposal"].get("score", 0.0) < threshold
    ]
    DraftChange.objects.filter(pk__in=gone).delete()
    return len(gone)


# --- the studio's image queue ----------------------------------------------------------------


def queue(dataset: Dataset, user, name: str = "all", offset: int = 0, limit: int = 100) -> dict:
    """A page of the images the studio walks through, in the caller's draft view.

    `unlabelled` puts images without a label (classification) or without annotations first;
    `least_confident` puts images with a model's proposal first, lowest score first. A student
    labelling a pool sees only the images given to them.
    """
    from django.db.models import Case, Count, Exists, OuterRef, Q, When

    if name not in QUEUES:
        raise Refused(_("Choose the queue all, unlabelled or least_confident."), field="queue")
    items = Item.objects.filter(dataset=dataset, valid_to__isnull=True)
    if assigned_only(user, dataset):
        from webapp.labelling.access import assigned_items

        items = items.filter(uid__in=assigned_items(user, dataset))
    draft = draft_of(dataset, user) if may_draft(user, dataset) else None
    rows = list(draft.changes.exclude(item_uid=None)) if draft else []
    labels = {
        r.item_uid: r.data.get("category")
        for r in rows
        if r.op == Op.LABEL and not r.data.get("proposal")
    }
    created = {r.item_uid for r in rows if r.op == Op.CREATE and not r.data.get("proposal")}
    scores: dict = {}
    for r in rows:
        proposal = r.data.get("proposal")
        if proposal:
            scores[r.item_uid] = min(scores.get(r.item_uid, 2.0), float(proposal.get("score", 0)))
    total = items.count()
    first: list = []  # uids shown before the rest, in order
    rest = items.order_by(*ORDER)
    if name == "least_confident":  # the draft's proposals (bounded by the draft), then the rest
        first = list(items.filter(uid__in=list(scores)).values_list("uid", flat=True))
        first.sort(key=lambda u: (scores[u], str(u)))
        rest = rest.exclude(uid__in=first)
    elif name == "unlabelled":
        if shape(dataset.kind).one_label_per_image:
            labelled = [u for u, c in labels.items() if c is not None]
            cleared = [u for u, c in labels.items() if c is None]
            bare = Q(category_index__isnull=True) & ~Q(uid__in=labelled) | Q(uid__in=cleared)
        else:
            bare = ~Exists(Annotation.objects.filter(item=OuterRef("pk"))) & ~Q(
                uid__in=list(created)
            )
        rest = items.annotate(later=Case(When(bare, then=0), default=1)).order_by("later", *ORDER)
    chosen: list = first[offset : offset + limit]
    if len(chosen) < limit:
        start = max(0, offset - len(first))
        chosen += list(rest.values_list("uid", flat=True)[start : start + limit - len(chosen)])
    found = _head_items(dataset, chosen)
    # Counted, not built: an image may hold thousands of objects (drafts' rows adjust it).
    counts = dict(
        Annotation.objects.filter(item_id__in=[i.pk for i in found.values()])
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    mine = defaultdict(list)
    for row in rows:
        mine[row.item_uid].append(row)
    out = []
    for uid in chosen:
        item = found[str(uid)]
        category, proposal, objects = item.category_index, None, counts.get(item.pk, 0)
        for row in mine.get(uid, []):
            waiting = row.data.get("proposal")
            if row.op == Op.LABEL:
                if waiting:
                    proposal = {**waiting, "category": row.data.get("category")}
                else:
                    category = row.data.get("category")
            elif row.op == Op.CREATE and not waiting:
                objects += 1
            elif row.op == Op.DELETE and row.base_revision:
                objects -= 1
        if proposal is None and uid in scores:
            proposal = {"score": scores[uid]}
        out.append(
            {
                "uid": str(uid),
                "id": item.pk,
                "thumb": reverse("dataset_thumb", args=[dataset.pk, item.pk]),
                "image": reverse("dataset_image", args=[dataset.pk, item.pk]),
                "category": category,
                "proposal": proposal,
                "objects": max(0, objects),
            }
        )
    following = offset + len(out)
    return {
        "items": out,
        "total": total,
        "offset": offset,
        "next": following if following < total else None,
    }
