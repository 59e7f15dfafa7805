"""The Celery app (`celery -A webapp worker`); configuration comes from Django settings."""

import os

from celery import Celery
from celery.signals import worker_init

from webapp.env import envbool

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _preload_torch(**kwargs) -> None:
    """Import PyTorch once in the worker's main process, before it forks its pool.

    Train workers start a fresh process per job (`--max-tasks-per-child 1`, so GPU memory is
    given back); without this each of them imports torch again (3–4 s before the first event).
    Importing does not initialise CUDA, so the forked processes may still use the GPU.
    """
    if envbool("WORKER_PRELOAD_TORCH", True):
        import torch  # noqa: F401
        import torchvision  # noqa: F401
