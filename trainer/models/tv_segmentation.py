"""torchvision's segmentation models for GPU workers: DeepLabV3, FCN and LR-ASPP (one class per
pixel) and Mask R-CNN (one mask per object), speaking what the segmentation loop expects.

- The semantic models (`TorchvisionSegmenter`) take normalised images (B, C, S, S) and return
  torchvision's "out" logits (B, classes + 1, S, S), channel 0 the background, exactly as the
  lecture's U-Net does; the auxiliary head is left out (aux_loss=False). A grey image is fed as
  (g, g, g): the backbones and their weights stay RGB.
- Mask R-CNN (`TorchvisionMaskRCNN`, torchvision's v2: BatchNorm throughout, so it trains from
  scratch or from an ImageNet backbone) learns from instances: boxes, 0-based labels and one
  (S, S) mask per object. `losses` gives its five losses; `segment` its objects with soft masks;
  the loop paints them into a class map for mIoU and scores them with COCO's segm AP.

Weights come only from torchvision's cache, `$TORCH_HOME/hub/checkpoints/<file name>`, where an
administrator puts them; nothing is downloaded (`trainer.models.tv_detectors._local_weights`
reads the file with `torch.load(weights_only=True)`). `pretrained="imagenet"` (or True) starts
the backbone from its ImageNet weights (the classifier's file of the same backbone) with a new
head; `pretrained="coco"` starts the whole model from torchvision's COCO weights (the semantic
models' COCO_WITH_VOC_LABELS_V1, Mask R-CNN's COCO_V1) and replaces only the per-class layers
(`Recipe.class_layers`) for the dataset's classes; a semantic model's auxiliary head, which the
COCO file has, is dropped, so the model is the same as from scratch.

On the 2-core CPU server they are slow (the catalog's cpu_note gives the measured speeds); they
are here for GPU workers.
"""

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainer.models import WeightsUnavailable
from trainer.models.tv_detectors import _checkpoints, _file_name, _local_weights
from trainer.registry import register_model

Exporter = Callable[[nn.Module, Tensor, Path], None]
IMAGENET_MEAN_STD = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
ONNX_OPSET = 17
MIN_INPUT_SIZE = 32  # the deepest maps are 1/32 (Mask R-CNN) or 1/16 of the side: at least 1×1


@dataclass(frozen=True)
class Recipe:
    """How to build one of torchvision's segmentation models here."""

    name: str  # the registered name
    builder: str  # the torchvision builder
    backbone_weights: str  # the backbone's ImageNet weights enum, in torchvision.models
    class_layers: tuple[str, ...]  # the classifier's per-class layers, under `model.`
    coco_weights: str  # torchvision's COCO weights, "<enum>.<member>" in its models' module


SEMANTIC = {
    recipe.name: recipe
    for recipe in (
        Recipe("deeplabv3_resnet50", "deeplabv3_resnet50", "ResNet50_Weights",
               ("classifier.4",), "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"),
        Recipe("deeplabv3_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large",
               "MobileNet_V3_Large_Weights", ("classifier.4",),
               "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1"),
        Recipe("fcn_resnet50", "fcn_resnet50", "ResNet50_Weights", ("classifier.4",),
               "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"),
        Recipe("lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large",
               "MobileNet_V3_Large_Weights",
               ("classifier.low_classifier", "classifier.high_classifier"),
               "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1"),
    )
}  # fmt: skip
MASK_RCNN = Recipe(
    "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2",
    "ResNet50_Weights",
    ("roi_heads.box_predictor.cls_score", "roi_heads.box_predictor.bbox_pred",
     "roi_heads.mask_predictor.mask_fcn_logits"),
    "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
)  # fmt: skip


# --- weights -------------------------------------------------------------------------------------


def backbone_weights(recipe: Recipe) -> Any:
    """The backbone's ImageNet weights whose file is in the cache (torchvision's default file
    first, the one the classifier of the same backbone reads); WeightsUnavailable if none is."""
    import torchvision.models as tv

    enum = getattr(tv, recipe.backbone_weights)
    members = [enum.DEFAULT, *(member for member in enum if member != enum.DEFAULT)]
    for member in members:
        if (_checkpoints() / _file_name(member.url)).is_file():
            return member
    files = " or ".join(_file_name(member.url) for member in members)
    raise WeightsUnavailable(
        f"The ImageNet weights of {recipe.name}'s backbone are not on this server. An "
        f"administrator can put torchvision's file {files} (from "
        f"{members[0].url.rsplit('/', 1)[0]}/) in {_checkpoints()}; Manabi never downloads "
        "weights itself. Or train from scratch."
    )


