"""torchvision's detectors (Faster R-CNN, RetinaNet, FCOS, SSDlite) as Manabi Detectors, for GPU
workers. Training from scratch on the 2-core server (batches of 4, default sizes) they manage
about 0.3 images/s (Faster R-CNN ResNet-50 at 512), 1 (RetinaNet, FCOS at 512), 2 (Faster R-CNN
MobileNetV3 at 320) and 22 (SSDlite at 320); the catalog's cpu_note says so in the picker.

Each is torchvision's own model inside a small adapter that speaks the Detector interface:
targets with 0-based labels and xyxy boxes in input pixels, `losses` summed into "loss" under
torchvision's own part names, `detect` with the spec's score threshold and detection count.

Two decisions make them fit the detection loop:
- torchvision's transform (GeneralizedRCNNTransform) neither resizes nor normalises: its
  min/max size is the input size (a square image of that size keeps its pixels; the boxes come
  back in the same pixels) and its mean/std are 0/1, because the loop has already normalised.
  `weights_mean_std` says which statistics pretrained weights expect (ImageNet's, or SSDlite's
  [-1, 1] scaling), for the loop to normalise with when it starts from them.
- Weights come only from torchvision's cache, `$TORCH_HOME/hub/checkpoints/<file name>`, where
  an administrator puts them; nothing is downloaded. torchvision's builders still load them (so
  each gets the architecture its weights were trained with: frozen BatchNorm, SSDlite's tail,
  COCO's 91 classes), but through `_local_weights`, which reads the file with
  `torch.load(weights_only=True)` and never reaches the network.

Exports (`export_formats`): TorchScript by `torch.jit.script` (tracing would freeze the number
of boxes), images → per image {"boxes", "scores", "labels" 0-based}; ONNX (opset 17; Faster
R-CNN's RoIAlign needs 11 or later) by the TorchScript-based exporter, one image → "boxes",
"scores", "labels". With torch 2.14 and torchvision 0.29 all five export both ways, and the
ONNX files give PyTorch's detections in onnxruntime 1.23 (checked by hand on a second image
too; the tests run onnx.checker only, onnxruntime not being a dependency). Both keep the score
threshold and detection count that `detect` was last given.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainer.models import WeightsUnavailable
from trainer.models.detector import Detection, Detector, Target
from trainer.models.torchvision_models import read_weights_file
from trainer.registry import register_model

Exporter = Callable[[nn.Module, Tensor, Path], None]
IMAGENET_MEAN_STD = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
_BACKBONE_STAGES = {"ResNet50_Weights": 5, "MobileNet_V3_Large_Weights": 6}  # torchvision's maxima
ONNX_OPSET = 17  # Faster R-CNN's RoIAlign and every NMS need 11 or later


@dataclass(frozen=True)
class Recipe:
    """How to build one of torchvision's detectors here."""

    name: str  # the registered name
    builder: str  # torchvision.models.detection's builder
    coco_weights: str  # its weights enum
    backbone_weights: str  # the backbone's ImageNet weights enum, in torchvision.models
    background: bool  # class 0 is background: our label i is its label i + 1
    size_divisible: int  # torchvision pads the batch to a multiple of this
    mean_std: tuple[list[float], list[float]]  # what its pretrained weights expect
    default_input_size: int
    min_input_size: int


