"""Artifacts of a trained classifier: weights, TorchScript, ONNX, model card, resumable checkpoints.

Nothing here unpickles untrusted data: weights from users are safetensors, and the trainer's own
checkpoints load with `torch.load(weights_only=True)`, which refuses arbitrary classes.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import platform
import random
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

PathLike = str | os.PathLike[str]
CHECKPOINT_FORMAT = "manabi-checkpoint-1"
ONNX_OPSET = 17
CARD = "model_card.json"


class WeightsMismatch(ValueError):
    """A weights file does not fit the model it is loaded into."""


class CheckpointError(ValueError):
    """A checkpoint file is not one the trainer wrote, or holds something other than plain data."""


# --- weights ------------------------------------------------------------------------------------


def save_safetensors(
    model: nn.Module, path: PathLike, *, metadata: dict[str, str] | None = None
) -> None:
    """Write the model's state_dict as safetensors (atomically, via a .tmp file)."""
    # clone(): tied or view-sharing tensors would otherwise be refused by safetensors.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = os.fspath(path) + ".tmp"
    save_file(tensors, tmp, metadata={"format": "manabi", **(metadata or {})})
    os.replace(tmp, path)


def safetensors_metadata(path: PathLike) -> dict[str, str]:
    """The string metadata stored in a safetensors file's header."""
    with safe_open(os.fspath(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_safetensors(
    model: nn.Module, path: PathLike, *, strict: bool = True, skip: Collection[str] = ()
) -> list[str]:
    """Load safetensors weights into `model`; return the keys of `skip` the file held.

    The keys in `skip` (a classifier head decided elsewhere) are neither loaded nor missed:
    they keep the model's own values. Every other tensor must have the model's shape, and with
    `strict` every other key must match in both directions.
    """
    state = load_file(os.fspath(path), device="cpu")
    own = model.state_dict()
    skipped = sorted(k for k in state if k in skip)
    for key in skipped:
        del state[key]
    mismatched = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    if mismatched:
        shapes = ", ".join(
            f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in mismatched
        )
        raise WeightsMismatch(f"weights in {Path(path).name} have other shapes ({shapes})")
    missing = sorted(set(own) - set(state) - set(skip))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise WeightsMismatch(
            f"weights in {Path(path).name} do not fit this model "
            f"(missing: {missing[:10]}, unexpected: {unexpected[:10]})"
        )
    model.load_state_dict(state, strict=False)
    return skipped


def load_tensors(path: PathLike, keys: Collection[str]) -> dict[str, torch.Tensor]:
    """The named tensors of a safetensors file that it holds (only those are read)."""
    with safe_open(os.fspath(path), framework="pt") as f:
        held = set(f.keys())
        return {key: f.get_tensor(key) for key in keys if key in held}


def source_classes(path: PathLike) -> list[str] | None:
    """The class names a weights file was trained for, in its output order; None if unknown.

    The trainer writes them into the file's metadata; weights written before that have them
    in the model card beside the file.
    """
    listed = safetensors_metadata(path).get("classes")
    if listed is None:
        card = Path(path).with_name(CARD)
        try:
            listed = json.loads(card.read_text(encoding="utf-8")).get("classes")
        except (OSError, ValueError, AttributeError):
            return None
    else:
        try:
            listed = json.loads(listed)
        except ValueError:
            return None
    if isinstance(listed, list) and listed and all(isinstance(c, str) for c in listed):
        return listed
    return None


# --- exporters ----------------------------------------------------------------------------------


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _on_cpu(model: nn.Module) -> nn.Module:
    """The model itself when it lives on the CPU, else a CPU copy (the caller's model stays put)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device.type == "cpu" for t in tensors):
        return model
    return copy.deepcopy(model).cpu()


def export_torchscript(model: nn.Module, example_input: torch.Tensor, path: PathLike) -> None:
    """Trace the model in eval mode on the CPU and save it for `torch.jit.load`."""
    cpu_model = _on_cpu(model)
    with _eval_mode(cpu_model), torch.no_grad(), warnings.catch_warnings():
        # torch.jit is deprecated upstream but still the most widely loadable format.
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning
        )
        traced = torch.jit.trace(cpu_model, example_input.cpu())
        traced.save(os.fspath(path))


def export_onnx(
    model: nn.Module,
    example_input: torch.Tensor,
    path: PathLike,
    *,
    output_names: Sequence[str] = ("logits",),
) -> None:
    """Export to ONNX (opset 17) with a dynamic batch axis, on the CPU, fully offline.

    `output_names` names the model's outputs in order (a detector's raw maps, say)."""
    cpu_model = _on_cpu(model)
    with _eval_mode(cpu_model), torch.no_grad(), warnings.catch_warnings():
        # The TorchScript-based exporter (dynamo=False) needs only the `onnx` package; the
        # dynamo exporter would also need onnxscript. Its deprecation notice is not news here.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning
        )
        torch.onnx.export(
            cpu_model,
            (example_input.cpu(),),
            os.fspath(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=list(output_names),
            dynamic_axes={name: {0: "batch"} for name in ("input", *output_names)},
        )


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return platform.processor() or platform.machine() or "cpu"


def model_card(
    *,
    classes: Sequence[str],
    input_size: int | Sequence[int],
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    spec: dict[str, Any],
    data_version: Any,
    metrics: dict[str, Any],
    model_name: str,
    parameters: int,
    device: str | None = None,
) -> dict[str, Any]:
    """What someone needs to use the exported model, and where and when it was made."""
    import torchvision  # only for its version; kept out of import time

    size = [input_size, input_size] if isinstance(input_size, int) else list(input_size)
    return {
        "model_name": model_name,
        "classes": list(classes),
        "num_classes": len(classes),
        "input": {"size": size, "channels": channels, "mean": list(mean), "std": list(std)},
        "parameters": parameters,
        "data_version": data_version,
        "metrics": metrics,
        "spec": spec,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "device": device or _device_name(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


def _failure(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"failed: {type(exc).__name__}: {first_line}".rstrip(": ")


Exporter = Callable[[nn.Module, torch.Tensor, PathLike], None]
EXPORT_FILES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}


def write_artifacts(
    model: nn.Module,
    out_dir: PathLike,
    *,
    example_input: torch.Tensor,
    card: dict[str, Any],
    exporters: dict[str, Exporter] | None = None,
) -> dict[str, str]:
    """Write model.safetensors, model.torchscript.pt, model.onnx and model_card.json.

    A failing TorchScript or ONNX export is recorded in the card's "exports" (e.g.
    {"onnx": "failed: ..."}) and the other files are still written. Returns the paths written.
    The weights themselves are not optional: a failure to save them raises. `exporters`
    ({"torchscript": fn, "onnx": fn}, each fn(model, example_input, path)) replaces the
    classifier's tracing exporters for a model with other outputs (a detector's).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    exports: dict[str, str] = {}

    weights = out / "model.safetensors"
    # The class list travels with the weights: a transfer matches its classifier by name.
    classes = json.dumps(list(card.get("classes", [])), ensure_ascii=False)
    save_safetensors(model, weights, metadata={"classes": classes})
    paths["safetensors"] = str(weights)
    exports["safetensors"] = weights.name

    chosen = exporters or {"torchscript": export_torchscript, "onnx": export_onnx}
    for kind, exporter in chosen.items():
        target = out / EXPORT_FILES[kind]
        try:
            exporter(model, example_input, target)
        except Exception as exc:  # any op a format cannot express; the other files still count
            target.unlink(missing_ok=True)
            exports[kind] = _failure(exc)
        else:
            paths[kind] = str(target)
            exports[kind] = target.name

    card_path = out / CARD
    full_card = {**card, "exports": exports}
    card_path.write_text(json.dumps(full_card, ensure_ascii=False, indent=2), encoding="utf-8")
    paths["card"] = str(card_path)
    return paths


