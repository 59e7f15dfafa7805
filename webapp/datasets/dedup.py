"""Exact and near duplicates inside a dataset, leaks into hidden test sets, and overlays."""

from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min

from webapp.accounts import permissions
from webapp.datasets import masks
from webapp.datasets.models import Dataset, Item, Visibility

MAX_PAIRS = 60
PAIRS_SHOWN = 12  # look-alike pairs drawn on the dataset page
GROUPS_SHOWN = 12  # files stored more than once, drawn on the dataset page
IDS_SHOWN = 6  # copies drawn of each
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


def near_hashes(left, right=None, bits: int = 4) -> list[tuple[int, int, int]]:
    """Pairs of hash values (l, r, distance) that differ in at most `bits` bits.

    Works on distinct values, so 60,000 copies of one picture cost one comparison. With `right`
    None, pairs of different values within `left` (l < r). Uses the pigeonhole principle on hash
    blocks: only hashes that already agree on one block are compared, not every pair.
    """
    same_side = right is None
    left_values = sorted(set(left))
    right_values = left_values if same_side else sorted(set(right))
    found: dict[tuple[int, int], int] = {}
    for shift, mask in _blocks(bits):
        buckets: dict[int, list[int]] = defaultdict(list)
        for value in right_values:
            buckets[(value >> shift) & mask].append(value)
        for value in left_values:
            bucket = buckets.get((value >> shift) & mask, ())
            if len(bucket) > MAX_BUCKET:
                continue
            for other in bucket:
                if same_side and other <= value:
                    continue
                distance = (value ^ other).bit_count()
                if distance <= bits:
                    found[(value, other)] = distance
    return sorted(((a, b, d) for (a, b), d in found.items()), key=lambda t: (t[2], t[0], t[1]))


def _current(dataset: Dataset):
    return Item.objects.filter(dataset=dataset, valid_to__isnull=True)


def _exact(current) -> tuple[list[dict], int]:
    """Up to GROUPS_SHOWN files stored more than once: their first ids and how many copies."""
    repeated = (
        current.values("image_id")
        .annotate(n=Count("id"), first=Min("id"))
        .filter(n__gt=1)
        .order_by("first")
    )
    groups = [
        {
            "ids": list(
                current.filter(image_id=row["image_id"]).values_list("id", flat=True)[:IDS_SHOWN]
            ),
            "count": row["n"],
        }
        for row in repeated[:GROUPS_SHOWN]
    ]
    return groups, (repeated.count() if len(groups) == GROUPS_SHOWN else len(groups))


def _near(current, bits: int) -> list[tuple[int, int, int]]:
    """Up to MAX_PAIRS (item, item, bits): different files whose pictures (nearly) match."""
    by_hash = {
        int(row["image__phash"], 16): row
        for row in current.values("image__phash").annotate(
            first=Min("id"), files=Count("image_id", distinct=True)
        )
    }
    pairs = []
    for row in by_hash.values():  # one picture stored as different files (0 bits apart)
        if row["files"] > 1 and len(pairs) < MAX_PAIRS:
            first_image = current.filter(pk=row["first"]).values_list("image_id", flat=True)
            other = (
                current.filter(image__phash=row["image__phash"])
                .exclude(image_id__in=first_image)
                .values_list("id", flat=True)
                .first()
            )
            pairs.append((row["first"], other, 0))
    for a, b, d in near_hashes(by_hash, None, bits)[:MAX_PAIRS]:
        pairs.append((by_hash[a]["first"], by_hash[b]["first"], d))
    return sorted(pairs, key=lambda t: (t[2], t[0]))[:MAX_PAIRS]


def duplicates_in(dataset: Dataset) -> dict:
    """Files stored more than once and near-identical pairs, bounded, cached per version.

    {"exact": [{"ids": [first ids], "count": copies}], "exact_total": files stored more than
    once, "near": [(id, id, bits)]}.
    """
    key = f"dups:{dataset.pk}:{dataset.head}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    current = _current(dataset)
    exact, exact_total = _exact(current)
    result = {
        "exact": exact,
        "exact_total": exact_total,
        "near": _near(current, settings.NEAR_DUPLICATE_BITS),
    }
    cache.set(key, result, 600)
    return result


def has_hidden_test(course) -> bool:
    """Whether the class keeps a hidden test set (the one thing a student's notice depends on)."""
    return Dataset.objects.filter(
        course=course, visibility=Visibility.HIDDEN_TEST, head__gt=0
    ).exists()


