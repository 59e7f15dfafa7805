"""Upload a folder and a ZIP in the browser, watch the ingest, browse the gallery, read the
rejection report — in Japanese and in English, with screenshots."""

import io
import zipfile

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORDS = {
    "ja": {
        "upload": "アップロード",
        "gallery": "ギャラリーを開く",
        "not_used": "使用されなかったファイル",
    },
    "en": {"upload": "Upload", "gallery": "Open the gallery", "not_used": "Files not used"},
}


def _png(color, size=(32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _folder(root, classes: dict[str, int]):
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            (root / name / f"{i:03d}.png").write_bytes(_png((40 * i % 255, 90, 200 - i)))
    (root / next(iter(classes)) / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / next(iter(classes)) / "drawing.svg").write_text(
        "<svg xmlns='http://www.w3.org/2000/svg'/>"
    )


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_uploads_a_folder_and_browses_the_gallery(
    live_url, new_page, celery_worker_process, tmp_path, lang
):
    words = WORDS[lang]
    teacher = make_user(f"t_{lang}", teacher=True)
    course = make_course(teacher, "画像認識")
    add_member(course, make_user(f"s_{lang}"))
    folder = tmp_path / "どうぶつ"
    _folder(folder, {"ねこ": 12, "いぬ": 10})

    page = new_page(lang)
    sign_in(page, live_url, f"s_{lang}")
    page.goto(f"{live_url}/courses/{course.pk}/datasets/")
    shot(page, f"{lang}-20-datasets-empty")
    page.set_input_files("input[name=folder]", str(folder))
    expect(page.locator("#picked")).not_to_be_empty()
    page.fill("#up-name", "どうぶつ")
    page.get_by_role("button", name=words["upload"], exact=True).click()
    page.wait_for_url(f"{live_url}/datasets/*/")
    expect(page.locator("#num-images")).to_have_text("22", timeout=60_000)
    expect(page.locator("#rejections")).to_contain_text(words["not_used"])
    expect(page.locator("#rejections")).to_contain_text("broken.png")
    expect(page.locator("#rejections")).to_contain_text("drawing.svg")
    expect(page.locator("#class-balance")).to_contain_text("ねこ")
    shot(page, f"{lang}-21-dataset-report")

    page.get_by_role("link", name=words["gallery"]).click()
    expect(page.locator("#gallery li.tile")).to_have_count(22)
    shot(page, f"{lang}-22-gallery")
    page.locator("#gallery li.tile a").first.click()
    expect(page.locator("#annotated")).to_be_visible()
    shot(page, f"{lang}-23-image")


def test_teacher_uploads_a_zip_and_sees_detection_boxes(
    live_url, new_page, celery_worker_process, tmp_path
):
    teacher = make_user("t_zip", teacher=True)
    course = make_course(teacher, "Detection")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(8):
            zf.writestr(f"pets/cat/{i}.png", _png((200, 20 * i, 40)))
            zf.writestr(f"pets/dog/{i}.png", _png((20 * i, 40, 200)))
        zf.writestr("../escape.png", _png((0, 0, 0)))

    page = new_page("en")
    sign_in(page, live_url, "t_zip")
    page.goto(f"{live_url}/courses/{course.pk}/datasets/")
    page.set_input_files("input[name=files]", str(archive))
    page.select_option("#up-vis", "handout")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(f"{live_url}/datasets/*/")
    expect(page.locator("#num-images")).to_have_text("16", timeout=60_000)
    expect(page.locator("#rejections")).to_contain_text("leaves the ZIP")

    page.goto(f"{live_url}/courses/{course.pk}/datasets/")
    page.locator("form[action$='/datasets/sample/'] input[value=shapes_detection]").locator(
        "xpath=.."
    ).get_by_role("button").click()
    page.wait_for_url(f"{live_url}/datasets/*/")
    expect(page.locator("#num-images")).to_have_text("300", timeout=60_000)
    page.get_by_role("link", name="Open the gallery").click()
    page.locator("#gallery li.tile a").first.click()
    expect(page.locator("#annotated rect.box").first).to_be_visible()
    shot(page, "en-24-detection-boxes")


def _yolo_zip(path) -> None:
    """Six 64×64 pictures, each with one filled square where its YOLO label puts a box."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.yaml", "names: [ねこ, いぬ]\n")
        for i in range(6):
            image = Image.new("RGB", (64, 64), (235, 235, 235))
            x, y, size = 6 + 6 * i, 30 - 3 * i, 16 + 2 * i  # inside the 64×64 picture
            Image.Image.paste(
                image, (200, 60, 40) if i % 2 else (40, 90, 200), (x, y, x + size, y + size)
            )
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            zf.writestr(f"images/train/{i}.png", buffer.getvalue())
            cx, cy, w = (x + size / 2) / 64, (y + size / 2) / 64, size / 64
            zf.writestr(f"labels/train/{i}.txt", f"{i % 2} {cx:.4f} {cy:.4f} {w:.4f} {w:.4f}\n")


DETECTION_WORDS = {
    "ja": {"upload": "アップロード", "gallery": "ギャラリーを開く", "later": "後の回で扱います"},
    "en": {"upload": "Upload", "gallery": "Open the gallery", "later": "comes in a later lesson"},
}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_uploads_a_yolo_zip_and_sees_its_boxes_over_every_thumbnail(
    live_url, new_page, celery_worker_process, tmp_path, lang
):
    import trainer.kinds

    words = DETECTION_WORDS[lang]
    teacher = make_user(f"t_det_{lang}", teacher=True)
    course = make_course(teacher, "物体検出")
    add_member(course, make_user(f"s_det_{lang}"))
    archive = tmp_path / "boxes.zip"
    _yolo_zip(archive)

    page = new_page(lang)
    sign_in(page, live_url, f"s_det_{lang}")
    page.goto(f"{live_url}/courses/{course.pk}/datasets/")
    page.set_input_files("input[name=files]", str(archive))
    page.fill("#up-name", "しかく")
    page.select_option("#up-kind", "detection")
    page.get_by_role("button", name=words["upload"], exact=True).click()
    page.wait_for_url(f"{live_url}/datasets/*/")
    expect(page.locator("#num-images")).to_have_text("6", timeout=60_000)
    expect(page.locator("#preview svg.tile-shapes rect")).to_have_count(6)
    if "detection" in trainer.kinds.trainable():
        expect(page.locator("#train-card")).to_be_visible()
    else:
        expect(page.locator("#train-later")).to_contain_text(words["later"])
    shot(page, f"{lang}-25-detection-dataset")

    page.get_by_role("link", name=words["gallery"]).click()
    expect(page.locator("#gallery svg.tile-shapes rect")).to_have_count(6)
    shot(page, f"{lang}-26-detection-gallery")
    page.locator("#gallery li.tile a").first.click()
    expect(page.locator("#annotated rect.box")).to_have_count(1)
    expect(page.locator("#object-legend")).to_contain_text("× 1")
    shot(page, f"{lang}-27-detection-item")