RECIPES = {
    recipe.name: recipe
    for recipe in (
        # v2 (Li et al. 2021), not v1: 46.7 against 37.0 COCO box mAP, BatchNorm in its FPN, RPN
        # and box head, so it also trains from scratch or from an ImageNet backbone (the usual
        # case offline), and its BatchNorm is never swapped for a frozen one, so its parameters
        # are the same with or without weights. The price is about twice v1's compute.
        Recipe(
            "fasterrcnn_resnet50_fpn",
            "fasterrcnn_resnet50_fpn_v2",
            "FasterRCNN_ResNet50_FPN_V2_Weights",
            "ResNet50_Weights",
            True,
            32,
            IMAGENET_MEAN_STD,
            512,
            32,
        ),
        Recipe(
            "fasterrcnn_mobilenet_v3_large_fpn",
            "fasterrcnn_mobilenet_v3_large_fpn",
            "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
            "MobileNet_V3_Large_Weights",
            True,
            32,
            IMAGENET_MEAN_STD,
            320,
            32,
        ),
        Recipe(
            "retinanet_resnet50_fpn",
            "retinanet_resnet50_fpn",
            "RetinaNet_ResNet50_FPN_Weights",
            "ResNet50_Weights",
            False,
            32,
            IMAGENET_MEAN_STD,
            512,
            32,
        ),
        Recipe(
            "fcos_resnet50_fpn",
            "fcos_resnet50_fpn",
            "FCOS_ResNet50_FPN_Weights",
            "ResNet50_Weights",
            False,
            32,
            IMAGENET_MEAN_STD,
            512,
            32,
        ),
        Recipe(
            "ssdlite320_mobilenet_v3_large",
            "ssdlite320_mobilenet_v3_large",
            "SSDLite320_MobileNet_V3_Large_Weights",
            "MobileNet_V3_Large_Weights",
            True,
            1,
            ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
            320,
            32,
        ),
    )
}


# --- weights -------------------------------------------------------------------------------------


def _checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_files(name: str) -> dict[str, list[str]]:
    """{"coco": [file], "imagenet": [files]}: torchvision's file names for a detector's weights,
    any one of which an administrator may put under $TORCH_HOME/hub/checkpoints/."""
    from torchvision.models import detection

    recipe = RECIPES[name]
    coco = getattr(detection, recipe.coco_weights).COCO_V1
    return {
        "coco": [_file_name(coco.url)],
        "imagenet": [_file_name(weights.url) for weights in _backbone_weights(recipe)],
    }


def _backbone_weights(recipe: Recipe) -> list[Any]:
    """The backbone's ImageNet weights, torchvision's default first (the file the classifier
    of the same name reads, so one file serves both); any of them fits the backbone."""
    import torchvision.models as tv

    weights = getattr(tv, recipe.backbone_weights)
    return [weights.DEFAULT, *(member for member in weights if member != weights.DEFAULT)]


def _file_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _find_weights(name: str, source: str) -> Any:
    """The weights enum member whose file is in the cache; WeightsUnavailable if none is."""
    from torchvision.models import detection

    recipe = RECIPES[name]
    if source == "coco":
        members = [getattr(detection, recipe.coco_weights).COCO_V1]
        what = f"COCO weights of {name}"
    else:
        members = _backbone_weights(recipe)
        what = f"ImageNet weights of {name}'s backbone ({recipe.backbone_weights.split('_W')[0]})"
    for member in members:
        if (_checkpoints() / _file_name(member.url)).is_file():
            return member
    files = " or ".join(_file_name(member.url) for member in members)
    raise WeightsUnavailable(
        f"The {what} are not on this server. An administrator can put torchvision's file "
        f"{files} (from {members[0].url.rsplit('/', 1)[0]}/) in {_checkpoints()}; Manabi never "
        "downloads weights itself. Or train from scratch."
    )


