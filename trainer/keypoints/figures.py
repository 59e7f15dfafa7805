"""Generated keypoint data: stick figures on plain backgrounds, with nine named points.

The one generator of the stick figures: the web app's keypoints sample
(`webapp/datasets/samples.py`), the trainer's tests and the keypoints benchmark all draw with
`draw_figure`. Drawn with Pillow alone (no Django, no torch: importing this module loads neither),
at any size, from a seed; nothing is downloaded.

Every figure faces us, so its left hand is on the image's right (seen from the figure's own
body axis, whatever its tilt): that is the only thing that tells left from right here. A
horizontal flip is a valid augmentation for them: the mirror image is again a figure facing us
once its left and right points trade names, which the keypoints augmentation does
(`trainer.keypoints.augment.flip_pairs`). A vertical flip gives an upside-down figure (valid
too after the same swap, though no sample shows one).
"""

import colorsys
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

NAMES = [
    "head", "neck", "left_hand", "right_hand", "hip",
    "left_knee", "right_knee", "left_foot", "right_foot",
]  # fmt: skip
# 1-based pairs, as in COCO: head–neck, neck–hands, neck–hip, hip–knees, knees–feet.
SKELETON = [[1, 2], [2, 3], [2, 4], [2, 5], [5, 6], [5, 7], [6, 8], [7, 9]]
HEAD_RADIUS = 0.12  # figure units (a figure is about 1 tall)

Point = tuple[float, float]


def _limb(start: Point, length: float, angle: float) -> Point:
    """The end of a limb `length` long at `angle` radians from straight down (y grows down)."""
    return start[0] + length * math.sin(angle), start[1] + length * math.cos(angle)


def pose(rng: random.Random) -> list[Point]:
    """A random pose in figure units (height about 1, y down), the nine points of NAMES in
    order. Angles are measured from straight down; a positive one points to the image's right,
    which is the figure's left (it faces us)."""
    head, neck, hip = (0.0, -0.40), (0.0, -0.25), (0.0, 0.12)
    left_hand = _limb(neck, 0.38, math.radians(rng.uniform(15, 160)))
    right_hand = _limb(neck, 0.38, -math.radians(rng.uniform(15, 160)))

    def leg(side: int) -> tuple[Point, Point]:
        """Knee and foot of one leg (side +1: the figure's left): the thigh goes out, the shin
        bends back in at the knee (by 15° to 50°), as in a squat, the foot staying on its own
        side."""
        thigh = rng.uniform(10, 40)
        shin = max(thigh - rng.uniform(15, 50), -5.0)
        knee = _limb(hip, 0.24, side * math.radians(thigh))
        return knee, _limb(knee, 0.24, side * math.radians(shin))

    left_knee, left_foot = leg(+1)
    right_knee, right_foot = leg(-1)
    return [head, neck, left_hand, right_hand, hip, left_knee, right_knee, left_foot, right_foot]


def _light_colour(rng: random.Random) -> tuple[int, int, int]:
    r, g, b = (rng.randint(205, 250) for _ in range(3))
    return r, g, b


def _strong_colour(rng: random.Random) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.35, 0.8))
    return round(r * 255), round(g * 255), round(b * 255)


def draw_figure(rng: random.Random, size: int, *, absent: float = 0.0) -> tuple[Image.Image, dict]:
    """One `size` × `size` picture of one stick figure, turned by up to 25°, and its COCO
    annotation (category 0, bbox [x, y, w, h] around the drawing, keypoints [x1, y1, v1, ...]
    in pixels, every point inside the image and the box). With `absent` > 0 each point is left
    unlabelled (0, 0, 0) with that chance, though it is still drawn."""
    points = pose(rng)
    turn = math.radians(rng.uniform(-25, 25))
    cos, sin = math.cos(turn), math.sin(turn)
    points = [(x * cos - y * sin, x * sin + y * cos) for x, y in points]
    xs0, ys0 = [x for x, _ in points], [y for _, y in points]
    extent = max(max(xs0) - min(xs0), max(ys0) - min(ys0))
    fits = (size - 9) / (extent + 2 * HEAD_RADIUS)  # the largest scale that fits
    scale = fits * rng.uniform(0.7, 1.0)  # pixels per figure unit
    width = max(2, min(4, round(scale * 0.06)))  # line width, pixels
    margin = HEAD_RADIUS * scale + width  # how far the drawing reaches past the points
    xs, ys = [x * scale for x in xs0], [y * scale for y in ys0]
    # Place the figure so that its drawing lies inside the image.
    dx = rng.uniform(margin + 1 - min(xs), size - margin - 2 - max(xs))
    dy = rng.uniform(margin + 1 - min(ys), size - margin - 2 - max(ys))
    placed = [(round(x + dx, 2), round(y + dy, 2)) for x, y in zip(xs, ys, strict=True)]

    image = Image.new("RGB", (size, size), _light_colour(rng))
    draw = ImageDraw.Draw(image)
    ink = _strong_colour(rng)
    for a, b in SKELETON:
        draw.line([placed[a - 1], placed[b - 1]], fill=ink, width=width)
    (hx, hy), r = placed[0], HEAD_RADIUS * scale
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=ink)

    keypoints: list[float] = []
    for x, y in placed:
        shown = absent <= 0 or rng.random() >= absent
        keypoints += [x, y, 2] if shown else [0.0, 0.0, 0]
    x0 = max(0.0, min(x for x, _ in placed) - margin)
    y0 = max(0.0, min(y for _, y in placed) - margin)
    x1 = min(float(size), max(x for x, _ in placed) + margin)
    y1 = min(float(size), max(y for _, y in placed) + margin)
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
