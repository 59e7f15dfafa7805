"""Detection results: boxes over the evaluated images, their errors by severity, PR curves, AP.

Two sources, both written by the trainer (see docs/architecture.md, "the seam"): the finished
event's Evaluation dict (kept as `Job.result`: mAP, per-class AP, precision–recall curves) and the
per-image predictions artifact `predictions_<split>.json` (one row per image: predicted and true
boxes, errors, severity). The artifact may hold thousands of images with a hundred boxes each, so
pages of it are read on demand, ordered by severity, and cached per finished run.
"""

import json

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from webapp.accounts import permissions
from webapp.jobs import results

PAGE_SIZE = 12  # images per page of the errors table: each one is drawn with its boxes
BOXES_DRAWN = 100  # predicted boxes drawn per image (the trainer keeps at most 300)
TRUTHS_DRAWN = 100  # true boxes drawn per image (MAX_OBJECTS_PER_IMAGE may be larger)
ERRORS_LISTED = 20  # errors written out per image; the counts always cover all of them
PER_CLASS_SHOWN = 50  # rows of the per-class table (the weakest classes first when more)
LEGEND_SHOWN = 16  # classes named in the legend (colours repeat past 16)
CURVES_SHOWN = 32  # PR curves drawn (charts.js tells 32 series apart)
CURVE_POINTS = 101  # COCO's recall points
MAX_PREDICTIONS_BYTES = 256 * 1024 * 1024  # a larger file is offered for download, not drawn
DEFAULT_THRESHOLD = 0.3  # the score the trainer judged errors at: the slider starts there
DISPLAY_WIDTH = 240  # CSS pixels an image is drawn at; labels are sized for it
CACHE_SECONDS = 3600
# Okabe–Ito, then Tableau: the colours of static/js/charts.js, so a class has one colour everywhere.
PALETTE = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#8c564b",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip
ERROR_TYPES = {
    "false_positive": _("false positive"),
    "missed": _("missed"),
    "wrong_class": _("wrong class"),
    "poor_localisation": _("poor localisation"),
}
ORDERS = ("severe", "mild")  # most severe first (the default), least severe first
# What a row of the per-image predictions file holds (the results page says it by the download).
PREDICTIONS_NOTE = _(
    "One JSON row per image: the predicted boxes [x, y, width, height] in the image's "
    "pixels with their scores and classes, the true boxes, and the errors."
)


class PredictionsUnreadable(ValueError):
    """The predictions artifact is missing, too large to draw or not the contract's shape."""


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)] if index >= 0 else "#566072"


def _number(value, default: float = 0.0) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _name(names: list[str], index) -> str:
    if isinstance(index, int) and 0 <= index < len(names):
        return names[index]
    return str(index)


# --- the Evaluation dict: figures, per-class table, PR curves -------------------------------


def _per_class(rows: list[dict]) -> list[dict]:
    """The per-class table; with many classes only the weakest ones (lowest AP@0.5)."""
    rows = [
        {**row, "index": i, "colour": colour(i)}
        for i, row in enumerate(rows)
        if isinstance(row, dict)
    ]
    if len(rows) > PER_CLASS_SHOWN:
        rows = sorted(rows, key=lambda row: (_number(row.get("ap50")), row["index"]))
        rows = rows[:PER_CLASS_SHOWN]
    return rows


def _curves(curves: dict, per_class: list[dict]) -> dict:
    """The PR curves drawn: the classes of the table, points where precision is defined."""
    shown = [row.get("name") for row in per_class][:CURVES_SHOWN]
    drawn = {}
    for name in shown:
        curve = curves.get(name) if isinstance(curves, dict) else None
        if not isinstance(curve, dict):
            continue
        points = [
            (r, p)
            for r, p in zip(curve.get("recall") or [], curve.get("precision") or [], strict=False)
            if _number(p, -1) >= 0 and _number(r, -1) >= 0  # COCO writes -1 where undefined
        ][:CURVE_POINTS]
        drawn[str(name)] = {
            "recall": [round(r, 4) for r, _p in points],
            "precision": [round(p, 4) for _r, p in points],
        }
    return drawn


def evaluation_summary(result: dict) -> dict:
    """What the detection results show of a finished event's test (else val) evaluation."""
    split = "test" if result.get("test") else "val"
    evaluation = result.get(split) or {}
    if not isinstance(evaluation, dict):
        evaluation = {}
    per_class_all = evaluation.get("per_class") or []
    per_class = _per_class(per_class_all)
    val = result.get("val") if split == "test" else None
    return {
        "split": split,
        "evaluation": {
            key: evaluation.get(key) for key in ("map50", "map", "loss", "images", "objects")
        }
        if evaluation
        else {},
        "val": {key: val.get(key) for key in ("map50", "map")} if isinstance(val, dict) else {},
        "per_class": per_class,
        "per_class_total": len(per_class_all),
        "pr_curves": _curves(evaluation.get("pr_curves") or {}, per_class),
    }


# --- the per-image predictions artifact ------------------------------------------------------


def predictions_name(job_id: int, split: str) -> str:
    """The storage name of a split's per-image predictions (read through the storage API, so
    the page works whatever holds media)."""
    return f"jobs/{job_id}/predictions_{split}.json"


def _read_rows(job_id: int, split: str) -> list[dict]:
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
    return [row for row in rows if isinstance(row, dict)]


def _list(value) -> list:
    """A row's list, or none when the file holds something else there (never a 500)."""
    return value if isinstance(value, list) else []


def _errors_of(row: dict) -> list[dict]:
    return [
        e for e in _list(row.get("errors")) if isinstance(e, dict) and e.get("type") in ERROR_TYPES
    ]