@contextmanager
def _local_weights() -> Iterator[None]:
    """While building, torchvision's weight loading reads the local cache safely, or fails."""
    import torchvision.models._api as api

    def load(url: str, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        path = _checkpoints() / _file_name(url)
        if not path.is_file():  # checked before building; a file removed meanwhile lands here
            raise WeightsUnavailable(f"{path} is gone; Manabi never downloads weights itself")
        return read_weights_file(path)

    original = api.load_state_dict_from_url
    api.load_state_dict_from_url = load  # one build at a time: a worker trains one job
    try:
        yield
    finally:
        api.load_state_dict_from_url = original


# --- the adapter ---------------------------------------------------------------------------------


class TorchvisionDetector(Detector):
    """One of torchvision's detectors behind the Detector interface (0-based labels, input
    pixels, losses as a dict).

    torchvision's models give losses only in training mode and boxes only in eval mode, so
    `losses` needs `train()` and evaluation has boxes but no loss (the events' val_loss is
    None for these models).
    """

    def __init__(self, model: nn.Module, recipe: Recipe, num_classes: int, in_channels: int):
        super().__init__()
        self.model: Any = model  # torchvision's own: its parts are typed by torchvision
        self.name = recipe.name
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.label_offset = 1 if recipe.background else 0  # torchvision's class 0 = background
        self.weights_mean_std = recipe.mean_std

    def _rgb(self, images: Tensor) -> list[Tensor]:
        # A grey image is the RGB image (g, g, g): the backbones (and their weights) stay RGB.
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # (B, 3, H, W), no copy
        return list(images.unbind(0))

    def losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """{"loss": the sum (back-propagated), and torchvision's parts by their names}, in fp32."""
        if not self.training:
            raise RuntimeError(f"{self.name} computes losses in training mode only; call train()")
        theirs = []
        for target in targets:
            boxes = target["boxes"].to(torch.float32).reshape(-1, 4)  # (N, 4) xyxy
            # torchvision refuses boxes without area; a crop can leave such slivers.
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            labels = target["labels"].to(torch.int64).reshape(-1)[keep] + self.label_offset
            theirs.append({"boxes": boxes[keep], "labels": labels})
        if images.shape[0] == 1:
            # BatchNorm cannot train on one value per channel, which a lone image gives at the
            # deepest 1×1 maps (SSDlite's always): the same image twice has the same loss.
            images, theirs = images.expand(2, -1, -1, -1), theirs * 2
        parts = self.model(self._rgb(images), theirs)
        # Under autocast some parts come out in half precision: sum and report them in fp32.
        parts = {key: value.float() for key, value in parts.items()}
        return {"loss": sum(parts.values()), **parts}  # type: ignore[dict-item]

    @torch.no_grad()
    def detect(
        self, images: Tensor, *, score_threshold: float = 0.05, max_detections: int = 100
    ) -> list[Detection]:
        """Per image: "boxes" (K, 4) xyxy in input pixels, "scores" (K,) descending, "labels"
        (K,) 0-based; score >= score_threshold, K <= max_detections."""
        self._set_limits(score_threshold, max_detections)
        was_training = self.training
        self.eval()  # torchvision's models compute losses in training mode, boxes in eval mode
        try:
            found = self.model(self._rgb(images))
        finally:
            self.train(was_training)
        results: list[Detection] = []
        for one in found:
            keep = one["scores"] >= score_threshold
            scores, order = one["scores"][keep].float().sort(descending=True)
            order = order[:max_detections]
            results.append(
                {
                    "boxes": one["boxes"][keep][order].float(),
                    "scores": scores[:max_detections],
                    "labels": one["labels"][keep][order] - self.label_offset,
                }
            )
        return results

    def _set_limits(self, score_threshold: float, max_detections: int) -> None:
        holder = self.model.roi_heads if hasattr(self.model, "roi_heads") else self.model
        holder.score_thresh = score_threshold
        holder.detections_per_img = max_detections
        if hasattr(self.model, "topk_candidates"):  # one-stage: candidates kept per level
            self.model.topk_candidates = max(self.model.topk_candidates, max_detections)

    def forward(self, images: Tensor) -> list[dict[str, Tensor]]:
        """In eval mode (export): detect() with the limits last set, labels 0-based. In
        training mode (the driver's BatchNorm refresh): a pass of every layer, no boxes."""
        if self.training:
            return self._batch_norm_pass(images)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if torch.jit.is_scripting():
            _, found = self.model(list(images.unbind(0)))  # scripted, it answers (losses, boxes)
        else:
            found = self.model(list(images.unbind(0)))
        for one in found:
            one["labels"] = one["labels"] - self.label_offset
        return found

    def evaluate_batch(
        self, images: Tensor, targets: list[Target], *, score_threshold: float, max_detections: int
    ) -> tuple[dict[str, Tensor], list[Detection]]:
        """No losses (torchvision computes none in eval mode), and the boxes."""
        found = self.detect(images, score_threshold=score_threshold, max_detections=max_detections)
        return {}, found

    @torch.jit.unused
    def _batch_norm_pass(self, images: Tensor) -> list[dict[str, Tensor]]:
        """torchvision's models run in training mode only with targets: give them images
        without objects, so every BatchNorm sees the batch, and drop the losses. On a forked
        random state: Faster R-CNN samples regions, and the caller's randomness stays as it was."""
        nothing = torch.zeros(0, 4, device=images.device)
        no_labels = torch.zeros(0, dtype=torch.int64, device=images.device)
        devices = [images.device.index or 0] if images.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            self.losses(images, [{"boxes": nothing, "labels": no_labels}] * len(images))
        return []

    def head_parameters(self) -> list[nn.Parameter]:
        """The detection head after the shared features (backbone and FPN; and the region
        proposals for Faster R-CNN): what feature extraction trains."""
        head = self.model.roi_heads if hasattr(self.model, "roi_heads") else self.model.head
        return list(head.parameters())

    def class_keys(self) -> list[str]:
        """The state_dict keys whose size depends on the classes. Their rows are not one per
        class: see `class_rows` for the rows of a reordered class list."""
        return list(self._class_layouts())

    def class_rows(self, key: str, order: list[int]) -> list[int]:
        """The rows of `key` for classes taken in `order` (new class i is old class order[i]):
        `new[key] = old[key][rows]`. torchvision lays classes out as (anchor, class, row)."""
        anchors, rows_per_class = self._class_layouts()[key]
        classes = [0, *(1 + old for old in order)] if self.label_offset else list(order)
        width = len(classes)  # classes per anchor, background included
        return [
            anchor * width * rows_per_class + old * rows_per_class + row
            for anchor in range(anchors)
            for old in classes
            for row in range(rows_per_class)
        ]

    def _class_layouts(self) -> dict[str, tuple[int, int]]:
        """{key: (anchors, rows per class)} for every class-specific tensor."""
        layouts: dict[str, tuple[int, int]] = {}
        if hasattr(self.model, "roi_heads"):  # Faster R-CNN: class scores, 4 box numbers
            for part, rows in (("cls_score", 1), ("bbox_pred", 4)):
                for what in ("weight", "bias"):
                    layouts[f"model.roi_heads.box_predictor.{part}.{what}"] = (1, rows)
            return layouts
        head = self.model.head.classification_head
        if hasattr(head, "cls_logits"):  # RetinaNet, FCOS: channels (anchor, class)
            anchors = head.cls_logits.out_channels // head.num_classes
            for what in ("weight", "bias"):
                layouts[f"model.head.classification_head.cls_logits.{what}"] = (anchors, 1)
            return layouts
        for i, block in enumerate(head.module_list):  # SSDlite: the pointwise conv per map
            anchors = block[1].out_channels // head.num_columns
            for what in ("weight", "bias"):
                layouts[f"model.head.classification_head.module_list.{i}.1.{what}"] = (anchors, 1)
        return layouts

    def export_formats(self) -> dict[str, Exporter]:
        """What `trainer.export.write_artifacts(exporters=...)` should use for this model."""
        return export_formats(self)


# --- building ------------------------------------------------------------------------------------


def build_detector(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    pretrained: bool | str = False,
) -> TorchvisionDetector:
    """torchvision's `name` for num_classes object classes at input_size pixels.

    pretrained: False (from scratch), "imagenet" (or True: the backbone's ImageNet weights) or
    "coco" (the whole detector's COCO weights, with a new classifier for these classes); the
    weights must be in the local cache, else WeightsUnavailable says which file is missing.
    """
    from torchvision.models import detection
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    recipe = RECIPES[name]
    if in_channels not in (1, 3):
        raise ValueError(f"{name} reads grey or RGB images, not {in_channels} channels")
    if input_size < recipe.min_input_size:
        raise ValueError(
            f"{name} needs images of at least {recipe.min_input_size}×{recipe.min_input_size} "
            f"pixels; the input size is {input_size}×{input_size}"
        )
    source = "imagenet" if pretrained is True else (pretrained or "none")
    if source not in ("none", "imagenet", "coco"):
        raise ValueError(f"{name}: pretrained must be False, 'imagenet' or 'coco', not {source!r}")
    ours = num_classes + int(recipe.background)  # outputs torchvision's model has
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None}
    if source == "coco":
        kwargs["weights"] = _find_weights(name, "coco")  # 91 classes: replaced below
    else:
        kwargs["num_classes"] = ours
        if source == "imagenet":
            kwargs["weights_backbone"] = _find_weights(name, "imagenet")
    if source != "none":
        # Every layer trains; the loop's transfer mode decides what stays fixed.
        kwargs["trainable_backbone_layers"] = _BACKBONE_STAGES[recipe.backbone_weights]
    with _local_weights():
        model = getattr(detection, recipe.builder)(**kwargs)
    if source == "coco":
        _new_classifier(model, ours)
    fixed = (input_size, input_size) if name.startswith("ssd") else None
    model.transform = GeneralizedRCNNTransform(
        min_size=input_size,
        max_size=input_size,
        image_mean=[0.0, 0.0, 0.0],  # the loop has normalised already
        image_std=[1.0, 1.0, 1.0],
        size_divisible=recipe.size_divisible,
        fixed_size=fixed,
    )
    adapter = TorchvisionDetector(model, recipe, num_classes, in_channels)
    adapter._set_limits(0.05, 100)  # the spec's defaults, until detect() is told otherwise
    return adapter


