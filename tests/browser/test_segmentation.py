"""A finished segmentation run's results in the browser: the masks over the test images, the
layer toggle and the opacity slider (mouse and keyboard), pages by IoU, and Try it's mask drawn
from the answer's compressed RLE, whose decoder is checked here against pycocotools."""

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import _load_images
from tests.conftest import add_member, make_course, make_user
from tests.fixtures.segmentation_job import encode, fake_segmentation_job
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MASK = 32  # the answer's mask side: the model's input size, smaller than the photo


def _photo() -> tuple[bytes, np.ndarray, np.ndarray]:
    """A 64×64 photo of a circle and a square, and their masks at the answer's size."""
    image = Image.new("RGB", (64, 64), (230, 230, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((6, 8, 30, 32), fill=(0, 114, 178))
    draw.rectangle((36, 30, 58, 52), fill=(213, 94, 0))
    small = np.array(image.resize((MASK, MASK), Image.NEAREST))  # (32, 32, 3)
    circle = (small[..., 2] > 150) & (small[..., 0] < 50)
    square = (small[..., 0] > 180) & (small[..., 2] < 50)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), circle, square


def _answer(circle: np.ndarray, square: np.ndarray) -> dict:
    """What a segmentation model answers Try it with (the contract's shape)."""
    pixels = MASK * MASK
    return {
        "width": 64,
        "height": 64,
        "size": [MASK, MASK],
        "classes": [
            {"index": 1, "name": "circle", "share": round(int(circle.sum()) / pixels, 6)},
            {"index": 2, "name": "square", "share": round(int(square.sum()) / pixels, 6)},
        ],
        "masks": {"1": encode(circle), "2": encode(square)},
        "seconds": 0.04,
    }


def _run(student, course, lang):
    # The row by hand and the task called here: the action would also queue it for the worker.
    dataset = Dataset.objects.create(
        course=course,
        owner=student,
        name="shapes",
        kind="segmentation",
        source="sample:shapes_segmentation",
    )
    dataset_tasks.copy_sample(dataset.pk, "shapes_segmentation", lang)
    dataset.refresh_from_db()
    job = fake_segmentation_job(dataset)
    connection.close()  # this thread's own connection
    return job


def _visible_layers(page) -> list[str]:
    return page.locator("#seg-table .seg-layer:visible").evaluate_all(
        "nodes => nodes.map(n => n.dataset.layer)"
    )


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_reads_segmentation_results_changes_layers_and_opacity_and_tries(
    live_url, new_page, lang
):
    teacher = make_user(f"st_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"ss_{lang}")
    add_member(course, student)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(_run, student, course, lang).result()

    page = new_page(lang)
    sign_in(page, live_url, f"ss_{lang}")
    page.goto(f"{live_url}/jobs/{job.pk}/")
    expect(page.locator("#result[data-kind=segmentation]")).to_be_visible(timeout=30_000)
    expect(page.locator("#seg-table tbody tr")).to_have_count(12)
    expect(page.locator("#iou-bars canvas")).to_have_count(1)
    expect(page.locator("#iou-curve canvas")).to_have_count(1)
    ious = [
        float(v)
        for v in page.locator("#seg-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.iou)"
        )
    ]
    assert ious == sorted(ious)  # worst first
    _load_images(page)
    sizes = page.locator("#seg-table .seg-layer").evaluate_all(
        "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) == 36 and all(size == [64, 64] for size in sizes)  # every layer drawn
    assert _visible_layers(page) == ["predicted"] * 12

    slider = page.locator("#mask-opacity")
    slider.fill("0.2")
    expect(page.locator("#mask-opacity-value")).to_have_text("0.20")
    first = page.locator("#seg-table .seg-layer[data-layer=predicted]").first
    assert first.evaluate("n => getComputedStyle(n).opacity") == "0.2"
    slider.focus()
    page.keyboard.press("End")  # the keyboard moves it too
    assert first.evaluate("n => getComputedStyle(n).opacity") == "1"
    slider.fill("0.6")

    page.locator("#masks input[data-mask-layer][value=diff]").check()
    assert _visible_layers(page) == ["diff"] * 12
    page.locator("#masks input[data-mask-layer][value=truth]").focus()
    page.keyboard.press("Space")  # radios answer the keyboard
    assert _visible_layers(page) == ["truth"] * 12
    page.locator("#masks input[data-mask-layer][value=diff]").check()
    shot(page, f"{lang}-70-segmentation-result")

    top = page.locator("#seg-table tbody tr").first.get_attribute("data-image")
    page.locator("#masks a[rel=next]").click()
    expect(page.locator("#masks .pager")).to_contain_text("2")
    expect(page.locator("#seg-table tbody tr").first).not_to_have_attribute("data-image", top)
    expect(page.locator("#mask-opacity")).to_have_value("0.6")  # kept across pages
    assert _visible_layers(page) == ["diff"] * 12
    assert page.url.endswith(f"/jobs/{job.pk}/")  # the table moved, not the page

    page.goto(f"{live_url}/jobs/{job.pk}/images/?order=best")
    rows = page.locator("#seg-table tbody tr")
    expect(rows.first).to_be_visible()
    best = [float(v) for v in rows.evaluate_all("r => r.map(x => x.dataset.iou)")]
    assert best == sorted(best, reverse=True) and best[0] == 1.0
    _load_images(page)
    assert _visible_layers(page) == ["predicted"] * 12  # a page of its own starts there
    shot(page, f"{lang}-71-segmentation-images")

    photo, circle, square = _photo()
    answer = _answer(circle, square)
    page.route(
        f"**/api/v1/jobs/{job.pk}/predict",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)
        ),
    )
    page.goto(f"{live_url}/jobs/{job.pk}/try/")
    page.locator("#try-card input[type=file]").set_input_files(
        {"name": "shapes.png", "mimeType": "image/png", "buffer": photo}
    )
    expect(page.locator("#try-card .try-mask")).to_be_visible()
    legend = page.locator("#try-card .try-legend li")
    expect(legend).to_have_count(2)
    found = legend.evaluate_all(
        "items => items.map(i => [i.dataset.channel, +i.dataset.pixels, +i.dataset.share])"
    )
    for channel, pixels, share in found:  # the decoded masks cover the answer's shares
        assert pixels > 20 and abs(pixels / MASK**2 - share) < 1e-5, channel
    painted = page.locator("#try-card .try-mask").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n += 1; return [c.width, n]; }"
    )
    assert painted == [MASK, sum(pixels for _c, pixels, _s in found)]
    expect(legend.first).to_contain_text("square" if square.sum() > circle.sum() else "circle")
    page.locator("#try-card input[data-try-opacity]").fill("0.9")
    assert page.locator("#try-card .try-mask").evaluate("c => c.style.opacity") == "0.9"
    expect(page.locator("#try-card .try-time")).not_to_be_empty()
    shot(page, f"{lang}-72-segmentation-try")
    if lang == "en":
        _decoder_matches_pycocotools(page)


