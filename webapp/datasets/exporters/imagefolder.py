"""ImageFolder export: <split>/<class>/<file_name>, for classification datasets only.

Class names are folder names, with "/" and "\\" replaced by "_"; a class with no image leaves no
folder (a ZIP's empty folders are not read back).
"""

from collections.abc import Iterable, Iterator

from trainer.kinds import shape
from webapp.datasets.exporters._zipstream import ExportItem, ZipFile, folder_name, zip_stream
from webapp.datasets.records import CategoryInfo


def export_imagefolder(
    items: Iterable[ExportItem], categories: list[CategoryInfo], *, kind: str = "classification"
) -> Iterator[bytes]:
    """Stream a ZIP with one folder per split and class; ValueError for other kinds."""
    if not shape(kind).one_label_per_image:
        raise ValueError(f"ImageFolder holds classification datasets only, not {kind}")
    return zip_stream(_files(items))


def _files(items: Iterable[ExportItem]) -> Iterator[ZipFile]:
    for item in items:
        if item.label is None:
            raise ValueError(f"{item.file_name} has no class; ImageFolder needs one per image")
        split = folder_name(item.split or "train")
        yield f"{split}/{folder_name(item.label)}/{item.file_name}", item.read, False
