"""Keypoints results: skeletons over the evaluated images, worst first; PCK, OKS AP, per keypoint.

Three sources, all written by the trainer (docs/architecture.md, "the seam"): the finished
event's KeypointsEvaluation (kept as `Job.result`: PCK@0.1, OKS AP, the per-keypoint table),
the model card's "keypoints" part (the run's keypoint names and skeleton) and the per-image
predictions artifact `predictions_<split>.json` (KeypointsPrediction rows, one figure per
image: true and predicted points, each point's error as a share of the figure's box size, the
image's OKS). The evaluation and the rows are read through the trainer's typed shapes
(trainer/events.py).
The artifact may hold thousands of images, so pages of it are read on demand, ordered worst
first, and cached per finished run; every field is checked, so a malformed file draws what it
can and never fails the page.
"""

import json
import math

from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from trainer import events
from webapp.accounts import permissions
from webapp.datasets import queries
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus

KIND = "keypoints"
PAGE_SIZE = 12  # images per page: each one is drawn with both skeletons
KEYPOINTS_DRAWN = 133  # trainer.limits.MAX_KEYPOINTS (COCO-WholeBody's count)
EDGES_DRAWN = 256  # skeleton lines kept
WORST_LISTED = 3  # keypoints named per image, the farthest from the truth first
PER_KEYPOINT_SHOWN = 60  # rows of the per-keypoint table (the weakest first when more)
NAME_CHARS = 60
MAX_PREDICTIONS_BYTES = 128 * 1024 * 1024  # a larger file is offered for download, not drawn
MAX_CARD_BYTES = 1024 * 1024
MAX_PIXELS_SIDE = 100_000  # a width or height past this is not an image's
DISPLAY_WIDTH = 240  # CSS pixels an image is drawn at; points and labels are sized for it
CACHE_SECONDS = 3600
# An error (distance to the truth over the box size) is good up to 0.05, fair up to PCK's 0.1.
GOOD, FAIR = 0.05, 0.1
LEVELS = (
    ("good", _("≤ 0.05 of the box size")),
    ("fair", _("0.05–0.1 of the box size")),
    ("poor", _("> 0.1 of the box size (a miss for PCK@0.1)")),
    ("none", _("no truth to compare with")),
)
ORDERS = {"worst": _("worst first"), "best": _("best first")}
PROBLEMS = ("missing", "too_large", "malformed")
# What a row of the per-image predictions file holds (the results page says it by the download).
PREDICTIONS_NOTE = _(
    "One JSON row per image: PCK, OKS and mean error, the true keypoints [x, y, "
    "visibility] and the predicted ones [x, y, score] in the image's pixels, and each "
    "keypoint's error."
)


class PredictionsUnreadable(ValueError):
    """The predictions artifact is missing, too large to draw or not the contract's shape;
    `problem` is one of PROBLEMS (the page says which)."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


def level(error: float | None) -> str:
    """The colour class of a point's error: good, fair, poor (or none without a truth)."""
    if error is None:
        return "none"
    return "good" if error <= GOOD else "fair" if error <= FAIR else "poor"


