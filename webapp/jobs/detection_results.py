"""Detection results: boxes over the evaluated images, their errors by severity, PR curves, AP.

Two sources, both written by the trainer (see docs/architecture.md, "the seam"), both read
through its typed shapes (trainer/events.py): the finished event's DetectionEvaluation of each
split (kept as `Job.result`: mAP, per-class AP, precision–recall curves) and the per-image
predictions artifact `predictions_<split>.json` (DetectionPrediction rows: predicted and true
boxes, errors, severity). The page shows the test split, else validation; `?split=val|test`
picks one the run has. The artifact may hold thousands of images with a hundred boxes each, so
pages of it are read on demand, ordered by severity, and cached per finished run.
"""

import json

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from trainer import events
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


def colour(index) -> str:
    """A class's colour; grey for no class (a label that is no index)."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return "#566072"
    return PALETTE[index % len(PALETTE)]


def _number(value, default: float = 0.0) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _name(names: list[str], index) -> str:
    if isinstance(index, int) and 0 <= index < len(names):
        return names[index]
    return str(index)


# --- the DetectionEvaluation: figures, per-class table, PR curves ------------------------------


def _per_class(rows: list[events.ClassAP | None]) -> list[dict]:
    """The per-class table; with many classes only the weakest ones (lowest AP@0.5). A row's
    place is its class's index (its colour)."""
    table = [
        {**row.model_dump(), "index": i, "colour": colour(i)}
        for i, row in enumerate(rows)
        if row is not None
    ]
    if len(table) > PER_CLASS_SHOWN:
        table = sorted(table, key=lambda row: (_number(row.get("ap50")), row["index"]))
        table = table[:PER_CLASS_SHOWN]
    return table


def _curves(curves: dict[str, events.PRCurve], per_class: list[dict]) -> dict:
    """The PR curves drawn: the classes of the table, points where precision is defined."""
    shown = [row.get("name") for row in per_class][:CURVES_SHOWN]
    drawn = {}
    for name in shown:
        curve = curves.get(name) if isinstance(name, str) else None
        if curve is None:
            continue
        points = [
            (r, p)
            for r, p in zip(curve.recall or [], curve.precision or [], strict=False)
            if _number(p, -1) >= 0 and _number(r, -1) >= 0  # COCO writes -1 where undefined
        ][:CURVE_POINTS]
        drawn[str(name)] = {
            "recall": [round(r, 4) for r, _p in points],
            "precision": [round(p, 4) for _r, p in points],
        }
    return drawn