def coco_weights(recipe: Recipe) -> Any:
    """torchvision's COCO weights of the whole model, when their file is in the cache;
    WeightsUnavailable naming the file otherwise (nothing is downloaded)."""
    from torchvision.models import detection, segmentation

    module = detection if recipe is MASK_RCNN else segmentation
    enum, member = recipe.coco_weights.split(".")
    weights = getattr(getattr(module, enum), member)
    file = _file_name(weights.url)
    if (_checkpoints() / file).is_file():
        return weights
    raise WeightsUnavailable(
        f"The COCO weights of {recipe.name} are not on this server. An administrator can put "
        f"torchvision's file {file} (from {weights.url.rsplit('/', 1)[0]}/) in {_checkpoints()}; "
        "Manabi never downloads weights itself. Or train from scratch."
    )


def _source(name: str, pretrained: bool | str) -> str:
    """The weights a builder's `pretrained` asks for: "none", "imagenet" (True) or "coco"."""
    source = "imagenet" if pretrained is True else (pretrained or "none")
    if source not in ("none", "imagenet", "coco"):
        raise ValueError(f"{name}: pretrained must be False, 'imagenet' or 'coco', not {source!r}")
    return source


def _new_class_layer(model: nn.Module, path: str, outputs: int) -> None:
    """Replace the per-class layer `path` of `model` (a conv, or Faster R-CNN's linear class
    scores and box regressors) with a fresh one of `outputs` channels: the same kernel, input
    and initialisation as torchvision's from scratch."""
    parent_path, _, attribute = path.rpartition(".")
    parent = model.get_submodule(parent_path)
    old = getattr(parent, attribute)
    if isinstance(old, nn.Linear):
        setattr(parent, attribute, nn.Linear(old.in_features, outputs))
        return
    conv = nn.Conv2d(old.in_channels, outputs, old.kernel_size, old.stride, old.padding)
    if path.endswith("mask_fcn_logits"):  # MaskRCNNPredictor's own initialisation
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.constant_(conv.bias, 0)  # type: ignore[arg-type]  # it has one
    setattr(parent, attribute, conv)


def _check_input(name: str, in_channels: int, input_size: int) -> None:
    if in_channels not in (1, 3):
        raise ValueError(f"{name} reads grey or RGB images, not {in_channels} channels")
    if input_size < MIN_INPUT_SIZE:
        raise ValueError(
            f"{name} needs images of at least {MIN_INPUT_SIZE}×{MIN_INPUT_SIZE} pixels; "
            f"the input size is {input_size}×{input_size}"
        )


