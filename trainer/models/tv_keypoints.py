"""torchvision's Keypoint R-CNN (ResNet-50-FPN) for the keypoints kind, for GPU workers.

Faster R-CNN finds each person as a box; a keypoint head then predicts, inside each box, one
56×56 heat map per keypoint (Mask R-CNN's recipe, He et al. 2017). Unlike the default
`pose_unet` it finds every person in an image. From scratch on the 2-core server it trains at
about 0.1-0.2 images/s at 512×512 (the catalog's cpu_note).

It reuses the detection adapter (`trainer.models.tv_detectors.TorchvisionDetector`): the
transform neither resizes nor normalises (the loop has), losses only in training mode, a
BatchNorm pass without targets for the driver's refresh, weights only from
`$TORCH_HOME/hub/checkpoints` (read with `weights_only=True`, never downloaded). What differs:
one class (person, 0-based label 0), targets carry keypoints (n, K, 3), detections carry
"keypoints" (n, K, 3: x, y, score in [0, 1]) and the per-keypoint tensors (the keypoint
predictor's channels) are what a transfer matches by keypoint name.
"""

from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.models import WeightsUnavailable
from trainer.models.detector import Detection, Target
from trainer.models.tv_detectors import (
    IMAGENET_MEAN_STD,
    ONNX_OPSET,
    Recipe,
    TorchvisionDetector,
    _backbone_weights,
    _checkpoints,
    _file_name,
    _local_weights,
    export_torchscript,
)
from trainer.registry import register_model

NAME = "keypointrcnn_resnet50_fpn"
RECIPE = Recipe(
    NAME,
    "keypointrcnn_resnet50_fpn",
    "KeypointRCNN_ResNet50_FPN_Weights",
    "ResNet50_Weights",
    True,
    32,
    IMAGENET_MEAN_STD,
    512,
    32,
)
COCO_KEYPOINTS = 17  # what torchvision's COCO weights predict
PREDICTOR = "model.roi_heads.keypoint_predictor.kps_score_lowres"


class KeypointTarget(Target, total=False):
    """One image's people: boxes (n, 4) xyxy, labels (n,) (ignored: all are people) and
    keypoints (n, K, 3) x, y, v in input pixels."""

    keypoints: Tensor


class KeypointDetection(Detection):
    """The people found in one image: a Detection with keypoints (n, K, 3): x, y, score."""

    keypoints: Tensor


class TorchvisionKeypoints(TorchvisionDetector):
    """Keypoint R-CNN behind the Detector interface, with keypoints in targets and detections
    (input pixels)."""

    def __init__(self, model: nn.Module, num_keypoints: int, in_channels: int) -> None:
        super().__init__(model, RECIPE, 1, in_channels)
        self.num_keypoints = num_keypoints

    def losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """{"loss", and torchvision's parts}, in fp32; each target: "boxes" (n, 4) xyxy and
        "keypoints" (n, K, 3) x, y, v in input pixels (none given: no keypoint visible)."""
        if not self.training:
            raise RuntimeError(f"{self.name} computes losses in training mode only; call train()")
        theirs = []
        for target in targets:
            boxes = target["boxes"].to(torch.float32).reshape(-1, 4)  # (n, 4) xyxy
            keypoints = cast(dict[str, Tensor], target).get("keypoints")  # a KeypointTarget
            if keypoints is None:
                keypoints = boxes.new_zeros(len(boxes), self.num_keypoints, 3)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # torchvision's rule
            theirs.append(
                {
                    "boxes": boxes[keep],
                    "labels": torch.ones(int(keep.sum()), dtype=torch.int64, device=boxes.device),
                    "keypoints": keypoints.to(torch.float32)[keep],  # (n', K, 3)
                }
            )
        if images.shape[0] == 1:  # BatchNorm needs two values per channel (as the parent)
            images, theirs = images.expand(2, -1, -1, -1), theirs * 2
        parts = self.model(self._rgb(images), theirs)
        parts = {key: value.float() for key, value in parts.items()}
        return {"loss": sum(parts.values()), **parts}  # type: ignore[dict-item]

    @torch.no_grad()
    def detect(
        self, images: Tensor, *, score_threshold: float = 0.05, max_detections: int = 100
    ) -> list[Detection]:
        """Per image a KeypointDetection: "boxes" (n, 4) xyxy, "scores" (n,) descending,
        "labels" (n,) zeros and "keypoints" (n, K, 3): x, y in input pixels, a score in [0, 1]."""
        self._set_limits(score_threshold, max_detections)
        was_training = self.training
        self.eval()
        try:
            found = self.model(self._rgb(images))
        finally:
            self.train(was_training)
        results: list[Detection] = []
        for one in found:
            keep = one["scores"] >= score_threshold
            scores, order = one["scores"][keep].float().sort(descending=True)
            order = order[:max_detections]
            points = one["keypoints"][keep][order].float()  # (n, K, 3), v = 1
            # torchvision's keypoint scores are heat-map logits: squashed to [0, 1].
            points[..., 2] = one["keypoints_scores"][keep][order].float().sigmoid()
            results.append(
                KeypointDetection(
                    boxes=one["boxes"][keep][order].float(),
                    scores=scores[:max_detections],
                    labels=one["labels"][keep][order] - self.label_offset,
                    keypoints=points,
                )
            )
        return results

    def class_keys(self) -> list[str]:
        """No class rows to match: the box classifier's two rows (background, person) never
        change; the per-keypoint tensors are `keypoint_keys`."""
        return []

    def keypoint_keys(self) -> dict[str, int]:
        """{state_dict key: the dimension with one entry per keypoint}."""
        return {f"{PREDICTOR}.weight": 1, f"{PREDICTOR}.bias": 0}

    def export_formats(self) -> dict[str, Any]:
        return {"torchscript": export_torchscript, "onnx": export_onnx}