def _new_classifier(model: Any, classes: int) -> None:
    """Replace the class-specific layers of a COCO detector with fresh ones for `classes`
    outputs (background included where the model has one); box regression is kept."""
    from torchvision.models.detection import ssdlite
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    if hasattr(model, "roi_heads"):  # Faster R-CNN
        features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(features, classes)
    elif hasattr(model.head.classification_head, "cls_logits"):  # RetinaNet, FCOS
        head = model.head.classification_head
        old = head.cls_logits
        anchors = old.out_channels // head.num_classes
        new = nn.Conv2d(old.in_channels, anchors * classes, kernel_size=3, stride=1, padding=1)
        nn.init.normal_(new.weight, std=0.01)
        nn.init.constant_(new.bias, -math.log((1 - 0.01) / 0.01))  # type: ignore[arg-type]  # torchvision's prior 0.01
        head.cls_logits = new
        head.num_classes = classes
    else:  # SSDlite: one depthwise + pointwise block per feature map
        blocks = model.head.classification_head.module_list
        channels = [block[1].in_channels for block in blocks]
        anchors = model.anchor_generator.num_anchors_per_location()
        norm = type(blocks[0][0][1])  # BatchNorm2d (or frozen) as the weights were trained
        model.head.classification_head = ssdlite.SSDLiteClassificationHead(
            channels, anchors, classes, lambda c: norm(c, eps=0.001, momentum=0.03)
        )


