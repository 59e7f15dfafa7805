"""The pose estimation page: a student uploads scikit-image's astronaut and sees her skeleton
drawn over the photo (left and right in their colours, each point named on hover) and listed in
the table, in Japanese and in English; picking a keypoints run sends the photo again to it."""

import io

import numpy as np
import pytest
from playwright.sync_api import expect
from skimage import data

from tests.browser.conftest import CHROMIUM_ARGS, chromium_path, shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _keypoints_run(course, student) -> Job:
    """A succeeded keypoints run whose model files are not there (its row is enough here)."""
    dataset = Dataset.objects.create(
        course=course, owner=student, name="棒人間", kind="keypoints", status="ready", head=1
    )
    return Job.objects.create(
        course=course,
        owner=student,
        dataset=dataset,
        dataset_version=1,
        spec={"kind": "keypoints", "model": "pose_unet", "epochs": 1},
        status="succeeded",
    )


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_sees_the_astronauts_skeleton_on_the_page(
    live_url, new_page, celery_worker_process, lang
):
    teacher = make_user(f"pt_{lang}", teacher=True)
    student = make_user(f"ps_{lang}")
    course = make_course(teacher, "深層学習")
    add_member(course, student)
    run = _keypoints_run(course, student)

    page = new_page(lang)
    sign_in(page, live_url, f"ps_{lang}")
    page.locator(".mainnav a[href='/poses/']").click()  # the header's link
    page.wait_for_url(f"{live_url}/poses/")
    options = page.locator("#poses-job option")
    expect(options).to_have_count(2)  # MediaPipe's and the student's run, under the class
    expect(page.locator("#poses-job optgroup")).to_have_attribute("label", "深層学習")
    shot(page, f"{lang}-82-poses-empty")

    card = page.locator("#poses-card")
    card.locator("input[type=file]").set_input_files(
        {"name": "astronaut.png", "mimeType": "image/png", "buffer": _png(data.astronaut())}
    )
    expect(card.locator(".poses-source")).to_have_attribute(
        "data-source", "mediapipe", timeout=30_000
    )
    expect(card.locator(".poses-table tbody tr")).to_have_count(17)
    joints = card.locator(".poses-overlay circle.joint")
    assert joints.count() >= 10  # her legs are outside the photo: those points are not drawn
    assert card.locator(".poses-overlay line.bone").count() >= 10
    assert card.locator(".poses-overlay line.bone.side-left").count() >= 2
    assert card.locator(".poses-overlay line.bone.side-right").count() >= 2
    nose = card.locator(".poses-overlay circle[data-name=nose]")
    expect(nose.locator("title")).to_contain_text("鼻" if lang == "ja" else "nose")
    # The nose is drawn over her nose: near (223, 128) of the 512-pixel photo.
    photo = card.locator(".poses-photo").bounding_box()
    point = nose.bounding_box()
    x = (point["x"] + point["width"] / 2 - photo["x"]) / photo["width"] * 512
    y = (point["y"] + point["height"] / 2 - photo["y"]) / photo["height"] * 512
    assert abs(x - 223) < 20 and abs(y - 128) < 20, (x, y)
    left = card.locator(".poses-overlay circle[data-name=left_shoulder]").bounding_box()
    right = card.locator(".poses-overlay circle[data-name=right_shoulder]").bounding_box()
    assert left["x"] > right["x"]  # her left is on the photo's right
    expect(card.locator(".poses-summary")).to_contain_text("1")
    shot(page, f"{lang}-83-poses-found")

    card.locator("input[type=file]").set_input_files(
        {
            "name": "wall.png",
            "mimeType": "image/png",
            "buffer": _png(np.full((240, 320, 3), 200, np.uint8)),
        }
    )
    nobody = (
        "この写真には人物が見つかりませんでした。"
        if lang == "ja"
        else "No person was found in this photo."
    )
    expect(card.locator(".poses-summary")).to_contain_text(nobody, timeout=30_000)
    expect(card.locator(".poses-overlay circle")).to_have_count(0)
    expect(card.locator(".poses-table")).to_be_hidden()
    shot(page, f"{lang}-84-poses-nobody")

    # Picking the run sends the same photo to it; this one has no model files: said plainly.
    page.locator("#poses-job").select_option(str(run.pk))
    gone = "モデルファイルがありません" if lang == "ja" else "model files are gone"
    expect(card.locator(".poses-error")).to_contain_text(gone, timeout=30_000)

    page.locator("#poses-job").select_option("")  # back to MediaPipe, on the same photo
    expect(card.locator(".poses-summary")).to_contain_text(nobody, timeout=30_000)
    card.locator("input[type=file]").set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a photo"}
    )
    expect(card.locator(".poses-error")).to_contain_text("notes.png", timeout=30_000)
    expect(card.locator(".poses-stage")).to_be_hidden()


def test_a_webcam_picture_is_sent_and_answered(live_url, chromium, celery_worker_process):
    """Chromium's fake webcam (a test pattern, no person in it) through the webcam buttons."""
    make_user("pw_en")
    browser = chromium.browser_type.launch(
        executable_path=chromium_path(),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
        ],
    )
    try:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
        context.grant_permissions(["camera"], origin=live_url)
        page = context.new_page()
        sign_in(page, live_url, "pw_en")
        page.goto(f"{live_url}/poses/")
        card = page.locator("#poses-card")
        card.locator("[data-camera=start]").click()
        expect(card.locator(".poses-video")).to_be_visible()
        card.locator("[data-camera=shoot]").click()
        expect(card.locator(".poses-summary")).to_contain_text(
            "No person was found", timeout=30_000
        )
        expect(card.locator(".poses-source")).to_have_attribute("data-source", "mediapipe")
        expect(card.locator(".poses-photo")).to_be_visible()
    finally:
        browser.close()