class ContiguousPredictor(nn.Module):
    """torchvision's KeypointRCNNPredictor (the same tensors under the same names: a 4×4
    transposed conv to stride 2, then ×2 bilinear: 56×56 maps for 14×14 regions), its heat
    maps made contiguous: in a channels_last model (the loop's, and the driver's on a GPU)
    torchvision's keypoint loss could not `.view` them flat."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.kps_score_lowres = nn.ConvTranspose2d(
            in_channels, num_keypoints, 4, stride=2, padding=1
        )
        nn.init.kaiming_normal_(self.kps_score_lowres.weight, mode="fan_out", nonlinearity="relu")
        nn.init.constant_(self.kps_score_lowres.bias, 0)  # type: ignore[arg-type]  # it has one
        self.up_scale = 2
        self.out_channels = num_keypoints

    def forward(self, x: Tensor) -> Tensor:
        x = self.kps_score_lowres(x)  # (R, K, 28, 28) for R regions
        return F.interpolate(
            x,
            scale_factor=float(self.up_scale),
            mode="bilinear",
            align_corners=False,
            recompute_scale_factor=False,
        ).contiguous()  # (R, K, 56, 56)


def _find_weights(source: str) -> Any:
    """The weights enum member whose file is in the cache; WeightsUnavailable if none is."""
    from torchvision.models import detection

    if source == "coco":
        members = [detection.KeypointRCNN_ResNet50_FPN_Weights.COCO_V1]
        what = f"COCO weights of {NAME}"
    else:
        members = _backbone_weights(RECIPE)
        what = f"ImageNet weights of {NAME}'s backbone (ResNet50)"
    for member in members:
        if (_checkpoints() / _file_name(member.url)).is_file():
            return member
    files = " or ".join(_file_name(member.url) for member in members)
    raise WeightsUnavailable(
        f"The {what} are not on this server. An administrator can put torchvision's file "
        f"{files} in {_checkpoints()}; Manabi never downloads weights itself. Or train from "
        "scratch."
    )


@register_model(name=NAME)  # its facts: trainer/catalog.py
def keypointrcnn_resnet50_fpn(
    *, num_classes: int, in_channels: int, input_size: int, pretrained: bool | str = False
) -> TorchvisionKeypoints:
    """Keypoint R-CNN for `num_classes` keypoints (the registry's name for the heat-map count)
    at input_size pixels; pretrained: False, "imagenet" (or True) or "coco" (torchvision's
    person detector and keypoint head, with a new keypoint predictor: the dataset's keypoints
    are never assumed to be COCO's 17 in COCO's order)."""
    from torchvision.models import detection
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    if in_channels not in (1, 3):
        raise ValueError(f"{NAME} reads grey or RGB images, not {in_channels} channels")
    if input_size < RECIPE.min_input_size:
        raise ValueError(f"{NAME} needs images of at least 32×32 pixels, not {input_size}")
    source = "imagenet" if pretrained is True else (pretrained or "none")
    if source not in ("none", "imagenet", "coco"):
        raise ValueError(f"{NAME}: pretrained must be False, 'imagenet' or 'coco', not {source!r}")
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None}
    if source == "coco":
        kwargs["weights"] = _find_weights("coco")
    else:
        kwargs |= {"num_classes": 2, "num_keypoints": num_classes}  # background and person
        if source == "imagenet":
            kwargs["weights_backbone"] = _find_weights("imagenet")
    if source != "none":
        kwargs["trainable_backbone_layers"] = 5  # every layer; the transfer mode decides
    with _local_weights():
        model = detection.keypointrcnn_resnet50_fpn(**kwargs)
    predictor = ContiguousPredictor(512, num_classes)  # the same tensors, the same names
    if source != "coco":  # COCO's predictor (17 heat maps) is replaced: the loop says "new"
        predictor.load_state_dict(model.roi_heads.keypoint_predictor.state_dict())
    model.roi_heads.keypoint_predictor = predictor
    model.transform = GeneralizedRCNNTransform(
        min_size=input_size,
        max_size=input_size,
        image_mean=[0.0, 0.0, 0.0],  # the loop has normalised already
        image_std=[1.0, 1.0, 1.0],
        size_divisible=RECIPE.size_divisible,
    )
    adapter = TorchvisionKeypoints(model, num_classes, in_channels)
    adapter._set_limits(0.05, 100)
    return adapter


class _OnnxKeypoints(nn.Module):
    """One image in, four tensors out: ONNX graphs hold no list of dicts."""

    def __init__(self, model: TorchvisionKeypoints) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        found = self.model(image)[0]  # (1, C, H, W) → the first image's people
        return found["boxes"], found["scores"], found["keypoints"], found["keypoints_scores"]


def export_onnx(model: TorchvisionKeypoints, example_input: Tensor, path: Path) -> None:
    """ONNX (opset 17), one image at a time: "image" → "boxes" (n, 4), "scores" (n,),
    "keypoints" (n, K, 3) and "keypoint_scores" (n, K) logits."""
    import copy
    import warnings

    wrapped = _OnnxKeypoints(copy.deepcopy(model).cpu().eval())
    people = {0: "people"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        torch.onnx.export(
            wrapped,
            (example_input[:1].cpu(),),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=["boxes", "scores", "keypoints", "keypoint_scores"],
            dynamic_axes={"boxes": people, "scores": people, "keypoints": people,
                          "keypoint_scores": people},
        )  # fmt: skip