def evaluation_summary(finished: events.FinishedEvent, split: str | None = None) -> dict:
    """What the detection results show of a run's evaluation of `split` (when the run has it;
    else test, else validation), from trainer.events.read_result."""
    split, evaluation = results.evaluated_split(finished, split)
    per_class_all = evaluation.per_class if evaluation else []
    per_class = _per_class(per_class_all)
    other = finished.val if split == "test" else finished.test
    figures = ("map50", "map", "loss", "images", "objects")
    return {
        "split": split,
        "evaluation": {key: getattr(evaluation, key) for key in figures} if evaluation else {},
        # The other split's figures, side by side: validation's when test is shown, and back.
        "val": {"map50": other.map50, "map": other.map} if split == "test" and other else {},
        "test": {"map50": other.map50, "map": other.map} if split == "val" and other else {},
        "per_class": per_class,
        "per_class_total": len(per_class_all),
        "pr_curves": _curves(evaluation.pr_curves if evaluation else {}, per_class),
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
    return events.read_predictions("detection", rows)  # as far as each row fits


def _errors_of(row: events.DetectionPrediction) -> list[events.BoxError]:
    return [e for e in row.errors or [] if e is not None and e.type in ERROR_TYPES]


def _index(rows: list[events.DetectionPrediction]) -> list[tuple]:
    """(position, severity, error types) of every row: what ordering and filtering need."""
    return [
        (position, _number(row.severity), frozenset(e.type for e in _errors_of(row)))
        for position, row in enumerate(rows)
    ]


def _ordered(index: list[tuple], order: str, error: str) -> list[int]:
    """Row positions, most (or least) severe first, those with an error of the type only."""
    picked = [entry for entry in index if not error or error in entry[2]]
    sign = -1 if order == "severe" else 1
    return [position for position, *_rest in sorted(picked, key=lambda e: (sign * e[1], e[0]))]


def _box(values: list[float] | None) -> list[float] | None:
    return None if values is None else [round(v, 2) for v in values]


def _drawn_row(row: events.DetectionPrediction, names: list[str]) -> dict:
    """One image as the template draws it: boxes with class names, colours and scores."""
    width, height = max(_number(row.width, 1), 1), max(_number(row.height, 1), 1)
    scale = DISPLAY_WIDTH / width  # user units → CSS pixels at the drawn size
    predicted = []
    boxes, scores, labels = row.boxes or [], row.scores or [], row.labels or []
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
    predicted.sort(key=lambda b: b["score"])  # SVG paints later boxes on top: the best last
    truth = row.truth or events.TrueBoxes()
    true_boxes = truth.boxes or []
    truths = []
    for box, label in list(zip(true_boxes, truth.labels or [], strict=False))[:TRUTHS_DRAWN]:
        if (xywh := _box(box)) is not None:
            truths.append({"box": xywh, "name": _name(names, label), "colour": colour(label)})
    errors = _errors_of(row)
    counts = {kind: 0 for kind in ERROR_TYPES}
    for e in errors:
        counts[e.type] += 1
    return {
        "id": row.id,
        "width": width,
        "height": height,
        "font": round(12 / scale, 2),  # 12 CSS pixels whatever the image's size
        "predicted": predicted,
        "predicted_total": len(boxes),
        "truths": truths,
        "truth_total": len(true_boxes),
        "severity": _number(row.severity),
        "counts": [counts[kind] for kind in ERROR_TYPES],
        "errors": [
            {
                "type": ERROR_TYPES[e.type],
                "key": e.type,
                "name": _name(names, e.label),
                "score": e.score,
                "iou": e.iou,
            }
            for e in errors[:ERRORS_LISTED]
        ],
        "errors_total": len(errors),
    }


def detections_page(job, split: str, names: list[str], *, page, order: str, error: str) -> dict:
    """One bounded page of the evaluated images, ordered by severity; cached per run."""
    order = order if order in ORDERS else ORDERS[0]
    error = error if error in ERROR_TYPES else ""
    run = f"{job.run_key}:{split}"
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
        "split": split,
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
    """mAP, per-class AP and PR curves of the test (else validation) split, and of every split
    the run has (`by_split`, for the split toggle); class names."""
    names = results.class_names(job)
    legend = [{"name": name, "colour": colour(i)} for i, name in enumerate(names[:LEGEND_SHOWN])]
    finished = events.read_result("detection", result)
    splits = results.evaluated_splits(finished)
    return {
        **evaluation_summary(finished),
        "by_split": {split: evaluation_summary(finished, split) for split in splits},
        "split_keys": splits,
        "names": names,
        "legend": legend,
    }


SPLIT_LABELS = {"test": _("Test images"), "val": _("Validation images")}


def context(job, user, request=None) -> dict:
    """The detection partial's per-request part: the split asked for (?split=val|test, when the
    run has it) and a page of its images with their boxes."""
    cached = results.result_summary(job)
    query = request.GET if request is not None else {}
    shown = cached.get("by_split", {}).get(query.get("split", "")) or {}
    split = shown.get("split", cached["split"])
    try:
        page = detections_page(
            job,
            split,
            cached["names"],
            page=query.get("page"),
            order=query.get("order", ""),
            error=query.get("error", ""),
        )
    except PredictionsUnreadable:
        page = None
    return {
        **shown,
        "detections": page,
        "split_choices": [
            {"key": key, "label": SPLIT_LABELS[key]} for key in cached.get("split_keys", [])
        ],
    }


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
