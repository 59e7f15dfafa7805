"""Keypoints (pose), as one kind of the driver (trainer/driver.py).

Every image shows a figure whose named points (head, left hand, …) are to be found. The data
is decoded once with its people's points scaled to the input size (`trainer.keypoints`); a
batch's points move with its pixels under augmentation, left and right swapping in a mirror
image; the default model (`pose_unet`) finds ONE figure per image, the first annotated one,
as a heat map per keypoint trained with a spatial-softmax loss (`trainer.models.pose_net`);
Keypoint R-CNN finds every person. Evaluation is PCK@0.1 and COCO's OKS AP with the data set's
sigmas (`trainer.keypoint_metrics`), in the original images' pixels. Epochs, checkpoints,
resume and events are the driver's.

The keypoint set is the data's `keypoints` schema (names, skeleton 1-based as COCO writes it,
OKS sigmas); without one, the points are named k1…kN in the annotations' order, with no
skeleton and sigma 0.05 each.
"""

import functools
import json
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from trainer import data, registry
from trainer import export as artifacts
from trainer.driver import Prepared, Step, TrainingFailed, iterate, model_card, on_device
from trainer.keypoint_metrics import KeypointsEvaluation, default_sigmas, evaluate_keypoints
from trainer.keypoints import KeypointAugment, KeypointSplit, keypoint_count, load_split
from trainer.keypoints import inference as people_of
from trainer.models import heads
from trainer.models.pose_net import heatmap_loss, labelled
from trainer.spec import PRETRAINED_SOURCES, JobSpec, KeypointsSpec

KIND = "keypoints"
FIGURES = ("loss", "pck", "oks_ap")  # val_loss, val_pck, val_oks_ap in the epoch event
WATCH = "val_pck"  # what early stopping and the checkpoint's "best" watch without a setting
EVAL_BATCH = 64

HEATMAP_OUTPUTS = (
    "the model's raw output is heat-map logits (B, K, ceil(S/2), ceil(S/2)), one map per "
    "keypoint in the order of `names`, for the image resized to S×S and normalised with the "
    "card's mean and std; the heat-map cell (i, j) is centred on input pixel (2j + 1, 2i + 1). "
    "Decoding (trainer.models.pose_net.decode): the arg-max cell of each map's softmax, moved by "
    "a parabola through the log-probabilities of its neighbours (sub-pixel), score = the "
    "softmax probability in the peak's 3×3 cells; scale x by width/S and y by height/S. One "
    "figure per image"
)
RCNN_OUTPUTS = (
    "the model returns per image boxes (n, 4) xyxy, scores (n,), labels (n,) 0 = person, "
    "keypoints (n, K, 3) x, y, 1 and keypoints_scores (n, K) heat-map logits, in input pixels "
    "(the image resized to S×S and normalised); scale x by width/S and y by height/S"
)


def _schema(spec: JobSpec, items: list) -> dict[str, Any]:
    """{"names", "skeleton" (1-based), "sigmas"}: the data's schema, or k1…kN."""
    given = spec.data.keypoints
    if given is not None:
        names = list(given.names)
        skeleton = [list(pair) for pair in given.skeleton]
        sigmas = list(given.sigmas) if given.sigmas else default_sigmas(names)
    else:
        names = [f"k{i}" for i in range(1, keypoint_count(items) + 1)]
        skeleton, sigmas = [], default_sigmas(names)
    return {"names": names, "skeleton": skeleton, "sigmas": sigmas}


def prepare(spec: JobSpec, device: torch.device) -> Prepared:
    """Decode the data once, at the model's input size, with each image's people and size."""
    info = registry.get_info(str(spec.model))
    size = spec.input_size or info.default_input_size
    channels = spec.channels or info.default_channels
    items = _manifest_items(spec)
    schema = _schema(spec, items)
    if not schema["names"]:
        raise TrainingFailed("No image has keypoints: place some points first.")
    by_split = {name: [i for i in items if i.split == name] for name in ("train", "val", "test")}
    if not by_split["train"]:
        raise TrainingFailed("There are no training images in the data.")
    count = len(schema["names"])
    splits = {
        name: load_split(part, spec.data.root, size, channels, count).to(device)
        for name, part in by_split.items()
    }
    if not splits["train"].figures:
        raise TrainingFailed("The training images have no keypoints: place some points first.")
    pretrained = spec.transfer.source in PRETRAINED_SOURCES and spec.transfer.mode != "scratch"
    if pretrained and channels == 3:
        mean, std = list(data.IMAGENET_MEAN), list(data.IMAGENET_STD)
    else:
        mean, std = data.channel_stats(splits["train"].images.cpu())
    return Prepared(
        spec, device, size, channels, list(spec.data.classes), splits["train"], splits["val"],
        splits["test"], mean, std, extra={"keypoints": schema},
    )  # fmt: skip


