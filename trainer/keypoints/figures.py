"""Generated keypoint data: stick figures on plain backgrounds, with nine named points.

Drawn without Django or torch, so that the trainer's tests and benchmark (and the web app's
sample, if it likes) can make as many as they need, at any size, from a seed. Nothing is
downloaded.

Every figure faces us, so its left hand is on the image's right (seen from the figure's own
body axis, whatever its tilt): that is the only thing that tells left from right here. A
horizontal flip would show the figure from behind with no cue that it did, so these pictures
are for training without flips (the flip's left/right swap is tested on its own).
"""

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

NAMES = [
    "head", "neck", "left_hand", "right_hand", "hip",
    "left_knee", "right_knee", "left_foot", "right_foot",
]  # fmt: skip
SKELETON = [[1, 2], [2, 3], [2, 4], [2, 5], [5, 6], [5, 7], [6, 8], [7, 9]]  # 1-based, as COCO
HEAD_RADIUS = 0.11  # figure units (a figure is about 1 tall)

Point = tuple[float, float]


def _limb(start: Point, length: float, angle: float) -> Point:
    """The end of a limb `length` long at `angle` radians from straight down (y grows down)."""
    return start[0] + length * math.sin(angle), start[1] + length * math.cos(angle)


def pose(rng: random.Random) -> list[Point]:
    """A random pose in figure units, the nine points of NAMES in order; the figure faces us,
    so its left side (positive angles) is on the image's right."""
    head, neck, hip = (0.0, -0.42), (0.0, -0.27), (0.0, 0.1)
    left_hand = _limb(neck, 0.36, math.radians(rng.uniform(15, 165)))
    right_hand = _limb(neck, 0.36, -math.radians(rng.uniform(15, 165)))
    left_thigh, right_thigh = math.radians(rng.uniform(5, 45)), -math.radians(rng.uniform(5, 45))
    left_knee, right_knee = _limb(hip, 0.22, left_thigh), _limb(hip, 0.22, right_thigh)
    # Knees bend up to 40° inwards or 20° outwards.
    left_foot = _limb(left_knee, 0.22, left_thigh + math.radians(rng.uniform(-40, 20)))
    right_foot = _limb(right_knee, 0.22, right_thigh - math.radians(rng.uniform(-40, 20)))
    return [head, neck, left_hand, right_hand, hip, left_knee, right_knee, left_foot, right_foot]


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def draw_figure(rng: random.Random, size: int, *, absent: float = 0.0) -> tuple[Image.Image, dict]:
    """One picture of one stick figure and its COCO annotation (category 0, bbox [x, y, w, h]
    around the drawing, keypoints [x1, y1, v1, ...] in pixels). With `absent` > 0 each point is
    left unlabelled (0, 0, 0) with that chance, though it is still drawn."""
    points = pose(rng)
    turn = math.radians(rng.uniform(-25, 25))
    cos, sin = math.cos(turn), math.sin(turn)
    points = [(x * cos - y * sin, x * sin + y * cos) for x, y in points]
    xs0, ys0 = [x for x, _ in points], [y for _, y in points]
    extent = max(max(xs0) - min(xs0), max(ys0) - min(ys0)) + 2 * HEAD_RADIUS
    scale = (size - 8) / extent * rng.uniform(0.55, 1.0)  # pixels per figure unit
    width = max(1, min(4, round(scale * 0.05)))  # line width, pixels
    margin = HEAD_RADIUS * scale + width  # how far the drawing reaches past the points
    xs, ys = [x * scale for x in xs0], [y * scale for y in ys0]
    dx = rng.uniform(margin + 1 - min(xs), size - margin - 2 - max(xs))
    dy = rng.uniform(margin + 1 - min(ys), size - margin - 2 - max(ys))
    placed = [(x + dx, y + dy) for x, y in zip(xs, ys, strict=True)]

    image = Image.new("RGB", (size, size), _colour(rng, 190, 255))
    draw = ImageDraw.Draw(image)
    ink = _colour(rng, 0, 120)
    for a, b in SKELETON:
        draw.line([placed[a - 1], placed[b - 1]], fill=ink, width=width)
    (hx, hy), r = placed[0], HEAD_RADIUS * scale
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=ink)

    keypoints: list[float] = []
    for x, y in placed:
        shown = rng.random() >= absent
        keypoints += [round(x, 2), round(y, 2), 2] if shown else [0.0, 0.0, 0]
    x0, y0 = max(0.0, min(xs) + dx - margin), max(0.0, min(ys) + dy - margin)
    x1, y1 = min(float(size), max(xs) + dx + margin), min(float(size), max(ys) + dy + margin)
    bbox = [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
    return image, {"category": 0, "bbox": bbox, "keypoints": keypoints}


def write_figures(
    folder: Path,
    count: int,
    *,
    size: int = 64,
    seed: int = 0,
    splits: tuple[float, float] = (0.7, 0.15),
    absent: float = 0.0,
) -> dict:
    """`count` PNGs in `folder` and a spec's data section (classes, items, root, keypoints).

    The first `splits[0]` of the images are "train", the next `splits[1]` "val", the rest
    "test".
    """
    rng = random.Random(seed)  # noqa: S311 - pictures, not secrets
    folder.mkdir(parents=True, exist_ok=True)
    train, val = round(count * splits[0]), round(count * splits[1])
    items = []
    for index in range(count):
        image, annotation = draw_figure(rng, size, absent=absent)
        name = f"figure-{index:05d}.png"
        image.save(folder / name)
        split = "train" if index < train else "val" if index < train + val else "test"
        items.append({"path": name, "id": index, "split": split, "annotations": [annotation]})
    return {
        "classes": ["person"],
        "items": items,
        "root": str(folder),
        "keypoints": {"names": list(NAMES), "skeleton": [list(pair) for pair in SKELETON]},
    }
