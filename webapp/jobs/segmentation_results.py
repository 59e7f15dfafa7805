"""Segmentation results: mIoU, Dice and pixel accuracy, IoU per class, and the evaluated images
with their masks (prediction, truth, difference) laid over them, worst IoU first.

Two sources, both written by the trainer (docs/architecture.md, "the seam"), both read through
its typed shapes (trainer/events.py): the finished event's SegmentationEvaluation (kept as
`Job.result`: the figures and the per-class table) and the per-image predictions artifact
`predictions_<split>.json` (SegmentationPrediction rows: IoU, Dice, and the true and predicted
masks of each class as COCO compressed RLE at the model's input size). Pages
of the artifact are read on demand and cached per finished run; a mask layer is decoded with
pycocotools, drawn as a transparent PNG at the mask's resolution and cached too: the browser
stretches it over the image.
"""

import io
import json
import re

import numpy as np
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from PIL import Image
from pycocotools import mask as mask_utils

from trainer import events
from webapp.accounts import permissions
from webapp.datasets import queries
from webapp.jobs import kinds
from webapp.jobs.detection_results import MAX_PREDICTIONS_BYTES, PredictionsUnreadable, colour
from webapp.jobs.models import Job, JobStatus

KIND = "segmentation"
PAGE_SIZE = 12  # images per page: each one comes with three mask layers
PER_CLASS_SHOWN = 50  # foreground rows of the per-class table (the weakest first when more)
LEGEND_SHOWN = 16  # classes named in the legend (colours repeat past 16)
CLASSES_LISTED = 6  # per image: the classes with the lowest IoU
CURVE_POINTS = 101  # IoU thresholds 0, 0.01, ..., 1 of the "images above an IoU" curve
MAX_MASK_SIDE = 2048  # a mask is at the input size; a larger `size` is no row of the contract
MAX_CHANNELS = 4096  # class channels a row may name (data.classes is bounded well below)
DEFAULT_OPACITY = 0.6
CACHE_SECONDS = 3600
ORDERS = ("worst", "best")  # lowest IoU first (the default), highest first
SPLITS = ("test", "val")
LAYERS = {
    "predicted": _("prediction"),
    "truth": _("ground truth"),
    "diff": _("difference"),
}
FIGURES = ("miou", "dice", "pixel_accuracy", "loss", "images", "segm_ap", "segm_ap50")
# The difference layer: a pixel given a class the truth does not have there, and a pixel of a
# class the prediction calls background. Red and yellow stand apart from each other and from
# the class colours' blues and greens for most readers, colour-blind ones included.
WRONG = "#d62728"
MISSED = "#f0e442"
# COCO compressed RLE counts: numbers of at most 7 five-bit chunks, each a character from "0";
# "P".."o" continue a number, "0".."O" end one. pycocotools' C reader trusts the text and reads
# past its end when the last character continues a number, so counts are matched first.
RLE_COUNTS = re.compile(r"(?:[P-o]{0,6}[0-O])+")
# What a row of the per-image predictions file holds (the results page says it by the download).
PREDICTIONS_NOTE = _(
    "One JSON row per image: its IoU, Dice and pixel accuracy, and the true and predicted"
    " mask of each class as COCO RLE at the mask's size."
)


def _figure(value) -> float | None:
    """A number from a trainer's JSON, or None (never a string or a bool in a template)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return None


def _channel_colour(channel: int) -> str:
    """Channel 0 is background; channel i + 1 is class i, drawn in class i's colour."""
    return colour(channel - 1)


# --- the Evaluation dict: figures and the per-class table ----------------------------------


def _per_class(rows: list[events.ClassIoU | None]) -> list[dict]:
    """The background row (marked) and the foreground classes, the weakest (lowest IoU) first
    when there are more than the table shows. A row's channel is its place in the list."""
    table = [
        {
            "name": str(channel if row.name is None else row.name)[:200],
            "iou": _figure(row.iou),
            "dice": _figure(row.dice),
            "pixels": row.pixels,
            "background": bool(row.background),
            "channel": channel,
            "colour": _channel_colour(channel),
        }
        for channel, row in enumerate(rows)
        if row is not None
    ]
    background = [row for row in table if row["background"]][:1]
    foreground = [row for row in table if not row["background"]]
    if len(foreground) > PER_CLASS_SHOWN:  # unknown IoU (a class in neither) after the weakest
        foreground = sorted(
            foreground,
            key=lambda row: (row["iou"] is None, row["iou"] or 0.0, row["channel"]),
        )[:PER_CLASS_SHOWN]
    return background + foreground


