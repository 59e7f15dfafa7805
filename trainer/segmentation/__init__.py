"""Segmentation's data: images decoded once with their class maps, and augmentation that moves
the maps with the pixels.

The models are in `trainer.models` (`unet.py`, torchvision's in `tv_segmentation.py`), the
metrics in `trainer.segmentation_metrics`, the training loop in `trainer.loops.segmentation`,
"try it" and scoring in `trainer.segmentation.inference`. Inside the trainer every mask is at the
model's INPUT size S×S (the image stretched to it); a class map holds 0 for the background and
i + 1 for the run's class i, as the model's output channels do.
"""

from trainer.segmentation.augment import MaskAugment
from trainer.segmentation.data import IGNORE, Instances, SegmentationSplit, load_split

__all__ = ["IGNORE", "Instances", "MaskAugment", "SegmentationSplit", "load_split"]