def _leaks(dataset: Dataset) -> dict:
    """Look-alikes of the class's hidden test sets, by hash, cached per version of each side.

    {"count": images of the dataset that look like a test image, "matches": {phash: [(test
    item id, bits)]}}: a picture repeated 60,000 times is compared once.
    """
    tests = Dataset.objects.filter(
        course=dataset.course, visibility=Visibility.HIDDEN_TEST, head__gt=0
    ).exclude(pk=dataset.pk)
    heads = ",".join(f"{pk}.{head}" for pk, head in tests.order_by("pk").values_list("pk", "head"))
    if not heads:
        return {"count": 0, "matches": {}}
    key = f"leaks:{dataset.pk}:{dataset.head}:{heads}"
    found = cache.get(key)
    if found is None:
        counts = {
            int(h, 16): n
            for h, n in _current(dataset)
            .values("image__phash")
            .annotate(n=Count("id"))
            .values_list("image__phash", "n")
        }
        test_items: dict[int, list[int]] = defaultdict(list)
        rows = Item.objects.filter(dataset__in=tests, valid_to__isnull=True).order_by("id")
        for pk, phash in rows.values_list("id", "image__phash"):
            test_items[int(phash, 16)].append(pk)
        matches: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for a, b, d in near_hashes(counts, test_items, settings.NEAR_DUPLICATE_BITS):
            room = MAX_PAIRS - len(matches[f"{a:016x}"])
            matches[f"{a:016x}"] += [(pk, d) for pk in test_items[b][:room]]
        count = sum(counts[int(h, 16)] for h in matches)
        found = {"count": count, "matches": dict(matches)}
        cache.set(key, found, 600)
    return found


def _may_see_leaks(user, dataset: Dataset) -> bool:
    return dataset.visibility != Visibility.HIDDEN_TEST and permissions.can_view_roster(
        user, dataset.course
    )


def _test_items(pks) -> dict[int, dict]:
    """Where each hidden-test item lives: {id: {"dataset": id, "name": its dataset's name}}."""
    rows = Item.objects.filter(pk__in=list(pks)).values_list("id", "dataset_id", "dataset__name")
    return {pk: {"dataset": dataset_id, "name": name} for pk, dataset_id, name in rows}


def leak_summary(user, dataset: Dataset) -> dict | None:
    """Near-duplicates between this dataset and the class's hidden test sets, for staff only.

    A student gets None whatever their images: any sign that depends on them (a count, or even a
    notice shown or not) lets one delete or upload images one at a time and learn which are in
    the hidden test set. Students see a notice that depends only on the class (has_hidden_test).
    """
    if not dataset.head or not _may_see_leaks(user, dataset):
        return None
    found = _leaks(dataset)
    if not found["count"]:
        return None
    closest = sorted(found["matches"], key=lambda h: found["matches"][h][0][1])[:PAIRS_SHOWN]
    items = _current(dataset).filter(image__phash__in=closest).order_by("id")
    shown = [
        (pk, *found["matches"][phash][0])
        for pk, phash in items.values_list("id", "image__phash")[:PAIRS_SHOWN]
    ]
    where = _test_items(b for _a, b, _d in shown)
    return {
        "count": found["count"],
        "pairs": [
            {"item": a, "test_item": b, "bits": d, **where[b]} for a, b, d in shown if b in where
        ],
        "more": found["count"] - len(shown),  # images not drawn: each one's page names its own
    }


def leak_count(user, dataset: Dataset) -> int:
    """How many images of the dataset look like hidden-test images: staff only (0 otherwise)."""
    if not dataset.head or not _may_see_leaks(user, dataset):
        return 0
    return _leaks(dataset)["count"]


def item_leaks(user, dataset: Dataset, item: Item) -> list[dict]:
    """The hidden-test images one item looks like, for staff (always [] for a student)."""
    if item.valid_to is not None or not _may_see_leaks(user, dataset):
        return []
    matches = _leaks(dataset)["matches"].get(item.image.phash, [])
    where = _test_items(b for b, _d in matches)
    return [{"test_item": b, "bits": d, **where[b]} for b, d in matches if b in where]


def overlay_shapes(annotations, names: dict[int, str], keypoint_names, skeleton) -> list[dict]:
    """SVG-ready shapes for annotations of an item (numbers only; drawn by our template)."""
    shapes = []
    for annotation in annotations:
        color = PALETTE[annotation.category_index % len(PALETTE)]
        label = names.get(annotation.category_index, "?")
        for polygon in masks.outline(annotation.segmentation):  # an RLE: its traced outline
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
