"""Object detection, as one kind of the driver (trainer/driver.py).

Every image has any number of objects, each a box and a class. The data is decoded once with
its boxes scaled to the input size (`trainer.detection`); a batch's boxes move with its pixels
under augmentation; the detector (`trainer.models.detector.Detector`) returns its losses as a
dict; evaluation is COCO's mAP (`trainer.detection_metrics`) with boxes mapped back to the
original images' pixels. Epochs, checkpoints, resume and events are the driver's.
"""

import functools
from pathlib import Path
from typing import cast

import torch
from torch import nn

from trainer import data, registry
from trainer import export as artifacts
from trainer.detection import BoxAugment, DetectionSplit, load_split, to_original
from trainer.detection_metrics import DetectionEvaluation, evaluate_detections
from trainer.driver import Prepared, Step, TrainingFailed, iterate, model_card, on_device
from trainer.models import heads
from trainer.spec import PRETRAINED_SOURCES, DetectionSpec, JobSpec

KIND = "detection"
FIGURES = ("loss", "map50", "map")  # val_loss, val_map50, val_map in the epoch event
WATCH = "val_map50"  # what early stopping and the checkpoint's "best" watch without a setting
EVAL_BATCH = 64

# What the model card says about boxes (the raw outputs differ by detector family).
BOX_FORMAT = "xywh, original image pixels"
CENTERNET_OUTPUTS = (
    "the model's raw outputs are heat-map logits (B, classes, S/4, S/4), size (B, 2, S/4, S/4) "
    "and offset (B, 2, S/4, S/4) at stride 4, for the image resized to S×S and normalised with "
    "the card's mean and std; trainer.models.centernet.decode turns them into xyxy boxes in "
    "input pixels, and trainer.detection.to_original into xywh original pixels"
)
TORCHVISION_OUTPUTS = (
    "the model returns boxes (K, 4) xyxy in input pixels (the image resized to S×S and "
    "normalised), scores (K,) and labels (K,) 0-based; scale x by width/S and y by height/S"
)


def prepare(spec: JobSpec, device: torch.device) -> Prepared:
    """Decode the data once, at the model's input size, with each image's boxes and size."""
    info = registry.get_info(str(spec.model))
    size = spec.input_size or info.default_input_size
    channels = spec.channels or info.default_channels
    items = _manifest_items(spec)
    by_split = {name: [i for i in items if i.split == name] for name in ("train", "val", "test")}
    if not by_split["train"]:
        raise TrainingFailed("There are no training images in the data.")
    splits = {
        name: load_split(part, spec.data.root, size, channels).to(device)
        for name, part in by_split.items()
    }
    if not splits["train"].objects:
        raise TrainingFailed("The training images have no boxes: draw some objects first.")
    pretrained = spec.transfer.source in PRETRAINED_SOURCES and spec.transfer.mode != "scratch"
    if pretrained and channels == 3:
        mean, std = list(data.IMAGENET_MEAN), list(data.IMAGENET_STD)
    else:
        mean, std = data.channel_stats(splits["train"].images.cpu())
    classes = list(spec.data.classes)
    return Prepared(
        spec, device, size, channels, classes, splits["train"], splits["val"], splits["test"],
        mean, std,
    )  # fmt: skip


def _manifest_items(spec: JobSpec) -> list:
    if spec.data.items:
        return list(spec.data.items)
    from trainer.spec import load_manifest  # only when the manifest is a file

    if spec.data.manifest is None:
        raise data.DataError("The spec names no images (neither items nor a manifest file).")
    return load_manifest(spec.data.manifest, classes=spec.data.classes)


