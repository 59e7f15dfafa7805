"""Prepare images in helper processes: check, hash, thumbnail and store them. No database.

Ingest hands windows of image bytes to a pool of these processes and writes the rows itself.
The pool comes from a fork server: a clean single-threaded process that forks the helpers,
so they never inherit a lock that some thread of a Celery worker happened to hold.
"""

import contextlib
import multiprocessing
import os
from contextlib import contextmanager
from multiprocessing.process import AuthenticationString

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils.translation import gettext as _

from webapp.datasets import images

_made_dirs: set[str] = set()


def storage_names(sha256: str, extension: str) -> tuple[str, str]:
    """Server-chosen names: the content hash, never anything the uploader wrote."""
    stem = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
    return f"images/{stem}.{extension}", f"thumbs/{stem}.jpg"


def save_once(name: str, data: bytes) -> str:
    """Store content-addressed data; a file already there under its hash is the same file.

    On local disk this writes the file directly: Django's storage would look for a free name
    and create the folders again for every one of tens of thousands of small files.
    """
    if not isinstance(default_storage, FileSystemStorage):
        if default_storage.exists(name):
            return name
        return default_storage.save(name, ContentFile(data))
    path = default_storage.path(name)
    folder = os.path.dirname(path)
    if folder not in _made_dirs:
        os.makedirs(folder, exist_ok=True)
        _made_dirs.add(folder)
    try:
        with open(path, "xb") as stored:
            stored.write(data)
    except FileExistsError:
        if os.path.getsize(path) != len(data):  # left half-written by a crash: write it again
            partial = f"{path}.{os.getpid()}.part"
            with open(partial, "wb") as stored:
                stored.write(data)
            os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)  # never leave half a file under a content hash
        raise
    return name


def prepare(job: tuple[bytes | np.ndarray, int]) -> dict | str:
    """Check one image, hash it, write its file and thumbnail; return its facts or a reason."""
    payload, max_pixels = job
    try:
        if isinstance(payload, np.ndarray):
            checked = images.from_pixels(payload)
        else:
            checked = images.check_image(payload, max_pixels)
    except images.ImageRejected as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a decoder's surprise concerns this one file only
        return _("The image is truncated or damaged (%(error)s).") % {"error": exc}
    thumb = images.thumbnail(checked.image)
    file_name, thumb_name = storage_names(checked.sha256, checked.extension)
    file_name = save_once(file_name, checked.data)
    thumb_name = save_once(thumb_name, thumb) if thumb is not None else file_name
    return {
        "sha256": checked.sha256,
        "file": file_name,
        "thumb": thumb_name,
        "content_type": checked.content_type,
        "width": checked.width,
        "height": checked.height,
        "channels": checked.channels,
        "bytes": len(checked.data),
        "thumb_bytes": len(thumb or b""),
        "phash": images.perceptual_hash(checked.image),
    }


def _start_helper(language: str, media_root: str) -> None:
    """Runs first in each helper: Django's settings, the uploader's language, the media folder."""
    import django
    from django.conf import settings
    from django.utils import translation

    django.setup()
    settings.MEDIA_ROOT = media_root  # the parent's, also when a test moved it
    translation.activate(language)


class Ready:
    """The result of a window prepared in this process (no pool)."""

    def __init__(self, results: list):
        self.results = results

    def get(self) -> list:
        return self.results


@contextmanager
def helper_pool(processes: int, language: str):
    """A pool of helper processes for `prepare`, or None to work in this process.

    Inside a Celery worker, Python's multiprocessing sees Celery's (billiard's) process object:
    it is daemonic, which Python refuses children to only so that they cannot outlive it (these
    end with the ingest: terminate below), and its key is of a type Python's pickler will not
    send to the fork server. Both are set to what plain Python expects while the pool lives.
    """
    if processes <= 1:
        yield None
        return
    from django.conf import settings

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["webapp.datasets.preparing"])
    current = multiprocessing.current_process()
    saved = dict(current._config)
    current._config["daemon"] = False
    current._config["authkey"] = AuthenticationString(bytes(current.authkey))
    pool = None
    try:
        pool = context.Pool(
            processes, initializer=_start_helper, initargs=(language, str(settings.MEDIA_ROOT))
        )
        yield pool
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        current._config.clear()
        current._config.update(saved)
