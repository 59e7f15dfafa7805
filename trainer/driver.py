"""The driver every kind shares: a spec in, events out, artifacts in a folder.

`run(spec, out_dir, reporter)` picks the loop module of the spec's kind
(`trainer/loops/<kind>.py`, the protocol in trainer/loops/__init__.py) and does for it what
is the same for every kind: the device, seeding, the optimizer and its schedule, mixed
precision, throttled batch events, the NaN check, checkpoints with the random state, resuming
a killed run to the same result, cancellation, early stopping, k folds, and the events and
per-image predictions files. It knows nothing of logits, boxes or masks: a kind's `train_step`
hands back a dict of losses, its `evaluate` an Evaluation with its figures.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn as nn

from trainer import data, export, metrics, registry
from trainer.events import EventStream, Reporter
from trainer.memory import OUT_OF_MEMORY, out_of_memory
from trainer.spec import JobSpec, SpecError

CHECKPOINT = "checkpoint.pt"
# One row per image of the final evaluation (its shape is the kind's; docs/architecture.md).
TEST_PREDICTIONS = "predictions_test.json"
VAL_PREDICTIONS = "predictions_val.json"
BATCH_EVENT_SECONDS = 0.2  # at most ~5 batch events a second: a chart, not a firehose
PRECISE_BN_BELOW_STEPS = 20  # epochs this short leave batch-norm averages far behind
# The refresh's sample: this many training images evenly spaced over the split, in order (at
# least one batch). A channel's mean and variance over 64 images' feature maps are already
# close to the split's, and a pass over every image cost a short detection epoch a third of
# its time.
PRECISE_BN_IMAGES = 64


class Cancelled(Exception):
    """The job was cancelled between two batches."""


class TrainingFailed(Exception):
    """Training cannot go on; the message is for the student."""


# --- what a kind's loop module gives and gets ----------------------------------------------


class Evaluation(Protocol):
    """A split evaluated: `figures` for the epoch event (loss, acc or map50, ...), `to_dict()`
    for the finished event, `predictions` for the per-image file."""

    @property
    def figures(self) -> dict[str, float | None]: ...

    @property
    def predictions(self) -> list[dict]: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class Prepared:
    """Everything a run needs, resolved from the spec: the data decoded once, on the device.

    `train`, `val` and `test` are the kind's splits (anything with a length, `ids` and
    `subset(index)`); `extra` carries the kind's own (e.g. the transfer head plan).
    """

    spec: JobSpec
    device: torch.device
    size: int
    channels: int
    classes: list[str]
    train: Any
    val: Any
    test: Any
    mean: list[float]
    std: list[float]
    extra: dict = field(default_factory=dict)


@dataclass
class Step:
    """One model being trained, as a kind's `train_step` and `evaluate` see it.

    `model` is what the optimizer trains (the whole model, or only a head when a kind
    trains on features computed once); `inputs(split, index)` is a batch of a split as the
    model takes it (normalised, on the device), what the driver's batch-norm refresh feeds.
    """

    spec: JobSpec
    p: Prepared
    model: nn.Module
    inputs: Callable[[Any, torch.Tensor], torch.Tensor]
    augment: Callable | None = None
    device: torch.device = torch.device("cpu")
    amp_dtype: torch.dtype | None = None  # bf16/fp16 autocast on a GPU; None = fp32
    extra: dict = field(default_factory=dict)

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )


def loop_module(kind: str) -> Any:
    """The loop module of a kind (SpecError for a kind this trainer cannot train)."""
    try:
        return importlib.import_module(f"trainer.loops.{kind}")
    except ModuleNotFoundError:
        raise SpecError({"kind": f"training for {kind} is not available yet"}) from None


# --- the shared parts ------------------------------------------------------------------------


def on_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on the compute device (a no-op when the data already lives there)."""
    return tensor if tensor.device == device else tensor.to(device, non_blocking=True)


def pick_device(name: str) -> torch.device:
    """`auto` is CUDA when present, then Apple's MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_generator(seed: int, fold: int, epoch: int) -> torch.Generator:
    """Shuffling and augmentation of an epoch depend only on (seed, fold, epoch): resumable."""
    return torch.Generator().manual_seed(seed * 1_000_003 + fold * 10_007 + epoch)


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision for the GPU: bf16 where supported (auto), never on the CPU by default."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def make_optimizer(
    spec: JobSpec, model: nn.Module, head: list[nn.Parameter]
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW; a lower rate for a pretrained backbone."""
    in_head = {id(q) for q in head}
    trainable = [q for q in model.parameters() if q.requires_grad]
    groups: list[dict] = [{"params": trainable, "lr": spec.lr}]
    if spec.transfer.mode == "fine_tuning" and spec.transfer.source != "none":
        backbone = [q for q in trainable if id(q) not in in_head]
        groups = [
            {"params": [q for q in trainable if id(q) in in_head], "lr": spec.lr},
            {"params": backbone, "lr": spec.lr * spec.transfer.backbone_lr_factor},
        ]
    if spec.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=spec.lr,
            momentum=spec.momentum,
            nesterov=spec.nesterov and spec.momentum > 0,
            weight_decay=spec.weight_decay,
        )
    kind = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    betas = (spec.betas[0], spec.betas[1])
    return kind(groups, lr=spec.lr, betas=betas, weight_decay=spec.weight_decay)


