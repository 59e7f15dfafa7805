"""Hostile and broken uploads: each is refused with a reason, harms nothing, keeps the good files.

Every test stores media under its own tmp_path/media and proves that nothing appeared anywhere
else under tmp_path, that a canary file is untouched, and that the only files left in media are
server-named images and thumbnails.
"""

import hashlib
import io
import json
import pickle
import re
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.utils import translation
from PIL import Image

from tests.unit import hostile_zips as hz
from webapp.datasets import actions, images, quota, tasks
from webapp.datasets.models import Category, Dataset, Item, StoredImage

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
GOOD = {"cat/1.png": hz.png(seed=1), "dog/2.png": hz.png(seed=2)}
STORED_NAME = re.compile(
    r"^(images|thumbs)/([0-9a-f]{2})/([0-9a-f]{2})/\2\3[0-9a-f]{60}\.(png|jpg)$"
)


class Sandbox:
    """Where uploads may write (media/) and what must stay as it was (everything else)."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path
        self.media = tmp_path / "media"
        self.media.mkdir()
        self.canary = tmp_path / "canary" / "keep.txt"
        self.canary.parent.mkdir()
        self.canary.write_text("untouched")
        self.abs_dir = Path(tempfile.gettempdir()) / f"manabi-abs-{uuid.uuid4().hex}"
        self.before = self._outside_media()

    def _outside_media(self) -> dict[Path, bytes]:
        return {
            p: p.read_bytes()
            for p in self.root.rglob("*")
            if p.is_file() and self.media not in p.parents
        }

    def assert_untouched(self, *escapes: str) -> None:
        """Nothing outside media changed; media holds only server-named files; no escape landed."""
        assert self._outside_media() == self.before
        assert self.canary.read_text() == "untouched"
        assert not self.abs_dir.exists()
        for name in escapes:
            for base in (self.media, self.media / "images", self.media / "uploads" / "x"):
                assert not (base / name).resolve().exists(), name
            assert not (Path.cwd() / name).resolve().exists(), name
        for path in self.media.rglob("*"):
            if path.is_file():
                name = path.relative_to(self.media).as_posix()
                assert STORED_NAME.match(name), name  # upload parts are gone, nothing else


@pytest.fixture
def sandbox(settings, tmp_path) -> Sandbox:
    box = Sandbox(tmp_path)
    settings.MEDIA_ROOT = str(box.media)
    settings.INGEST_PROCESSES = 1  # forked workers cannot see the in-memory test database
    return box


def ingest(user, course, data: bytes, kind: str = "classification") -> Dataset:
    """Upload `data` as a ZIP the way the API does, then run the ingest task in this process."""
    upload = actions.start_upload(user, course, "upload.zip", len(data))
    actions.receive_chunk(upload, 0, data)
    dataset = actions.complete_upload(upload, "Uploaded", kind)  # on_commit never fires here
    with translation.override("en"):
        tasks.ingest_upload(dataset.pk, str(upload.pk), "en")
    dataset.refresh_from_db()
    return dataset


def rejected(dataset: Dataset) -> dict[str, str]:
    return {r["file"]: r["reason"] for r in dataset.report["rejected"]}


def assert_kept(dataset: Dataset, count: int) -> None:
    assert dataset.status == "ready", dataset.error
    assert dataset.error == ""
    assert Item.objects.filter(dataset=dataset).count() == count


def assert_failed(dataset: Dataset, phrase: str) -> None:
    assert dataset.status == "failed"
    assert phrase in dataset.error, dataset.error
    assert not Item.objects.filter(dataset=dataset).exists()


def api(world, persona: str):
    """A client speaking for the persona with a bearer token, in English."""
    client = Client()
    headers = {**world.bearer(persona), "HTTP_ACCEPT_LANGUAGE": "en"}

    def call(method: str, path: str, body=None, raw_body: bytes | None = None):
        if raw_body is not None:
            return getattr(client, method)(
                path, data=raw_body, content_type="application/octet-stream", **headers
            )
        return getattr(client, method)(
            path,
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
            **headers,
        )

    return call


# --- entries that try to leave the folder ------------------------------------------------------


def test_parent_path_entries_are_refused_and_write_nothing(world, sandbox):
    bad = ["../../escaped.txt", "cat/../../escaped.png", "cat\\..\\..\\escaped-win.png"]
    data = hz.zip_bytes({**{name: hz.png(seed=9) for name in bad}, **GOOD})
    dataset = ingest(world.alice, world.course, data)
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    for name in bad:
        assert "leaves the ZIP" in reasons[name]
    sandbox.assert_untouched("../../escaped.txt", "../../escaped.png", "../escaped-win.png")


def test_absolute_path_entries_are_refused(world, sandbox):
    bad = [f"{sandbox.abs_dir}/abs.png", "C:/Windows/abs.png", "//server/share/abs.png"]
    data = hz.zip_bytes({**{name: hz.png(seed=9) for name in bad}, **GOOD})
    dataset = ingest(world.alice, world.course, data)
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    for name in bad:
        assert "Absolute paths" in reasons[name]
    sandbox.assert_untouched()


def test_symlink_entry_is_refused(world, sandbox):
    link = hz.symlink("cat/link.png")
    dataset = ingest(world.alice, world.course, hz.zip_bytes({link: b"/etc/passwd", **GOOD}))
    assert_kept(dataset, 2)
    assert "Links are not allowed" in rejected(dataset)["cat/link.png"]
    sandbox.assert_untouched()


def test_nested_archives_are_not_opened(world, sandbox):
    inner_zip = hz.zip_bytes({"cat/inside.png": hz.png(seed=7)})
    inner_tar = hz.tar_gz({"dog/inside.png": hz.png(seed=8)})
    files = {"cat/inner.zip": inner_zip, "dog/inner.tar.gz": inner_tar, **GOOD}
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)  # the pictures inside the inner archives were not read
    reasons = rejected(dataset)
    assert "Archives inside the ZIP are not opened" in reasons["cat/inner.zip"]
    assert "Archives inside the ZIP are not opened" in reasons["dog/inner.tar.gz"]
    sandbox.assert_untouched()


# --- bombs ---------------------------------------------------------------------------------------


def test_too_many_entries_fail_the_whole_upload(world, sandbox, settings):
    settings.ZIP_MAX_ENTRIES = 5
    files = {f"cat/{i}.png": hz.png(seed=i) for i in range(6)}
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_failed(dataset, "The ZIP holds 6 files; the limit is 5")
    assert not StoredImage.objects.exists()
    sandbox.assert_untouched()


def test_declared_unpacked_size_over_the_limit_fails_the_whole_upload(world, sandbox, settings):
    settings.ZIP_MAX_UNPACKED_BYTES = 1 * MB
    files = {"cat/a.png": bytes(3 * MB // 2), "dog/b.png": bytes(3 * MB // 2), **GOOD}
    data = hz.zip_bytes(files)
    assert len(data) < 100_000  # small to send, big to unpack
    dataset = ingest(world.alice, world.course, data)
    assert_failed(dataset, "Unpacked, this ZIP would take 3 MB; the limit is 1 MB")
    assert not StoredImage.objects.exists()
    sandbox.assert_untouched()


def test_suspiciously_compressed_entry_is_refused(world, sandbox, settings):
    settings.ZIP_MAX_RATIO = 100
    data = hz.zip_bytes({"cat/big.png": bytes(4 * MB), **GOOD})
    dataset = ingest(world.alice, world.course, data)
    assert_kept(dataset, 2)
    assert "compressed suspiciously well" in rejected(dataset)["cat/big.png"]
    sandbox.assert_untouched()


def test_entry_that_unpacks_bigger_than_declared_is_refused(world, sandbox):
    data = bytearray(hz.zip_bytes({"cat/liar.png": bytes(200_000), **GOOD}))
    # Make the first entry claim 10 bytes unpacked, in its local header and central directory.
    assert data[:4] == b"PK\x03\x04"
    data[22:26] = (10).to_bytes(4, "little")
    central = data.find(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    dataset = ingest(world.alice, world.course, bytes(data))
    assert_kept(dataset, 2)
    reason = rejected(dataset)["cat/liar.png"]
    assert "damaged inside the ZIP" in reason or "bigger than the ZIP says" in reason
    sandbox.assert_untouched()


def test_decompression_bomb_images_are_refused_before_decoding(world, sandbox, settings):
    settings.IMAGE_MAX_PIXELS = 1_000_000
    files = {
        "cat/bomb.png": hz.bilevel_png(5000),  # real: 25 M pixels in a few kB
        "dog/huge.png": hz.png_header_only(20_000, 20_000),  # declares 400 M pixels
        **GOOD,
    }
    assert len(files["cat/bomb.png"]) < 100_000
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    assert "25,000,000 pixels; the limit is 1,000,000" in reasons["cat/bomb.png"]
    assert "pixels" in reasons["dog/huge.png"] or "too large" in reasons["dog/huge.png"]
    sandbox.assert_untouched()


# --- files that are not what their names say ----------------------------------------------------


def test_random_bytes_named_png_are_refused(world, sandbox):
    noise = b"\x00" + np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    dataset = ingest(world.alice, world.course, hz.zip_bytes({"cat/noise.png": noise, **GOOD}))
    assert_kept(dataset, 2)
    assert "This is not an image" in rejected(dataset)["cat/noise.png"]
    sandbox.assert_untouched()


def test_svg_and_html_are_refused(world, sandbox):
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"\xef\xbb\xbf\n<!DOCTYPE html><html><script>alert(1)</script></html>"
    files = {"cat/logo.png": svg, "cat/page.html": html, "dog/logo.svg": svg, **GOOD}
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    for name in ("cat/logo.png", "cat/page.html", "dog/logo.svg"):
        assert "SVG, HTML" in reasons[name]
    assert set(StoredImage.objects.values_list("content_type", flat=True)) == {"image/png"}
    sandbox.assert_untouched()


def test_truncated_png_is_refused(world, sandbox):
    whole = hz.png(64, 64, seed=5)
    files = {"cat/half.png": whole[: len(whole) // 2], **GOOD}
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)
    assert "truncated or damaged" in rejected(dataset)["cat/half.png"]
    sandbox.assert_untouched()


def test_empty_file_is_refused(world, sandbox):
    dataset = ingest(world.alice, world.course, hz.zip_bytes({"cat/empty.png": b"", **GOOD}))
    assert_kept(dataset, 2)
    assert "empty" in rejected(dataset)["cat/empty.png"]
    sandbox.assert_untouched()


def test_absurd_names_are_refused(world, sandbox):
    long_name = "cat/" + "a" * 592 + ".png"  # 600 characters
    long_part = "cat/" + "b" * 300 + ".png"  # one component over 255
    files = {
        long_name: hz.png(seed=3),
        long_part: hz.png(seed=4),
        "cat/bad\nname.png": hz.png(seed=5),
        "cat/bell\x07\x1b[31m.png": hz.png(seed=6),
        **GOOD,
    }
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    assert "too long" in reasons[long_name[:512]]
    assert "too long" in reasons[long_part]
    assert "control characters" in reasons["cat/bad\\nname.png"]
    assert "control characters" in reasons["cat/bell\\x07\\x1b[31m.png"]
    assert all(len(name) <= 512 for name in reasons)
    assert not any(ch in "".join(reasons) for ch in "\n\x07\x1b")
    sandbox.assert_untouched()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"Just some text, certainly no ZIP.\n" * 50, id="text"),
        pytest.param(hz.png(seed=1), id="png"),
        pytest.param(hz.zip_bytes(GOOD)[:-30], id="truncated-zip"),
    ],
)
def test_file_that_is_not_a_zip_fails_with_a_reason(world, sandbox, data):
    dataset = ingest(world.alice, world.course, data)
    assert_failed(dataset, "not a ZIP file")
    sandbox.assert_untouched()


# --- pickles are never loaded --------------------------------------------------------------------


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make every way of unpickling fail loudly and remember that it was tried."""
    calls = []

    def refuse(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called during ingest")

        return call

    monkeypatch.setattr(pickle, "load", refuse("pickle.load"))
    monkeypatch.setattr(pickle, "loads", refuse("pickle.loads"))
    monkeypatch.setattr(pickle, "Unpickler", refuse("pickle.Unpickler"))
    monkeypatch.setattr(np, "load", refuse("numpy.load"))
    return calls


CIFAR_PY = {
    "cifar-10-batches-py/data_batch_1": pickle.dumps({b"labels": [0], b"data": b"\x00" * 3072}),
    "cifar-10-batches-py/batches.meta": pickle.dumps({b"label_names": [b"airplane"]}),
    "cifar-10-batches-py/test_batch": pickle.dumps({b"labels": [], b"data": b""}),
}


def test_python_cifar_alone_fails_pointing_to_the_binary_version(world, sandbox, no_unpickling):
    dataset = ingest(world.alice, world.course, hz.zip_bytes(CIFAR_PY))
    assert_failed(dataset, "CIFAR-10 binary version")
    assert no_unpickling == []
    sandbox.assert_untouched()


def test_pickled_files_beside_images_are_refused_unopened(world, sandbox, no_unpickling):
    files = {**CIFAR_PY, "cat/weights.npy": b"\x93NUMPY", "model.pkl": pickle.dumps(1), **GOOD}
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    for name in CIFAR_PY:
        assert "CIFAR-10 binary version" in reasons[name]
    assert "does not open .npz, .npy or .pkl" in reasons["cat/weights.npy"]
    assert "does not open .npz, .npy or .pkl" in reasons["model.pkl"]
    assert no_unpickling == []
    sandbox.assert_untouched()


# --- Japanese names and escaping -----------------------------------------------------------------


def test_cp932_names_from_japanese_windows_become_japanese_classes(world, sandbox):
    files = {
        "ねこ/1.png": hz.png(seed=1),
        "いぬ/2.png": hz.png(seed=2),
        "ソフト/3.png": hz.png(seed=3),
    }
    data = hz.cp932_zip(files)
    assert "ねこ".encode("cp932") in data and "ねこ".encode() not in data
    assert all(not info.flag_bits & 0x800 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    dataset = ingest(world.alice, world.course, data)
    assert_kept(dataset, 3)
    assert rejected(dataset) == {}
    names = set(Category.objects.filter(dataset=dataset).values_list("name", flat=True))
    assert names == {"ねこ", "いぬ", "ソフト"}  # ソ ends in 0x5C, a backslash in ASCII
    paths = set(Item.objects.filter(dataset=dataset).values_list("original_path", flat=True))
    assert paths == set(files)
    sandbox.assert_untouched()


def test_class_and_file_names_are_escaped_on_the_dataset_page(world, sandbox):
    tag = "<img src=x onerror=alert(1)>"
    svg_name = "cat/<svg onload=alert(2)>.png"
    files = {f"{tag}/1.png": hz.png(seed=1), "dog/2.png": hz.png(seed=2), svg_name: b"<svg/>"}
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 2)
    assert tag in set(Category.objects.filter(dataset=dataset).values_list("name", flat=True))
    assert svg_name in rejected(dataset)
    html = world.client("alice").get(f"/datasets/{dataset.pk}/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;svg onload=alert(2)&gt;" in html
    assert tag not in html and "<svg onload" not in html
    sandbox.assert_untouched()


# --- what gets stored --------------------------------------------------------------------------


def _stored(dataset: Dataset, path: str) -> StoredImage:
    return Item.objects.select_related("image").get(dataset=dataset, original_path=path).image


def _open_stored(sandbox: Sandbox, image: StoredImage) -> Image.Image:
    return Image.open(sandbox.media / image.file)


def test_exif_orientation_applied_once_and_modes_normalised(world, sandbox):
    files = {
        "cat/rotated.jpg": hz.jpeg_with_orientation(40, 20, 6),
        "cat/gray.png": hz.png(16, 16, seed=1, mode="L"),
        "dog/rgba.png": hz.png(16, 16, seed=2, mode="RGBA"),
    }
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 3)

    rotated = _stored(dataset, "cat/rotated.jpg")
    assert (rotated.width, rotated.height, rotated.channels) == (20, 40, 3)
    assert rotated.content_type == "image/jpeg"
    with _open_stored(sandbox, rotated) as image:
        assert image.size == (20, 40)
        assert image.getexif().get(0x0112, 1) == 1  # a viewer will not turn it again
        red, blue = image.convert("RGB").getpixel((10, 5)), image.convert("RGB").getpixel((10, 35))
    assert red[0] > 200 and red[2] < 60  # turned clockwise: the red left half is now on top
    assert blue[2] > 200 and blue[0] < 60

    gray = _stored(dataset, "cat/gray.png")
    assert gray.channels == 1
    assert gray.bytes == len(files["cat/gray.png"])  # kept byte for byte
    rgba = _stored(dataset, "dog/rgba.png")
    assert (rgba.channels, rgba.content_type) == (3, "image/png")
    with _open_stored(sandbox, rgba) as image:
        assert image.mode == "RGB"
    sandbox.assert_untouched()


def test_damaged_metadata_does_not_lose_a_good_picture(world, sandbox):
    files = {
        "cat/bad-header.png": hz.with_exif("PNG", hz.exif_bad_header()),
        "cat/odd-type.jpg": hz.with_exif("JPEG", hz.exif_rational_as_text()),
        **GOOD,
    }
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, 4)
    assert rejected(dataset) == {}
    unreadable = _stored(dataset, "cat/bad-header.png")
    assert (unreadable.width, unreadable.height) == (40, 20)  # no orientation known: as stored
    turned = _stored(dataset, "cat/odd-type.jpg")
    assert (turned.width, turned.height) == (20, 40)  # the orientation itself was readable
    sandbox.assert_untouched()


