"""Generated segmentation data: circles, squares and triangles on plain backgrounds, outlined.

The pictures of the web app's "shapes: segmentation" sample (webapp/datasets/samples.py, 64×64)
drawn here without Django, at any size and count, from a seed: each shape's annotation carries
its polygon as COCO writes it (and its box). Nothing is downloaded. Tests and the benchmark use it.
"""

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

from trainer.detection.shapes import CORNERS, SHAPES, _polygon


def draw_shapes(rng: random.Random, size: int) -> tuple[Image.Image, list[dict]]:
    """One picture of 1-3 shapes that do not touch, and their COCO annotations with polygons."""
    image = Image.new("RGB", (size, size), tuple(rng.randint(200, 255) for _ in range(3)))
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
        annotations.append(
            {
                "category": category,
                "bbox": [round(v, 2) for v in box],
                "segmentation": [[round(v, 2) for v in polygon]],
            }
        )
    return image, annotations


def write_shapes(
    folder: Path, count: int, *, size: int = 64, seed: int = 0, splits=(0.7, 0.15)
) -> dict:
    """`count` PNGs in `folder` and a spec's data section (classes, items, root).

    The first `splits[0]` of the images are "train", the next `splits[1]` "val", the rest
    "test"."""
    rng = random.Random(seed)  # noqa: S311 - pictures, not secrets
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        image, annotations = draw_shapes(rng, size)
        name = f"{i:05d}.png"
        image.save(folder / name)
        if i < splits[0] * count:
            split = "train"
        elif i < (splits[0] + splits[1]) * count:
            split = "val"
        else:
            split = "test"
        items.append({"path": name, "split": split, "id": i, "annotations": annotations})
    return {"classes": list(SHAPES), "items": items, "root": str(folder)}
