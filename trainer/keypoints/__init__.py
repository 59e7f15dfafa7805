"""Keypoints' data: images decoded once with their people's points, and augmentation that moves
the points with the pixels (and swaps left and right in a mirror image).

The models are in `trainer.models` (`pose_net.py`, the default; `tv_keypoints.py`, Keypoint
R-CNN), the metrics in `trainer.keypoint_metrics`, the training loop in
`trainer.loops.keypoints`, the stick figures the tests and benchmark draw in `figures`. Inside
the trainer every point is (x, y, v) in the model's INPUT pixels; what leaves it (predictions,
`predict`, the metrics) is in the ORIGINAL image's pixels, as COCO writes it.

The names below are imported on first use (PEP 562), so that `trainer.keypoints.figures`, which
the web app's sample draws with, loads no torch.
"""

import importlib
from typing import Any

_WHERE = {
    "KeypointAugment": "trainer.keypoints.augment",
    "flip_pairs": "trainer.keypoints.augment",
    "KeypointSplit": "trainer.keypoints.data",
    "keypoint_count": "trainer.keypoints.data",
    "load_split": "trainer.keypoints.data",
    "to_original": "trainer.keypoints.data",
}

__all__ = [
    "KeypointAugment",
    "KeypointSplit",
    "flip_pairs",
    "keypoint_count",
    "load_split",
    "to_original",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