def _number(value) -> float | None:
    """A finite number from JSON, else None (JSON from Python may hold NaN and Infinity)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _share(value) -> float | None:
    """A figure that is a share (PCK, OKS, AP): a number in [0, 1], else None."""
    number = _number(value)
    return number if number is not None and 0 <= number <= 1 else None


# --- the run's keypoint names and skeleton ---------------------------------------------------


def _names(values) -> list[str]:
    if not isinstance(values, list) or not values:
        return []
    return [str(name)[:NAME_CHARS] for name in values[:KEYPOINTS_DRAWN]]


def edges(pairs, count: int, base: int | None = None) -> list[list[int]]:
    """Skeleton pairs as 0-based index pairs within `count` points. COCO's (and the dataset's,
    and the model card's) are 1-based; a pair naming point 0 can only be 0-based, so a list
    with a 0 is read as 0-based unless `base` says."""
    if not isinstance(pairs, list):
        return []
    whole = [
        (a, b)
        for pair in pairs[: EDGES_DRAWN * 4]
        if isinstance(pair, list | tuple) and len(pair) == 2
        for a, b in [pair]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (a, b))
    ]
    if base not in (0, 1):
        base = 0 if any(0 in pair for pair in whole) else 1
    kept: list[list[int]] = []
    for a, b in whole:
        a, b = a - base, b - base
        if 0 <= a < count and 0 <= b < count and a != b and [a, b] not in kept:
            kept.append([a, b])
    return kept[:EDGES_DRAWN]


def read_card(job_id: int) -> dict:
    """The exported model card (a few kB) through the storage API, {} when there is none or it
    cannot be read."""
    name = f"jobs/{job_id}/model_card.json"
    try:
        if default_storage.size(name) > MAX_CARD_BYTES:
            return {}
        with default_storage.open(name, "rb") as stored:
            card = json.loads(stored.read())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def card_schema(card: dict) -> tuple[list[str], list[list[int]]]:
    """Names and 0-based skeleton from the card's "keypoints" part, as trainer.loops.keypoints
    writes it: {"names", "skeleton" (1-based, as COCO), "edges" (the same, 0-based), ...}; the
    0-based edges when they are there, else the skeleton. A bare list of names with a top-level
    "skeleton" is read too."""
    part = card.get("keypoints")
    if isinstance(part, dict):
        names = _names(part.get("names"))
        if isinstance(part.get("edges"), list):
            return names, edges(part["edges"], len(names), base=0)
        return names, edges(part.get("skeleton"), len(names))
    names = _names(part)
    return names, edges(card.get("skeleton"), len(names))


def _dataset_schema(job: Job) -> tuple[list[str], list[list[int]]]:
    """The version's first category with keypoints (what the worker fills the spec from)."""
    for category in queries.categories_at(job.dataset, job.dataset_version):
        names = _names(category.keypoints)
        if names:
            return names, edges(category.skeleton, len(names), base=1)
    return [], []


def schema(job: Job, per_keypoint: list[events.KeypointError | None]) -> dict:
    """The run's keypoint names and skeleton: the model card's, else the dataset version's,
    else the evaluation's names without a skeleton."""
    names, skeleton = card_schema(read_card(job.pk))
    source = "card"
    if not names:
        names, skeleton = _dataset_schema(job)
        source = "dataset"
    elif not skeleton:
        known, known_skeleton = _dataset_schema(job)
        skeleton = known_skeleton if known == names else []
    if not names:
        names = [str(row.name) for row in per_keypoint if row is not None]
        skeleton, source = [], "evaluation"
    return {
        "names": names,
        "skeleton": skeleton,
        "source": source,
        "lines": [{"a": names[a], "b": names[b]} for a, b in skeleton],
    }


# --- the Evaluation dict ---------------------------------------------------------------------


def _per_keypoint(rows: list[events.KeypointError | None]) -> list[dict]:
    """The per-keypoint table; with many keypoints only the weakest ones (lowest PCK). A row's
    place is its keypoint's index."""
    kept = []
    for index, row in enumerate(rows):
        if row is None:
            continue
        error = _number(row.error)
        kept.append(
            {
                "index": index,
                "name": str(index if row.name is None else row.name)[:NAME_CHARS],
                "pck": _share(row.pck),
                "error": error,
                "level": level(error),
                "labelled": row.labelled,
            }
        )
    if len(kept) > PER_KEYPOINT_SHOWN:
        kept = sorted(kept, key=lambda row: (row["pck"] or 0.0, row["index"]))
        kept = kept[:PER_KEYPOINT_SHOWN]
    return kept


def summary(job: Job, result: dict) -> dict:
    """What the keypoints results show of a finished event's test (else val) evaluation, and
    the run's keypoint names and skeleton; bounded (cached per run by the caller)."""
    from webapp.jobs import results  # results dispatches to this module: imported when used

    finished = events.read_result(KIND, result)
    split, evaluation = results.evaluated_split(finished)
    val = finished.val if split == "test" else None
    rows = evaluation.per_keypoint if evaluation else []
    return {
        "split": split,
        "evaluation": {
            **{key: _share(getattr(evaluation, key)) for key in ("pck", "oks_ap", "oks_ap50")},
            "loss": _number(evaluation.loss),
            "images": evaluation.images,
            "people": evaluation.people,
        }
        if evaluation
        else {},
        "val": {key: _share(getattr(val, key)) for key in ("pck", "oks_ap")}
        if val is not None
        else {},
        "per_keypoint": _per_keypoint(rows),
        "per_keypoint_total": len(rows),
        "keypoint_schema": schema(job, rows),
    }


