"""The fit/evaluate driver: a job spec in, events out, artifacts in a directory.

`run(spec, out_dir, reporter)` trains a classifier (k folds when asked), checkpoints every
epoch, resumes a killed run to the same result, evaluates on the test split and writes the
artifacts. The loop itself (`train_one_epoch`, `evaluate`) is short enough to read in class.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from trainer import data, metrics, registry
from trainer.events import EventStream
from trainer.models import heads
from trainer.spec import JobSpec

BATCH_EVENT_SECONDS = 0.2  # at most ~5 batch events a second: a chart, not a firehose


class Cancelled(Exception):
    """The job was cancelled between two batches."""


class TrainingFailed(Exception):
    """Training cannot go on; the message is for the student."""


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


@dataclass
class Prepared:
    """Everything a run needs, resolved from the spec."""

    spec: JobSpec
    device: torch.device
    size: int
    channels: int
    classes: list[str]
    train: data.Split
    val: data.Split
    test: data.Split
    mean: list[float]
    std: list[float]
    extra: dict = field(default_factory=dict)


def prepare(spec: JobSpec) -> Prepared:
    """Decode the data once, at the model's input size, onto the device."""
    device = pick_device(spec.device)
    model_name = spec.model if isinstance(spec.model, str) else None
    info = registry.get_info(model_name) if model_name else None
    size = spec.input_size or (info.default_input_size if info else 32)
    channels = spec.channels or (info.default_channels if info else 1)
    items = _manifest_items(spec)
    by_split = {name: [i for i in items if i.split == name] for name in ("train", "val", "test")}
    if not by_split["train"]:
        raise TrainingFailed("There are no training images in the data.")
    splits = {
        name: data.load_split(part, spec.data.root, size, channels)
        for name, part in by_split.items()
    }
    pretrained = spec.transfer.source == "imagenet" and spec.transfer.mode != "scratch"
    if pretrained and channels == 3:
        mean, std = list(data.IMAGENET_MEAN), list(data.IMAGENET_STD)
    else:
        mean, std = data.channel_stats(splits["train"].images)
    return Prepared(
        spec,
        device,
        size,
        channels,
        list(spec.data.classes),
        data.place(splits["train"], device),
        data.place(splits["val"], device),
        data.place(splits["test"], device),
        mean,
        std,
    )


def _manifest_items(spec: JobSpec) -> list:
    if spec.data.items:
        return list(spec.data.items)
    from trainer.spec import load_manifest  # only when the manifest is a file

    if spec.data.manifest is None:
        raise data.DataError("The spec names no images (neither items nor a manifest file).")
    return load_manifest(spec.data.manifest, classes=spec.data.classes)


def build_model(p: Prepared) -> nn.Module:
    """The model of the spec, with the transfer source and mode applied."""
    spec, count = p.spec, len(p.classes)
    transfer = spec.transfer
    use_source = transfer.mode != "scratch" and transfer.source != "none"
    model: nn.Module
    if isinstance(spec.model, list):
        model = registry.build_layers(
            spec.layers, num_classes=count, in_channels=p.channels, input_size=p.size
        )
    else:
        model = registry.build(
            spec.model,
            num_classes=count,
            in_channels=p.channels,
            input_size=p.size,
            pretrained=use_source and transfer.source == "imagenet",
        )
    if use_source and transfer.source != "imagenet":
        # The classifier is reused only for the same classes (rows matched by name).
        plan = heads.load_transfer_source(model, registry.head(model), transfer.source, p.classes)
        p.extra["head"] = plan.event_fields()
    elif use_source:  # ImageNet's thousand classes are never a student's
        p.extra["head"] = heads.HeadPlan("new", heads.CLASSES_DIFFER).event_fields()
    if use_source and transfer.mode == "feature_extraction":
        for parameter in registry.backbone_parameters(model):
            parameter.requires_grad_(False)
    return model.to(p.device)