def _rgb(images: Tensor) -> Tensor:
    """A grey batch as RGB (g, g, g) without a copy; RGB as it is."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _class_rows(order: list[int]) -> list[int]:
    """Output rows for classes taken in `order` (new class i is old class order[i]); row 0,
    the background, stays first."""
    return [0, *(1 + old for old in order)]


# --- one class per pixel -------------------------------------------------------------------------


class TorchvisionSegmenter(nn.Module):
    """forward(images (B, C, S, S)) → logits (B, classes + 1, S, S), channel 0 background."""

    def __init__(self, model: nn.Module, recipe: Recipe, num_classes: int) -> None:
        super().__init__()
        self.model: Any = model  # torchvision's own: its parts are typed by torchvision
        self.name = recipe.name
        self.num_classes = num_classes
        self.class_layers = recipe.class_layers
        self.weights_mean_std = IMAGENET_MEAN_STD

    def forward(self, images: Tensor) -> Tensor:
        x = _rgb(images)  # (B, 3, S, S)
        if self.training and x.shape[0] == 1:
            # DeepLab's image pooling has one value per channel for a lone image, which
            # BatchNorm cannot train on: the same image twice gives the same logits.
            return self.model(x.expand(2, -1, -1, -1))["out"][:1]
        return self.model(x)["out"]  # (B, classes + 1, S, S)

    def head_parameters(self) -> list[nn.Parameter]:
        """The segmentation head after the backbone: what feature extraction trains."""
        return list(self.model.classifier.parameters())

    def class_keys(self) -> list[str]:
        """The state_dict keys with one row per output channel (background first)."""
        return [
            f"model.{layer}.{what}" for layer in self.class_layers for what in ("weight", "bias")
        ]

    def class_rows(self, key: str, order: list[int]) -> list[int]:
        return _class_rows(order)


def build_segmenter(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    pretrained: bool | str = False,
) -> TorchvisionSegmenter:
    """torchvision's semantic `name` for num_classes classes + background; pretrained: False,
    "imagenet" (or True: the backbone's ImageNet weights) or "coco" (the whole model's COCO
    weights, new per-class layers), from the local cache (WeightsUnavailable when missing)."""
    from torchvision.models import segmentation

    recipe = SEMANTIC[name]
    _check_input(name, in_channels, input_size)
    source = _source(name, pretrained)
    builder = getattr(segmentation, recipe.builder)
    if source == "coco":
        weights = coco_weights(recipe)
        with _local_weights():
            model = builder(weights=weights, weights_backbone=None)  # 21 VOC classes, aux head
        model.aux_classifier = None  # as aux_loss=False builds it: the loop trains "out" only
        for layer in recipe.class_layers:
            _new_class_layer(model, layer, num_classes + 1)
        return TorchvisionSegmenter(model, recipe, num_classes)
    # weights_backbone=None says "from scratch": torchvision's own default is ImageNet's.
    backbone = backbone_weights(recipe) if source == "imagenet" else None
    with _local_weights():
        model = builder(
            weights=None, weights_backbone=backbone, num_classes=num_classes + 1, aux_loss=False
        )
    return TorchvisionSegmenter(model, recipe, num_classes)


# --- one mask per object -------------------------------------------------------------------------


class TorchvisionMaskRCNN(nn.Module):
    """Mask R-CNN behind the segmentation loop: losses from instances, objects with masks.

    Targets per image: "boxes" (n, 4) xyxy input pixels, "labels" (n,) 0-based, "masks" (n, S, S)
    uint8. torchvision computes losses only in training mode and objects only in eval mode, so
    evaluation has no loss (val_loss is None for this model).
    """

    instances = True  # the loop decodes each object's own mask for it

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model: Any = model
        self.name = MASK_RCNN.name
        self.num_classes = num_classes
        self.weights_mean_std = IMAGENET_MEAN_STD
        self.set_limits(0.05, 100)

    def losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """{"loss": the sum (back-propagated), and torchvision's five parts}, in fp32."""
        if not self.training:
            raise RuntimeError(f"{self.name} computes losses in training mode only; call train()")
        theirs = []
        for target in targets:
            boxes = target["boxes"].to(torch.float32).reshape(-1, 4)  # (n, 4) xyxy
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # no empty boxes
            theirs.append(
                {
                    "boxes": boxes[keep],
                    "labels": target["labels"].to(torch.int64)[keep] + 1,  # 0 is background
                    "masks": target["masks"][keep],  # (n', S, S) uint8
                }
            )
        parts = self.model(list(_rgb(images).unbind(0)), theirs)
        parts = {key: value.float() for key, value in parts.items()}
        return {"loss": sum(parts.values()), **parts}  # type: ignore[dict-item]

    def set_limits(self, score_threshold: float, max_detections: int) -> None:
        """Objects kept per image: score ≥ score_threshold, at most max_detections."""
        self.model.roi_heads.score_thresh = score_threshold
        self.model.roi_heads.detections_per_img = max_detections

    @torch.no_grad()
    def segment(
        self, images: Tensor, *, score_threshold: float = 0.05, max_detections: int = 100
    ) -> list[dict[str, Tensor]]:
        """Per image, highest score first: "masks" (K, S, S) probabilities, "scores" (K,),
        "labels" (K,) 0-based, "boxes" (K, 4) xyxy input pixels."""
        self.set_limits(score_threshold, max_detections)
        was_training = self.training
        self.eval()
        try:
            found = self.model(list(_rgb(images).unbind(0)))
        finally:
            self.train(was_training)
        return [
            {
                "masks": one["masks"][:, 0].float(),  # (K, 1, S, S) → (K, S, S)
                "scores": one["scores"].float(),
                "labels": one["labels"] - 1,
                "boxes": one["boxes"].float(),
            }
            for one in found
        ]

    def forward(self, images: Tensor) -> list[dict[str, Tensor]]:
        """Eval mode (export): per image "boxes", "labels" 0-based, "scores", "masks" (K, 1,
        S, S). Training mode (the driver's BatchNorm refresh): every layer once, no objects."""
        if self.training:
            return self._batch_norm_pass(images)
        if torch.jit.is_scripting():
            _, found = self.model(list(_rgb(images).unbind(0)))  # scripted: (losses, objects)
        else:
            found = self.model(list(_rgb(images).unbind(0)))
        for one in found:
            one["labels"] = one["labels"] - 1
        return found

    @torch.jit.unused
    def _batch_norm_pass(self, images: Tensor) -> list[dict[str, Tensor]]:
        """torchvision's model runs in training mode only with targets: images without objects,
        on a forked random state (it samples regions; the caller's randomness stays put)."""
        side = images.shape[-2:]
        empty = {
            "boxes": torch.zeros(0, 4, device=images.device),
            "labels": torch.zeros(0, dtype=torch.int64, device=images.device),
            "masks": torch.zeros(0, *side, dtype=torch.uint8, device=images.device),
        }
        devices = [images.device.index or 0] if images.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            self.losses(images, [empty] * len(images))
        return []

    def head_parameters(self) -> list[nn.Parameter]:
        """The box and mask heads after the shared features and region proposals."""
        return list(self.model.roi_heads.parameters())

    def class_keys(self) -> list[str]:
        """The state_dict keys whose size depends on the classes (see `class_rows`)."""
        return [f"model.{layer}.{what}" for layer in MASK_RCNN.class_layers
                for what in ("weight", "bias")]  # fmt: skip

    def class_rows(self, key: str, order: list[int]) -> list[int]:
        """Rows for classes in `order`: background first; the box regressor has 4 per class."""
        per_class = 4 if ".bbox_pred." in key else 1
        return [c * per_class + r for c in _class_rows(order) for r in range(per_class)]

    def export_formats(self) -> dict[str, Exporter]:
        return {"torchscript": _script_mask_rcnn, "onnx": _onnx_mask_rcnn}  # type: ignore[dict-item]


def build_mask_rcnn(
    *, num_classes: int, in_channels: int, input_size: int, pretrained: bool | str = False
) -> TorchvisionMaskRCNN:
    """Mask R-CNN (ResNet-50-FPN v2) for num_classes classes at input_size pixels; pretrained:
    False, "imagenet" (or True: the backbone's ImageNet weights) or "coco" (the whole model's
    COCO weights with new class scores, box regressors and mask logits)."""
    from torchvision.models import detection
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    _check_input(MASK_RCNN.name, in_channels, input_size)
    source = _source(MASK_RCNN.name, pretrained)
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None}
    if source == "coco":
        kwargs["weights"] = coco_weights(MASK_RCNN)  # 91 classes: replaced below
    else:
        kwargs["num_classes"] = num_classes + 1
        if source == "imagenet":
            kwargs["weights_backbone"] = backbone_weights(MASK_RCNN)
    if source != "none":
        kwargs["trainable_backbone_layers"] = 5  # every layer; the transfer mode decides
    with _local_weights():
        model = getattr(detection, MASK_RCNN.builder)(**kwargs)
    if source == "coco":
        # The class-specific layers only: the mask head's upsampling conv is kept.
        for layer in MASK_RCNN.class_layers:
            outputs = (num_classes + 1) * (4 if layer.endswith("bbox_pred") else 1)
            _new_class_layer(model, layer, outputs)
    # Neither resizing nor normalising: the loop has done both (as for the detectors).
    model.transform = GeneralizedRCNNTransform(
        min_size=input_size,
        max_size=input_size,
        image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0],
        size_divisible=32,
    )
    return TorchvisionMaskRCNN(model, num_classes)


