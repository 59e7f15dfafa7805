"""Object detection's data: images decoded once with their boxes, and augmentation that moves
the boxes with the pixels.

The detectors themselves are in `trainer.models` (`centernet.py`, the `Detector` interface in
`detector.py`), the metrics in `trainer.detection_metrics`, the training loop in
`trainer.loops.detection`. Inside the trainer every box is (x1, y1, x2, y2) in the model's
INPUT pixels (the image resized to the input size); only what leaves the trainer (predictions,
the model card, `predict`) is [x, y, w, h] in the ORIGINAL image's pixels, as COCO writes it.
"""

from trainer.detection.augment import BoxAugment
from trainer.detection.data import DetectionSplit, decode_image, load_split, to_original

__all__ = ["BoxAugment", "DetectionSplit", "decode_image", "load_split", "to_original"]