def make_optimizer(spec: JobSpec, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW; a lower rate for a pretrained backbone."""
    head = {id(q) for q in registry.head(model).parameters()}
    trainable = [q for q in model.parameters() if q.requires_grad]
    groups: list[dict] = [{"params": trainable, "lr": spec.lr}]
    if spec.transfer.mode == "fine_tuning" and spec.transfer.source != "none":
        backbone = [q for q in trainable if id(q) not in head]
        groups = [
            {"params": [q for q in trainable if id(q) in head], "lr": spec.lr},
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


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision for the GPU: bf16 where supported (auto), never on the CPU by default."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


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


@dataclass
class Loop:
    """One model being trained: what train_one_epoch and evaluate need."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    normalise: Callable[[torch.Tensor], torch.Tensor]
    augment: data.Augment | None
    batch_size: int
    stream: EventStream
    cancel: Callable[[], bool]
    device: torch.device = torch.device("cpu")  # where the model computes
    last_batch_event: float = 0.0
    frozen: list = field(default_factory=list)  # modules kept in eval mode while training
    amp_dtype: torch.dtype | None = None  # bf16/fp16 autocast on a GPU; None = fp32
    scaler: torch.amp.GradScaler | None = None  # for fp16

    def autocast(self):
        device = next(self.model.parameters()).device.type
        return torch.autocast(
            device, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        )


def train_one_epoch(loop: Loop, split: data.Split, epoch: int, generator: torch.Generator):
    """One pass over the training split; returns (loss, accuracy, images/s)."""
    loop.model.train()
    for module in loop.frozen:
        module.eval()
    running = metrics.RunningMeans()
    started = time.perf_counter()
    steps = -(-len(split) // loop.batch_size)
    order = data.batches(
        len(split), loop.batch_size, shuffle=True, generator=generator, device=split.images.device
    )
    for step, index in enumerate(order, start=1):
        if loop.cancel():
            raise Cancelled
        x = loop.normalise(on_device(split.images[index], loop.device))  # (B, C, H, W)
        if loop.augment is not None:
            x = loop.augment(x, generator)
        y = on_device(split.labels[index], loop.device)  # (B,)
        with loop.autocast():
            logits = loop.model(x)  # (B, classes)
            loss = loop.loss_fn(logits, y)
        loop.optimizer.zero_grad(set_to_none=True)
        if loop.scaler is not None:  # fp16 needs its gradients scaled; bf16 and fp32 do not
            loop.scaler.scale(loss).backward()
            loop.scaler.step(loop.optimizer)
            loop.scaler.update()
        else:
            loss.backward()
            loop.optimizer.step()
        if isinstance(loop.scheduler, torch.optim.lr_scheduler.OneCycleLR):
            loop.scheduler.step()
        running.update(loss.detach(), logits.detach(), y)
        now = time.monotonic()
        if now - loop.last_batch_event >= BATCH_EVENT_SECONDS or step == steps:
            loop.last_batch_event = now
            value = loss.item()
            if value != value:  # NaN
                raise TrainingFailed(
                    f"The loss became NaN at epoch {epoch} — try a lower learning rate."
                )
            seconds = time.perf_counter() - started
            loop.stream.emit(
                "batch",
                epoch=epoch,
                step=step,
                steps=steps,
                loss=value,
                images_per_s=step * loop.batch_size / max(seconds, 1e-9),
            )
    seconds = time.perf_counter() - started
    if running.loss != running.loss:
        raise TrainingFailed(f"The loss became NaN at epoch {epoch} — try a lower learning rate.")
    return running.loss, running.accuracy, len(split) / max(seconds, 1e-9), seconds


PRECISE_BN_BELOW_STEPS = 20  # epochs this short leave batch-norm averages far behind


@torch.no_grad()
def refresh_batch_norm(loop: Loop, split: data.Split) -> None:
    """Recompute batch-norm statistics for the current weights ("precise BN").

    With only a few steps an epoch, the running averages still mostly remember their start,
    and a model that fits its training images guesses at random on validation. One pass in
    order (no randomness: resuming stays exact) sets them to this epoch's true averages.
    """
    norms = [
        m
        for m in loop.model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in loop.frozen
    ]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the pass
    loop.model.train()
    for index in data.batches(
        len(split), loop.batch_size, shuffle=False, generator=None, device=split.images.device
    ):
        with loop.autocast():
            loop.model(loop.normalise(on_device(split.images[index], loop.device)))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def evaluate(loop: Loop, split: data.Split, num_classes: int) -> metrics.Evaluation | None:
    """Loss, accuracy and the per-class picture of a split (None when it is empty)."""
    if len(split) == 0:
        return None
    loop.model.eval()
    outputs = []
    for index in data.batches(
        len(split),
        max(loop.batch_size, 256),
        shuffle=False,
        generator=None,
        device=split.images.device,
    ):
        with loop.autocast():
            batch = on_device(split.images[index], loop.device)
            outputs.append(loop.model(loop.normalise(batch)).float())
    logits = torch.cat(outputs)  # (N, classes)
    labels = on_device(split.labels, logits.device)
    loss = float(nn.functional.cross_entropy(logits, labels))
    return metrics.evaluate_logits(
        logits.cpu(), split.labels.cpu(), split.ids, num_classes=num_classes, loss=loss
    )
