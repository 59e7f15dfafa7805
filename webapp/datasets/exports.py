"""Export a version of a dataset (streamed ZIP) and describe items as JSON."""

from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _

from trainer.kinds import shape
from webapp.datasets import queries
from webapp.datasets.actions import DatasetError
from webapp.datasets.exporters import ExportItem, export_coco, export_imagefolder
from webapp.datasets.models import Dataset, Item
from webapp.datasets.records import CategoryInfo, SourceAnnotation

FORMATS = ("imagefolder", "coco")


def _reader(name: str):
    def read() -> bytes:
        with default_storage.open(name, "rb") as stored:
            return stored.read()

    return read


def _export_items(dataset: Dataset, version: int, names: dict[int, str]) -> Iterator[ExportItem]:
    items = (
        queries.items_at(dataset, version).select_related("image").prefetch_related("annotations")
    )
    for item in items.iterator(chunk_size=500):
        image = item.image
        extension = "png" if image.content_type == "image/png" else "jpg"
        yield ExportItem(
            file_name=f"{item.pk:08d}.{extension}",
            read=_reader(image.file),
            width=image.width,
            height=image.height,
            split=item.split,
            label=names.get(item.category_index) if item.category_index is not None else None,
            annotations=[
                SourceAnnotation(
                    category=names.get(a.category_index, "?"),
                    bbox=a.bbox,
                    segmentation=a.segmentation,
                    keypoints=a.keypoints,
                    iscrowd=a.iscrowd,
                )
                for a in item.annotations.all()
            ],
        )


def export(dataset: Dataset, version: int, fmt: str) -> tuple[Iterator[bytes], str]:
    """Return the ZIP's chunks and a file name for it."""
    if fmt not in FORMATS:
        raise DatasetError(_("Export as imagefolder or coco."), field="format")
    categories = queries.categories_at(dataset, version)
    names = {c.index: c.name for c in categories}
    infos = [CategoryInfo(c.name, c.keypoints, c.skeleton, c.sigmas or []) for c in categories]
    items = _export_items(dataset, version, names)
    base = slugify(dataset.name, allow_unicode=False) or f"dataset-{dataset.pk}"
    file_name = f"{base}-v{version}-{fmt}.zip"
    if fmt == "imagefolder":
        if not shape(dataset.kind).one_label_per_image:
            raise DatasetError(
                _("ImageFolder holds classes only; export this dataset as COCO."), field="format"
            )
        return export_imagefolder(items, infos), file_name
    return export_coco(items, infos, dataset.kind), file_name


def item_json(dataset: Dataset, item: Item, names: dict[int, str]) -> dict:
    """An item for the API: where to fetch it, its split, label and annotations."""
    return {
        "id": item.pk,
        "path": item.original_path,
        "split": item.split,
        "fold": item.fold,
        "label": names.get(item.category_index) if item.category_index is not None else None,
        "width": item.image.width,
        "height": item.image.height,
        "image_url": reverse("dataset_image", args=[dataset.pk, item.pk]),
        "thumb_url": reverse("dataset_thumb", args=[dataset.pk, item.pk]),
        "annotations": [
            {
                "category": names.get(a.category_index, "?"),
                "bbox": a.bbox,
                "segmentation": a.segmentation,
                "keypoints": a.keypoints,
                "iscrowd": a.iscrowd,
            }
            for a in item.annotations.all()
        ],
    }
