"""Turn importer records into stored images, items, annotations and version 1 of a dataset.

Streams: records are read, checked and stored one batch at a time, so memory stays bounded
whatever the archive size. Good images are kept when others are refused; every refused file is
reported with its path and a reason.
"""

import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from trainer.kinds import shape
from webapp.datasets import masks, preparing, splits
from webapp.datasets.models import (
    Annotation,
    Category,
    Dataset,
    Item,
    StoredImage,
    Version,
    at_version,
)
from webapp.datasets.records import CategoryInfo, Rejection, SourceAnnotation, SourceImage

WINDOW = 512  # images handed to the worker processes at once
WINDOW_BYTES = 64 * 1024 * 1024  # ... or fewer, when they are large
MAX_REPORTED_REJECTIONS = 5000


@dataclass
class IngestReport:
    accepted: Counter = field(default_factory=Counter)  # per class (classification) or category
    rejected: list[Rejection] = field(default_factory=list)
    rejected_total: int = 0
    images: int = 0
    stored_bytes: int = 0

    def reject(self, path: str, reason: str) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REPORTED_REJECTIONS:
            self.rejected.append(Rejection(path, reason))

    def as_json(self, fmt: str) -> dict:
        return {
            "format": fmt,
            "accepted": dict(sorted(self.accepted.items())),
            "rejected": [{"file": r.path, "reason": r.reason} for r in self.rejected],
            "rejected_total": self.rejected_total,
        }


class Categories:
    """Category names → stable indices, in the order they are first met."""

    def __init__(self, declared: Iterable[CategoryInfo] = ()):
        self.infos: dict[str, CategoryInfo] = {}
        self.indices: dict[str, int] = {}
        for info in declared:
            if info.name not in self.infos:
                self.indices[info.name] = len(self.infos)
                self.infos[info.name] = info

    def index(self, name: str) -> int:
        if name not in self.indices:
            self.indices[name] = len(self.infos)
            self.infos[name] = CategoryInfo(name)
        return self.indices[name]

    def rows(self, dataset: Dataset, version: int) -> list[Category]:
        return [
            Category(
                dataset=dataset,
                index=i,
                name=info.name,
                keypoints=info.keypoints,
                skeleton=info.skeleton,
                sigmas=info.sigmas,
                valid_from=version,
            )
            for i, info in enumerate(self.infos.values())
        ]


def _area(annotation: SourceAnnotation) -> float:
    if annotation.segmentation:
        return masks.area(annotation.segmentation)  # polygons or an RLE mask
    if annotation.bbox:
        return float(annotation.bbox[2] * annotation.bbox[3])
    return 0.0


def _mask_size_problem(record: SourceImage, facts: dict) -> str | None:
    """Why an RLE mask of the record does not fit the image as stored, or None."""
    size = [facts["height"], facts["width"]]
    for annotation in record.annotations:
        if masks.is_rle(annotation.segmentation) and annotation.segmentation["size"] != size:
            return _(
                "An RLE mask of this image is %(mask)s pixels (height × width), the image "
                "%(image)s."
            ) % {
                "mask": "×".join(map(str, annotation.segmentation["size"])),
                "image": "×".join(map(str, size)),
            }
    return None


