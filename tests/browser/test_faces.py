"""The face detection page: a student uploads scikit-image's astronaut and sees her face boxed
with its score over the photo, and in the table, in Japanese and in English."""

import io

import pytest
from playwright.sync_api import expect
from skimage import data

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _astronaut_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_finds_the_astronauts_face_on_the_page(
    live_url, new_page, celery_worker_process, lang
):
    teacher = make_user(f"ft_{lang}", teacher=True)
    student = make_user(f"fs_{lang}")
    add_member(make_course(teacher, "深層学習"), student)

    page = new_page(lang)
    sign_in(page, live_url, f"fs_{lang}")
    page.locator(".mainnav a[href='/faces/']").click()  # the header's link
    page.wait_for_url(f"{live_url}/faces/")
    shot(page, f"{lang}-80-faces-empty")

    page.locator("#faces-card input[type=file]").set_input_files(
        {"name": "astronaut.png", "mimeType": "image/png", "buffer": _astronaut_png()}
    )
    expect(page.locator("#faces-card .faces-box")).to_have_count(1, timeout=30_000)
    expect(page.locator("#faces-card .faces-table tbody tr")).to_have_count(1)
    expect(page.locator("#faces-card .faces-detector")).to_have_attribute(
        "data-detector", "mediapipe"
    )
    score = page.locator("#faces-card .faces-table tbody td").nth(1).inner_text()
    assert float(score.rstrip("%")) > 85, score
    # The box lies over her face: its centre near (226, 120) of the 512-pixel photo.
    photo = page.locator("#faces-card .faces-photo").bounding_box()
    box = page.locator("#faces-card .faces-box").bounding_box()
    centre_x = (box["x"] + box["width"] / 2 - photo["x"]) / photo["width"] * 512
    centre_y = (box["y"] + box["height"] / 2 - photo["y"]) / photo["height"] * 512
    assert abs(centre_x - 226) < 25 and abs(centre_y - 120) < 25, (centre_x, centre_y)
    shot(page, f"{lang}-81-faces-found")

    page.locator("#faces-card input[type=file]").set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a photo"}
    )
    expect(page.locator("#faces-card .faces-error")).to_contain_text("notes.png")
    expect(page.locator("#faces-card .faces-box")).to_have_count(0)
