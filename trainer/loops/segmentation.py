"""Semantic segmentation (a class for every pixel), as one kind of the driver (trainer/driver.py).

The data is decoded once with each image's class map at the input size (`trainer.segmentation`);
under augmentation a batch's maps move with its pixels; the model (the lecture's U-Net by
default, `trainer.models.unet`) gives logits (B, classes + 1, S, S), channel 0 the background;
the loss is cross-entropy + dice_weight × soft-Dice loss; evaluation is IoU and Dice per class
and their means over one confusion matrix of pixels (`trainer.segmentation_metrics`).
torchvision's Mask R-CNN (instance masks) trains on each object's own mask, its losses are
torchvision's, and its objects are painted into a class map for the same figures, plus COCO's
segm AP. Epochs, checkpoints, resume and events are the driver's.
"""

from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer import data, registry
from trainer import export as artifacts
from trainer.driver import Prepared, Step, TrainingFailed, iterate, model_card, on_device
from trainer.loops.detection import load_transfer_source
from trainer.models import heads
from trainer.models.tv_segmentation import MASK_RCNN
from trainer.segmentation import IGNORE, MaskAugment, SegmentationSplit, load_split
from trainer.segmentation.inference import paint
from trainer.segmentation_metrics import (
    SegmentationEvaluation,
    class_figures,
    confusion,
    instance_rle,
    prediction_row,
    segm_ap,
)
from trainer.spec import PRETRAINED_SOURCES, JobSpec, SegmentationSpec

KIND = "segmentation"
FIGURES = ("loss", "miou", "dice", "pixel_accuracy")  # val_loss, val_miou, … in the epoch event
WATCH = "val_miou"  # what early stopping and the checkpoint's "best" watch without a setting
EVAL_BATCH = 64
INSTANCE_MODELS = (MASK_RCNN.name,)  # trained on each object's own mask
DICE_SMOOTH = 1.0  # keeps the soft Dice of a class absent from a batch at 1 when none is predicted

# What the model card says about the masks (the raw outputs differ by model family).
SEMANTIC_OUTPUTS = (
    "the model's output is logits (B, classes + 1, S, S) for the image resized to S×S and "
    "normalised with the card's mean and std; the arg-max over channels is the class map "
    "(channel 0 background, channel i + 1 the card's class i), at S×S"
)
INSTANCE_OUTPUTS = (
    "the model returns per image boxes (K, 4) xyxy in input pixels, labels (K,) 0-based, "
    "scores (K,) and masks (K, 1, S, S) probabilities; the class map paints objects scoring "
    "≥ 0.5 over their pixels ≥ 0.5, the surer object last"
)


def prepare(spec: JobSpec, device: torch.device) -> Prepared:
    """Decode the data once, at the model's input size, with each image's class map."""
    info = registry.get_info(str(spec.model))
    size = spec.input_size or info.default_input_size
    channels = spec.channels or info.default_channels
    items = _manifest_items(spec)
    by_split = {name: [i for i in items if i.split == name] for name in ("train", "val", "test")}
    if not by_split["train"]:
        raise TrainingFailed("There are no training images in the data.")
    instances = spec.model in INSTANCE_MODELS
    splits = {
        name: load_split(part, spec.data.root, size, channels, instances=instances).to(device)
        for name, part in by_split.items()
    }
    if not splits["train"].labelled_pixels():
        raise TrainingFailed("The training images have no outlined objects: draw some first.")
    pretrained = spec.transfer.source in PRETRAINED_SOURCES and spec.transfer.mode != "scratch"
    if pretrained and channels == 3:
        mean, std = list(data.IMAGENET_MEAN), list(data.IMAGENET_STD)
    else:
        mean, std = data.channel_stats(splits["train"].images.cpu())
    return Prepared(
        spec, device, size, channels, list(spec.data.classes), splits["train"], splits["val"],
        splits["test"], mean, std,
    )  # fmt: skip


def _manifest_items(spec: JobSpec) -> list:
    if spec.data.items:
        return list(spec.data.items)
    from trainer.spec import load_manifest  # only when the manifest is a file

    if spec.data.manifest is None:
        raise data.DataError("The spec names no images (neither items nor a manifest file).")
    return load_manifest(spec.data.manifest, classes=spec.data.classes)


