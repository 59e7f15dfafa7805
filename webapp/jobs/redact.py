"""Server paths out of what people see: a job's events and errors name files, never folders.

The trainer writes paths into some messages (an image it could not read, weights it could not
load); the worker passes every event and error through `without_server_paths` before it stores
or sends it, so a student never learns where the media or the model cache are on the server.
"""

import os
import re
from functools import cache
from typing import Any

from django.conf import settings

from trainer import catalog  # torch-free: where the workers read pretrained weights


@cache
def _pattern(roots: tuple[str, ...]) -> re.Pattern[str]:
    # A root, then the rest of that path up to white space or a quote or bracket around it.
    alternatives = "|".join(re.escape(root.rstrip("/\\")) for root in roots)
    return re.compile(rf"(?:{alternatives})(?:[/\\][^\s'\"(),;<>\[\]]*|(?=[^\w.-]|$))")


def _roots() -> tuple[str, ...]:
    folders = {str(settings.MEDIA_ROOT), str(catalog.checkpoints_dir())}
    folders |= {os.path.realpath(folder) for folder in folders}
    return tuple(sorted(folders, key=len, reverse=True))  # the longest first


def _file_name(match: re.Match[str]) -> str:
    name = re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1]
    return name or "…"


def without_server_paths(value: Any) -> Any:
    """`value` (text, or JSON-ready lists and dicts of it) with each path under the media folder
    or the model cache replaced by its file name."""
    if isinstance(value, str):
        return _pattern(_roots()).sub(_file_name, value)
    if isinstance(value, dict):
        return {key: without_server_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_server_paths(item) for item in value]
    return value