def build_model(p: Prepared) -> nn.Module:
    """The detector of the spec, with the transfer source and mode applied."""
    spec, transfer = p.spec, p.spec.transfer
    use_source = transfer.mode != "scratch" and transfer.source != "none"
    # "imagenet" or "coco": torchvision's weights, from the local cache only; else False
    weights = transfer.source if use_source and transfer.source in PRETRAINED_SOURCES else False
    model = registry.build(
        str(spec.model),
        num_classes=len(p.classes),
        in_channels=p.channels,
        input_size=p.size,
        pretrained=weights,
    )
    if use_source and transfer.source in PRETRAINED_SOURCES:
        p.extra["head"] = heads.HeadPlan("new", heads.CLASSES_DIFFER).event_fields()
        weights_stats = getattr(model, "weights_mean_std", None)
        if weights_stats is not None:  # the statistics the pretrained weights were trained on
            mean, std = weights_stats
            p.mean = list(mean) if p.channels == 3 else [sum(mean) / 3]
            p.std = list(std) if p.channels == 3 else [sum(std) / 3]
    elif use_source:
        p.extra["head"] = load_transfer_source(model, transfer.source, p.classes).event_fields()
    if use_source and transfer.mode == "feature_extraction":
        in_head = {id(q) for q in head_parameters(model)}
        for parameter in model.parameters():
            if id(parameter) not in in_head:
                parameter.requires_grad_(False)
    # channels_last on the CPU too: oneDNN's convolutions run this small model about twice as
    # fast in it (measured on 2 cores; the classification loop keeps it for CUDA).
    return model.to(p.device).to(memory_format=torch.channels_last)


def load_transfer_source(model: nn.Module, path: str, classes: list[str]) -> heads.HeadPlan:
    """An earlier detection run's weights: everything but the per-class rows, and those too
    (reordered by name) when it knew the same classes; else the class rows start new."""
    plan = heads.plan_head(artifacts.source_classes(path), classes)
    listed = getattr(model, "class_keys", None)
    class_keys: list[str] = listed() if callable(listed) else []
    if not class_keys:  # a detector that cannot say which rows are per class: all or nothing
        if plan.head == "kept":
            artifacts.load_safetensors(model, path)
            return plan
        artifacts.load_safetensors(model, path, strict=False, skip=_differing(model, path))
        return heads.HeadPlan("new", plan.reason or heads.CLASSES_DIFFER)
    own = model.state_dict()
    artifacts.load_safetensors(model, path, skip=class_keys)
    stored = artifacts.load_tensors(path, class_keys) if plan.head != "new" else {}
    if plan.head != "new" and any(
        key not in stored or stored[key].shape != own[key].shape for key in class_keys
    ):
        plan = heads.HeadPlan("new", heads.SHAPE_DIFFERS)
    with torch.no_grad():
        for key in class_keys:
            if plan.head == "new":
                # A new class map that favours no class: every cell starts at the same low
                # score (the bias the model was built with), whatever the features say.
                if key.endswith("weight"):
                    own[key].zero_()
            else:
                rows = list(plan.order)  # rows by class name: one per class, or the
                layout = getattr(model, "class_rows", None)  # detector's own layout
                if callable(layout):
                    rows = layout(key, rows)
                own[key].copy_(stored[key][torch.tensor(rows)])
    return plan


def _differing(model: nn.Module, path: str) -> list[str]:
    """Keys the file holds with another shape than the model's (another class count)."""
    own = model.state_dict()
    stored = artifacts.load_tensors(path, list(own))
    return [key for key, tensor in stored.items() if tensor.shape != own[key].shape]


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The detector's heads: fine-tuning trains them at the full rate, the backbone slower."""
    return list(model.head_parameters())  # type: ignore[operator]


def make_step(p: Prepared, model: nn.Module, amp: torch.dtype | None) -> Step:
    """Batches normalised on the device; boxes augmented with their pixels when asked."""
    spec = p.spec
    normalise = data.Normalise(p.mean, p.std, p.device, channels_last=True)
    augment = BoxAugment(spec.augmentation, p.size) if spec.augmentation.enabled else None

    def inputs(split: DetectionSplit, index: torch.Tensor) -> torch.Tensor:
        return normalise(on_device(split.images[index], p.device))  # (B, C, S, S)

    return Step(spec, p, model, inputs, augment, p.device, amp, {"normalise": normalise})


def train_step(step: Step, index: torch.Tensor, generator: torch.Generator) -> dict:
    """One batch: the detector's losses ("loss" and its parts)."""
    split: DetectionSplit = step.p.train
    images = on_device(split.images[index], step.device)  # (B, C, S, S) uint8
    picked = index.tolist()
    boxes = [split.boxes[i] for i in picked]
    labels = [split.labels[i] for i in picked]
    if step.augment is not None:
        images, boxes, labels = step.augment(images, boxes, labels, generator)
    x = step.extra["normalise"](images)  # (B, C, S, S) float
    targets = [
        {"boxes": on_device(b, step.device), "labels": on_device(c, step.device)}
        for b, c in zip(boxes, labels, strict=True)
    ]
    with step.autocast():
        return step.model.losses(x, targets)  # type: ignore[operator]