def run_summary(job: Job) -> dict:
    """summary() of the job's stored result, cached per finished run (pages of images need
    its split and skeleton without reading the whole result again)."""
    key = f"kp-summary:{job.run_key}"
    cached = cache.get(key)
    if cached is None:
        result = Job.objects.filter(pk=job.pk).values_list("result", flat=True).first()
        cached = summary(job, result if isinstance(result, dict) else {})
        cache.set(key, cached, CACHE_SECONDS)
    return cached


# --- the per-image predictions artifact ------------------------------------------------------


def predictions_name(job_id: int, split: str) -> str:
    """The storage name of a split's per-image predictions (read through the storage API)."""
    return f"jobs/{job_id}/predictions_{split}.json"


def _read_rows(job_id: int, split: str) -> list:
    name = predictions_name(job_id, split)
    try:
        size = default_storage.size(name) if default_storage.exists(name) else None
    except OSError:
        size = None
    if size is None:
        raise PredictionsUnreadable("missing")
    if size > MAX_PREDICTIONS_BYTES:
        raise PredictionsUnreadable("too_large")
    try:
        with default_storage.open(name, "rb") as stored:
            rows = json.loads(stored.read())
    except OSError:  # gone since, or unreadable
        raise PredictionsUnreadable("missing") from None
    except ValueError:  # not JSON (UnicodeDecodeError is one too)
        raise PredictionsUnreadable("malformed") from None
    if not isinstance(rows, list):
        raise PredictionsUnreadable("malformed")
    return events.read_predictions(KIND, rows)  # as far as each row fits; non-rows left out


def _index(rows: list[events.KeypointsPrediction]) -> list[tuple]:
    """(position, group, oks, error) per row: group 0 is judged by OKS, 1 by mean error only,
    2 not judged (no truth); what the ordering needs."""
    index = []
    for position, row in enumerate(rows):
        oks, error = _share(row.oks), _number(row.error)
        group = 0 if oks is not None else 1 if error is not None else 2
        index.append((position, group, oks or 0.0, error or 0.0))
    return index


def _ordered(index: list[tuple], order: str) -> list[int]:
    """Row positions, worst first (lowest OKS, then largest error) or best first; images
    without a truth always last."""
    sign = 1 if order == "worst" else -1
    ranked = sorted(index, key=lambda e: (e[1], sign * e[2], -sign * e[3], e[0]))
    return [position for position, *_rest in ranked]


def _points(values: list[list[float] | None] | None) -> list:
    """(x, y, v|score or None) per keypoint, None where the row has no point that fits."""
    return [
        None if value is None else (value[0], value[1], value[2] if len(value) > 2 else None)
        for value in (values or [])[:KEYPOINTS_DRAWN]
    ]


def _side(value, points: list, axis: int) -> float:
    """An image's width or height, else the drawn points' extent (so they stay in view)."""
    number = _number(value)
    if number is not None and 0 < number <= MAX_PIXELS_SIDE:
        return number
    reach = [p[axis] for p in points if p is not None]
    return max(1.0, min(max(reach, default=1.0) + 1, MAX_PIXELS_SIDE))


def _path(points: list, skeleton: list[list[int]]) -> str:
    """An SVG path of the skeleton's lines between the points that are there."""
    parts = []
    for a, b in skeleton:
        if a < len(points) and b < len(points) and points[a] and points[b]:
            (x1, y1), (x2, y2) = points[a][:2], points[b][:2]
            parts.append(f"M{x1:.2f} {y1:.2f}L{x2:.2f} {y2:.2f}")
    return "".join(parts)