def _decoder_matches_pycocotools(page) -> None:
    """try_segmentation.js's decodeRle gives pycocotools' masks, and null for malformed counts."""
    rng = np.random.default_rng(7)
    cases, expected = [], []
    for k in range(120):
        height, width = (int(v) for v in rng.integers(1, 48, 2))
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        if k % 4 == 0:  # a few blocks: long runs, numbers of several chunks
            mask[:] = 0
            mask[int(rng.integers(0, height)) :, int(rng.integers(0, width)) :] = 1
        cases.append([encode(mask), height, width])
        expected.append("".join(map(str, mask.ravel())))  # row-major, as a canvas
    big = np.zeros((700, 900), np.uint8)
    big[50:650, 100:800] = 1
    cases.append([encode(big), 700, 900])
    bad = [["", 4, 6], ["0000", 4, 6], ["o" * 50, 4, 6], ["_o5", 4, 6], ["52é", 4, 6]]
    script = page.locator("script[src*=try_segmentation]").first.get_attribute("src")
    decoded = page.evaluate(
        """async ([src, cases]) => {
            const { decodeRle } = await import(src);
            return cases.map(([counts, h, w]) => {
                const mask = decodeRle(counts, h, w);
                if (!mask) return null;
                return h * w > 10000 ? mask.reduce((a, b) => a + b, 0) : mask.join("");
            });
        }""",
        [script, cases + bad],
    )
    assert decoded[: len(expected)] == expected
    assert decoded[len(expected)] == int(big.sum())
    assert decoded[len(expected) + 1 :] == [None] * len(bad)
