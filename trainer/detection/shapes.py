"""Generated detection data: circles, squares and triangles on plain backgrounds, with boxes.

The same pictures as the web app's "shapes" sample (webapp/datasets/samples.py), drawn here
without Django so that the trainer's tests and benchmark can make as many as they need, at any
size, from a seed. Nothing is downloaded.
"""

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle"]
CORNERS = {"circle": 24, "square": 4, "triangle": 3}


def _polygon(cx: float, cy: float, radius: float, corners: int, turn: float) -> list[float]:
    points = []
    for k in range(corners):
        angle = turn + 2 * math.pi * k / corners
        points += [cx + radius * math.cos(angle), cy + radius * math.sin(angle)]
    return points


def draw_shapes(rng: random.Random, size: int) -> tuple[Image.Image, list[dict]]:
    """One picture of 1-3 shapes that do not touch, and their COCO annotations."""
    light = tuple(rng.randint(200, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), light)
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float]] = []
    annotations = []
    for _ in range(rng.randint(1, 3)):
        for _try in range(30):  # a free spot, or give up on this shape
            radius = rng.uniform(7, 15) * size / 64
            cx = rng.uniform(radius + 1, size - radius - 2)
            cy = rng.uniform(radius + 1, size - radius - 2)
            if all(math.dist((cx, cy), (x, y)) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue
        placed.append((cx, cy, radius))
        category = rng.randrange(len(SHAPES))
        polygon = _polygon(cx, cy, radius, CORNERS[SHAPES[category]], rng.uniform(0, 2 * math.pi))
        draw.polygon(polygon, fill=tuple(rng.randint(0, 150) for _ in range(3)))
        xs, ys = polygon[0::2], polygon[1::2]
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]  # x, y, w, h
        annotations.append({"category": category, "bbox": [round(v, 2) for v in box]})
    return image, annotations


def write_shapes(
    folder: Path, count: int, *, size: int = 64, seed: int = 0, splits=(0.7, 0.15)
) -> dict:
    """`count` PNGs in `folder` and a spec's data section (classes, items, root).

    The first `splits[0]` of the images are "train", the next `splits[1]` "val", the rest
    "test".
    """
    rng = random.Random(seed)  # noqa: S311 - pictures, not secrets
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        image, annotations = draw_shapes(rng, size)
        name = f"{i:05d}.png"
        image.save(folder / name)
        split = (
            "train"
            if i < splits[0] * count
            else "val"
            if i < (splits[0] + splits[1]) * count
            else "test"
        )
        items.append({"path": name, "split": split, "id": i, "annotations": annotations})
    return {"classes": list(SHAPES), "items": items, "root": str(folder)}