@torch.no_grad()
def evaluate(step: Step, split: DetectionSplit) -> DetectionEvaluation | None:
    """mAP, per-class AP, PR curves and per-image errors of a split (None when it is empty)."""
    if len(split) == 0:
        return None
    spec, model = cast(DetectionSpec, step.spec), step.model
    model.eval()
    both = getattr(model, "evaluate_batch", None)  # losses too, where the detector has them
    limits = {"score_threshold": spec.score_threshold, "max_detections": spec.max_detections}
    truth, found = [], []
    loss_sum, counted = 0.0, 0
    for index in iterate(split, max(spec.batch_size, EVAL_BATCH)):
        x = step.inputs(split, index)
        with step.autocast():
            if both is not None:
                parts, detections = both(x, split.targets(index), **limits)
                if "loss" in parts:  # torchvision's detectors have none in evaluation
                    loss_sum += float(parts["loss"]) * len(index)
                    counted += len(index)
            else:
                detections = model.detect(x, **limits)  # type: ignore[operator]
        for i, one in zip(index.tolist(), detections, strict=True):
            width, height = split.sizes[i].tolist()
            found.append(
                {
                    "boxes": to_original(one["boxes"], width, height, split.input_size),
                    "scores": one["scores"].float().tolist(),
                    "labels": one["labels"].tolist(),
                }
            )
            truth.append(
                {
                    "boxes": to_original(split.boxes[i], width, height, split.input_size),
                    "labels": split.labels[i].tolist(),
                }
            )
    return evaluate_detections(
        split.ids,
        split.sizes.tolist(),
        truth,
        found,
        step.p.classes,
        loss=loss_sum / counted if counted else None,
        max_detections=spec.max_detections,
    )


def _exporters(model: nn.Module) -> tuple[dict[str, artifacts.Exporter], str]:
    """How to export this detector, and what its exported outputs are (for the card)."""
    if type(model).__module__ == "trainer.models.centernet":
        onnx = functools.partial(artifacts.export_onnx, output_names=("heatmap", "size", "offset"))
        return {"torchscript": artifacts.export_torchscript, "onnx": onnx}, CENTERNET_OUTPUTS
    from trainer.models import tv_detectors  # torchvision's detectors export their own way

    exporters = cast(dict[str, artifacts.Exporter], tv_detectors.export_formats(model))
    return exporters, TORCHVISION_OUTPUTS


def export(p: Prepared, model: nn.Module, out: Path, result: dict) -> None:
    """model.safetensors (class list in its metadata), TorchScript, ONNX and model_card.json."""
    spec = cast(DetectionSpec, p.spec)
    model.eval()
    example = torch.zeros(1, p.channels, p.size, p.size)
    exporters, outputs = _exporters(model)
    card = model_card(p, model, result)
    card["boxes"] = {
        "format": BOX_FORMAT,
        "outputs": outputs,
        "score_threshold": spec.score_threshold,
        "max_detections": spec.max_detections,
    }
    artifacts.write_artifacts(
        model.float().cpu(), out, example_input=example, card=card, exporters=exporters
    )
    model.to(p.device)


def predict(model_dir: Path, images: list) -> list[dict]:
    """The objects a run's detector finds in each photo (scores ≥ TRY_IT_SCORE):
    [{"boxes": [{"box": [x, y, w, h] photo pixels, "score", "label", "class"}], "width",
    "height"}, ...]."""
    from trainer import inference
    from trainer.detection.inference import TRY_IT_SCORE, detect_images

    model, card = inference.load(model_dir, KIND)
    found = detect_images(model, card, images, score_threshold=TRY_IT_SCORE)
    return [
        {"boxes": boxes, "width": image.width, "height": image.height}
        for image, boxes in zip(images, found, strict=True)
    ]


def score(model_dir: Path, items: list, classes: list[str], keypoints=None):
    """mAP@0.5 (what a detection assignment ranks by) and mAP@0.5:0.95 on a hidden test set."""
    from trainer.detection.inference import score_detector

    return score_detector(model_dir, items, classes)
