"""Whole journeys of the newer kinds in the browser, with a real worker and nothing stubbed.

Detection: a student uploads a COCO ZIP of shapes (shared with the class) and a Pascal VOC one,
sees their boxes, trains from the Train page and watches the mAP table fill epoch by epoch over
the websocket, reads the boxes with the score slider, then (in English) tries a photo and hands
the run in to the teacher's detection assignment, which is scored by mAP@0.5 on a hidden set.
Keypoints: a COCO ZIP of stick figures with its own skeleton is uploaded, trained from the Train
page, and its results drawn as skeletons.
"""

import io
import itertools
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import shot as full_page_shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import _load_images
from tests.conftest import add_member, make_course, make_user
from tests.fixtures.coco_zip import coco_zip, png
from webapp.assignments import actions as assignment_actions
from webapp.assignments.models import Submission
from webapp.datasets import actions as dataset_actions
from webapp.datasets import samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Small enough for a 2-core machine, trained enough that Try it finds a shape (score ≥ 0.3):
# batches of 2 give 13 steps an epoch, which 5 epochs turn into boxes of 0.3–0.5 (the seed is
# fixed, so the run is the same every time). PHOTO: a picture of three shapes it never saw.
TRAIN_IMAGES, HIDDEN_IMAGES, VOC_IMAGES, PHOTO = 32, 12, 6, 201
DETECTION_SETTINGS = {"epochs": "5", "batch_size": "2", "lr": "0.005", "input_size": "64"}
POSE_IMAGES = 24
MASK_IMAGES = 24
MASK_SETTINGS = {"epochs": "3", "batch_size": "8", "input_size": "32", "width": "8"}
POSE_SETTINGS = {"epochs": "3", "batch_size": "8", "input_size": "32"}
UPLOAD = {"ja": "アップロード", "en": "Upload"}

# Records every state of the first chart's table (its first column: the kind's main figure,
# mAP@0.5 or PCK, one row an epoch) as the page changes, from the moment the job page loads.
# A reload would start the list (and the marker the test sets) again.
RECORDER = """
window.__seen = [];
document.addEventListener("DOMContentLoaded", () => {
  const curves = document.getElementById("curves");
  if (!curves) return;
  let last = "";
  const read = () => [...curves.querySelectorAll(".chart-data tbody tr")]
    .map((row) => row.cells[1] ? row.cells[1].textContent : "");
  const record = () => {
    const now = JSON.stringify(read());
    if (now !== last) { last = now; window.__seen.push(JSON.parse(now)); }
  };
  record();
  const watch = {childList: true, subtree: true, characterData: true};
  new MutationObserver(record).observe(curves, watch);
});
"""


def shot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-picture
    full_page_shot(page, name)


# --- the ZIPs ------------------------------------------------------------------------------------


def _shapes(start: int, stop: int) -> list:
    """The detection sample's pictures start..stop-1 (64×64, 1–3 shapes with boxes each)."""
    return list(itertools.islice(samples._shapes_records("shapes_detection", stop), start, stop))


SHAPE_CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(samples.SHAPES)]