def _manifest_items(spec: JobSpec) -> list:
    if spec.data.items:
        return list(spec.data.items)
    from trainer.spec import load_manifest  # only when the manifest is a file

    if spec.data.manifest is None:
        raise data.DataError("The spec names no images (neither items nor a manifest file).")
    return load_manifest(spec.data.manifest, classes=spec.data.classes)


def build_model(p: Prepared) -> nn.Module:
    """The pose model of the spec (one output per keypoint), transfer source and mode applied."""
    spec, transfer = p.spec, p.spec.transfer
    names = p.extra["keypoints"]["names"]
    use_source = transfer.mode != "scratch" and transfer.source != "none"
    # "imagenet" or "coco": torchvision's weights, from the local cache only; else False
    weights = transfer.source if use_source and transfer.source in PRETRAINED_SOURCES else False
    model = registry.build(
        str(spec.model),
        num_classes=len(names),  # for a pose model: its keypoints
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
        p.extra["head"] = load_transfer_source(model, transfer.source, names).event_fields()
    if use_source and transfer.mode == "feature_extraction":
        in_head = {id(q) for q in head_parameters(model)}
        for parameter in model.parameters():
            if id(parameter) not in in_head:
                parameter.requires_grad_(False)
    # channels_last on the CPU too: oneDNN's convolutions run the U-Net faster in it.
    return model.to(p.device).to(memory_format=torch.channels_last)


def source_keypoints(path: str) -> list[str] | None:
    """The keypoint names an earlier run's weights were trained for (its model card's)."""
    try:
        card = json.loads(Path(path).with_name(artifacts.CARD).read_text(encoding="utf-8"))
        names = card["keypoints"]["names"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def load_transfer_source(model: nn.Module, path: str, names: list[str]) -> heads.HeadPlan:
    """An earlier keypoints run's weights: everything but the per-keypoint tensors, and those
    too (moved to the new order by name) when it learnt the same keypoint names; else they
    start new, at zero (every heat map flat: no place favoured)."""
    plan = heads.plan_head(source_keypoints(path), names)
    per_keypoint: dict[str, int] = model.keypoint_keys()  # type: ignore[operator]
    own = model.state_dict()
    artifacts.load_safetensors(model, path, skip=list(per_keypoint))
    stored = artifacts.load_tensors(path, list(per_keypoint)) if plan.head != "new" else {}
    if plan.head != "new" and any(
        key not in stored or stored[key].shape != own[key].shape for key in per_keypoint
    ):
        plan = heads.HeadPlan("new", heads.SHAPE_DIFFERS)
    with torch.no_grad():
        for key, dim in per_keypoint.items():
            if plan.head == "new":
                if key.endswith("weight"):
                    own[key].zero_()
            else:
                own[key].copy_(stored[key].index_select(dim, torch.tensor(plan.order)))
    return plan


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The model's last layers: fine-tuning trains them at the full rate, the backbone slower."""
    return list(model.head_parameters())  # type: ignore[operator]


def _is_rcnn(model: nn.Module) -> bool:
    return hasattr(model, "detect")


def make_step(p: Prepared, model: nn.Module, amp: torch.dtype | None) -> Step:
    """Batches normalised on the device; points augmented with their pixels when asked."""
    spec = cast(KeypointsSpec, p.spec)
    normalise = data.Normalise(p.mean, p.std, p.device, channels_last=True)
    names = p.extra["keypoints"]["names"]
    augment = (
        KeypointAugment(spec.augmentation, p.size, names) if spec.augmentation.enabled else None
    )

    def inputs(split: KeypointSplit, index: torch.Tensor) -> torch.Tensor:
        return normalise(on_device(split.images[index], p.device))  # (B, C, S, S)

    extra = {"normalise": normalise, "sigma": spec.sigma, "rcnn": _is_rcnn(model)}
    return Step(spec, p, model, inputs, augment, p.device, amp, extra)


def train_step(step: Step, index: torch.Tensor, generator: torch.Generator) -> dict:
    """One batch: {"loss"} (the heat maps' spatial-softmax loss, or Keypoint R-CNN's sum)."""
    split: KeypointSplit = step.p.train
    images = on_device(split.images[index], step.device)  # (B, C, S, S) uint8
    if step.extra["rcnn"]:
        picked = index.tolist()
        people = [split.people[i] for i in picked]
        boxes = [split.boxes[i] for i in picked]
        if step.augment is not None:
            images, people, boxes = step.augment(images, people, boxes, generator)
        targets = [{"boxes": b, "keypoints": k} for b, k in zip(boxes, people, strict=True)]
        with step.autocast():
            return {"loss": step.model.losses(step.extra["normalise"](images), targets)["loss"]}  # type: ignore[operator]
    points = split.points[index]  # (B, K, 3) the target figures
    if step.augment is not None:
        figures = list(points[:, None])  # per image (1, K, 3)
        none = [points.new_zeros(0, 4)] * len(figures)
        images, figures, _ = step.augment(images, figures, none, generator)
        points = torch.cat(figures)  # (B, K, 3)
    with step.autocast():
        logits = step.model(step.extra["normalise"](images))  # (B, K, S/2, S/2)
    return {"loss": heatmap_loss(logits, on_device(points, step.device), step.extra["sigma"])}


@torch.no_grad()
def evaluate(step: Step, split: KeypointSplit) -> KeypointsEvaluation | None:
    """PCK@0.1, OKS AP, per-keypoint error and per-image rows of a split (None when empty)."""
    if len(split) == 0:
        return None
    model, schema = step.model, step.p.extra["keypoints"]
    model.eval()
    found: list[list[dict]] = []
    loss_sum, counted = 0.0, 0.0
    for index in iterate(split, max(step.spec.batch_size, EVAL_BATCH)):
        x = step.inputs(split, index)
        sizes = split.sizes[index.cpu()].tolist()
        heat = None
        if not step.extra["rcnn"]:  # the heat maps give the loss and the people
            with step.autocast():
                heat = model(x)  # (B, K, S/2, S/2)
            points = split.points[index]
            weight = float(labelled(points, heat.shape[-2], heat.shape[-1]).sum())
            loss_sum += float(heatmap_loss(heat, points, step.extra["sigma"])) * weight
            counted += weight
        found += people_of.find_people(model, x, sizes, heatmaps=heat)
    return evaluate_keypoints(
        split.ids,
        split.sizes.tolist(),
        split.truth,
        found,
        schema["names"],
        schema["sigmas"],
        loss=loss_sum / counted if counted else None,
    )


def export(p: Prepared, model: nn.Module, out: Path, result: dict) -> None:
    """model.safetensors, TorchScript, ONNX and model_card.json with the keypoint set."""
    model.eval()
    schema = p.extra["keypoints"]
    example = torch.zeros(1, p.channels, p.size, p.size)
    exporters: dict[str, artifacts.Exporter]
    if _is_rcnn(model):
        exporters, outputs = model.export_formats(), RCNN_OUTPUTS  # type: ignore[operator]
    else:
        onnx = functools.partial(artifacts.export_onnx, output_names=("heatmaps",))
        exporters = {"torchscript": artifacts.export_torchscript, "onnx": onnx}
        outputs = HEATMAP_OUTPUTS
    card = model_card(p, model, result)
    card["build"] = {"num_classes": len(schema["names"])}  # the heat maps: one per keypoint
    card["keypoints"] = {
        "names": schema["names"],
        "skeleton": schema["skeleton"],  # 1-based pairs, as COCO writes them
        "edges": [[a - 1, b - 1] for a, b in schema["skeleton"]],  # the same, 0-based
        "sigmas": schema["sigmas"],  # OKS's per-keypoint spread
        "format": "x, y in the original image's pixels, and a score in [0, 1]",
        "outputs": outputs,
    }
    artifacts.write_artifacts(
        model.float().cpu(), out, example_input=example, card=card, exporters=exporters
    )
    model.to(p.device)


def predict(model_dir: Path, images: list) -> list[dict]:
    """The people a run's model finds in each photo (docs/architecture.md, "Try it answers")."""
    return people_of.predict(model_dir, images)


def score(model_dir: Path, items: list, classes: list[str], keypoints: Any = None):
    """OKS AP (what a keypoints assignment ranks by), PCK and per-keypoint error on a hidden
    test set (`keypoints`: its KeypointSchema or DataSpec), the keypoints matched by name."""
    return people_of.score(model_dir, items, classes, keypoints)