def test_unexpected_decoder_error_refuses_only_that_file(world, sandbox, monkeypatch):
    poison = hz.png(seed=99)
    check = images.check_image

    def surprising(data, max_pixels):
        if data == poison:
            raise TypeError("a decoder bug")
        return check(data, max_pixels)

    monkeypatch.setattr(images, "check_image", surprising)
    dataset = ingest(world.alice, world.course, hz.zip_bytes({"cat/odd.png": poison, **GOOD}))
    assert_kept(dataset, 2)
    assert "truncated or damaged (a decoder bug)" in rejected(dataset)["cat/odd.png"]
    sandbox.assert_untouched()


def test_storage_names_are_content_hashes_chosen_by_the_server(world, sandbox):
    files = {
        "cat/shell.php": hz.png(seed=1),
        "cat/..hidden.png": hz.png(seed=2),
        "cat/CON.png": hz.png(seed=3),
        "cat/%2e%2e%2fx.png": hz.png(seed=4),
        "ねこ/秘密の写真.png": hz.png(200, 150, seed=5),  # big enough for a thumbnail
        "dog/x.png;.html": hz.png(seed=6),
    }
    dataset = ingest(world.alice, world.course, hz.zip_bytes(files))
    assert_kept(dataset, len(files))
    stored = StoredImage.objects.filter(items__dataset=dataset).distinct()
    assert stored.count() == len(files)
    for image in stored:
        content = (sandbox.media / image.file).read_bytes()
        assert image.file == f"images/{image.sha256[:2]}/{image.sha256[2:4]}/{image.sha256}.png"
        assert hashlib.sha256(content).hexdigest() == image.sha256
        assert image.thumb == image.file or image.thumb.startswith(f"thumbs/{image.sha256[:2]}/")
        for fragment in ("shell", "php", "hidden", "CON", "%2e", "秘密", "ねこ", "html", "cat"):
            assert fragment not in image.file and fragment not in image.thumb
    assert any(image.thumb != image.file for image in stored)
    sandbox.assert_untouched()