def summary(job, result: dict) -> dict:
    """What the segmentation results show of a finished event's test (else val) evaluation."""
    from webapp.jobs import results  # results dispatches to this module: imported when used

    finished = events.read_result(KIND, result)
    split, evaluation = results.evaluated_split(finished)
    rows = evaluation.per_class if evaluation else []
    per_class = _per_class(rows)
    val = finished.val if split == "test" else None
    names = list(queries.category_names(job.dataset, job.dataset_version).values())
    return {
        "split": split,
        "evaluation": {key: _figure(getattr(evaluation, key)) for key in FIGURES}
        if evaluation
        else {},
        "val": {"miou": _figure(val.miou)} if val is not None else {},
        "per_class": per_class,
        "per_class_total": sum(1 for row in rows if row is not None and not row.background),
        "class_bars": [
            {"name": row["name"], "iou": row["iou"], "dice": row["dice"]}
            for row in per_class
            if not row["background"]
        ],
        "names": names,
        "legend": [
            {"name": name, "colour": colour(i)} for i, name in enumerate(names[:LEGEND_SHOWN])
        ],
    }


# --- the per-image predictions artifact -------------------------------------------------------


def predictions_name(job_id: int, split: str) -> str:
    """The storage name of a split's per-image predictions (read through the storage API)."""
    return f"jobs/{job_id}/predictions_{split}.json"


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_rows(job_id: int, split: str) -> list[events.SegmentationPrediction]:
    """The rows of the artifact that name an item (the others cannot be shown), as far as each
    fits the contract (trainer.events.read_predictions)."""
    name = predictions_name(job_id, split)
    try:
        if default_storage.size(name) > MAX_PREDICTIONS_BYTES:
            raise PredictionsUnreadable("too large")
        with default_storage.open(name, "rb") as stored:
            rows = json.loads(stored.read())
    except (OSError, ValueError) as exc:  # gone, unreadable or not JSON
        raise PredictionsUnreadable(str(exc)) from None
    if not isinstance(rows, list):
        raise PredictionsUnreadable("not a list")
    return [row for row in events.read_predictions(KIND, rows) if _is_id(row.id)]


def _ordered(index: list[tuple], order: str) -> list[int]:
    """Row positions by IoU, lowest (or highest) first; images without any class come last."""
    sign = 1 if order == "worst" else -1
    ranked = sorted(index, key=lambda e: (e[1] is None, sign * (e[1] or 0.0), e[0]))
    return [position for position, _iou in ranked]


def _curve(index: list[tuple]) -> dict:
    """The share of images whose IoU is at least each threshold (images with no class left out)."""
    ious = np.sort(np.array([iou for _p, iou in index if iou is not None], dtype=np.float64))
    thresholds = np.linspace(0.0, 1.0, CURVE_POINTS)
    if not ious.size:
        return {"iou": [], "share": []}
    above = ious.size - np.searchsorted(ious, thresholds - 1e-9, side="left")  # (T,)
    return {
        "iou": [round(float(t), 2) for t in thresholds],
        "share": [round(float(n) / ious.size, 4) for n in above],
    }


def _masks_of(row: events.SegmentationPrediction) -> dict:
    """What the overlay view needs of a row (cached when its page is drawn); None where the
    row's size or masks do not fit the contract."""
    return {"size": row.size, "truth": row.truth, "predicted": row.predicted}