def _voc_zip(records) -> bytes:
    """Annotations/*.xml (1-based inclusive corners) beside JPEGImages/ (PNGs, as VOC allows)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for index, record in enumerate(records):
            name = f"shape_{index:02d}"
            archive.writestr(f"VOC/JPEGImages/{name}.png", png(record.pixels))
            objects = "".join(
                f"<object><name>{one.category}</name><difficult>0</difficult><bndbox>"
                f"<xmin>{one.bbox[0] + 1:.0f}</xmin><ymin>{one.bbox[1] + 1:.0f}</ymin>"
                f"<xmax>{one.bbox[0] + one.bbox[2]:.0f}</xmax>"
                f"<ymax>{one.bbox[1] + one.bbox[3]:.0f}</ymax></bndbox></object>"
                for one in record.annotations
            )
            archive.writestr(
                f"VOC/Annotations/{name}.xml",
                f"<annotation><filename>{name}.png</filename><size><width>64</width>"
                f"<height>64</height><depth>3</depth></size>{objects}</annotation>",
            )
    return out.getvalue()


def _poses_zip() -> bytes:
    person = {
        "id": 1,
        "name": "person",
        "keypoints": list(samples.PERSON_KEYPOINTS),
        "skeleton": [list(pair) for pair in samples.PERSON_SKELETON],
    }
    return coco_zip(itertools.islice(samples._keypoints_records(), POSE_IMAGES), [person])


# --- steps ---------------------------------------------------------------------------------------


def _upload(page, live_url, course, path, name: str, kind: str, lang: str, shared=False) -> int:
    """Upload a ZIP from the class's datasets page; the dataset's id once it is ready."""
    page.goto(f"{live_url}/courses/{course.pk}/datasets/")
    page.set_input_files("input[name=files]", str(path))
    page.fill("#up-name", name)
    page.select_option("#up-kind", kind)
    if shared:
        page.select_option("#up-vis", "shared")
    page.get_by_role("button", name=UPLOAD[lang], exact=True).click()
    page.wait_for_url(f"{live_url}/datasets/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def _ready(dataset_id: int, seconds: float = 90) -> Dataset:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dataset = Dataset.objects.get(pk=dataset_id)
        if dataset.status != "processing":
            assert dataset.status == "ready", dataset.report
            return dataset
        time.sleep(0.3)
    raise AssertionError(f"dataset {dataset_id} still processing")


def _train_from_the_form(page, live_url, dataset_id: int, settings: dict) -> None:
    page.goto(f"{live_url}/datasets/{dataset_id}/")
    page.locator("#train-card a.btn").click()
    page.wait_for_url(f"{live_url}/datasets/{dataset_id}/train/**")
    for name, value in settings.items():
        page.fill(f"#f-{name}", value)


def _train_and_watch(page, live_url, dataset_id: int, settings: dict, model: str, title: str):
    """Train with `settings` from the form (the kind's default `model` picked), then watch the
    job page's figures grow live under the chart titled `title`."""
    _train_from_the_form(page, live_url, dataset_id, settings)
    expect(page.locator(f"input[name=preset][value={model}]")).to_be_checked()
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")
    expect(page.locator("#curves figcaption h2")).to_have_text(title)
    _assert_grew(_watch(page, int(settings["epochs"])), int(settings["epochs"]))


def _watch(page, epochs: int) -> list[list[str]]:
    """Stay on the job page until the run has succeeded; what its figure table went through."""
    page.evaluate("window.__stayed = true")  # gone if the page reloads or navigates
    expect(page.locator("#job-status")).to_have_class("badge job-succeeded", timeout=240_000)
    page.wait_for_function(
        f"document.querySelectorAll('#curves .chart-data tbody tr').length === {epochs}"
    )
    assert page.evaluate("window.__stayed") is True  # every row came over the websocket
    return page.evaluate("window.__seen")


def _assert_grew(seen: list[list[str]], epochs: int) -> None:
    """The table was seen with fewer epochs than the run had, then one row more at a time,
    every row a figure (not the em dash of a missing one)."""
    lengths = [len(rows) for rows in seen]
    assert lengths == sorted(lengths), seen
    assert lengths[0] < epochs and lengths[-1] == epochs, seen
    assert len({n for n in lengths if n}) >= 2, seen  # more than one update while watching
    assert all(cell not in ("", "—") for cell in seen[-1]), seen


def _in_a_thread(function, *args):
    """Call an action that tells the pages about itself (async_to_sync) off Playwright's loop."""

    def call():
        try:
            return function(*args)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def _boxes_shown(page) -> int:
    return page.locator("#det-table .det-box:not(.below)").count()


def _photo(index: int) -> bytes:
    """A picture the run never saw, scaled up and saved as a phone's photo would be."""
    out = io.BytesIO()
    pixels = _shapes(index, index + 1)[0].pixels
    Image.fromarray(pixels).resize((256, 256)).save(out, "JPEG", quality=92)
    return out.getvalue()


# --- the journeys --------------------------------------------------------------------------------


def test_detection_from_an_uploaded_coco_zip_to_a_scored_assignment(
    live_url, new_page, celery_worker_process, tmp_path, monkeypatch
):
    teacher = make_user("kj_sensei", teacher=True, display_name="佐藤先生")
    course = make_course(teacher, "物体検出 第9回")
    student = make_user("kj_hanako", display_name="山田花子")
    add_member(course, student)
    train_records = _shapes(0, TRAIN_IMAGES)
    # The teacher's hidden test set: other pictures of the same shapes, through the upload
    # path but read in this process. It is the journey's setting, not its subject; and once, in
    # a whole CI run (after the integration tests had restarted workers and a Redis), the
    # ingest this process sent never reached the worker while the pages' own did.
    monkeypatch.setattr(dataset_tasks.ingest_upload, "delay", dataset_tasks.ingest_upload)
    hidden = dataset_actions.upload_file(
        teacher,
        course,
        SimpleUploadedFile(
            "hidden.zip",
            coco_zip(_shapes(TRAIN_IMAGES, TRAIN_IMAGES + HIDDEN_IMAGES), SHAPE_CATEGORIES),
        ),
        "図形テスト（非公開）",
        "detection",
        "hidden_test",
    )
    monkeypatch.undo()
    assert Dataset.objects.get(pk=hidden.pk).status == "ready"
    coco = tmp_path / "shapes_coco.zip"
    coco.write_bytes(coco_zip(train_records, SHAPE_CATEGORIES))
    voc_records = _shapes(100, 100 + VOC_IMAGES)
    voc = tmp_path / "shapes_voc.zip"
    voc.write_bytes(_voc_zip(voc_records))

    # In Japanese: the COCO ZIP, shared with the class, and its boxes.
    page = new_page("ja")
    page.context.add_init_script(RECORDER)
    sign_in(page, live_url, "kj_hanako")
    dataset_id = _upload(page, live_url, course, coco, "図形（COCO）", "detection", "ja", True)
    expect(page.locator("#num-images")).to_have_text(str(TRAIN_IMAGES), timeout=90_000)
    expect(page.locator("#preview svg.tile-shapes rect").first).to_be_visible()
    tiles = page.locator("#preview svg.tile-shapes").count()
    assert page.locator("#preview svg.tile-shapes rect").count() >= tiles > 0
    dataset = _ready(dataset_id)
    assert dataset.visibility == "shared" and dataset.report.get("format", "").lower().startswith(
        "coco"
    ), dataset.report
    shot(page, "ja-85-journey-coco-dataset")

    # The teacher sets a detection assignment on it, scored on the hidden set by mAP@0.5.
    assignment = _in_a_thread(
        assignment_actions.save_assignment,
        teacher,
        course,
        {
            "title": "図形を見つける",
            "description": "mAP@0.5 で採点します。",
            "dataset": dataset,
            "dataset_version": dataset.head,
            "hidden_test": _ready(hidden.pk),
            "metric": "map50",
            "deadline": timezone.now() + timedelta(days=7),
            "daily_limit": 3,
            "show_names": False,
        },
    )

    # Train from the form with small settings; the job page fills in by itself.
    _train_from_the_form(page, live_url, dataset_id, DETECTION_SETTINGS)
    expect(page.locator("input[name=preset][value=centernet_tiny]")).to_be_checked()
    shot(page, "ja-85-journey-train-detection")
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")
    job_url = page.url
    expect(page.locator("#curves figcaption h2")).to_contain_text("mAP@0.5")

    # Meanwhile, in a second tab, the same shapes as a Pascal VOC ZIP: every box is read.
    other = page.context.new_page()
    voc_id = _upload(other, live_url, course, voc, "図形（VOC）", "detection", "ja")
    expect(other.locator("#num-images")).to_have_text(str(VOC_IMAGES), timeout=90_000)
    boxes = sum(len(record.annotations) for record in voc_records)
    expect(other.locator("#preview svg.tile-shapes rect")).to_have_count(boxes)
    assert _ready(voc_id).report.get("rejected", []) == []
    shot(other, "ja-85-journey-voc-dataset")
    other.close()

    seen = _watch(page, int(DETECTION_SETTINGS["epochs"]))
    _assert_grew(seen, int(DETECTION_SETTINGS["epochs"]))
    expect(page.locator("#best-val")).not_to_have_text("—")
    shot(page, "ja-86-journey-job-detection")

    # The results: boxes over the validation images, and the slider hides the weak ones.
    expect(page.locator("#result[data-kind=detection]")).to_be_visible(timeout=60_000)
    expect(page.locator("#result-map50")).to_contain_text("%")
    total = page.locator("#det-table .det-box").count()
    assert total > 0
    slider = page.locator("#score-threshold")
    slider.fill("0")
    assert _boxes_shown(page) == total
    slider.fill("0.95")
    assert _boxes_shown(page) < total
    expect(page.locator("#threshold-value")).to_have_text("0.95")
    slider.fill("0.1")
    _load_images(page)
    shot(page, "ja-86-journey-detection-results")

    # In English: Try it with a photo of her own, then hand the run in.
    page = new_page("en")
    sign_in(page, live_url, "kj_hanako")
    page.goto(job_url)
    expect(page.locator("#result[data-kind=detection]")).to_be_visible(timeout=30_000)
    page.locator("#try-card input[type=file]").set_input_files(
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": _photo(PHOTO)}
    )
    expect(page.locator("#try-card .try-time")).not_to_be_empty(timeout=60_000)
    expect(page.locator("#try-card .try-error")).to_be_hidden()
    found = page.locator("#try-card .try-overlay g")
    expect(found.first).to_be_attached()
    assert found.count() >= 1
    expect(page.locator("#try-card .try-found li").first).to_be_visible()
    _load_images(page)
    shot(page, "en-87-journey-try-detection")

    page.goto(f"{live_url}/assignments/{assignment.pk}/")
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    page.select_option("#id_job", job_id)
    page.locator("#submit-form button[type=submit]").click()
    expect(page.locator(".msg-success")).to_contain_text("Submitted")
    scored = page.locator('#my-submissions tr[data-status="scored"]')
    expect(scored).to_have_count(1, timeout=90_000)
    expect(page.locator("#my-submissions thead")).to_contain_text("mAP@0.5")
    submission = Submission.objects.get(assignment=assignment)
    assert 0 <= submission.score <= 1 and submission.details["map50"] == submission.score
    expect(scored.locator("td.num")).to_have_text(f"{submission.score * 100:.2f}%")
    expect(page.locator("#leaderboard tbody tr")).to_have_count(1)
    shot(page, "en-87-journey-assignment-scored")


def test_keypoints_from_an_uploaded_coco_zip_with_its_skeleton(
    live_url, new_page, celery_worker_process, tmp_path
):
    teacher = make_user("kj_kp_sensei", teacher=True)
    # Names of 7+ characters: with shorter ones the job page's crumbs fail axe's
    # link-in-text-block (reported; the crumbs' links are told apart by colour alone).
    course = make_course(teacher, "姿勢推定 第10回")
    add_member(course, make_user("kj_kp_taro"))
    archive = tmp_path / "figures_coco.zip"
    archive.write_bytes(_poses_zip())

    page = new_page("ja")
    page.context.add_init_script(RECORDER)
    sign_in(page, live_url, "kj_kp_taro")
    dataset_id = _upload(page, live_url, course, archive, "棒人間のポーズ", "keypoints", "ja")
    expect(page.locator("#num-images")).to_have_text(str(POSE_IMAGES), timeout=90_000)
    first = page.locator("#preview svg.tile-shapes").first  # the skeleton over the figure
    expect(first.locator("line")).to_have_count(len(samples.PERSON_SKELETON))
    dataset = _ready(dataset_id)
    category = dataset.categories.get()
    assert category.keypoints == samples.PERSON_KEYPOINTS
    assert category.skeleton == [list(pair) for pair in samples.PERSON_SKELETON]
    shot(page, "ja-88-journey-keypoints-dataset")

    title = "エポックごとのPCK@0.1"
    _train_and_watch(page, live_url, dataset_id, POSE_SETTINGS, "pose_unet", title)

    # The results draw each evaluated figure's true and predicted skeleton, bone by bone.
    expect(page.locator("#result[data-kind=keypoints]")).to_be_visible(timeout=60_000)
    figures = page.locator("#kp-grid > li")
    expect(figures.first).to_be_visible()
    expect(figures.first.locator("path.kp-true-bone")).to_have_count(1)
    expect(figures.first.locator("path.kp-bone")).to_have_count(1)
    bones = figures.first.locator("path.kp-true-bone").get_attribute("d")
    assert bones.count("M") == len(samples.PERSON_SKELETON), bones  # one stroke per bone
    _load_images(page)
    shot(page, "ja-88-journey-keypoints-results")


def test_segmentation_from_an_uploaded_coco_zip_of_polygons_and_rle_masks(
    live_url, new_page, celery_worker_process, tmp_path
):
    teacher = make_user("kj_seg_sensei", teacher=True)
    course = make_course(teacher, "Segmentation week 11")
    add_member(course, make_user("kj_seg_ken"))
    records = list(
        itertools.islice(samples._shapes_records("shapes_segmentation", MASK_IMAGES), MASK_IMAGES)
    )
    archive = tmp_path / "masks_coco.zip"
    archive.write_bytes(coco_zip(records, SHAPE_CATEGORIES, rle_every=3))

    page = new_page("en")
    page.context.add_init_script(RECORDER)
    sign_in(page, live_url, "kj_seg_ken")
    dataset_id = _upload(page, live_url, course, archive, "Painted shapes", "segmentation", "en")
    expect(page.locator("#num-images")).to_have_text(str(MASK_IMAGES), timeout=90_000)
    # Every object is outlined over its thumbnail, an RLE's outline traced from its mask.
    tiles = page.locator("#preview svg.tile-shapes")
    expect(tiles.first.locator("polygon").first).to_be_visible()
    assert page.locator("#preview svg.tile-shapes polygon").count() >= tiles.count() > 0
    dataset = _ready(dataset_id)
    assert dataset.report["rejected"] == [], dataset.report
    stored = [
        a.segmentation
        for item in dataset.items.prefetch_related("annotations")
        for a in item.annotations.all()
    ]
    assert any(isinstance(s, dict) and "counts" in s for s in stored)  # kept as uploaded
    assert any(isinstance(s, list) for s in stored)
    shot(page, "en-89-journey-masks-dataset")

    _train_and_watch(page, live_url, dataset_id, MASK_SETTINGS, "unet", "mIoU per epoch")

    # The results lay each evaluated image's predicted mask over it (a PNG the server drew).
    expect(page.locator("#result[data-kind=segmentation]")).to_be_visible(timeout=60_000)
    rows = page.locator("#seg-table tbody tr")
    expect(rows.first).to_be_visible()
    _load_images(page)
    layers = rows.first.locator("img.seg-layer")
    assert layers.count() >= 1
    widths = layers.evaluate_all("images => images.map(i => i.naturalWidth)")
    assert all(width > 0 for width in widths), widths  # every layer's PNG arrived
    expect(rows.first.locator("img.seg-layer:visible")).to_have_count(1)
    shot(page, "en-89-journey-masks-results")