class Ingest:
    """One ingest run into one dataset: `run(records)`, then `finish`."""

    def __init__(
        self,
        dataset: Dataset,
        categories: Categories,
        quota_bytes_left: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        processes: int | None = None,
    ):
        self.dataset = dataset
        self.categories = categories
        self.quota_left = quota_bytes_left
        self.on_progress = on_progress or (lambda done: None)
        self.processes = settings.INGEST_PROCESSES if processes is None else processes
        self.report = IngestReport()
        self.fixed_splits: dict[int, str | None] = {}
        self.strata: dict[int, object] = {}
        self.done = 0

    def run(self, records: Iterable[SourceImage | Rejection]) -> None:
        """Read every record; images are prepared in worker processes, rows written here."""
        max_pixels = settings.IMAGE_MAX_PIXELS
        language = translation.get_language() or settings.LANGUAGE_CODE
        with preparing.helper_pool(self.processes, language) as pool:
            in_flight: deque = deque()
            window: list[tuple[SourceImage, object]] = []
            window_bytes = 0
            for record in records:
                self.done += 1
                payload = self._payload(record)
                if payload is None:
                    continue
                window.append((record, payload))
                window_bytes += _size(payload)
                if len(window) >= WINDOW or window_bytes >= WINDOW_BYTES:
                    in_flight.append(self._submit(pool, window, max_pixels))
                    window, window_bytes = [], 0
                    if len(in_flight) > 1:  # rows of one window while the next is prepared
                        self._save(*in_flight.popleft())
            if window:
                in_flight.append(self._submit(pool, window, max_pixels))
            while in_flight:
                self._save(*in_flight.popleft())

    def _payload(self, record: SourceImage | Rejection):
        """The record's bytes or pixels, or None when it is refused (and reported) here."""
        if isinstance(record, Rejection):
            self.report.reject(record.path, record.reason)
            return None
        if shape(self.dataset.kind).one_label_per_image and not record.label:
            self.report.reject(record.path, _("The image has no class."))
            return None
        try:
            payload = record.pixels if record.pixels is not None else record.read()
        except Exception as exc:  # noqa: BLE001 - a read error concerns this one file only
            self.report.reject(record.path, str(exc) or type(exc).__name__)
            return None
        if self.quota_left is not None:
            if _size(payload) > self.quota_left:
                self.report.reject(record.path, _("Not stored: your storage quota is full."))
                self.quota_left = 0
                return None
            self.quota_left -= _size(payload)
        return payload

    @staticmethod
    def _submit(pool, window, max_pixels):
        jobs = [(payload, max_pixels) for _record, payload in window]
        records = [record for record, _payload in window]
        if pool is None:
            return records, preparing.Ready([preparing.prepare(job) for job in jobs])
        return records, pool.map_async(preparing.prepare, jobs, chunksize=32)

    def _save(self, records: list[SourceImage], pending) -> None:
        """Write the rows of one prepared window in one transaction."""
        prepared = []
        for record, result in zip(records, pending.get(), strict=True):
            if not isinstance(result, str):
                result = _mask_size_problem(record, result) or result
            if isinstance(result, str):
                self.report.reject(record.path, result)
            else:
                prepared.append((record, result))
        if not prepared:
            self.on_progress(self.done)
            return
        with transaction.atomic():
            stored = self._stored_images([facts for _record, facts in prepared])
            rows = []
            for record, facts in prepared:
                label = self.categories.index(record.label) if record.label else None
                rows.append(
                    (
                        self.dataset.pk,
                        stored[facts["sha256"]],
                        uuid.uuid4().hex,  # both databases read 32 hex digits as a UUID
                        record.path[:1024],
                        "train",
                        -1,
                        label,
                        1,
                    )
                )
            item_ids = _insert_items(self.dataset.pk, rows)
            annotations = []
            for item_id, (record, _facts) in zip(item_ids, prepared, strict=True):
                annotations.extend(self._annotation(item_id, a) for a in record.annotations)
                first = record.annotations[0].category if record.annotations else record.label
                self.report.accepted[record.label or first or _("(no objects)")] += 1
                self.fixed_splits[item_id] = record.split
                self.strata[item_id] = self.categories.index(first) if first else -1
            Annotation.objects.bulk_create(annotations)
        self.report.images += len(prepared)
        self.on_progress(self.done)

    def _stored_images(self, facts: list[dict]) -> dict[str, int]:
        """sha256 → StoredImage id, creating the rows of files stored for the first time."""
        shas = {f["sha256"] for f in facts}
        known = set(StoredImage.objects.filter(sha256__in=shas).values_list("sha256", flat=True))
        new, seen = [], set(known)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        for f in facts:
            if f["sha256"] in seen:
                continue
            seen.add(f["sha256"])
            self.report.stored_bytes += f["bytes"] + f["thumb_bytes"]
            new.append(tuple(f[name] for name in STORED_IMAGE_FIELDS) + (now,))
        _insert(StoredImage, (*STORED_IMAGE_FIELDS, "created_at"), new, "ON CONFLICT DO NOTHING")
        return dict(StoredImage.objects.filter(sha256__in=shas).values_list("sha256", "id"))

    def _annotation(self, item_id: int, source: SourceAnnotation) -> Annotation:
        return Annotation(
            item_id=item_id,
            category_index=self.categories.index(source.category),
            bbox=source.bbox,
            segmentation=source.segmentation,
            keypoints=source.keypoints,
            area=_area(source),
            iscrowd=source.iscrowd,
        )

    @transaction.atomic
    def finish(self, split_settings: splits.SplitSettings, user=None) -> Version:
        """Assign splits, write the categories and version 1, and mark the dataset ready."""
        assignment = splits.assign(
            [(pk, self.strata[pk], self.fixed_splits[pk]) for pk in self.fixed_splits],
            split_settings,
        )
        write_assignment(assignment)
        Category.objects.bulk_create(self.categories.rows(self.dataset, 1))
        version = Version.objects.create(
            dataset=self.dataset,
            number=1,
            created_by=user,
            summary=_("Imported"),
            counts=count_items(self.dataset, 1),
            split_settings=split_settings.as_dict(),
        )
        self.dataset.head = 1
        self.dataset.bytes_used += self.report.stored_bytes
        self.dataset.status = "ready"
        self.dataset.progress = 1.0
        self.dataset.save(update_fields=["head", "bytes_used", "status", "progress", "updated_at"])
        return version