def _drawn_row(row: events.SegmentationPrediction, names: list[str]) -> dict:
    """One image as the template draws it: its figures and its weakest classes."""
    width, height = _figure(row.width) or 1.0, _figure(row.height) or 1.0
    classes: list[tuple[float, str, str]] = []  # (IoU, name, colour)
    for key, value in (row.classes_iou or {}).items():
        channel = int(key) if isinstance(key, str) and key.isdigit() else 0
        iou = _figure(value)
        if 1 <= channel <= MAX_CHANNELS and iou is not None:
            name = names[channel - 1] if channel <= len(names) else str(channel)
            classes.append((iou, name, _channel_colour(channel)))
    classes.sort(key=lambda c: c[0])
    return {
        "id": row.id,
        "width": max(width, 1.0),
        "height": max(height, 1.0),
        "iou": _figure(row.iou),
        "dice": _figure(row.dice),
        "pixel_accuracy": _figure(row.pixel_accuracy),
        "classes": [
            {"name": name, "colour": hex_colour, "iou": iou}
            for iou, name, hex_colour in classes[:CLASSES_LISTED]
        ],
        "classes_total": len(classes),
    }


def masks_page(job: Job, split: str, names: list[str], *, page, order: str) -> dict:
    """One bounded page of the evaluated images, ordered by IoU; cached per run."""
    order = order if order in ORDERS else ORDERS[0]
    run = f"{job.run_key}:{split}"
    indexed = cache.get(f"seg-index:{run}")
    rows = None
    if indexed is None:
        rows = _read_rows(job.pk, split)
        index = [(p, _figure(row.iou)) for p, row in enumerate(rows)]
        indexed = {"index": index, "curve": _curve(index)}
        cache.set(f"seg-index:{run}", indexed, CACHE_SECONDS)
    paginator = Paginator(_ordered(indexed["index"], order), PAGE_SIZE)
    current = paginator.get_page(page)  # a number past the end, or no number, is a real page
    key = f"seg-page:{run}:{order}:{current.number}"
    drawn = cache.get(key)
    if drawn is None:
        rows = rows if rows is not None else _read_rows(job.pk, split)
        picked = [rows[p] for p in current.object_list if p < len(rows)]
        drawn = [_drawn_row(row, names) for row in picked]
        # The page's masks for its overlays, cached with it: a layer needs no read of the file.
        masks = {f"seg-row:{run}:{row.id}": _masks_of(row) for row in picked}
        cache.set_many({**masks, key: drawn}, CACHE_SECONDS)
    return {
        "page": current,
        "rows": drawn,
        "images_total": len(indexed["index"]),
        "order": order,
        "curve": indexed["curve"],
        "opacity": DEFAULT_OPACITY,
        "layers": list(LAYERS.items()),
        "wrong": WRONG,
        "missed": MISSED,
    }


def _summary(job: Job) -> dict:
    # results dispatches to this module, so it is imported when used, not at import time.
    from webapp.jobs import results

    return results.result_summary(job)


def context(job: Job, user, request=None) -> dict:
    """The segmentation partial's per-request part: a page of images with their masks."""
    shown = _summary(job)
    query = request.GET if request is not None else {}
    try:
        page = masks_page(
            job,
            shown["split"],
            shown["names"],
            page=query.get("page"),
            order=query.get("order", ""),
        )
    except PredictionsUnreadable:
        page = None
    return {"masks": page}


def images_view(request, job: Job) -> HttpResponse:
    """A page of a segmentation run's evaluated images: whole, or the partial for HTMX."""
    if job.status != JobStatus.SUCCEEDED or not permissions.can_view_job(request.user, job):
        raise Http404
    page = {
        **_summary(job),
        **context(job, request.user, request),
        "job": job,
        "course": job.course,
        "show_images": permissions.can_view_images(request.user, job.dataset),
    }
    partial = request.headers.get("HX-Request") == "true"
    template = "jobs/results/_masks.html" if partial else "jobs/results/masks_page.html"
    return render(request, template, page)


# --- the mask overlays --------------------------------------------------------------------------


class MalformedMask(ValueError):
    """A row's size or RLE is not the contract's: the overlay is not drawn."""


def _size(row: dict) -> tuple[int, int]:
    size = row.get("size")
    if not isinstance(size, list) or len(size) != 2 or not all(_is_id(v) for v in size):
        raise MalformedMask("size")
    height, width = size
    if not (1 <= height <= MAX_MASK_SIDE and 1 <= width <= MAX_MASK_SIDE):
        raise MalformedMask("size")
    return height, width


