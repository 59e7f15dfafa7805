"""Exact and near duplicates inside a dataset, leaks into hidden test sets, and overlays."""

from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from webapp.accounts import permissions
from webapp.datasets.models import Dataset, Item, Visibility

MAX_PAIRS = 60
PAIRS_SHOWN = 12  # look-alike pairs drawn on the dataset page
MAX_BUCKET = 256  # a huge bucket is one image repeated: exact duplicates report those
PALETTE = [
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#469990",
    "#9a6324",
    "#800000",
    "#808000",
    "#000075",
    "#a9a9a9",
]


def _blocks(bits: int) -> list[tuple[int, int]]:
    """Split 64 bits into bits+1 blocks: hashes within `bits` share at least one block."""
    count = bits + 1
    sizes = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    blocks, start = [], 0
    for size in sizes:
        blocks.append((start, (1 << size) - 1))
        start += size
    return blocks


def near_pairs(left: list[tuple[int, str]], right: list[tuple[int, str]] | None, bits: int):
    """Pairs (left_id, right_id, distance) whose hashes differ in at most `bits` bits.

    With `right` None, pairs within `left`. Uses the pigeonhole principle on hash blocks, so
    it compares only hashes that already agree on one block instead of every pair.
    """
    same_side = right is None
    right = left if right is None else right
    left_values = [(pk, int(h, 16)) for pk, h in left]
    right_values = [(pk, int(h, 16)) for pk, h in right]
    found: dict[tuple[int, int], int] = {}
    for shift, mask in _blocks(bits):
        buckets: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for pk, value in right_values:
            buckets[(value >> shift) & mask].append((pk, value))
        for pk, value in left_values:
            bucket = buckets.get((value >> shift) & mask, ())
            if len(bucket) > MAX_BUCKET:
                continue
            for other, other_value in bucket:
                if same_side and other <= pk:
                    continue
                distance = (value ^ other_value).bit_count()
                if distance <= bits:
                    found[(pk, other)] = distance
        if len(found) > 10 * MAX_PAIRS:
            break
    return sorted(((a, b, d) for (a, b), d in found.items()), key=lambda t: (t[2], t[0]))


def _hashes(dataset: Dataset) -> list[tuple[int, str]]:
    return list(
        Item.objects.filter(dataset=dataset, valid_to__isnull=True).values_list(
            "id", "image__phash"
        )
    )


