"""Classification and transfer learning, as one kind of the driver (trainer/driver.py).

One class per image: the data decoded once into a uint8 tensor, cross-entropy, accuracy, a
confusion matrix; feature extraction trains the classifier on features computed once; k folds
are dealt per class. Epochs, checkpoints, resume and events are the driver's.
"""

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from trainer import data, metrics, registry
from trainer import export as artifacts
from trainer.driver import Prepared, Step, TrainingFailed, iterate, model_card, on_device
from trainer.models import heads
from trainer.spec import JobSpec

KIND = "classification"
FIGURES = ("loss", "acc")  # an evaluation's figures: val_loss, val_acc in the epoch event
WATCH = "val_acc"  # what early stopping and the checkpoint's "best" watch without a setting
FOLD_FIGURE = "accuracy"  # what k folds average (mean_accuracy, std_accuracy)


def prepare(spec: JobSpec, device: torch.device) -> Prepared:
    """Decode the data once, at the model's input size, onto the device."""
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


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The classifier's: fine-tuning trains them at the full rate, the backbone slower."""
    return list(registry.head(model).parameters())


def make_step(p: Prepared, full_model: nn.Module, amp: torch.dtype | None) -> Step:
    """What train_step trains: the whole model, or only its classifier on features computed
    once (feature extraction without augmentation, as Teachable Machine does)."""
    spec = p.spec
    loss_fn = nn.CrossEntropyLoss(label_smoothing=spec.label_smoothing)
    if _features_only(spec):
        normalise = data.Normalise(p.mean, p.std, p.device)
        batch = max(spec.batch_size, 128)
        features = [_features(full_model, s, normalise, batch) for s in (p.train, p.val, p.test)]
        p = copy.copy(p)
        p.train, p.val, p.test = features
        return Step(
            spec, p, registry.head(full_model), _features_of, None, p.device, amp,
            {"loss_fn": loss_fn},
        )  # fmt: skip
    normalise = data.Normalise(p.mean, p.std, p.device, channels_last=p.device.type == "cuda")
    augment = data.Augment(spec.augmentation, p.size) if spec.augmentation.enabled else None

    def inputs(split: data.Split, index: torch.Tensor) -> torch.Tensor:
        return normalise(on_device(split.images[index], p.device))  # (B, C, H, W)

    return Step(spec, p, full_model, inputs, augment, p.device, amp, {"loss_fn": loss_fn})


def train_step(step: Step, index: torch.Tensor, generator: torch.Generator) -> dict:
    """One batch: cross-entropy (what is back-propagated) and the batch's accuracy."""
    x = step.inputs(step.p.train, index)  # (B, C, H, W), or (B, features)
    if step.augment is not None:
        x = step.augment(x, generator)
    y = on_device(step.p.train.labels[index], step.device)  # (B,)
    with step.autocast():
        logits = step.model(x)  # (B, classes)
        loss = step.extra["loss_fn"](logits, y)
    correct = (logits.detach().argmax(dim=1) == y).float().mean()
    return {"loss": loss, "acc": correct}


@torch.no_grad()
def evaluate(step: Step, split: data.Split) -> metrics.Evaluation | None:
    """Loss, accuracy and the per-class picture of a split (None when it is empty)."""
    if len(split) == 0:
        return None
    step.model.eval()
    outputs = []
    for index in iterate(split, max(step.spec.batch_size, 256)):
        with step.autocast():
            outputs.append(step.model(step.inputs(split, index)).float())
    logits = torch.cat(outputs)  # (N, classes)
    labels = on_device(split.labels, logits.device)
    loss = float(nn.functional.cross_entropy(logits, labels))
    return metrics.evaluate_logits(
        logits.cpu(), split.labels.cpu(), split.ids, num_classes=len(step.p.classes), loss=loss
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
        for index in iterate(split, batch):
            model(normalise(on_device(split.images[index], normalise.device)))
    finally:
        hook.remove()
    features = torch.cat(captured) if captured else torch.empty(0, 0)  # (N, features)
    return data.Split(features, split.labels, split.ids)


def _features_of(split: data.Split, index: torch.Tensor) -> torch.Tensor:
    """Features are ready as they are: no normalisation."""
    return split.images[index]


def export(p: Prepared, model: nn.Module, out: Path, result: dict) -> None:
    """model.safetensors, model.torchscript.pt, model.onnx and model_card.json."""
    model.eval()
    example = torch.zeros(1, p.channels, p.size, p.size, device=p.device)
    card = model_card(p, model, result)
    artifacts.write_artifacts(model.float().cpu(), out, example_input=example.cpu(), card=card)


TOP_K = 5  # classes a "try it" answer lists


def predict(model_dir: Path, images: list) -> list[dict]:
    """The five most likely classes of each photo, decoded and normalised as training did:
    [{"top": [{"class", "probability"}, ...]}, ...]."""
    from trainer import inference

    model, card = inference.load(model_dir, KIND)
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))
    pixels = torch.from_numpy(np.stack([data.decode_image(i, size, channels) for i in images]))
    tops = artifacts.predict_topk(model, normalise(pixels), classes=card["classes"], k=TOP_K)
    return [{"top": top} for top in tops]  # pixels: (B, C, S, S) uint8


def score(model_dir: Path, items: list, classes: list[str], keypoints=None):
    """Accuracy and macro F1 on a hidden test set's labelled items (`trainer.scoring`)."""
    from trainer import scoring

    labelled = [item for item in items if item.label is not None]
    return scoring.score_model(
        model_dir, [item.path for item in labelled], [item.label for item in labelled], classes
    )


def folds(p: Prepared, k: int, seed: int):
    """(train, held-out) splits of each fold over training+validation images, stratified."""
    pool = data.Split(
        torch.cat([p.train.images, p.val.images]),
        torch.cat([p.train.labels, p.val.labels]),
        p.train.ids + p.val.ids,
    )
    numbers = fold_numbers(pool.labels.cpu(), k, seed).to(pool.labels.device)
    for fold in range(k):
        held = torch.nonzero(numbers == fold).flatten()
        kept = torch.nonzero(numbers != fold).flatten()
        yield pool.subset(kept), pool.subset(held)


def fold_numbers(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Stratified fold number per image: each class dealt round-robin after a seeded shuffle."""
    numbers = torch.empty_like(labels)
    generator = torch.Generator().manual_seed(seed)
    for label in labels.unique():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        numbers[members] = torch.arange(len(members)) % k
    return numbers
