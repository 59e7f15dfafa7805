"""Classification and transfer learning: epochs, checkpoints, resume, k folds, the test."""

import copy
import json
import os
import random
import time
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn as nn

from trainer import data, export, fit, metrics, registry
from trainer.events import EventStream, Reporter
from trainer.memory import OUT_OF_MEMORY, out_of_memory
from trainer.spec import JobSpec

CHECKPOINT = "checkpoint.pt"
# One row per image of the final evaluation: what a confusion matrix's cell holds.
TEST_PREDICTIONS = "predictions_test.json"
VAL_PREDICTIONS = "predictions_val.json"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_generator(seed: int, fold: int, epoch: int) -> torch.Generator:
    """Shuffling and augmentation of an epoch depend only on (seed, fold, epoch): resumable."""
    return torch.Generator().manual_seed(seed * 1_000_003 + fold * 10_007 + epoch)


def run(
    spec: JobSpec,
    out_dir: str | Path,
    reporter: Reporter,
    *,
    cancel=lambda: False,
    resume: bool = False,
) -> dict:
    """Train as the spec says; emit events; return the final test metrics (or k-fold summary)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stream = EventStream(reporter)
    try:
        seed_everything(spec.seed)
        prepared = fit.prepare(spec)
        if spec.kfold >= 2:
            return _run_folds(spec, prepared, out, stream, cancel)
        result = _run_one(spec, prepared, out, stream, cancel, resume=resume)
        stream.emit("finished", **result)
        return result
    except fit.Cancelled:
        stream.emit("failed", reason="Cancelled.", cancelled=True)
        raise
    except (
        fit.TrainingFailed,
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


def _loop(spec: JobSpec, p: fit.Prepared, model: nn.Module, stream, cancel) -> fit.Loop:
    steps = -(-len(p.train) // spec.batch_size)
    optimizer = fit.make_optimizer(spec, model)
    frozen = [  # a frozen backbone keeps its batch-norm statistics too
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not any(q.requires_grad for q in module.parameters())
    ]
    return fit.Loop(
        frozen=frozen,
        amp_dtype=(amp := fit.amp_dtype(spec.precision, p.device)),
        scaler=torch.amp.GradScaler("cuda") if amp == torch.float16 else None,
        model=model,
        optimizer=optimizer,
        scheduler=fit.make_scheduler(spec, optimizer, steps),
        loss_fn=nn.CrossEntropyLoss(label_smoothing=spec.label_smoothing),
        normalise=data.Normalise(p.mean, p.std, p.device, channels_last=p.device.type == "cuda"),
        device=p.device,
        augment=data.Augment(spec.augmentation, p.size) if spec.augmentation.enabled else None,
        batch_size=spec.batch_size,
        stream=stream,
        cancel=cancel,
    )


def _features_only(spec: JobSpec) -> bool:
    """Feature extraction without augmentation: the frozen backbone sees each image once."""
    transfer = spec.transfer
    return (
        transfer.mode == "feature_extraction"
        and transfer.source != "none"
        and not spec.augmentation.enabled
    )


@torch.no_grad()
def _features(model: nn.Module, split: data.Split, normalise, batch: int) -> data.Split:
    """What the frozen backbone hands the classifier, for every image of a split, once."""
    captured: list[torch.Tensor] = []
    hook = registry.head(model).register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0].detach())
    )
    model.eval()
    try:
        for index in data.batches(
            len(split), batch, shuffle=False, generator=None, device=split.images.device
        ):
            model(normalise(fit.on_device(split.images[index], normalise.device)))
    finally:
        hook.remove()
    features = torch.cat(captured) if captured else torch.empty(0, 0)  # (N, features)
    return data.Split(features, split.labels, split.ids)


def _as_is(x: torch.Tensor) -> torch.Tensor:
    """The 'normalisation' of features: they are ready as they are."""
    return x


def _run_one(spec, p: fit.Prepared, out: Path, stream, cancel, *, resume=False, fold=0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    full_model = fit.build_model(p)
    if p.device.type == "cuda":
        full_model = full_model.to(memory_format=torch.channels_last)
    if spec.compile and hasattr(torch, "compile"):
        full_model = cast(nn.Module, torch.compile(full_model))  # optional: long GPU runs
    if _features_only(spec):
        # Train the classifier on features computed once (as Teachable Machine does); the
        # artifacts are still the whole model, since the classifier is trained in place.
        normalise = data.Normalise(p.mean, p.std, p.device)
        batch = max(spec.batch_size, 128)
        p = _with_splits(
            p, *(_features(full_model, s, normalise, batch) for s in (p.train, p.val, p.test))
        )
        model: nn.Module = registry.head(full_model)
        loop = _loop(spec, p, model, stream, cancel)
        loop.normalise = _as_is
    else:
        model = full_model
        loop = _loop(spec, p, model, stream, cancel)
    first_epoch, best = 1, None
    checkpoint_path = out / CHECKPOINT
    if resume and checkpoint_path.exists():
        state = export.load_checkpoint(checkpoint_path)
        model.load_state_dict(state["model"])
        loop.optimizer.load_state_dict(state["optimizer"])
        if loop.scheduler is not None and state.get("scheduler"):
            loop.scheduler.load_state_dict(state["scheduler"])
        export.set_rng_state(state["rng"])
        first_epoch = int(state["epoch"]) + 1
        best = state.get("extra", {}).get("best")
    stream.emit(
        "started",
        model=spec.model if isinstance(spec.model, str) else "layers",
        parameters=registry.parameter_count(full_model),
        device=str(p.device),
        classes=p.classes,
        sizes={"train": len(p.train), "val": len(p.val), "test": len(p.test)},
        input_size=p.size,
        channels=p.channels,
        resumed_from=first_epoch - 1,
        fold=fold,
        **p.extra.get("head", {}),  # transfer: the classifier kept, reordered or new, and why
    )
    stale = 0
    for epoch in range(first_epoch, spec.epochs + 1):
        generator = _epoch_generator(spec.seed, fold, epoch)
        train_loss, train_acc, speed, seconds = fit.train_one_epoch(loop, p.train, epoch, generator)
        if -(-len(p.train) // spec.batch_size) < fit.PRECISE_BN_BELOW_STEPS:
            fit.refresh_batch_norm(loop, p.train)
        if loop.scheduler is not None and not isinstance(
            loop.scheduler, torch.optim.lr_scheduler.OneCycleLR
        ):
            loop.scheduler.step()
        val = fit.evaluate(loop, p.val, len(p.classes))
        stream.emit(
            "epoch",
            epoch=epoch,
            train_loss=train_loss,
            train_acc=train_acc,
            val_loss=val.loss if val else None,
            val_acc=val.accuracy if val else None,
            lr=loop.optimizer.param_groups[0]["lr"],
            seconds=seconds,
            images_per_s=speed,
            fold=fold,
            val_metrics=val.to_dict() if val else None,
        )
        score = (
            (
                val.loss
                if spec.early_stopping and spec.early_stopping.metric == "val_loss"
                else -(val.accuracy if val else train_acc)
            )
            if val
            else -train_acc
        )
        improved = best is None or score < best
        best = score if improved else best
        stale = 0 if improved else stale + 1
        export.save_checkpoint(
            out / CHECKPOINT,
            model=model,
            optimizer=loop.optimizer,
            scheduler=loop.scheduler,
            epoch=epoch,
            rng=export.rng_state(),
            extra={"best": best},
        )
        stream.emit("checkpoint", epoch=epoch, file=CHECKPOINT, fold=fold)  # a name, no path
        if spec.early_stopping and stale >= spec.early_stopping.patience:
            stream.emit("log", message=f"Early stopping after epoch {epoch}.")
            break
    test = fit.evaluate(loop, p.test, len(p.classes))
    val = fit.evaluate(loop, p.val, len(p.classes))
    result = {"test": test.to_dict() if test else None, "val": val.to_dict() if val else None}
    _write_artifacts(spec, p, full_model, out, result)
    write_predictions(out / TEST_PREDICTIONS, test.predictions if test else [])
    write_predictions(out / VAL_PREDICTIONS, val.predictions if val else [])
    return result


def write_predictions(path: Path, rows: list[dict]) -> None:
    """A split's per-image predictions as JSON, written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def _with_splits(p: fit.Prepared, train, val, test) -> fit.Prepared:
    prepared = copy.copy(p)
    prepared.train, prepared.val, prepared.test = train, val, test
    return prepared