def duplicates_in(dataset: Dataset) -> dict:
    """{"exact": [[item ids sharing a file]], "near": [(id, id, bits)]}, cached per version."""
    key = f"dups:{dataset.pk}:{dataset.head}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    current = Item.objects.filter(dataset=dataset, valid_to__isnull=True)
    repeated = (
        current.values("image_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("image_id", flat=True)[:MAX_PAIRS]
    )
    groups: dict[int, list[int]] = defaultdict(list)
    for pk, image_id in current.filter(image_id__in=list(repeated)).values_list("id", "image_id"):
        groups[image_id].append(pk)
    exact = list(groups.values())
    exact_ids = {pk for group in exact for pk in group}
    near = [
        pair
        for pair in near_pairs(_hashes(dataset), None, settings.NEAR_DUPLICATE_BITS)
        if pair[2] > 0 or not {pair[0], pair[1]} <= exact_ids
    ][:MAX_PAIRS]
    result = {"exact": exact, "near": near}
    cache.set(key, result, 600)
    return result


def has_hidden_test(course) -> bool:
    """Whether the class keeps a hidden test set (the one thing a student's notice depends on)."""
    return Dataset.objects.filter(
        course=course, visibility=Visibility.HIDDEN_TEST, head__gt=0
    ).exists()


def _leak_pairs(dataset: Dataset) -> list[tuple[int, int, int]]:
    """(item id, test item id, bits) near-duplicates with the class's hidden test sets, cached."""
    tests = Dataset.objects.filter(
        course=dataset.course, visibility=Visibility.HIDDEN_TEST, head__gt=0
    ).exclude(pk=dataset.pk)
    heads = ",".join(f"{pk}.{head}" for pk, head in tests.order_by("pk").values_list("pk", "head"))
    if not heads:
        return []
    key = f"leaks:{dataset.pk}:{dataset.head}:{heads}"
    pairs = cache.get(key)
    if pairs is None:
        test_hashes = list(
            Item.objects.filter(dataset__in=tests, valid_to__isnull=True).values_list(
                "id", "image__phash"
            )
        )
        pairs = near_pairs(_hashes(dataset), test_hashes, settings.NEAR_DUPLICATE_BITS)
        cache.set(key, pairs, 600)
    return pairs


def _may_see_leaks(user, dataset: Dataset) -> bool:
    return dataset.visibility != Visibility.HIDDEN_TEST and permissions.can_view_roster(
        user, dataset.course
    )


def leak_summary(user, dataset: Dataset) -> dict | None:
    """Near-duplicates between this dataset and the class's hidden test sets, for staff only.

    A student gets None whatever their images: any sign that depends on them (a count, or even a
    notice shown or not) lets one delete or upload images one at a time and learn which are in
    the hidden test set. Students see a notice that depends only on the class (has_hidden_test).
    """
    if not dataset.head or not _may_see_leaks(user, dataset):
        return None
    pairs = _leak_pairs(dataset)
    if not pairs:
        return None
    shown = pairs[:PAIRS_SHOWN]
    tests = {
        pk: {"dataset": dataset_id, "name": name}
        for pk, dataset_id, name in Item.objects.filter(
            pk__in=[b for _a, b, _d in shown]
        ).values_list("id", "dataset_id", "dataset__name")
    }
    return {
        "count": len({a for a, _b, _d in pairs}),
        "pairs": [
            {"item": a, "test_item": b, "bits": d, **tests[b]} for a, b, d in shown if b in tests
        ],
        "more": len(pairs) - len(shown),  # pairs not drawn: each item's page names its own
    }


def leak_count(user, dataset: Dataset) -> int:
    """How many images of the dataset look like hidden-test images: staff only (0 otherwise)."""
    if not dataset.head or not _may_see_leaks(user, dataset):
        return 0
    return len({a for a, _b, _d in _leak_pairs(dataset)})


def item_leaks(user, dataset: Dataset, item: Item) -> list[dict]:
    """The hidden-test images one item looks like, for staff (always [] for a student)."""
    if item.valid_to is not None or not _may_see_leaks(user, dataset):
        return []
    matches = [(b, d) for a, b, d in _leak_pairs(dataset) if a == item.pk][:MAX_PAIRS]
    rows = dict(
        (pk, (dataset_id, name))
        for pk, dataset_id, name in Item.objects.filter(
            pk__in=[b for b, _d in matches]
        ).values_list("id", "dataset_id", "dataset__name")
    )
    return [
        {"test_item": b, "bits": d, "dataset": rows[b][0], "name": rows[b][1]}
        for b, d in matches
        if b in rows
    ]


def overlay_shapes(item: Item, names: dict[int, str], keypoint_names, skeleton) -> list[dict]:
    """SVG-ready shapes for an item's annotations (numbers only; drawn by our template)."""
    shapes = []
    for annotation in item.annotations.all():
        color = PALETTE[annotation.category_index % len(PALETTE)]
        label = names.get(annotation.category_index, "?")
        for polygon in annotation.segmentation or []:
            points = " ".join(
                f"{polygon[i]:.1f},{polygon[i + 1]:.1f}" for i in range(0, len(polygon) - 1, 2)
            )
            shapes.append({"kind": "polygon", "points": points, "color": color})
        if annotation.bbox:
            x, y, w, h = annotation.bbox
            shapes.append(
                {"kind": "box", "x": x, "y": y, "w": w, "h": h, "color": color, "label": label}
            )
        if annotation.keypoints:
            points = annotation.keypoints
            coords = [(points[i], points[i + 1], points[i + 2]) for i in range(0, len(points), 3)]
            for a, b in skeleton:
                if 0 < a <= len(coords) and 0 < b <= len(coords):
                    (x1, y1, v1), (x2, y2, v2) = coords[a - 1], coords[b - 1]
                    if v1 and v2:
                        shapes.append(
                            {"kind": "line", "x1": x1, "y1": y1, "x2": x2, "y2": y2, "color": color}
                        )
            for index, (x, y, v) in enumerate(coords):
                if v:
                    name = keypoint_names[index] if index < len(keypoint_names) else str(index)
                    shapes.append(
                        {
                            "kind": "point",
                            "x": x,
                            "y": y,
                            "color": color,
                            "label": name,
                            "hidden": v == 1,
                        }
                    )
    return shapes