def class_map(masks, height: int, width: int) -> np.ndarray:
    """The (h, w) channel of every pixel (0: background) from {"<channel>": RLE counts}."""
    if not isinstance(masks, dict) or len(masks) > MAX_CHANNELS:
        raise MalformedMask("masks")
    labels = np.zeros((height, width), dtype=np.uint16)  # (H, W)
    for key, counts in sorted(masks.items(), key=lambda item: str(item[0])):
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= MAX_CHANNELS):
            raise MalformedMask("channel")
        if not isinstance(counts, str) or not RLE_COUNTS.fullmatch(counts):
            raise MalformedMask("counts")
        rle = {"size": [height, width], "counts": counts.encode("ascii")}
        try:
            mask = mask_utils.decode(rle)  # (H, W) uint8, Fortran order
        except (ValueError, TypeError) as exc:  # counts past the mask's pixels or not RLE
            raise MalformedMask("counts") from exc
        # pycocotools leaves pixels unset when the counts stop short: only an RLE that encodes
        # back to itself (as the trainer's pycocotools.mask.encode wrote it) is drawn.
        again = mask_utils.encode(np.asfortranarray(mask))["counts"]
        if mask.max(initial=0) > 1 or again != rle["counts"]:
            raise MalformedMask("counts")
        labels[mask == 1] = int(key)
    return labels


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def layer_pixels(row: dict, layer: str) -> np.ndarray:
    """The (h, w, 4) RGBA layer of a row: class colours (or the difference's), clear elsewhere."""
    height, width = _size(row)
    if layer == "diff":
        truth = class_map(row.get("truth"), height, width)
        predicted = class_map(row.get("predicted"), height, width)
        rgba = np.zeros((height, width, 4), dtype=np.uint8)  # (H, W, 4)
        differ = truth != predicted
        rgba[differ & (predicted != 0)] = (*_rgb(WRONG), 255)
        rgba[differ & (predicted == 0)] = (*_rgb(MISSED), 255)
        return rgba
    labels = class_map(row.get(layer), height, width)
    channels = int(labels.max(initial=0))
    table = np.zeros((channels + 1, 4), dtype=np.uint8)  # channel → RGBA; 0 stays clear
    for channel in range(1, channels + 1):
        table[channel] = (*_rgb(_channel_colour(channel)), 255)
    return table[labels]  # (H, W, 4)


def _png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _overlay_row(job: Job, split: str, item_id: int) -> dict:
    """The masks of one image of a run, from the page cache or else the predictions file."""
    key = f"seg-row:{job.run_key}:{split}:{item_id}"
    row = cache.get(key)
    if row is None:
        try:
            rows = _read_rows(job.pk, split)
        except PredictionsUnreadable:
            raise Http404 from None
        found = next((r for r in rows if r.id == item_id), None)
        if found is None:
            raise Http404
        row = _masks_of(found)
        cache.set(key, row, CACHE_SECONDS)
    return row


@login_required
def mask_overlay(request, job_id: int, split: str, item_id: int):
    """GET /jobs/<id>/masks/<split>/<item>.png?layer=predicted|truth|diff: one mask layer."""
    layer = request.GET.get("layer", "")
    if split not in SPLITS or layer not in LAYERS:
        raise Http404
    jobs = Job.objects.select_related("course", "dataset").defer("result", "dataset__report")
    job = jobs.filter(pk=job_id).first()
    if (
        job is None
        or not permissions.can_view_job(request.user, job)
        or job.status != JobStatus.SUCCEEDED
        or kinds.job_kind(job) != KIND
        or not permissions.can_view_images(request.user, job.dataset)  # masks are labels
    ):
        raise Http404
    key = f"seg-png:{job.run_key}:{split}:{item_id}:{layer}"
    png = cache.get(key)
    if png is None:
        try:
            png = _png(layer_pixels(_overlay_row(job, split, item_id), layer))
        except MalformedMask:
            raise Http404 from None
        cache.set(key, png, CACHE_SECONDS)
    response = HttpResponse(png, content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