# --- export --------------------------------------------------------------------------------------


class _OnnxDetections(nn.Module):
    """One image in, three tensors out: ONNX graphs hold no list of dicts."""

    def __init__(self, detector: TorchvisionDetector):
        super().__init__()
        self.detector = detector

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        found = self.detector(image)[0]  # (1, C, H, W) → the first image's detections
        return found["boxes"], found["scores"], found["labels"]


def export_torchscript(model: TorchvisionDetector, example_input: Tensor, path: Path) -> None:
    """torch.jit.script (tracing would freeze the number of boxes): images → list of dicts."""
    import copy

    cpu = copy.deepcopy(model).cpu().eval()
    torch.jit.script(cpu).save(str(path))


def export_onnx(model: TorchvisionDetector, example_input: Tensor, path: Path) -> None:
    """ONNX (opset 17) for one image at a time: "image" → "boxes", "scores", "labels"."""
    import copy
    import warnings

    cpu = _OnnxDetections(copy.deepcopy(model).cpu().eval())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        torch.onnx.export(
            cpu,
            (example_input[:1].cpu(),),
            str(path),
            dynamo=False,  # the TorchScript-based exporter needs no onnxscript
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=["boxes", "scores", "labels"],
            dynamic_axes={"boxes": {0: "detections"}, "scores": {0: "detections"},
                          "labels": {0: "detections"}},
        )  # fmt: skip


def export_formats(model: nn.Module) -> dict[str, Exporter]:
    """The exports a torchvision detector supports: {"torchscript": ..., "onnx": ...}, each
    called as exporter(model, example_input, path) (trainer.export.write_artifacts's form)."""
    return {"torchscript": export_torchscript, "onnx": export_onnx}  # type: ignore[dict-item]


for _name in RECIPES:  # their facts (sizes, parameters, weights files): trainer/catalog.py
    register_model(name=_name)(partial(build_detector, _name))
