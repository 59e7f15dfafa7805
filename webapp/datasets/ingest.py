"""Turn importer records into stored images, items, annotations and version 1 of a dataset.

Streams: records are read, checked and stored one batch at a time, so memory stays bounded
whatever the archive size. Good images are kept when others are refused; every refused file is
reported with its path and a reason.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from webapp.datasets import images, splits
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

BATCH = 256
MAX_REPORTED_REJECTIONS = 5000


@dataclass
class _Pending:
    record: SourceImage
    checked: images.CheckedImage
    thumb: bytes | None
    phash: str


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
        for info in declared:
            self.infos.setdefault(info.name, info)

    def index(self, name: str) -> int:
        if name not in self.infos:
            self.infos[name] = CategoryInfo(name)
        return list(self.infos).index(name)

    def rows(self, dataset: Dataset, version: int) -> list[Category]:
        return [
            Category(
                dataset=dataset,
                index=i,
                name=info.name,
                keypoints=info.keypoints,
                skeleton=info.skeleton,
                valid_from=version,
            )
            for i, info in enumerate(self.infos.values())
        ]


def storage_names(sha256: str, extension: str) -> tuple[str, str]:
    """Server-chosen names: the content hash, never anything the uploader wrote."""
    stem = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
    return f"images/{stem}.{extension}", f"thumbs/{stem}.jpg"


def _area(annotation: SourceAnnotation) -> float:
    if annotation.segmentation:
        total = 0.0
        for polygon in annotation.segmentation:
            xs, ys = polygon[0::2], polygon[1::2]
            total += abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2
        return total
    if annotation.bbox:
        return float(annotation.bbox[2] * annotation.bbox[3])
    return 0.0


class Ingest:
    """One ingest run into one dataset; call `add` for records, then `finish`."""

    def __init__(
        self,
        dataset: Dataset,
        categories: Categories,
        quota_bytes_left: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.dataset = dataset
        self.categories = categories
        self.quota_left = quota_bytes_left
        self.on_progress = on_progress or (lambda done: None)
        self.report = IngestReport()
        self.pending: list[_Pending] = []
        self.fixed_splits: dict[int, str | None] = {}
        self.strata: dict[int, object] = {}
        self.done = 0
        self.quota_full = False

    def add(self, record: SourceImage | Rejection) -> None:
        self.done += 1
        if isinstance(record, Rejection):
            self.report.reject(record.path, record.reason)
        elif self.quota_full:
            self.report.reject(record.path, _("Not stored: your storage quota is full."))
        else:
            self._check(record)
        if len(self.pending) >= BATCH:
            self.flush()

    def _check(self, record: SourceImage) -> None:
        try:
            if record.pixels is not None:
                checked = images.from_pixels(record.pixels)
            else:
                checked = images.check_image(record.read(), settings.IMAGE_MAX_PIXELS)
        except images.ImageRejected as exc:
            self.report.reject(record.path, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - an importer's read error names this file only
            self.report.reject(record.path, str(exc) or type(exc).__name__)
            return
        if self.dataset.task == "classification" and not record.label:
            self.report.reject(record.path, _("The image has no class."))
            return
        self.pending.append(
            _Pending(
                record,
                checked,
                images.thumbnail(checked.image),
                images.perceptual_hash(checked.image),
            )
        )

    def flush(self) -> None:
        """Store the pending batch: files first, then rows, in one transaction."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        stored = self._store_files(batch)
        with transaction.atomic():
            items = []
            for entry in batch:
                record = entry.record
                label = self.categories.index(record.label) if record.label else None
                items.append(
                    Item(
                        dataset=self.dataset,
                        image_id=stored[entry.checked.sha256],
                        original_path=record.path[:1024],
                        category_index=label,
                        valid_from=1,
                    )
                )
            Item.objects.bulk_create(items)
            annotations = []
            for item, entry in zip(items, batch, strict=True):
                record = entry.record
                for source in record.annotations:
                    annotations.append(self._annotation(item, source))
                first = record.annotations[0].category if record.annotations else record.label
                self.report.accepted[record.label or first or _("(no objects)")] += 1
                self.fixed_splits[item.pk] = record.split
                self.strata[item.pk] = self.categories.index(first) if first else -1
            Annotation.objects.bulk_create(annotations)
        self.report.images += len(batch)
        self.on_progress(self.done)

    def _annotation(self, item: Item, source: SourceAnnotation) -> Annotation:
        return Annotation(
            item=item,
            category_index=self.categories.index(source.category),
            bbox=source.bbox,
            segmentation=source.segmentation,
            keypoints=source.keypoints,
            area=_area(source),
            iscrowd=source.iscrowd,
        )

    def _store_files(self, batch: list[_Pending]) -> dict[str, int]:
        """Write the files not stored yet; return sha256 → StoredImage id for the batch."""
        shas = {entry.checked.sha256 for entry in batch}
        known = dict(StoredImage.objects.filter(sha256__in=shas).values_list("sha256", "id"))
        new_rows, seen = [], set(known)
        for entry in batch:
            checked = entry.checked
            if checked.sha256 in seen:
                continue
            seen.add(checked.sha256)
            size = len(checked.data) + len(entry.thumb or b"")
            if self.quota_left is not None:
                if size > self.quota_left:
                    self.quota_full = True
                    continue
                self.quota_left -= size
            file_name, thumb_name = storage_names(checked.sha256, checked.extension)
            file_name = default_storage.save(file_name, ContentFile(checked.data))
            if entry.thumb is not None:
                thumb_name = default_storage.save(thumb_name, ContentFile(entry.thumb))
            else:
                thumb_name = file_name  # small enough to be its own thumbnail
            self.report.stored_bytes += size
            new_rows.append(
                StoredImage(
                    sha256=checked.sha256,
                    file=file_name,
                    thumb=thumb_name,
                    content_type=checked.content_type,
                    width=checked.width,
                    height=checked.height,
                    channels=checked.channels,
                    bytes=len(checked.data),
                    phash=entry.phash,
                )
            )
        StoredImage.objects.bulk_create(new_rows, ignore_conflicts=True)
        stored = dict(StoredImage.objects.filter(sha256__in=shas).values_list("sha256", "id"))
        for entry in batch:
            if entry.checked.sha256 not in stored:  # over the quota: reported, not kept
                self.report.reject(entry.record.path, _("Not stored: your storage quota is full."))
        batch[:] = [entry for entry in batch if entry.checked.sha256 in stored]
        return stored

    @transaction.atomic
    def finish(self, split_settings: splits.SplitSettings, user=None) -> Version:
        """Assign splits, write the categories and version 1, and mark the dataset ready."""
        self.flush()
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
            summary="Imported",
            counts=count_items(self.dataset, 1),
            split_settings=split_settings.as_dict(),
        )
        self.dataset.head = 1
        self.dataset.bytes_used += self.report.stored_bytes
        self.dataset.status = "ready"
        self.dataset.progress = 1.0
        self.dataset.save(update_fields=["head", "bytes_used", "status", "progress", "updated_at"])
        return version


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
    if dataset.task == "classification":
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
