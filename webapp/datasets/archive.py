"""Read an uploaded ZIP safely, one entry at a time, without ever extracting it to disk.

Entries that could harm (paths escaping the folder, links, nested archives, bombs, absurd
names) are refused one by one with a reason; an archive that is broken or over the limits as a
whole raises ArchiveRefused. Names from Japanese Windows (cp932, no UTF-8 flag) are decoded.
"""

import posixpath
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from django.utils.translation import gettext as _

from webapp.datasets.records import Rejection

UTF8_FLAG = 0x800
ENCRYPTED_FLAG = 0x1
NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".7z", ".rar", ".bz2", ".xz", ".lzma")
# Operating-system litter that is skipped silently, not reported as a rejection.
JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
JUNK_FOLDERS = {"__macosx", ".git", ".svn"}


class ArchiveRefused(Exception):
    """The whole upload cannot be used; the message says why, for a student."""


@dataclass(frozen=True)
class Limits:
    max_entries: int = 200_000
    max_total_bytes: int = 8 * 1024**3  # declared unpacked size of the whole archive
    max_entry_bytes: int = 64 * 1024**2  # one file, unpacked
    max_ratio: int = 200  # unpacked / packed, for entries over 1 MB
    max_name_length: int = 512
    max_component_length: int = 255


@dataclass(frozen=True)
class Entry:
    name: str  # decoded, normalised, relative POSIX path
    size: int  # declared unpacked size
    info: zipfile.ZipInfo


def decode_name(info: zipfile.ZipInfo) -> str:
    """Return the entry's real name: UTF-8 when flagged, else try UTF-8, cp932, then cp437."""
    if info.flag_bits & UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437")  # zipfile decoded the raw bytes as cp437
    for encoding in ("utf-8", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _is_junk(parts: list[str]) -> bool:
    return (
        any(p.lower() in JUNK_FOLDERS for p in parts[:-1])
        or parts[-1].lower() in JUNK_NAMES
        or parts[-1].startswith("._")
    )


def is_nested_archive(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(".gz") and "-ubyte" in lower:
        return False  # MNIST-style IDX files are gzip, and Manabi reads them
    return lower.endswith(NESTED_ARCHIVE_SUFFIXES) or lower.endswith(".gz")


class SafeZip:
    """A ZIP opened for reading; `entries` are the usable files, `rejected` the refused ones."""

    def __init__(self, file: BinaryIO | str, limits: Limits | None = None):
        self.limits = limits or Limits()
        try:
            self.zip = zipfile.ZipFile(file)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ArchiveRefused(
                _(
                    "This is not a ZIP file Manabi can read (%(error)s). "
                    "Re-create the ZIP and upload it again."
                )
                % {"error": exc}
            ) from None
        if len(infos) > self.limits.max_entries:
            raise ArchiveRefused(
                _(
                    "The ZIP holds %(count)s files; the limit is %(limit)s. "
                    "Split it into smaller ZIPs."
                )
                % {"count": len(infos), "limit": self.limits.max_entries}
            )
        total = sum(info.file_size for info in infos)
        if total > self.limits.max_total_bytes:
            raise ArchiveRefused(
                _("Unpacked, this ZIP would take %(size)s MB; the limit is %(limit)s MB.")
                % {"size": total // 1024**2, "limit": self.limits.max_total_bytes // 1024**2}
            )
        self.entries: list[Entry] = []
        self.rejected: list[Rejection] = []
        seen: set[str] = set()
        for info in infos:
            entry_or_reason = self._check(info)
            if entry_or_reason is None:
                continue
            if isinstance(entry_or_reason, Rejection):
                self.rejected.append(entry_or_reason)
            elif entry_or_reason.name in seen:
                self.rejected.append(
                    Rejection(
                        entry_or_reason.name,
                        _("The ZIP holds this name twice; the first copy was used."),
                    )
                )
            else:
                seen.add(entry_or_reason.name)
                self.entries.append(entry_or_reason)

    def _check(self, info: zipfile.ZipInfo) -> Entry | Rejection | None:
        raw_name = decode_name(info)
        shown = raw_name[: self.limits.max_name_length]
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw_name):
            return Rejection(
                shown.encode("unicode_escape").decode(), _("The name contains control characters.")
            )
        name = unicodedata.normalize("NFC", raw_name.replace("\\", "/"))
        if info.is_dir() or name.endswith("/"):
            return None
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            return Rejection(shown, _("Absolute paths are not allowed in a ZIP."))
        parts = name.split("/")
        if ".." in parts:
            return Rejection(shown, _("The path leaves the ZIP's folder (“..”)."))
        parts = [p for p in parts if p not in ("", ".")]
        if not parts:
            return None
        name = posixpath.join(*parts)
        if _is_junk(parts):
            return None
        if len(name) > self.limits.max_name_length or any(
            len(p) > self.limits.max_component_length for p in parts
        ):
            return Rejection(shown, _("The file name is too long."))
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            return Rejection(name, _("Links are not allowed in a ZIP; put the file itself in."))
        if mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
            return Rejection(name, _("Only plain files are read from a ZIP."))
        if info.flag_bits & ENCRYPTED_FLAG:
            return Rejection(name, _("The file is password-protected."))
        if is_nested_archive(name):
            return Rejection(
                name, _("Archives inside the ZIP are not opened; upload that archive on its own.")
            )
        if info.file_size > self.limits.max_entry_bytes:
            return Rejection(
                name,
                _("The file is larger than %(limit)s MB.")
                % {"limit": self.limits.max_entry_bytes // 1024**2},
            )
        if info.file_size > 1024**2 and info.file_size > self.limits.max_ratio * max(
            1, info.compress_size
        ):
            return Rejection(name, _("The file is compressed suspiciously well (a “zip bomb”)."))
        return Entry(name=name, size=info.file_size, info=info)

    def read(self, entry: Entry) -> bytes:
        """Return the entry's bytes, never more than it declared (a lying header is refused)."""
        try:
            with self.zip.open(entry.info) as stream:
                data = stream.read(entry.size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise EntryUnreadable(
                _("The file is damaged inside the ZIP (%(error)s).") % {"error": exc}
            ) from None
        if len(data) > entry.size:
            raise EntryUnreadable(_("The file is bigger than the ZIP says (a “zip bomb”)."))
        return data

    def close(self) -> None:
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EntryUnreadable(Exception):
    """One entry cannot be read; the message is the reason to report."""
