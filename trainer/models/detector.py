"""What every detector of the trainer offers the detection loop, whatever its insides.

A detector is an `nn.Module` with two extra methods. The loop never looks inside: the small
CenterNet of `trainer.models.centernet` and torchvision's Faster R-CNN wrappers train, evaluate
and predict through the same three calls.

Coordinates are always the model's INPUT pixels (the image after resizing to the input size);
the loop maps them back to the original image. Boxes are (x1, y1, x2, y2) ("xyxy"), labels are
0-based indices into the run's class list.
"""

from typing import TypedDict

from torch import Tensor, nn


class Target(TypedDict):
    """The objects of one image: boxes (N, 4) xyxy in input pixels, labels (N,) int64."""

    boxes: Tensor
    labels: Tensor


class Detection(TypedDict):
    """What a detector found in one image, highest score first (K ≤ max_detections)."""

    boxes: Tensor  # (K, 4) xyxy, input pixels
    scores: Tensor  # (K,) in 0..1
    labels: Tensor  # (K,) int64, 0-based class indices


class Detector(nn.Module):
    """Base class: `losses` for training, `detect` for predicting, `forward` for export.

    - `losses(images, targets)`: images (B, C, H, W) normalised; one `Target` per image.
      Returns 0-d tensors: "loss" (what is back-propagated) and its named parts
      (e.g. "heatmap", "size", "offset"), each a mean over the batch.
    - `detect(images, score_threshold=..., max_detections=...)`: one `Detection` per image,
      only boxes scoring at least `score_threshold`, at most `max_detections` of them.
    - `forward(images)`: the raw outputs as plain tensors (a tuple), so that TorchScript
      tracing and ONNX export work; what they mean is the subclass's docstring.
    - `head_parameters()`: the layers after the shared features (fine-tuning trains them at
      the full rate; feature extraction trains only them).
    - `class_keys()`: the state_dict keys whose rows are one per class (a transfer keeps them
      only for the same class names, reordered by name).
    - `evaluate_batch(...)`: losses and detections of one batch in eval mode; the default
      calls both methods, a subclass may share one forward pass.
    """

    def losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        raise NotImplementedError

    def detect(
        self, images: Tensor, *, score_threshold: float = 0.05, max_detections: int = 100
    ) -> list[Detection]:
        raise NotImplementedError

    def head_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def class_keys(self) -> list[str]:
        raise NotImplementedError

    def evaluate_batch(
        self, images: Tensor, targets: list[Target], *, score_threshold: float, max_detections: int
    ) -> tuple[dict[str, Tensor], list[Detection]]:
        found = self.detect(images, score_threshold=score_threshold, max_detections=max_detections)
        return self.losses(images, targets), found
