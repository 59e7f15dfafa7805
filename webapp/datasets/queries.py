"""Read-side helpers: what a version holds, summaries, and pages of items."""

from django.core.cache import cache
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber

from trainer.kinds import shape
from webapp.datasets.models import Annotation, Category, Dataset, Item, at_version


def categories_at(dataset: Dataset, version: int | None = None) -> list[Category]:
    """Categories of a version; None means the current ones."""
    categories = Category.objects.filter(dataset=dataset)
    if version is None:
        categories = categories.filter(valid_to__isnull=True)
    else:
        categories = categories.filter(at_version(version))
    return list(categories.order_by("index"))


def category_names(dataset: Dataset, version: int | None = None) -> dict[int, str]:
    """{index: name} of a version's categories, in index order (no rows built: 1,000 classes)."""
    categories = Category.objects.filter(dataset=dataset)
    if version is None:
        categories = categories.filter(valid_to__isnull=True)
    else:
        categories = categories.filter(at_version(version))
    return dict(categories.order_by("index").values_list("index", "name"))


def items_at(dataset: Dataset, version: int | None = None) -> QuerySet[Item]:
    """Items of a version; None means the current state (the newest rows, whatever `head` says)."""
    if version is None:
        return Item.objects.filter(dataset=dataset, valid_to__isnull=True, valid_from__gt=0)
    return Item.objects.filter(at_version(version), dataset=dataset)


CACHE_SECONDS = 600  # figures of a version never change; a new version has another key


def image_count(dataset: Dataset) -> int:
    """Images in the current version (counting 60,000 rows is too slow for every page view)."""
    if not dataset.head:
        return 0
    key = f"images:{dataset.pk}:{dataset.head}"
    count = cache.get(key)
    if count is None:
        count = items_at(dataset).count()
        cache.set(key, count, CACHE_SECONDS)
    return count


def class_counts(dataset: Dataset, version: int | None = None) -> list[dict]:
    """[{"name", "count", "index"}] — images per class (or per object class for other kinds)."""
    if not dataset.head:
        return []
    key = f"classes:{dataset.pk}:{dataset.head}:{version}"
    counts = cache.get(key)
    if counts is None:
        counts = _class_counts(dataset, version)
        cache.set(key, counts, CACHE_SECONDS)
    return counts


def _class_counts(dataset: Dataset, version: int | None) -> list[dict]:
    names = category_names(dataset, version)
    items = items_at(dataset, version)
    if shape(dataset.kind).one_label_per_image:
        rows = items.values("category_index").annotate(n=Count("id"))
        counts = {row["category_index"]: row["n"] for row in rows}
    else:
        rows = (
            Annotation.objects.filter(item__in=items)
            .values("category_index")
            .annotate(n=Count("item", distinct=True))
        )
        counts = {row["category_index"]: row["n"] for row in rows}
    return [
        {"index": index, "name": name, "count": counts.get(index, 0)}
        for index, name in names.items()
    ]


def filter_items(items: QuerySet[Item], dataset: Dataset, split: str = "", category=None):
    if split in ("train", "val", "test"):
        items = items.filter(split=split)
    if category not in (None, ""):
        try:
            index = int(category)
        except (TypeError, ValueError):  # a class that cannot exist (?class=abc): no match
            return items.none()
        if shape(dataset.kind).one_label_per_image:
            items = items.filter(category_index=index)
        else:
            items = items.filter(annotations__category_index=index).distinct()
    return items


def first_annotations(item_ids: list[int], per_item: int) -> tuple[dict, dict]:
    """The first `per_item` annotations of each item, and each item's number of annotations:
    what a page of thumbnails draws over each picture (bounded, whatever an image holds)."""
    ranked = (
        Annotation.objects.filter(item_id__in=item_ids)
        .annotate(rank=Window(RowNumber(), partition_by=F("item_id"), order_by=F("id").asc()))
        .filter(rank__lte=per_item)
        .order_by("item_id", "id")
    )
    shapes: dict[int, list[Annotation]] = {}
    for annotation in ranked:
        shapes.setdefault(annotation.item_id, []).append(annotation)
    rows = Annotation.objects.filter(item_id__in=item_ids).values("item_id").annotate(n=Count("id"))
    return shapes, {row["item_id"]: row["n"] for row in rows}
