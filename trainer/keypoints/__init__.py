"""Keypoints' data: images decoded once with their people's points, and augmentation that moves
the points with the pixels (and swaps left and right in a mirror image).

The models are in `trainer.models` (`pose_net.py`, the default; `tv_keypoints.py`, Keypoint
R-CNN), the metrics in `trainer.keypoint_metrics`, the training loop in
`trainer.loops.keypoints`, the stick figures the tests and benchmark draw in `figures`. Inside
the trainer every point is (x, y, v) in the model's INPUT pixels; what leaves it (predictions,
`predict`, the metrics) is in the ORIGINAL image's pixels, as COCO writes it.
"""

from trainer.keypoints.augment import KeypointAugment, flip_pairs
from trainer.keypoints.data import KeypointSplit, keypoint_count, load_split, to_original

__all__ = [
    "KeypointAugment",
    "KeypointSplit",
    "flip_pairs",
    "keypoint_count",
    "load_split",
    "to_original",
]
