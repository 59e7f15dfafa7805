"""Celery tasks about the workers themselves."""

import platform
import socket

from celery import shared_task


@shared_task(name="front.worker_environment")
def worker_environment() -> dict:
    """Describe the worker that runs this: host, Python, PyTorch and the GPUs it sees."""
    import torch  # imported here: only workers pay for it, never a web request

    devices = []
    if torch.cuda.is_available():
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "devices": devices,
    }