# --- quota ---------------------------------------------------------------------------------------


@pytest.fixture
def small_quota(world):
    world.course.storage_mb_per_student = 1
    world.course.save()
    return world.course


def test_announcing_an_upload_over_the_quota_gets_413(world, sandbox, small_quota):
    call = api(world, "alice")
    body = {"course": small_quota.pk, "file_name": "big.zip", "size": 2 * MB}
    response = call("post", "/api/v1/uploads", body)
    assert response.status_code == 413, response.content
    assert "quota" in response.json()["detail"]
    sandbox.assert_untouched()


def test_chunk_that_no_longer_fits_the_quota_gets_413(world, sandbox, small_quota):
    call = api(world, "alice")
    body = {"course": small_quota.pk, "file_name": "data.zip", "size": 600_000}
    start = call("post", "/api/v1/uploads", body)
    assert start.status_code == 201, start.content
    upload_id = start.json()["id"]
    first = call("put", f"/api/v1/uploads/{upload_id}?offset=0", raw_body=b"x" * 200_000)
    assert first.status_code == 200, first.content
    # Meanwhile another upload of alice's fills her quota.
    Dataset.objects.create(
        course=small_quota,
        owner=world.alice,
        name="other",
        kind="classification",
        bytes_used=MB - 250_000,
    )
    second = call("put", f"/api/v1/uploads/{upload_id}?offset=200000", raw_body=b"x" * 300_000)
    assert second.status_code == 413, second.content
    assert "quota" in second.json()["detail"]
    assert call("get", f"/api/v1/uploads/{upload_id}").json()["received"] == 200_000
    assert len(list((sandbox.media / "uploads").rglob("*.part"))) == 1