def _name(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else str(index + 1)


def drawn_row(row: events.KeypointsPrediction, names: list[str], skeleton: list[list[int]]) -> dict:
    """One image as the template draws it: the true skeleton, the predicted one with each
    point coloured by its error, the image's figures and its worst keypoints."""
    truth = [p if p and (p[2] is None or p[2] > 0) else None for p in _points(row.truth)]
    predicted = _points(row.predicted)
    errors = [_number(e) for e in (row.errors or [])[:KEYPOINTS_DRAWN]]
    width = _side(row.width, truth + predicted, 0)
    height = _side(row.height, truth + predicted, 1)
    scale = DISPLAY_WIDTH / width  # user units → CSS pixels at the drawn size
    points, misses = [], []
    for k, p in enumerate(predicted):
        if p is None:
            continue
        error = errors[k] if k < len(errors) and k < len(truth) and truth[k] else None
        points.append(
            {
                "x": p[0],
                "y": p[1],
                "name": _name(names, k),
                "score": p[2],
                "error": error,
                "level": level(error),
            }
        )
        if error is not None and (t := truth[k]) is not None:
            misses.append({"x1": t[0], "y1": t[1], "x2": p[0], "y2": p[1], "level": level(error)})
    truths = [
        {"x": t[0], "y": t[1], "name": _name(names, k), "occluded": t[2] == 1}
        for k, t in enumerate(truth)
        if t
    ]
    worst = sorted((p for p in points if p["error"] is not None), key=lambda p: -p["error"])
    return {
        "id": row.id if isinstance(row.id, int) else None,  # an item of the dataset
        "width": round(width, 2),
        "height": round(height, 2),
        "radius": round(3.5 / scale, 3),  # 3.5 CSS pixels whatever the image's size
        "truth_radius": round(2.5 / scale, 3),
        "truth_path": _path(truth, skeleton),
        "predicted_path": _path(predicted, skeleton),
        "truths": truths,
        "points": points,
        "misses": misses,
        "pck": _share(row.pck),
        "oks": _share(row.oks),
        "error": _number(row.error),
        "labelled": len(truths),
        "worst": worst[:WORST_LISTED],
    }


def poses_page(job: Job, split: str, keypoint_schema: dict, *, page, order: str) -> dict:
    """One bounded page of the evaluated images, worst (or best) first; cached per run."""
    order = order if order in ORDERS else "worst"
    run = f"{job.run_key}:{split}"
    index = cache.get(f"kp-index:{run}")
    rows = None
    if index is None:
        rows = _read_rows(job.pk, split)
        index = _index(rows)
        cache.set(f"kp-index:{run}", index, CACHE_SECONDS)
    paginator = Paginator(_ordered(index, order), PAGE_SIZE)
    current = paginator.get_page(page)  # a number past the end, or no number, is a real page
    key = f"kp-page:{run}:{order}:{current.number}"
    drawn = cache.get(key)
    if drawn is None:
        rows = rows if rows is not None else _read_rows(job.pk, split)
        names, skeleton = keypoint_schema["names"], keypoint_schema["skeleton"]
        drawn = [drawn_row(rows[p], names, skeleton) for p in current.object_list if p < len(rows)]
        cache.set(key, drawn, CACHE_SECONDS)
    return {
        "page": current,
        "rows": drawn,
        "images_total": len(index),
        "judged": sum(1 for entry in index if entry[1] < 2),
        "order": order,
        "orders": list(ORDERS.items()),
    }


# --- what the result partial and the images page show ---------------------------------------


def context(job: Job, user, request=None) -> dict:
    """The keypoints partial's per-request parts: a page of evaluated images (or why not)."""
    shown = run_summary(job)
    query = request.GET if request is not None else {}
    try:
        page = poses_page(
            job,
            shown["split"],
            shown["keypoint_schema"],
            page=query.get("page"),
            order=query.get("order", ""),
        )
        problem = ""
    except PredictionsUnreadable as unreadable:
        page, problem = None, unreadable.problem
    return {"poses": page, "poses_problem": problem, "error_levels": LEVELS}


def images_view(request, job: Job) -> HttpResponse:
    """A page of a keypoints run's evaluated images (GET /jobs/<id>/images/): skeletons over
    the images, worst first; the partial alone for htmx."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not permissions.can_view_job(request.user, job):
        raise Http404
    if job.status != JobStatus.SUCCEEDED or kinds.job_kind(job) != KIND:
        raise Http404
    values = {
        **run_summary(job),
        **context(job, request.user, request),
        "job": job,
        "course": job.course,
        "show_images": permissions.can_view_images(request.user, job.dataset),
    }
    partial = request.headers.get("HX-Request") == "true"
    template = "jobs/results/_skeletons.html" if partial else "jobs/results/skeletons_page.html"
    return render(request, template, values)
