"""The layers of a model built from a list (the Train page's builder), as typed, bounded settings.

    [{"type": "Conv2d", "filters": 16, "kernel": 3, "activation": "relu"},
     {"type": "MaxPool"}, {"type": "Flatten"}, {"type": "Dense", "units": 64}]

`JobSpec.model` validates each layer against these models, so every number has a bound and the
JSON schema shows it; `trainer.models.layers` builds them with torch, `trainer.budget` works out
their shapes and sizes without it. A type is matched whatever its case ("conv2d" is Conv2d).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainer import limits

Activation = Literal["relu", "sigmoid", "tanh", "leaky_relu", "gelu"]
_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "leakyrelu": "leaky_relu"}
_ACTIVATIONS["gelu"] = "gelu"


def _activation(value: Any) -> Any:
    """ "ReLU", "leaky-relu", "none" … → the canonical name (None: no activation)."""
    if value is None or not isinstance(value, str):
        return value  # None, or a type error from the field itself
    name = value.lower().replace("_", "").replace("-", "")
    if name in ("", "none", "linear"):
        return None
    if name == "softmax":
        raise ValueError(
            "no softmax here: the output layer is added for you and the loss applies it"
        )
    return _ACTIVATIONS.get(name, value)


class _Layer(BaseModel):
    # A misspelt setting must not be silently ignored; NaN and infinity are never meant.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def settings(self) -> dict[str, Any]:
        """The layer as the builder takes it: a plain dict of its type and settings."""
        return self.model_dump(exclude_none=True)


class _Activated(_Layer):
    """A layer with an activation after it (none unless named)."""

    activation: Activation | None = None

    @field_validator("activation", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return _activation(value)


class DenseLayer(_Activated):
    """Every input to every unit: units × inputs weights and units biases."""

    type: Literal["Dense"]
    units: int = Field(ge=1, le=limits.MAX_UNITS)


class Conv2dLayer(_Activated):
    """Filters that slide over the image; padding "same" keeps the size (at stride 1)."""

    type: Literal["Conv2d"]
    filters: int = Field(ge=1, le=limits.MAX_FILTERS)
    kernel: int = Field(ge=1, le=limits.MAX_KERNEL)
    stride: int = Field(default=1, ge=1, le=limits.MAX_STRIDE)
    padding: Literal["same", "valid"] | Annotated[int, Field(ge=0, le=limits.MAX_PADDING)] = "same"


class MaxPoolLayer(_Layer):
    """The largest value of each size × size window; the stride is the size unless given."""

    type: Literal["MaxPool"]
    size: int = Field(default=2, ge=1, le=limits.MAX_POOL)
    stride: int | None = Field(default=None, ge=1, le=limits.MAX_STRIDE)


class AvgPoolLayer(_Layer):
    """The mean of each size × size window; the stride is the size unless given."""

    type: Literal["AvgPool"]
    size: int = Field(default=2, ge=1, le=limits.MAX_POOL)
    stride: int | None = Field(default=None, ge=1, le=limits.MAX_STRIDE)


class DropoutLayer(_Layer):
    type: Literal["Dropout"]
    rate: float = Field(default=0.5, ge=0, lt=1)


class LeakyReLULayer(_Layer):
    type: Literal["LeakyReLU"]
    slope: float = Field(default=0.01, ge=0, lt=1)


class BatchNormLayer(_Layer):
    type: Literal["BatchNorm"]


class ReLULayer(_Layer):
    type: Literal["ReLU"]


class SigmoidLayer(_Layer):
    type: Literal["Sigmoid"]


class TanhLayer(_Layer):
    type: Literal["Tanh"]


class GELULayer(_Layer):
    type: Literal["GELU"]


class FlattenLayer(_Layer):
    type: Literal["Flatten"]


class GlobalAvgPoolLayer(_Layer):
    type: Literal["GlobalAvgPool"]


LAYER_MODELS: tuple[type[_Layer], ...] = (
    DenseLayer,
    Conv2dLayer,
    MaxPoolLayer,
    AvgPoolLayer,
    BatchNormLayer,
    DropoutLayer,
    ReLULayer,
    SigmoidLayer,
    TanhLayer,
    LeakyReLULayer,
    GELULayer,
    FlattenLayer,
    GlobalAvgPoolLayer,
)
# "Dense" → DenseLayer: what the "type" of a layer selects.
BY_TYPE: dict[str, type[_Layer]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in LAYER_MODELS
}
_BY_LOWER = {name.lower(): name for name in BY_TYPE}

Layer = Annotated[
    DenseLayer
    | Conv2dLayer
    | MaxPoolLayer
    | AvgPoolLayer
    | BatchNormLayer
    | DropoutLayer
    | ReLULayer
    | SigmoidLayer
    | TanhLayer
    | LeakyReLULayer
    | GELULayer
    | FlattenLayer
    | GlobalAvgPoolLayer,
    Field(discriminator="type"),
]


def canonical_type(raw: Any) -> str | None:
    """The type a layer dict names ("conv2d" → "Conv2d"), or None when it names none we know."""
    name = raw.get("type") if isinstance(raw, dict) else None
    return _BY_LOWER.get(name.lower()) if isinstance(name, str) else None


def unknown_type_message(raw: Any) -> str:
    """Why a layer dict has no type we know, as the builder says it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        return 'each layer must be an object with a "type", e.g. {"type": "ReLU"}'
    return f"unknown layer type {raw['type']!r}; the types are: {', '.join(BY_TYPE)}"
