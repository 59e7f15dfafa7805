"""Every limit on what one job may ask for, in one place.

The bounds are far above what the lecture's presets and torchvision's models need (ResNet-50 or
VGG-16 at 224×224 pixels with a batch of 256 fit with room to spare), and far below what would
exhaust a training worker. The spec's fields carry them (`Field(ge=…, le=…)`, so the JSON
schema shows them), and `trainer.budget` checks the sizes that only shapes reveal: the
parameters of each layer and of the model, and the largest activation of a batch. The web app
checks all of them before anything is queued; the worker checks them again.
"""

# --- training settings ------------------------------------------------------------------------
MAX_EPOCHS = 300
MAX_BATCH_SIZE = 4096
MIN_INPUT_SIZE = 8  # pixels per side; the smallest a three-pool CNN still reads
MAX_INPUT_SIZE = 1024
MAX_CLASSES = 10_000
MAX_KFOLD = 20
MAX_PATIENCE = 100  # epochs of early stopping
MAX_SEED = 2**31 - 1  # NumPy takes seeds below 2**32; the Train page's field stops here too
MAX_LR = 10.0

# --- a model built from layers ----------------------------------------------------------------
MAX_LAYERS = 64
MAX_UNITS = 65_536  # Dense; VGG's classifier has 4,096
MAX_FILTERS = 4_096  # Conv2d; ResNet-50's widest block has 2,048 channels
MAX_KERNEL = 31  # Conv2d's kernel side; LeNet in the lecture uses 10
MAX_STRIDE = 16
MAX_PADDING = 32
MAX_POOL = 64  # MaxPool and AvgPool's window side

# --- sizes only shapes reveal (trainer.budget) ------------------------------------------------
# Parameters of one layer, and of the whole model: VGG-16 has 138 million. Training with Adam
# keeps four numbers per parameter (weights, gradients and two moments): 300 M is 4.8 GB.
MAX_PARAMETERS = 300_000_000
# Values in the largest output of one layer for one batch (images × channels × height × width):
# 2**31 float32 values are 8 GiB, one tensor. VGG-16 at 224×224 with a batch of 256 needs
# 822 M; the same with a batch of 1,024 would need 3.3 G and is refused.
MAX_ACTIVATION = 2**31

# Annotations of an item (COCO shapes), in the original image's pixels.
MAX_IMAGE_SIDE = 16_384  # no stored image is larger (webapp/datasets/images.py refuses larger)
MAX_OBJECTS_PER_IMAGE = 1_000  # COCO's busiest image has a few hundred
MAX_POLYGONS = 64  # polygons of one object
MAX_POLYGON_POINTS = 4_096  # points of one polygon
# An RLE mask's counts: characters of the compressed string, or run lengths of the list (a
# character holds at most one run). A 16,384² image in stripes stays below it.
MAX_RLE_COUNTS = 4_000_000
MAX_KEYPOINTS = 133  # COCO-WholeBody's count; COCO persons have 17
MAX_DETECTIONS = 300  # boxes kept per image in predictions
