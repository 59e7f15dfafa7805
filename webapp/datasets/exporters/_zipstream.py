"""What exporters share: the item they export and a ZIP writer that streams chunk by chunk."""

import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from webapp.datasets.records import SourceAnnotation

FILE_MODE = (stat.S_IFREG | 0o644) << 16


@dataclass
class ExportItem:
    """One image of a dataset version, as an exporter writes it."""

    file_name: str  # unique within the export, e.g. "000123.png"
    read: Callable[[], bytes]
    width: int
    height: int
    split: str
    label: str | None = None
    annotations: list[SourceAnnotation] = field(default_factory=list)


class _Drain:
    """A write-only, unseekable sink: zipfile then writes data descriptors and never seeks back."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        chunk = bytes(self.buffer)
        self.buffer.clear()
        return chunk


ZipFile = tuple[str, Callable[[], bytes], bool]  # name in the ZIP, its bytes, compress?


def zip_stream(files: Iterable[ZipFile]) -> Iterator[bytes]:
    """The ZIP of `files`, yielded a file at a time, so memory holds one file, not the archive."""
    sink = _Drain()
    now = time.localtime()[:6]
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for name, read, compress in files:
            info = zipfile.ZipInfo(name, date_time=now)
            info.external_attr = FILE_MODE
            # PNG and JPEG are compressed already; deflating them again only costs time.
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            archive.writestr(info, read())
            chunk = sink.take()
            if chunk:
                yield chunk
    yield sink.take()


def folder_name(name: str) -> str:
    """A class name usable as one folder name (slashes and dot-only names replaced)."""
    name = name.replace("/", "_").replace("\\", "_").strip()
    return "_" if name in ("", ".", "..") else name
