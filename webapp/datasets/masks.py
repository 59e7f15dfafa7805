"""COCO segmentations as Manabi stores them: polygons, or a run-length encoded mask (RLE).

An annotation's `segmentation` is either a list of polygons [[x1, y1, x2, y2, ...], ...] or COCO's
RLE dict {"size": [height, width], "counts": ...}: `counts` alternates background and foreground
run lengths, column by column (Fortran order), starting with background; it is a list of ints
("uncompressed", what COCO's iscrowd regions use) or pycocotools' compressed string. Manabi keeps
an RLE as it was uploaded and writes it back the same way on export.

An RLE is checked here in plain Python before anything decodes it: pycocotools' decoder trusts
that the runs add up to height × width and writes past its buffer when they do not. Nothing here
imports pycocotools; drawing an outline imports OpenCV, only when an RLE is drawn.
"""

from typing import Any, TypeGuard

import numpy as np
from django.utils.translation import gettext as _

from trainer import limits

MAX_RLE_CHARS = limits.MAX_RLE_COUNTS  # the trainer's spec takes no longer (trainer.spec.RLE)
MAX_OUTLINE_SIDE = 256  # an RLE's outline is traced on a mask shrunk to at most this side
MAX_OUTLINE_POINTS = 512  # points of one traced outline (simplified until it fits)


Segmentation = list[list[float]] | dict[str, Any]  # polygons, or an RLE


class MaskError(ValueError):
    """A segmentation that is not a valid COCO polygon list or RLE; the message says why."""


def is_rle(segmentation: object) -> TypeGuard[dict[str, Any]]:
    """True for an RLE dict (whatever its validity), False for polygons or nothing."""
    return isinstance(segmentation, dict)


def check_rle(rle: object) -> list[int]:
    """The run lengths of a COCO RLE, checked: size [height, width] within the image limits,
    counts (a list of ints or a compressed string) of runs ≥ 0 that add up to height × width."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise MaskError(_('an RLE mask is {"size": [height, width], "counts": ...}'))
    size = rle["size"]
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        and all(1 <= v <= limits.MAX_IMAGE_SIDE for v in size)
    ):
        raise MaskError(
            _("an RLE's size must be [height, width], each 1 to %(limit)s")
            % {"limit": limits.MAX_IMAGE_SIDE}
        )
    height, width = size
    counts = rle["counts"]
    if isinstance(counts, str):
        runs = _decode_string(counts)
    elif isinstance(counts, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts
    ):
        runs = counts
    else:
        raise MaskError(_("an RLE's counts must be a list of run lengths or a compressed string"))
    if any(v < 0 for v in runs):
        raise MaskError(_("an RLE's run lengths cannot be negative"))
    if sum(runs) != height * width:
        raise MaskError(
            _("an RLE's runs must add up to height × width = %(pixels)s, not %(total)s")
            % {"pixels": height * width, "total": sum(runs)}
        )
    return runs


def _decode_string(text: str) -> list[int]:
    """pycocotools' compressed counts (rleFrString): 5 bits a character from "0", a
    continuation bit 0x20, a sign bit 0x10 on the last character, and from the fourth run on
    each value is the difference from the run two before."""
    if len(text) > MAX_RLE_CHARS:
        raise MaskError(
            _("an RLE's compressed counts are longer than %(limit)s characters")
            % {"limit": MAX_RLE_CHARS}
        )
    runs: list[int] = []
    value, shift = 0, 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            raise MaskError(
                _("an RLE's compressed counts hold a character pycocotools never writes")
            )
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << shift  # the sign bit: the value is negative
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
        value, shift = 0, 0
    if shift:
        raise MaskError(_("an RLE's compressed counts end in the middle of a number"))
    return runs


def rle_area(rle: dict) -> int:
    """Foreground pixels of a checked RLE."""
    return sum(check_rle(rle)[1::2])


def rle_bbox(rle: dict) -> list[float]:
    """The box [x, y, width, height] around a checked RLE's foreground, as pycocotools'
    toBbox gives it; [0, 0, 0, 0] for an empty mask."""
    runs = check_rle(rle)
    height = rle["size"][0]
    xs: list[int] = []
    ys: list[int] = []
    start = 0
    for index, run in enumerate(runs):
        if index % 2 and run:
            end = start + run - 1  # the run's last pixel, column-major
            xs += [start // height, end // height]
            if start // height == end // height:
                ys += [start % height, end % height]
            else:  # it wraps into the next column: it covers the column's whole height
                ys += [0, height - 1]
        start += run
    if not xs:
        return [0.0, 0.0, 0.0, 0.0]
    return [
        float(min(xs)),
        float(min(ys)),
        float(max(xs) - min(xs) + 1),
        float(max(ys) - min(ys) + 1),
    ]


def rle_mask(rle: dict) -> np.ndarray:
    """The (height, width) uint8 mask of a checked RLE (1 = foreground)."""
    runs = check_rle(rle)
    height, width = rle["size"]
    values = np.arange(len(runs), dtype=np.uint8) % 2  # (R,) 0, 1, 0, 1, ...
    flat = np.repeat(values, runs)  # (height * width,), column by column
    return flat.reshape(width, height).T  # (height, width)


def area(segmentation: Segmentation | None) -> float:
    """Pixels covered: the polygons' shoelace areas added, or an RLE's foreground."""
    if is_rle(segmentation):
        return float(rle_area(segmentation))
    total = 0.0
    for polygon in segmentation or []:
        xs, ys = polygon[0::2], polygon[1::2]
        n = len(xs)
        total += abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))) / 2
    return total


def outline(segmentation: Segmentation | None) -> list[list[float]]:
    """Polygons to draw for a segmentation: the polygons themselves, or an RLE's outer
    contours traced on a mask shrunk to at most MAX_OUTLINE_SIDE (an invalid RLE draws none)."""
    if not is_rle(segmentation):
        return list(segmentation or [])
    try:
        mask = rle_mask(segmentation)  # (H, W)
    except MaskError:
        return []
    import cv2  # only when an RLE is drawn

    step = max(1, -(-max(mask.shape) // MAX_OUTLINE_SIDE))
    small = np.ascontiguousarray(mask[::step, ::step])  # (H / step, W / step)
    contours, _hierarchy = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours[: limits.MAX_POLYGONS]:
        tolerance = 0.5
        while len(contour) > MAX_OUTLINE_POINTS:
            contour = cv2.approxPolyDP(contour, tolerance, True)
            tolerance *= 2
        points = contour.reshape(-1, 2) * step + step / 2  # (P, 2) pixel centres, full size
        if len(points) >= 3:
            polygons.append([round(float(v), 1) for v in points.reshape(-1)])
    return polygons