# --- checkpoints --------------------------------------------------------------------------------

_PLAIN = (type(None), bool, int, float, str, bytes, torch.Tensor, torch.dtype, torch.device)


def _check_plain(value: Any, where: str) -> None:
    """Refuse anything weights_only=True could not load back, naming where it sits."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, f"{where} key")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN):
        raise CheckpointError(f"{where} is a {type(value).__name__}; checkpoints hold plain data")


def save_checkpoint(
    path: PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    epoch: int,
    rng: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """Save everything needed to resume training, atomically (path.tmp, fsync, os.replace)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng,
        "extra": extra,
    }
    _check_plain(payload, "checkpoint")
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint onto the CPU with weights_only=True: no arbitrary class is unpickled."""
    try:
        payload = torch.load(os.fspath(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{Path(path).name} holds more than plain data: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{Path(path).name} is not a Manabi checkpoint")
    return payload


def rng_state() -> dict[str, Any]:
    """Python, numpy (global) and torch RNG states as tensors, lists and numbers."""
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)  # legacy=True: the MT19937 key array
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss_next],
        "numpy": [str(name), keys.tolist(), int(pos), int(has_gauss), float(cached_gaussian)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned, so the next random numbers repeat."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # A resume on a machine with fewer GPUs restores the ones it has.
        for index, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state.cpu(), index)


# --- inference ----------------------------------------------------------------------------------


def predict_topk(
    model: nn.Module, images: torch.Tensor, *, classes: Sequence[str], k: int = 5
) -> list[list[dict[str, Any]]]:
    """The k most probable classes per image (B, C, H, W), highest first; k is clipped to C."""
    first = next(model.parameters(), None)
    if first is not None:
        images = images.to(first.device)
    with _eval_mode(model), torch.no_grad():
        probabilities = model(images).float().softmax(dim=1)  # (B, num_classes)
    if probabilities.shape[1] != len(classes):
        raise ValueError(f"model has {probabilities.shape[1]} outputs for {len(classes)} classes")
    top = probabilities.topk(max(1, min(k, len(classes))), dim=1)
    return [
        [{"class": classes[i], "probability": p} for p, i in zip(ps, idx, strict=True)]
        for ps, idx in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]


def card_spec(spec: Any) -> dict:
    """The spec as a model card shows it: without the data's file list (server paths, and
    megabytes for a large set) and with a transfer source named by its file only."""
    shown = spec.model_dump(mode="json", exclude={"data"})
    source = shown["transfer"]["source"]
    if source not in ("none", "imagenet"):
        shown["transfer"]["source"] = Path(source).name
    return shown