def build_model(p: Prepared) -> nn.Module:
    """The segmenter of the spec, with the transfer source and mode applied."""
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
        **spec.build_options(),
    )
    if use_source and transfer.source in PRETRAINED_SOURCES:
        p.extra["head"] = heads.HeadPlan("new", heads.CLASSES_DIFFER).event_fields()
        weights_stats = getattr(model, "weights_mean_std", None)
        if weights_stats is not None:  # the statistics the pretrained weights were trained on
            mean, std = weights_stats
            p.mean = list(mean) if p.channels == 3 else [sum(mean) / 3]
            p.std = list(std) if p.channels == 3 else [sum(std) / 3]
    elif use_source:
        # An earlier run: everything but the per-class output rows, and those too (reordered
        # by name, the background's row first) when it knew the same classes.
        p.extra["head"] = load_transfer_source(model, transfer.source, p.classes).event_fields()
    if use_source and transfer.mode == "feature_extraction":
        in_head = {id(q) for q in head_parameters(model)}
        for parameter in model.parameters():
            if id(parameter) not in in_head:
                parameter.requires_grad_(False)
    return model.to(p.device)


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The decoder / segmentation head: fine-tuning trains it at the full rate."""
    return list(model.head_parameters())  # type: ignore[operator]


def make_step(p: Prepared, model: nn.Module, amp: torch.dtype | None) -> Step:
    """Batches normalised on the device; class maps augmented with their pixels when asked."""
    spec = p.spec
    normalise = data.Normalise(p.mean, p.std, p.device)
    augment = MaskAugment(spec.augmentation, p.size) if spec.augmentation.enabled else None

    def inputs(split: SegmentationSplit, index: Tensor) -> Tensor:
        return normalise(on_device(split.images[index], p.device))  # (B, C, S, S)

    return Step(spec, p, model, inputs, augment, p.device, amp, {"normalise": normalise})


def segmentation_loss(logits: Tensor, target: Tensor, dice_weight: float) -> dict[str, Tensor]:
    """{"loss": ce + dice_weight × dice, "ce", "dice"}: pixel cross-entropy, and the soft-Dice
    loss (1 − the mean over the foreground classes of 2·Σ p·t / (Σ p + Σ t), summed over the
    batch's pixels). Dice looks at each class's region as a whole, so a small object counts as
    much as a large one and "all background" stops being a cheap answer.

    logits (B, K, S, S) with K = classes + 1; target (B, S, S), IGNORE where nothing counts."""
    logits = logits.float()
    target = target.long()  # (B, S, S)
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    valid = (target != IGNORE).unsqueeze(1)  # (B, 1, S, S)
    probabilities = logits.softmax(dim=1) * valid  # (B, K, S, S)
    truth = F.one_hot(target.clamp(min=0), logits.shape[1]).permute(0, 3, 1, 2) * valid
    overlap = (probabilities * truth).sum(dim=(0, 2, 3))[1:]  # (K - 1,) foreground classes
    total = (probabilities.sum(dim=(0, 2, 3)) + truth.sum(dim=(0, 2, 3)))[1:]
    dice = 1 - ((2 * overlap + DICE_SMOOTH) / (total + DICE_SMOOTH)).mean()
    return {"loss": ce + dice_weight * dice, "ce": ce, "dice": dice}


def train_step(step: Step, index: Tensor, generator: torch.Generator) -> dict:
    """One batch: the loss and its parts (ce, dice; Mask R-CNN: torchvision's five)."""
    split: SegmentationSplit = step.p.train
    images = on_device(split.images[index], step.device)  # (B, C, S, S) uint8
    masks = split.masks[index]  # (B, S, S) int16
    objects = None if split.instances is None else [split.instances[i] for i in index.tolist()]
    if step.augment is not None:
        images, masks, objects = step.augment(images, masks, generator, objects)
    x = step.extra["normalise"](images)  # (B, C, S, S) float
    with step.autocast():
        if objects is not None:
            return step.model.losses(x, [one.target() for one in objects])  # type: ignore[operator]
        logits = step.model(x)  # (B, classes + 1, S, S)
    return segmentation_loss(logits, masks, cast(SegmentationSpec, step.spec).dice_weight)


@torch.no_grad()
def evaluate(step: Step, split: SegmentationSplit) -> SegmentationEvaluation | None:
    """IoU, Dice and pixel accuracy of a split, per class and averaged, and per image (None when
    the split is empty); segm AP too for an instance model."""
    if len(split) == 0:
        return None
    spec, model = cast(SegmentationSpec, step.spec), step.model
    model.eval()
    names = ["background", *step.p.classes]
    channels = len(names)
    matrix = torch.zeros(channels, channels, dtype=torch.int64, device=split.device)
    maps: list[Tensor] = []
    loss_sum = 0.0
    instance = split.instances is not None
    truth_objects: list[list[dict]] = []
    found_objects: list[list[dict]] = []
    for index in iterate(split, max(spec.batch_size, EVAL_BATCH)):
        x = step.inputs(split, index)
        target = split.masks[index]  # (B, S, S)
        with step.autocast():
            if instance:
                found = model.segment(x)  # type: ignore[operator]
                predicted = torch.stack([paint(one, split.input_size) for one in found])
            else:
                logits = model(x)  # (B, classes + 1, S, S)
        if instance:
            for i, one in zip(index.tolist(), found, strict=True):
                truth_objects.append(_objects(split.instances[i]))  # type: ignore[index]
                found_objects.append(_found(one))
        else:
            parts = segmentation_loss(logits, target, spec.dice_weight)
            loss_sum += float(parts["loss"]) * len(index)
            predicted = logits.argmax(dim=1)  # (B, S, S)
        matrix += confusion(target, predicted, channels)
        maps.append(predicted.to("cpu", torch.int16))
    figures = class_figures(matrix, names)
    truth_maps = split.masks.cpu().numpy()
    predicted_maps = torch.cat(maps).numpy()
    rows = [
        prediction_row(image_id, size, truth_maps[i], predicted_maps[i], channels)
        for i, (image_id, size) in enumerate(zip(split.ids, split.sizes.tolist(), strict=True))
    ]
    ap, ap50 = segm_ap(truth_objects, found_objects, step.p.classes) if instance else (None, None)
    return SegmentationEvaluation(
        loss=None if instance else loss_sum / len(split),
        images=len(split),
        segm_ap=ap,
        segm_ap50=ap50,
        predictions=rows,
        **figures,
    )


def _objects(instances: Any) -> list[dict]:
    """An image's true objects as segm AP wants them (crowd regions marked)."""
    return [
        {"rle": instance_rle(mask), "label": int(label), "crowd": bool(crowd)}
        for mask, label, crowd in zip(
            instances.masks, instances.labels, instances.crowd, strict=True
        )
    ]


def _found(objects: dict[str, Tensor]) -> list[dict]:
    """An image's found objects (their masks at 0.5) as segm AP wants them."""
    return [
        {"rle": instance_rle(mask >= 0.5), "label": int(label), "score": float(score)}
        for mask, label, score in zip(
            objects["masks"], objects["labels"], objects["scores"], strict=True
        )
    ]


def export(p: Prepared, model: nn.Module, out: Path, result: dict) -> None:
    """model.safetensors (class list in its metadata), TorchScript, ONNX and model_card.json."""
    model.eval()
    example = torch.zeros(1, p.channels, p.size, p.size)
    card = model_card(p, model, result)
    card["build"] = p.spec.build_options()  # what trainer.scoring.load_model rebuilds it with
    instance = hasattr(model, "segment")
    card["masks"] = {
        "channels": ["background", *p.classes],  # output channel i is channels[i]
        "size": [p.size, p.size],
        "format": "class map (S, S): 0 background, i + 1 the card's class i",
        "outputs": INSTANCE_OUTPUTS if instance else SEMANTIC_OUTPUTS,
    }
    exporters: dict[str, artifacts.Exporter] | None = None
    if instance:
        exporters = model.export_formats()  # type: ignore[operator]
    artifacts.write_artifacts(
        model.float().cpu(), out, example_input=example, card=card, exporters=exporters
    )
    model.to(p.device)


def predict(model_dir: Path, images: list) -> list[dict]:
    """Try it: per photo its class map at the model's input size, as COCO RLE per class, and
    each class's share of the pixels (trainer.segmentation.inference.segment_images)."""
    from trainer import inference
    from trainer.segmentation.inference import segment_images

    model, card = inference.load(model_dir, KIND)
    return segment_images(model, card, images)


def score(
    model_dir: Path, items: list, classes: list[str], spec_data: Any = None
) -> SegmentationEvaluation:
    """mIoU (what a segmentation assignment ranks by), Dice and pixel accuracy on a hidden test
    set; its item paths are under `spec_data.root` when the data section gives one."""
    from trainer import inference
    from trainer.segmentation.inference import score_segmenter

    model, card = inference.load(model_dir, KIND)
    return score_segmenter(model, card, items, classes, root=getattr(spec_data, "root", None))