def make_scheduler(spec: JobSpec, optimizer, steps_per_epoch: int):
    if spec.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, spec.step_size, spec.gamma)
    if spec.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, spec.epochs)
    if spec.schedule == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, epochs=spec.epochs, steps_per_epoch=steps_per_epoch
        )
    return None


def frozen_batch_norms(model: nn.Module) -> list[nn.Module]:
    """Batch norms of a frozen backbone: they keep their statistics (eval mode) too."""
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not any(q.requires_grad for q in module.parameters())
    ]


@dataclass
class Training:
    """The optimizer side of one Step: what the epoch loop needs besides the kind."""

    step: Step
    optimizer: torch.optim.Optimizer
    scheduler: Any
    stream: EventStream
    cancel: Callable[[], bool]
    batch_size: int
    frozen: list = field(default_factory=list)
    scaler: torch.amp.GradScaler | None = None  # for fp16
    last_batch_event: float = 0.0


def train_one_epoch(
    loop: Any, t: Training, epoch: int, generator: torch.Generator, fold: int = 0
) -> tuple[dict[str, float], float, float]:
    """One pass over the training split: the mean of each loss part, images/s and seconds."""
    step, split = t.step, t.step.p.train
    step.model.train()
    for module in t.frozen:
        module.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    started = time.perf_counter()
    steps = -(-len(split) // t.batch_size)
    device = split_device(split)
    order = data.batches(len(split), t.batch_size, shuffle=True, generator=generator, device=device)
    for number, index in enumerate(order, start=1):
        if t.cancel():
            raise Cancelled
        parts = loop.train_step(step, index, generator)
        loss = parts["loss"]
        t.optimizer.zero_grad(set_to_none=True)
        if t.scaler is not None:  # fp16 needs its gradients scaled; bf16 and fp32 do not
            t.scaler.scale(loss).backward()
            t.scaler.step(t.optimizer)
            t.scaler.update()
        else:
            loss.backward()
            t.optimizer.step()
        if isinstance(t.scheduler, torch.optim.lr_scheduler.OneCycleLR):
            t.scheduler.step()
        batch = len(index)
        for name, value in parts.items():  # running sums stay tensors: no device sync
            weighted = value.detach().float() * batch
            sums[name] = sums[name] + weighted if name in sums else weighted
        count += batch
        now = time.monotonic()
        if now - t.last_batch_event >= BATCH_EVENT_SECONDS or number == steps:
            t.last_batch_event = now
            value = loss.item()
            if value != value:  # NaN
                raise TrainingFailed(
                    f"The loss became NaN at epoch {epoch} — try a lower learning rate."
                )
            seconds = time.perf_counter() - started
            t.stream.emit(
                "batch",
                epoch=epoch,
                step=number,
                steps=steps,
                loss=value,
                images_per_s=count / max(seconds, 1e-9),
                fold=fold,
            )
    seconds = time.perf_counter() - started
    names = list(sums)
    values = torch.stack([sums[n].double().cpu() for n in names]).tolist() if names else []
    means = {name: value / max(count, 1) for name, value in zip(names, values, strict=True)}
    if means.get("loss", 0.0) != means.get("loss", 0.0):
        raise TrainingFailed(f"The loss became NaN at epoch {epoch} — try a lower learning rate.")
    return means, len(split) / max(seconds, 1e-9), seconds


@torch.no_grad()
def refresh_batch_norm(step: Step, split: Any, batch_size: int, frozen: list) -> None:
    """Recompute batch-norm statistics for the current weights ("precise BN").

    With only a few steps an epoch, the running averages still mostly remember their start,
    and a model that fits its training images guesses at random on validation. One pass in
    order over PRECISE_BN_IMAGES training images spread evenly over the split (no randomness:
    resuming stays exact) sets them to this epoch's averages.
    """
    norms = [
        m
        for m in step.model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in frozen
    ]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the pass
    step.model.train()
    device = split_device(split)
    count = min(len(split), max(PRECISE_BN_IMAGES, batch_size))
    # Evenly spaced over the split (a split is often ordered by class: its first images alone
    # would give one class's statistics).
    sample = torch.arange(count, device=device) * len(split) // count
    for start in range(0, count, batch_size):
        index = sample[start : start + batch_size]
        with step.autocast():
            step.model(step.inputs(split, index))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


# --- a run -------------------------------------------------------------------------------------


def run(
    spec: JobSpec,
    out_dir: str | Path,
    reporter: Reporter,
    *,
    cancel: Callable[[], bool] = lambda: False,
    resume: bool = False,
) -> dict:
    """Train as the spec says; emit events; return the final metrics (or the k-fold summary)."""
    loop = loop_module(spec.kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stream = EventStream(reporter)
    try:
        seed_everything(spec.seed)
        prepared = loop.prepare(spec, pick_device(spec.device))
        if spec.kfold >= 2:
            return _run_folds(loop, spec, prepared, out, stream, cancel, resume=resume)
        result = _run_one(loop, spec, prepared, out, stream, cancel, resume=resume)
        stream.emit("finished", kind=spec.kind, **result)
        return result
    except Cancelled:
        stream.emit("failed", reason="Cancelled.", cancelled=True)
        raise
    except (
        TrainingFailed,
        data.DataError,
        registry.WeightsUnavailable,
        registry.ShapeError,
        export.WeightsMismatch,
        export.CheckpointError,
    ) as exc:
        stream.emit("failed", reason=str(exc))
        raise
    except Exception as exc:
        if out_of_memory(exc):
            stream.emit("failed", reason=f"The training stopped: {OUT_OF_MEMORY}.")
            raise
        stream.emit("failed", reason=f"The training stopped on an internal error ({exc}).")
        raise


def _training(loop: Any, spec: JobSpec, step: Step, stream, cancel) -> Training:
    steps = -(-len(step.p.train) // spec.batch_size)
    optimizer = make_optimizer(spec, step.model, loop.head_parameters(step.model))
    return Training(
        step=step,
        optimizer=optimizer,
        scheduler=make_scheduler(spec, optimizer, steps),
        stream=stream,
        cancel=cancel,
        batch_size=spec.batch_size,
        frozen=frozen_batch_norms(step.model),
        scaler=torch.amp.GradScaler("cuda") if step.amp_dtype == torch.float16 else None,
    )


def _score(spec: JobSpec, loop: Any, figures: dict[str, float | None]) -> float:
    """What early stopping watches, lower is better: the spec's metric, else the kind's."""
    metric = spec.early_stopping.metric if spec.early_stopping else loop.WATCH
    value = figures.get(metric)
    if value is None:  # no validation split: the training figure of the same name
        value = figures.get(metric.replace("val_", "train_"), figures.get("train_loss"))
        metric = metric if metric.endswith("loss") else "higher"
    value = float("inf") if value is None else value
    return value if metric.endswith("loss") else -value


def _run_one(loop, spec, p: Prepared, out: Path, stream, cancel, *, resume=False, fold=0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    full_model = loop.build_model(p)
    if p.device.type == "cuda":
        full_model = full_model.to(memory_format=torch.channels_last)
    if spec.compile and hasattr(torch, "compile"):
        full_model = torch.compile(full_model)  # optional: long GPU runs
    step = loop.make_step(p, full_model, amp_dtype(spec.precision, p.device))
    t = _training(loop, spec, step, stream, cancel)
    first_epoch, best, stale = 1, None, 0
    checkpoint_path = out / CHECKPOINT
    if resume and checkpoint_path.exists():
        state = export.load_checkpoint(checkpoint_path)
        step.model.load_state_dict(state["model"])
        t.optimizer.load_state_dict(state["optimizer"])
        if t.scheduler is not None and state.get("scheduler"):
            t.scheduler.load_state_dict(state["scheduler"])
        export.set_rng_state(state["rng"])
        first_epoch = int(state["epoch"]) + 1
        best = state.get("extra", {}).get("best")
        stale = int(state.get("extra", {}).get("stale", 0))  # epochs since the best, as it was
    stream.emit(
        "started",
        kind=spec.kind,
        model=spec.model if isinstance(spec.model, str) else "layers",
        parameters=registry.parameter_count(full_model),
        device=str(p.device),
        classes=p.classes,
        sizes={"train": len(p.train), "val": len(step.p.val), "test": len(step.p.test)},
        input_size=p.size,
        channels=p.channels,
        resumed_from=first_epoch - 1,
        fold=fold,
        **p.extra.get("head", {}),  # transfer: the head kept, reordered or new, and why
    )
    # A run killed after early stopping had stopped it trains no further epoch.
    stopped = bool(spec.early_stopping and stale >= spec.early_stopping.patience)
    evaluated = False  # whether `val` is the validation split's evaluation of the final model
    for epoch in range(first_epoch, first_epoch if stopped else spec.epochs + 1):
        generator = epoch_generator(spec.seed, fold, epoch)
        train, speed, seconds = train_one_epoch(loop, t, epoch, generator, fold)
        if -(-len(step.p.train) // spec.batch_size) < PRECISE_BN_BELOW_STEPS:
            refresh_batch_norm(step, step.p.train, spec.batch_size, t.frozen)
        if t.scheduler is not None and not isinstance(
            t.scheduler, torch.optim.lr_scheduler.OneCycleLR
        ):
            t.scheduler.step()
        val, evaluated = loop.evaluate(step, step.p.val), True
        figures: dict[str, float | None] = {f"train_{k}": v for k, v in train.items()}
        figures |= {f"val_{k}": None for k in loop.FIGURES}
        figures |= {f"val_{k}": v for k, v in (val.figures if val else {}).items()}
        stream.emit(
            "epoch",
            epoch=epoch,
            lr=t.optimizer.param_groups[0]["lr"],
            seconds=seconds,
            images_per_s=speed,
            fold=fold,
            **figures,
            val_metrics=val.to_dict() if val else None,
        )
        score = _score(spec, loop, figures)
        improved = best is None or score < best
        best = score if improved else best
        stale = 0 if improved else stale + 1
        export.save_checkpoint(
            checkpoint_path,
            model=step.model,
            optimizer=t.optimizer,
            scheduler=t.scheduler,
            epoch=epoch,
            rng=export.rng_state(),
            extra={"best": best, "stale": stale},
        )
        stream.emit("checkpoint", epoch=epoch, file=CHECKPOINT, fold=fold)  # a name, no path
        if spec.early_stopping and stale >= spec.early_stopping.patience:
            stream.emit("log", message=f"Early stopping after epoch {epoch}.")
            break
    test = loop.evaluate(step, step.p.test)
    if not evaluated:  # the last epoch's evaluation is the final model's: not done twice
        val = loop.evaluate(step, step.p.val)
    result = {"test": test.to_dict() if test else None, "val": val.to_dict() if val else None}
    loop.export(p, full_model, out, result)
    # A split the run did not evaluate (no test images, say) gets no file, not an empty one.
    for evaluation, name in ((test, TEST_PREDICTIONS), (val, VAL_PREDICTIONS)):
        if evaluation:
            write_predictions(out / name, evaluation.predictions)
    return result


def model_card(p: Prepared, model: nn.Module, result: dict) -> dict:
    """The model card every kind writes: classes, input, normalisation, spec, data version,
    final metrics, model and size, and the kind; a kind adds its own (a detector's boxes)."""
    spec = p.spec
    card = export.model_card(
        classes=p.classes,
        input_size=p.size,
        channels=p.channels,
        mean=p.mean,
        std=p.std,
        spec=export.card_spec(spec),
        data_version=spec.data.version,
        metrics={k: v for k, v in result.items() if v},
        model_name=spec.model if isinstance(spec.model, str) else str(spec.layers),
        parameters=registry.parameter_count(model),
    )
    card["kind"] = spec.kind
    return card


def write_predictions(path: Path, rows: list[dict]) -> None:
    """A split's per-image predictions as JSON, written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def _run_folds(loop, spec, p: Prepared, out: Path, stream, cancel, *, resume=False) -> dict:
    """k-fold cross-validation over training+validation images; mean ± std of the folds.

    The kind deals the folds (`loop.folds`: stratified for classes); the driver runs them.
    """
    scores = []
    for fold, (train, held) in enumerate(loop.folds(p, spec.kfold, spec.seed)):
        fold_p = copy.copy(p)
        fold_p.train, fold_p.val = train, held
        # Each fold has its own folder and checkpoint: resuming, a finished fold is evaluated
        # again from its last checkpoint (the same figures), the cut one goes on, the rest start.
        result = _run_one(
            loop, spec, fold_p, out / f"fold-{fold}", stream, cancel, resume=resume, fold=fold
        )
        scores.append(result["val"][loop.FOLD_FIGURE])
    mean, std = metrics.mean_std(scores)
    name = loop.FOLD_FIGURE
    summary = {"folds": scores, f"mean_{name}": mean, f"std_{name}": std}
    stream.emit("finished", kind=spec.kind, kfold=summary)
    return summary


def iterate(split: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """Index tensors over a split in order (evaluation)."""
    device = split_device(split)
    return data.batches(len(split), batch_size, shuffle=False, generator=None, device=device)


def split_device(split: Any) -> torch.device:
    """Where a split's images live: batch indices are made there."""
    device = getattr(split, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")