@pytest.mark.parametrize("persona", ["teacher", "ta"])
def test_teachers_and_tas_have_no_quota(world, sandbox, small_quota, persona):
    assert quota.storage_left(world.user(persona), small_quota) is None
    call = api(world, persona)
    body = {"course": small_quota.pk, "file_name": "big.zip", "size": 2 * MB}
    start = call("post", "/api/v1/uploads", body)
    assert start.status_code == 201, start.content
    put = call("put", f"/api/v1/uploads/{start.json()['id']}?offset=0", raw_body=b"x" * 2 * MB)
    assert put.status_code == 200, put.content
    assert put.json()["received"] == 2 * MB


def test_ingest_stops_storing_when_the_quota_is_full(world, sandbox, small_quota):
    files = {f"cat/{i}.png": hz.png(128, 128, seed=i) for i in range(4)}  # no thumbnails
    largest = max(len(data) for data in files.values())
    assert 3 * min(len(data) for data in files.values()) > 2.5 * largest
    data = hz.zip_bytes(files)
    upload = actions.start_upload(world.alice, small_quota, "upload.zip", len(data))
    actions.receive_chunk(upload, 0, data)
    dataset = actions.complete_upload(upload, "Uploaded", "classification")
    left = 2 * largest + largest // 2
    Dataset.objects.create(  # another dataset of alice's used the rest meanwhile
        course=small_quota,
        owner=world.alice,
        name="other",
        kind="classification",
        bytes_used=MB - left,
    )
    with translation.override("en"):
        tasks.ingest_upload(dataset.pk, str(upload.pk), "en")
    dataset.refresh_from_db()
    assert_kept(dataset, 2)
    reasons = rejected(dataset)
    assert len(reasons) == 2
    assert all("quota" in reason for reason in reasons.values())
    assert 0 < dataset.bytes_used <= left
    assert quota.storage_left(world.alice, small_quota) >= 0
    sandbox.assert_untouched()


# --- serving ------------------------------------------------------------------------------------


def test_images_are_served_with_their_type_nosniff_and_download_as_attachment(world, sandbox):
    dataset = ingest(world.alice, world.course, hz.zip_bytes(GOOD))
    assert_kept(dataset, 2)
    item = Item.objects.get(dataset=dataset, original_path="cat/1.png")
    url = f"/datasets/{dataset.pk}/items/{item.pk}/image"
    client = world.client("alice")

    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in response.get("Content-Disposition", "")
    assert b"".join(response.streaming_content) == GOOD["cat/1.png"]  # and closes the file

    download = client.get(url + "?download=1")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == GOOD["cat/1.png"]

    assert world.client("bob").get(url).status_code == 404  # alice's private dataset
    sandbox.assert_untouched()