# --- export --------------------------------------------------------------------------------------


class _OnnxObjects(nn.Module):
    """One image in, four tensors out: ONNX graphs hold no list of dicts."""

    def __init__(self, model: TorchvisionMaskRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        found = self.model(image)[0]
        return found["boxes"], found["labels"], found["scores"], found["masks"]


def _script_mask_rcnn(model: TorchvisionMaskRCNN, example_input: Tensor, path: Path) -> None:
    """torch.jit.script (tracing would freeze the number of objects): images → list of dicts."""
    torch.jit.script(copy.deepcopy(model).cpu().eval()).save(str(path))


def _onnx_mask_rcnn(model: TorchvisionMaskRCNN, example_input: Tensor, path: Path) -> None:
    """ONNX (opset 17), one image at a time: "image" → "boxes", "labels", "scores", "masks"."""
    wrapped = _OnnxObjects(copy.deepcopy(model).cpu().eval())
    outputs = ["boxes", "labels", "scores", "masks"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        torch.onnx.export(
            wrapped,
            (example_input[:1].cpu(),),
            str(path),
            dynamo=False,  # the TorchScript-based exporter needs no onnxscript
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=outputs,
            dynamic_axes={name: {0: "objects"} for name in outputs},
        )


for _name in SEMANTIC:  # their facts (sizes, parameters, weights files): trainer/catalog.py
    register_model(name=_name)(partial(build_segmenter, _name))
register_model(name=MASK_RCNN.name)(build_mask_rcnn)