def _index(rows: list[dict]) -> list[tuple]:
    """(position, severity, error types) of every row: what ordering and filtering need."""
    return [
        (position, _number(row.get("severity")), frozenset(e["type"] for e in _errors_of(row)))
        for position, row in enumerate(rows)
    ]


def _ordered(index: list[tuple], order: str, error: str) -> list[int]:
    """Row positions, most (or least) severe first, those with an error of the type only."""
    picked = [entry for entry in index if not error or error in entry[2]]
    sign = -1 if order == "severe" else 1
    return [position for position, *_rest in sorted(picked, key=lambda e: (sign * e[1], e[0]))]


def _box(values) -> list[float] | None:
    if not isinstance(values, list | tuple) or len(values) != 4:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    return [round(float(v), 2) for v in values]


def _drawn_row(row: dict, names: list[str]) -> dict:
    """One image as the template draws it: boxes with class names, colours and scores."""
    width, height = max(_number(row.get("width"), 1), 1), max(_number(row.get("height"), 1), 1)
    scale = DISPLAY_WIDTH / width  # user units → CSS pixels at the drawn size
    predicted = []
    boxes, scores, labels = (
        _list(row.get("boxes")),
        _list(row.get("scores")),
        _list(row.get("labels")),
    )
    for box, score, label in list(zip(boxes, scores, labels, strict=False))[:BOXES_DRAWN]:
        if (xywh := _box(box)) is None:
            continue
        predicted.append(
            {
                "box": xywh,
                "score": _number(score),
                "name": _name(names, label),
                "colour": colour(label),
            }
        )
    truth = row.get("truth") if isinstance(row.get("truth"), dict) else {}
    truths = []
    for box, label in list(
        zip(_list(truth.get("boxes")), _list(truth.get("labels")), strict=False)
    )[:TRUTHS_DRAWN]:
        if (xywh := _box(box)) is not None:
            truths.append({"box": xywh, "name": _name(names, label), "colour": colour(label)})
    errors = _errors_of(row)
    counts = {kind: 0 for kind in ERROR_TYPES}
    for e in errors:
        counts[e["type"]] += 1
    return {
        "id": row.get("id"),
        "width": width,
        "height": height,
        "font": round(12 / scale, 2),  # 12 CSS pixels whatever the image's size
        "predicted": predicted,
        "predicted_total": len(boxes),
        "truths": truths,
        "truth_total": len(truth.get("boxes") or []),
        "severity": _number(row.get("severity")),
        "counts": [counts[kind] for kind in ERROR_TYPES],
        "errors": [
            {
                "type": ERROR_TYPES[e["type"]],
                "key": e["type"],
                "name": _name(names, e.get("label")),
                "score": e.get("score"),
                "iou": e.get("iou"),
            }
            for e in errors[:ERRORS_LISTED]
        ],
        "errors_total": len(errors),
    }


def detections_page(job, split: str, names: list[str], *, page, order: str, error: str) -> dict:
    """One bounded page of the evaluated images, ordered by severity; cached per run."""
    order = order if order in ORDERS else ORDERS[0]
    error = error if error in ERROR_TYPES else ""
    finished = job.finished_at.timestamp() if job.finished_at else 0
    run = f"{job.pk}:{job.attempts}:{finished:.6f}:{split}"
    index = cache.get(f"det-index:{run}")
    rows = None
    if index is None:
        rows = _read_rows(job.pk, split)
        index = _index(rows)
        cache.set(f"det-index:{run}", index, CACHE_SECONDS)
    paginator = Paginator(_ordered(index, order, error), PAGE_SIZE)
    current = paginator.get_page(page)  # a number past the end, or no number, is a real page
    key = f"det-page:{run}:{order}:{error}:{current.number}"
    drawn = cache.get(key)
    if drawn is None:
        rows = rows if rows is not None else _read_rows(job.pk, split)
        drawn = [_drawn_row(rows[p], names) for p in current.object_list if p < len(rows)]
        cache.set(key, drawn, CACHE_SECONDS)
    shown = sum(1 for r in drawn for b in r["predicted"] if b["score"] >= DEFAULT_THRESHOLD)
    return {
        "page": current,
        "rows": drawn,
        "images_total": len(index),
        "order": order,
        "error": error,
        "error_types": list(ERROR_TYPES.items()),
        "threshold": DEFAULT_THRESHOLD,
        "boxes_on_page": sum(len(r["predicted"]) for r in drawn),
        "boxes_shown": shown,
    }


# --- the kind's results (webapp/jobs/results.py dispatches here) ----------------------------


def summary(job, result: dict) -> dict:
    """mAP, per-class AP and PR curves of the test (else validation) split; class names."""
    names = results.class_names(job)
    legend = [{"name": name, "colour": colour(i)} for i, name in enumerate(names[:LEGEND_SHOWN])]
    return {**evaluation_summary(result), "names": names, "legend": legend}


def context(job, user, request=None) -> dict:
    """The detection partial's per-request part: a page of images with their boxes."""
    cached = results.result_summary(job)
    query = request.GET if request is not None else {}
    try:
        page = detections_page(
            job,
            cached["split"],
            cached["names"],
            page=query.get("page"),
            order=query.get("order", ""),
            error=query.get("error", ""),
        )
    except PredictionsUnreadable:
        page = None
    return {"detections": page}


def images_view(request, job):
    """A page of the evaluated images: boxes and errors, by severity (a partial for HTMX)."""
    context_ = {
        **results.result_summary(job),
        **context(job, request.user, request),
        "job": job,
        "course": job.course,
        "show_images": permissions.can_view_images(request.user, job.dataset),
    }
    partial = request.headers.get("HX-Request") == "true"
    template = "jobs/results/_detections.html" if partial else "jobs/results/detections_page.html"
    return render(request, template, context_)