STORED_IMAGE_FIELDS = (
    "sha256",
    "file",
    "thumb",
    "content_type",
    "width",
    "height",
    "channels",
    "bytes",
    "phash",
)
ITEM_FIELDS = (
    "dataset_id",
    "image_id",
    "uid",
    "original_path",
    "split",
    "fold",
    "category_index",
    "valid_from",
)


def _insert(model, fields: tuple[str, ...], rows: list[tuple], suffix: str = "") -> None:
    """INSERT many rows with one prepared statement: the ORM's per-object work, skipped.

    Ingest writes tens of thousands of rows; `bulk_create` spends most of its time building
    them. The SQL below is the same on SQLite and PostgreSQL (ON CONFLICT needs SQLite 3.24).
    """
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(model._meta.get_field(f.removesuffix("_id")).column)
        for f in fields
    )
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) {suffix}"  # noqa: S608 - names from our models
        cursor.executemany(sql, rows)


def _insert_items(dataset_id: int, rows: list[tuple]) -> list[int]:
    """Insert items; return their ids in the order of `rows`."""
    last = (
        Item.objects.filter(dataset_id=dataset_id).order_by("-id").values_list("id", flat=True)
    ).first() or 0
    _insert(Item, ITEM_FIELDS, rows)
    ids = list(
        Item.objects.filter(dataset_id=dataset_id, id__gt=last)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if len(ids) != len(rows):  # pragma: no cover - would mean a concurrent ingest of one dataset
        raise RuntimeError("item ids do not match the rows just inserted")
    return ids


def _size(payload) -> int:
    return payload.nbytes if isinstance(payload, np.ndarray) else len(payload)


def write_assignment(assignment: dict[int, tuple[str, int]]) -> None:
    """Apply {item_id: (split, fold)} with one UPDATE per (split, fold) group and chunk."""
    groups: dict[tuple[str, int], list[int]] = {}
    for item_id, key in assignment.items():
        groups.setdefault(key, []).append(item_id)
    for (split, fold), ids in groups.items():
        for start in range(0, len(ids), 900):  # SQLite's variable limit
            Item.objects.filter(pk__in=ids[start : start + 900]).update(split=split, fold=fold)


def count_items(dataset: Dataset, version: int) -> dict:
    """{split: {category name: images}} at a version (for detection: images per first object)."""
    names = dict(
        Category.objects.filter(at_version(version), dataset=dataset).values_list("index", "name")
    )
    items = Item.objects.filter(at_version(version), dataset=dataset)
    counts: dict[str, dict[str, int]] = {}
    if shape(dataset.kind).one_label_per_image:
        rows = items.values("split", "category_index").annotate(n=Count("id"))
        for row in rows:
            name = names.get(row["category_index"], "?")
            counts.setdefault(row["split"], {})[name] = row["n"]
    else:
        rows = (
            Annotation.objects.filter(item__in=items)
            .values("item__split", "category_index")
            .annotate(n=Count("item", distinct=True))
        )
        for row in rows:
            name = names.get(row["category_index"], "?")
            counts.setdefault(row["item__split"], {})[name] = row["n"]
        for row in items.values("split").annotate(n=Count("id")):
            counts.setdefault(row["split"], {})["__images__"] = row["n"]
    return counts
