"""The Train page's layer builder: the trainer's layer types and the settings each starts from.

Plain tables (no torch): trainer/models/layers.py accepts exactly these settings, which a test
checks; shapes and parameter counts come from the trainer on a worker (`summaries`).
"""

from trainer import limits  # plain numbers: no torch

MAX_LAYERS = limits.MAX_LAYERS

# What the trainer gives a layer list when the spec says nothing (trainer/fit.py).
LAYERS_INPUT_SIZE = 32
LAYERS_CHANNELS = 1

# The builder's layer types and the settings each takes, with the values a new layer starts
# from (trainer/models/layers.py accepts exactly these settings).
LAYER_TYPES: dict[str, dict[str, object]] = {
    "Conv2d": {"filters": 16, "kernel": 3, "stride": 1, "padding": "same", "activation": "relu"},
    "MaxPool": {"size": 2, "stride": 2},
    "AvgPool": {"size": 2, "stride": 2},
    "BatchNorm": {},
    "Dropout": {"rate": 0.25},
    "Flatten": {},
    "GlobalAvgPool": {},
    "Dense": {"units": 64, "activation": "relu"},
    "ReLU": {},
    "Sigmoid": {},
    "Tanh": {},
    "LeakyReLU": {"slope": 0.01},
    "GELU": {},
}
ACTIVATIONS = ("none", "relu", "sigmoid", "tanh", "leaky_relu", "gelu")