def _write_artifacts(spec, p: fit.Prepared, model: nn.Module, out: Path, result: dict) -> None:
    model.eval()
    example = torch.zeros(1, p.channels, p.size, p.size, device=p.device)
    card = export.model_card(
        classes=p.classes,
        input_size=p.size,
        channels=p.channels,
        mean=p.mean,
        std=p.std,
        spec=_card_spec(spec),
        data_version=spec.data.version,
        metrics={k: v for k, v in result.items() if v},
        model_name=spec.model if isinstance(spec.model, str) else str(spec.layers),
        parameters=registry.parameter_count(model),
    )
    export.write_artifacts(model.float().cpu(), out, example_input=example.cpu(), card=card)


def _card_spec(spec: JobSpec) -> dict:
    """The spec as a model card shows it: without the data's file list (server paths, and
    megabytes for a large set) and with a transfer source named by its file only."""
    shown = spec.model_dump(mode="json", exclude={"data"})
    source = shown["transfer"]["source"]
    if source not in ("none", "imagenet"):
        shown["transfer"]["source"] = Path(source).name
    return shown


def _run_folds(spec, p: fit.Prepared, out: Path, stream, cancel) -> dict:
    """k-fold cross-validation over training+validation images; mean ± std of the folds."""
    pool = data.Split(
        torch.cat([p.train.images, p.val.images]),
        torch.cat([p.train.labels, p.val.labels]),
        p.train.ids + p.val.ids,
    )
    folds = _fold_numbers(pool.labels.cpu(), spec.kfold, spec.seed).to(pool.labels.device)
    scores = []
    for fold in range(spec.kfold):
        held = torch.nonzero(folds == fold).flatten()
        kept = torch.nonzero(folds != fold).flatten()
        fold_p = copy.copy(p)
        fold_p.train, fold_p.val = pool.subset(kept), pool.subset(held)
        result = _run_one(spec, fold_p, out / f"fold-{fold}", stream, cancel, fold=fold)
        scores.append(result["val"]["accuracy"])
    mean, std = metrics.mean_std(scores)
    summary = {"folds": scores, "mean_accuracy": mean, "std_accuracy": std}
    stream.emit("finished", kfold=summary)
    return summary


def _fold_numbers(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Stratified fold number per image: each class dealt round-robin after a seeded shuffle."""
    folds = torch.empty_like(labels)
    generator = torch.Generator().manual_seed(seed)
    for label in labels.unique():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        folds[members] = torch.arange(len(members)) % k
    return folds


def timed(fn, *args, **kwargs):  # pragma: no cover - a helper for the benchmark
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start
