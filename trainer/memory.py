"""Telling an allocation failure from other errors: a student can fix it (a smaller batch, model or
input size), unlike a bug, so it gets its own reason instead of "internal error"."""

from __future__ import annotations

import sys

OUT_OF_MEMORY = (
    "the model or a batch of images did not fit in the worker's memory; try a smaller batch "
    "size, a smaller input size or a smaller model"
)


def out_of_memory(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from, is an allocation failure."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError):
            return True
        torch = sys.modules.get("torch")  # never imported here: only a worker that has it
        if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
            return True  # CUDA (and MPS) allocators
        if isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc):
            return True  # PyTorch's CPU allocator: "DefaultCPUAllocator: can't allocate memory"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
