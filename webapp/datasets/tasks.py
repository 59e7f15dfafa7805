"""Celery tasks of the datasets app (default queue): ingest an upload, copy a sample."""

import itertools
import logging
import shutil
import tempfile

from celery import shared_task
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import translation
from django.utils.translation import gettext as _

from webapp.datasets import archive, ingest, quota, samples, splits
from webapp.datasets.importers import UnsupportedArchive, read_archive
from webapp.datasets.models import Dataset, Status, Upload

log = logging.getLogger(__name__)


def _limits() -> archive.Limits:
    return archive.Limits(
        max_entries=settings.ZIP_MAX_ENTRIES,
        max_total_bytes=settings.ZIP_MAX_UNPACKED_BYTES,
        max_entry_bytes=settings.ZIP_MAX_ENTRY_BYTES,
        max_ratio=settings.ZIP_MAX_RATIO,
    )


POOL_FROM_IMAGES = 1000  # below this, starting helper processes costs more than it saves


def _processes(expected_images: int) -> int:
    return settings.INGEST_PROCESSES if expected_images >= POOL_FROM_IMAGES else 1


def _fail(dataset: Dataset, message: str) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(status=Status.FAILED, error=message)


def _progress(dataset_id: int, total: int):
    def report(done: int) -> None:
        Dataset.objects.filter(pk=dataset_id).update(progress=min(0.99, done / max(1, total)))

    return report


def assemble_upload(upload: Upload, into) -> None:
    """Concatenate the stored chunks of an upload into an open local file."""
    for part in sorted(default_storage.listdir(upload.storage_dir)[1]):
        with default_storage.open(f"{upload.storage_dir}/{part}", "rb") as chunk:
            shutil.copyfileobj(chunk, into, length=1024 * 1024)
    into.seek(0)


def delete_upload_parts(upload: Upload) -> None:
    if not default_storage.exists(upload.storage_dir):
        return
    _directories, files = default_storage.listdir(upload.storage_dir)
    for part in files:
        default_storage.delete(f"{upload.storage_dir}/{part}")


@shared_task(name="datasets.ingest_upload")
def ingest_upload(dataset_id: int, upload_id: str, language: str = "en") -> None:
    """Read the uploaded ZIP entry by entry into version 1 of the dataset."""
    translation.activate(language)  # reasons in the report speak the uploader's language
    dataset = Dataset.objects.select_related("owner", "course").get(pk=dataset_id)
    upload = Upload.objects.get(pk=upload_id)
    try:
        with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as local:
            assemble_upload(upload, local)
            with archive.SafeZip(local, _limits()) as zf:
                result = read_archive(zf, dataset.kind)
                run = ingest.Ingest(
                    dataset,
                    ingest.Categories(result.categories),
                    quota_bytes_left=quota.storage_left(dataset.owner, dataset.course),
                    on_progress=_progress(dataset.pk, len(zf.entries)),
                    processes=_processes(len(zf.entries)),
                )
                run.run(itertools.chain(zf.rejected, result.records))
                _finish(run, dataset, result.format)
    except (archive.ArchiveRefused, UnsupportedArchive) as exc:
        _fail(dataset, str(exc))
    except Exception:
        log.exception("ingest of dataset %s failed", dataset_id)
        _fail(dataset, _("Something went wrong while reading the ZIP; the error was logged."))
        raise
    finally:
        delete_upload_parts(upload)


def _finish(run: ingest.Ingest, dataset: Dataset, fmt: str) -> None:
    dataset.report = run.report.as_json(fmt)
    dataset.save(update_fields=["report"])
    if run.report.images == 0:
        _fail(dataset, _("No image in the upload could be used; see the list of refused files."))
        return
    run.finish(splits.SplitSettings())


@shared_task(name="datasets.copy_sample")
def copy_sample(dataset_id: int, key: str, language: str = "en") -> None:
    """Fill a dataset from a built-in sample (no download)."""
    translation.activate(language)
    dataset = Dataset.objects.select_related("owner", "course").get(pk=dataset_id)
    try:
        sample = samples.SAMPLES[key]
        result = sample.build()
        run = ingest.Ingest(
            dataset,
            ingest.Categories(result.categories),
            # checked before the copy was queued; held here too, as for an upload
            quota_bytes_left=quota.storage_left(dataset.owner, dataset.course),
            on_progress=_progress(dataset.pk, sample.count),
            processes=_processes(sample.count),
        )
        run.run(result.records)
        _finish(run, dataset, result.format)
    except Exception:
        log.exception("sample %s into dataset %s failed", key, dataset_id)
        _fail(dataset, _("The sample could not be copied; the error was logged."))
        raise
