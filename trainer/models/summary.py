"""A Keras-style `model.summary()`: each layer's output shape and parameter count."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SummaryRow:
    layer: str  # "features.0 (Conv2d)": the module's path and type
    output_shape: tuple[int, ...]  # without the batch dimension, e.g. (6, 64, 64)
    params: int  # learnable values of this layer (0 when it was already counted)


def summary(model: nn.Module, input_shape: tuple[int, int, int]) -> list[SummaryRow]:
    """Rows in the order the layers run, from one forward pass of a (1, C, H, W) zero image."""
    rows: list[SummaryRow] = []
    counted: set[int] = set()

    def record(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            tensor = output if isinstance(output, torch.Tensor) else _first_tensor(output)
            shape = tuple(tensor.shape[1:]) if tensor is not None else ()
            # A module called twice (resnet's shared ReLU) is listed twice but counted once.
            params = 0 if id(module) in counted else _own_parameter_count(module)
            counted.add(id(module))
            rows.append(SummaryRow(f"{name} ({type(module).__name__})", shape, params))

        return hook

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    handles = [m.register_forward_hook(record(n)) for n, m in leaves]
    first = next(model.parameters(), None)
    device, dtype = (first.device, first.dtype) if first is not None else (None, None)
    x = torch.zeros(1, *input_shape, device=device, dtype=dtype)
    was_training = model.training
    model.eval()  # batch statistics of one image are undefined (BatchNorm1d refuses them)
    try:
        with torch.no_grad():
            model(x)  # (1, C, H, W) -> (1, num_classes)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


def _own_parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _first_tensor(output: object) -> torch.Tensor | None:
    if isinstance(output, (tuple, list)):
        return next((t for t in output if isinstance(t, torch.Tensor)), None)
    return None
