"""The studio's shape tools in the browser: a polygon drawn with clicks and edited (a vertex
moved, one inserted, one deleted and the deletion undone), a brush mask painted, its hole
filled, part erased and a stray stroke undone, a skeleton placed with one occluded and one
absent point and a point dragged; saved, reloaded and found again through the page, the JSON API
and the draft in the database (the mask decoded by pycocotools). Also: the keypoint names and
skeleton editor and its OKS σ fields, a polygon placed by touch, and rle.js against pycocotools
both ways."""

import itertools

import numpy as np
import pytest
from playwright.sync_api import expect
from pycocotools import mask as mask_utils
from scipy import ndimage

from tests.browser.conftest import SCREENSHOTS, shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import drafts, ingest, samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Category, Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SIDE = 64  # the samples' images are 64×64
SAVED = "#studio-save[data-state=saved]"
# Image 0001 of each sample: a triangle at x 27-41, y 23-38; a stick figure at x 6-37, y 7-50.
POLYGON = [(4, 4), (22, 4), (24, 18), (12, 22), (4, 16)]
RING = [(8, 44), (28, 44), (28, 60), (8, 60), (8, 44)]  # a brush stroke around a hole
ERASE = [(18, 40), (18, 63)]
STRAY = [(45, 50), (58, 50)]  # painted, then undone
# head, neck, left hand (occluded), right hand, hip (absent), knees, feet
PERSON = [(50, 6), (50, 14), (58, 20), (42, 20), None, (54, 44), (46, 44), (56, 58), (44, 58)]
WORDS = {
    "ja": {"next": "次：neck", "occluded": "隠れている", "absent": "なし"},
    "en": {"next": "Next: neck", "occluded": "occluded", "absent": "absent"},
}


def _sample(student, course, key: str, count: int) -> Dataset:
    """The first images of a built-in sample, ingested inline (no worker)."""
    sample = samples.SAMPLES[key]
    dataset = Dataset.objects.create(course=course, owner=student, name=key, kind=sample.kind)
    result = sample.build()
    run = ingest.Ingest(dataset, ingest.Categories(result.categories), processes=1)
    run.run(itertools.islice(result.records, count))
    dataset_tasks._finish(run, dataset, result.format)
    dataset.refresh_from_db()
    return dataset


def _open(page, url: str) -> dict:
    """Open the canvas page; the image's transform to the page: {left, top, scale}."""
    page.goto(url)
    expect(page.locator("#studio-canvas[data-ready=true]")).to_have_count(1)
    return page.evaluate(
        """() => { const s = window.manabiStudio, r = s.container.getBoundingClientRect();
        return {left: r.left + s.stage.x(), top: r.top + s.stage.y(), scale: s.stage.scaleX()}; }"""
    )


def _at(view: dict, point) -> tuple[float, float]:
    return view["left"] + point[0] * view["scale"], view["top"] + point[1] * view["scale"]


def _click(page, view, point, modifier: str | None = None) -> None:
    if modifier:
        page.keyboard.down(modifier)
    page.mouse.click(*_at(view, point))
    if modifier:
        page.keyboard.up(modifier)


def _drag(page, view, points, steps: int = 4) -> None:
    page.mouse.move(*_at(view, points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*_at(view, point), steps=steps)
    page.mouse.up()


def _annotations(page) -> list[dict]:
    return page.evaluate("[...window.manabiStudio.annotations.values()]")


def _new(page, before: set) -> list[dict]:
    return [a for a in _annotations(page) if a["uid"] not in before]


def _stroke(mask: np.ndarray, points, radius: float, value: int) -> None:
    """What brush.js's stamp does: pixels whose centres lie within radius of the segments."""
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]] + 0.5
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        dx, dy = bx - ax, by - ay
        t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        mask[np.hypot(ax + t * dx - xs, ay + t * dy - ys) <= radius] = value


def _expected_mask(size: int) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), np.uint8)
    _stroke(mask, RING, size / 2, 1)
    mask = ndimage.binary_fill_holes(mask).astype(np.uint8)
    _stroke(mask, ERASE, size / 2, 0)
    return mask


def _close(a, b, tolerance: float = 0.25) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def _polygon_and_mask(page, view, lang: str) -> None:
    """Draw, edit and undo on the segmentation canvas (the polygon tool is the first)."""
    before = {a["uid"] for a in _annotations(page)}
    page.keyboard.press("2")  # the square class
    for point in POLYGON[:3]:
        _click(page, view, point)
    page.mouse.move(*_at(view, (10, 14)))
    shot(page, f"{lang}-93-studio-polygon-drawing")
    for point in POLYGON[3:]:
        _click(page, view, point)
    _click(page, view, POLYGON[0])  # the first vertex closes it
    (polygon,) = _new(page, before)
    assert polygon["category"] == 1
    assert _close(polygon["segmentation"][0], [v for p in POLYGON for v in p])
    assert _close(polygon["bbox"], [4, 4, 20, 18])
    _drag(page, view, [(24, 18), (26, 20)])  # move a vertex
    _drag(page, view, [(13, 4), (13, 2)])  # the edge's midpoint becomes a vertex
    _click(page, view, (12, 22), "Alt")  # delete a vertex
    ring = _new(page, before)[0]["segmentation"][0]
    assert _close(ring, [4, 4, 13, 2, 22, 4, 26, 20, 4, 16])
    page.keyboard.press("Control+z")  # the deletion undone
    ring = _new(page, before)[0]["segmentation"][0]
    assert _close(ring, [4, 4, 13, 2, 22, 4, 26, 20, 12, 22, 4, 16])
    page.mouse.move(*_at(view, (26, 20)))
    shot(page, f"{lang}-93-studio-polygon-selected")

    page.keyboard.press("m")  # the brush
    page.keyboard.press("Escape")  # select nothing, then choose the triangle class
    page.keyboard.press("3")
    brush = page.locator("[data-brush-controls]")
    expect(brush).to_be_visible()
    expect(brush.locator("[data-brush-size]")).to_have_value("4")
    page.keyboard.press("[")
    expect(brush.locator("[data-brush-size-value]")).to_have_text("3")
    _drag(page, view, RING)
    page.keyboard.press("h")  # fill the hole
    page.keyboard.press("e")  # the eraser
    expect(brush.locator("[data-brush-mode=erase]")).to_have_attribute("aria-pressed", "true")
    _drag(page, view, ERASE)
    page.keyboard.press("e")
    _drag(page, view, STRAY)
    (mask,) = [a for a in _new(page, before) if isinstance(a["segmentation"], dict)]
    with_stray = mask["segmentation"]["counts"]
    page.keyboard.press("Control+z")
    (mask,) = [a for a in _new(page, before) if isinstance(a["segmentation"], dict)]
    assert mask["segmentation"]["counts"] != with_stray and mask["category"] == 2
    page.mouse.move(*_at(view, (40, 54)))
    shot(page, f"{lang}-93-studio-brush")
    page.keyboard.press("?")  # the sheet lists the shape tools' keys too
    sheet = page.locator("#studio-keys")
    expect(sheet).to_be_visible()
    expect(sheet.locator("table.keys")).to_have_count(4)  # the studio, polygon, brush, box
    sheet.locator("table.keys").nth(1).scroll_into_view_if_needed()
    shot(page, f"{lang}-93-studio-shape-keys")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()


def _check_mask(segmentation: dict) -> None:
    rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    decoded = mask_utils.decode(rle)  # (64, 64)
    expected = _expected_mask(3)
    assert segmentation["size"] == [SIDE, SIDE]
    differ = int((decoded != expected).sum())
    assert differ <= 12, f"{differ} pixels differ from what was painted"
    assert decoded[52, 12] == 1 and decoded[52, 24] == 1  # the filled hole, either side
    assert decoded[52, 18] == 0 and decoded[50, 50] == 0  # erased; the stray stroke undone


def _skeleton(page, view, lang: str) -> list[float]:
    """Place a person on the keypoint canvas; returns the keypoints the page holds."""
    words = WORDS[lang]
    before = {a["uid"] for a in _annotations(page)}
    panel = page.locator("[data-keypoints-panel]")
    expect(panel).to_be_visible()
    expect(panel.locator("[data-keypoint-list] li")).to_have_count(9)
    _click(page, view, PERSON[0])
    expect(panel.locator("[data-keypoint-next]")).to_have_text(words["next"])
    _click(page, view, PERSON[1])
    page.keyboard.press("v")  # the left hand is occluded
    expect(panel.locator("[data-keypoint-next]")).to_contain_text(words["occluded"])
    _click(page, view, PERSON[2])
    _click(page, view, PERSON[3])
    page.mouse.move(*_at(view, (52, 30)))
    shot(page, f"{lang}-93-studio-keypoints-placing")
    page.keyboard.press("n")  # no hip
    for point in PERSON[5:]:
        _click(page, view, point)
    (person,) = _new(page, before)
    expected = []
    for point, v in zip(PERSON, [2, 2, 1, 2, 0, 2, 2, 2, 2], strict=True):
        expected += [*point, v] if point else [0, 0, 0]
    assert _close(person["keypoints"], expected)
    assert _close(person["bbox"], [42, 6, 16, 52])
    _drag(page, view, [(44, 58), (43, 60)])  # the right foot moved
    expected[-3:-1] = [43, 60]
    (person,) = _new(page, before)
    assert _close(person["keypoints"], expected)
    states = panel.locator("[data-keypoint-list] li .kp-state")
    expect(states.nth(2)).to_have_text(words["occluded"])
    expect(states.nth(4)).to_have_text(words["absent"])
    return expected


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_polygon_mask_and_skeleton_are_drawn_undone_saved_and_found_again(live_url, new_page, lang):
    teacher = make_user(f"shape_t_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"shape_s_{lang}")
    add_member(course, student)
    segmentation = _sample(student, course, "shapes_segmentation", 2)
    keypoints = _sample(student, course, "keypoints", 2)
    seg_uid = str(segmentation.items.order_by("id")[1].uid)
    kp_uid = str(keypoints.items.order_by("id")[1].uid)
    seg_url = f"{live_url}/datasets/{segmentation.pk}/studio/{seg_uid}/"
    kp_url = f"{live_url}/datasets/{keypoints.pk}/studio/{kp_uid}/"

    page = new_page(lang)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_url, student.username)
    view = _open(page, seg_url)
    _polygon_and_mask(page, view, lang)
    expect(page.locator("#studio-changes")).to_have_text("2")  # the polygon and the mask
    expect(page.locator(SAVED)).to_have_count(1)

    view = _open(page, kp_url)
    expected = _skeleton(page, view, lang)
    expect(page.locator("#studio-changes")).to_have_text("1")
    expect(page.locator(SAVED)).to_have_count(1)

    # Reloaded: the page, the API and the draft all hold them.
    _open(page, seg_url)
    found = _annotations(page)
    (polygon,) = [a for a in found if a["category"] == 1 and a["revision"] == 0]
    (mask,) = [a for a in found if isinstance(a["segmentation"], dict)]
    ring = [4, 4, 13, 2, 22, 4, 26, 20, 12, 22, 4, 16]
    assert _close(polygon["segmentation"][0], ring)
    _check_mask(mask["segmentation"])
    api = page.request.get(f"{live_url}/api/v1/datasets/{segmentation.pk}/studio/items/{seg_uid}")
    assert api.ok
    by_uid = {a["uid"]: a for a in api.json()["annotations"]}
    assert _close(by_uid[polygon["uid"]]["segmentation"][0], ring)
    assert by_uid[mask["uid"]]["segmentation"] == mask["segmentation"]
    stored = drafts.annotations_of(drafts.draft_of(segmentation, student), [seg_uid])[seg_uid]
    stored = {a["uid"]: a for a in stored}
    assert _close(stored[polygon["uid"]]["segmentation"][0], ring)
    assert _close(stored[polygon["uid"]]["bbox"], [4, 2, 22, 20])
    _check_mask(stored[mask["uid"]]["segmentation"])
    decoded = mask_utils.decode(
        {"size": [SIDE, SIDE], "counts": stored[mask["uid"]]["segmentation"]["counts"].encode()}
    )
    assert stored[mask["uid"]]["area"] == decoded.sum()

    _open(page, kp_url)
    (person,) = [a for a in _annotations(page) if a["revision"] == 0]
    assert _close(person["keypoints"], expected), (person["keypoints"], expected)
    stored = drafts.annotations_of(drafts.draft_of(keypoints, student), [kp_uid])[kp_uid]
    (stored,) = [a for a in stored if a["uid"] == person["uid"]]
    assert stored["keypoints"][2::3] == [2, 2, 1, 2, 0, 2, 2, 2, 2]
    assert _close(stored["keypoints"], expected)

    # The owner edits the keypoint names: a tail joined to the hip, the head renamed.
    editor = page.locator("#kp-editor")
    editor.locator("summary").click()
    editor.locator("#kp-editor-add-name").click()
    editor.locator("#kp-editor-names li").last.locator("input[type=text]").fill("tail")
    editor.locator("#kp-editor-add-pair").click()
    pair = editor.locator("#kp-editor-pairs li").last.locator("select")
    pair.nth(0).select_option("5")
    pair.nth(1).select_option("10")
    shot(page, f"{lang}-93-studio-keypoint-editor")
    editor.locator("button[type=submit]").click()
    expect(page.locator("[data-keypoints-panel] [data-keypoint-list] li")).to_have_count(10)
    category = Category.objects.filter(dataset=keypoints, index=0, valid_to=None).get()
    assert category.keypoints == [*samples.PERSON_KEYPOINTS, "tail"]
    assert category.skeleton == [*samples.PERSON_SKELETON, [5, 10]]
    assert not errors, errors


SIGMA_WORDS = {
    "ja": {"label": "点の OKS σ", "bad": "点 3（{name}）：OKS σ は 0 より大きく 1 以下の数"},
    "en": {"label": "OKS σ of point", "bad": "Point 3 ({name}): its OKS σ is a number above 0"},
}


def _save_keypoints(page, editor) -> None:
    """Save the editor's keypoints and wait for the page it reloads."""
    with page.expect_navigation():
        editor.locator("button[type=submit]").click()
    expect(page.locator("#studio-canvas[data-ready=true]")).to_have_count(1)
    page.locator("#kp-editor summary").click()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_keypoint_editor_sets_a_class_oks_sigmas_and_clearing_them_restores_defaults(
    live_url, new_page, lang
):
    words = SIGMA_WORDS[lang]
    course = make_course(make_user(f"sigma_t_{lang}", teacher=True), "深層学習")
    student = make_user(f"sigma_s_{lang}")
    add_member(course, student)
    dataset = _sample(student, course, "keypoints", 1)
    uid = str(dataset.items.get().uid)

    def head() -> Category:
        return Category.objects.get(dataset=dataset, index=0, valid_to=None)

    count = len(samples.PERSON_KEYPOINTS)  # nine points, not COCO's: the default is 0.05 each
    first = head()
    assert first.sigmas == []

    page = new_page(lang)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_url, student.username)
    _open(page, f"{live_url}/datasets/{dataset.pk}/studio/{uid}/")
    editor = page.locator("#kp-editor")
    editor.locator("summary").click()
    fields = editor.locator("#kp-editor-names input[data-sigma]")
    expect(fields).to_have_count(count)
    for k in range(count):
        expect(fields.nth(k)).to_have_value("")
        expect(fields.nth(k)).to_have_attribute("placeholder", "0.05")
    third = editor.get_by_label(f"{words['label']} 3", exact=True)
    expect(third).to_have_attribute("aria-describedby", "kp-editor-sigma-help")

    # A σ out of (0, 1] is refused before anything is sent, naming the point.
    third.fill("1.5")
    editor.locator("button[type=submit]").click()
    bad = words["bad"].format(name=samples.PERSON_KEYPOINTS[2])
    expect(editor.locator("#kp-editor-error")).to_contain_text(bad)
    expect(third).to_be_focused()
    expect(third).to_have_attribute("aria-invalid", "true")
    third.fill("0")
    expect(third).not_to_have_attribute("aria-invalid", "true")
    editor.locator("button[type=submit]").click()
    expect(third).to_have_attribute("aria-invalid", "true")
    expect(editor.locator("#kp-editor-error")).to_contain_text(bad)
    assert head().pk == first.pk  # nothing was sent

    # Two typed: the other points get their default; a new point takes σ, removing one drops it.
    third.fill("0.025")
    fields.nth(0).fill("0.1")
    editor.locator("#kp-editor-add-name").click()
    editor.locator("#kp-editor-names li").last.locator("input[type=text]").fill("tail")
    fields.nth(count).fill("0.2")
    editor.get_by_label(f"{words['label']} {count}", exact=True).fill("0.09")
    editor.locator("#kp-editor-names li").nth(count - 1).locator("button").click()  # the 9th
    expect(fields).to_have_count(count)
    expect(fields.nth(count - 1)).to_have_value("0.2")  # the tail's, now 9th
    shot(page, f"{lang}-93-studio-keypoint-sigmas")
    points = editor.locator("fieldset").first  # the rows and the help line, closer
    points.screenshot(path=str(SCREENSHOTS / f"{lang}-93-studio-keypoint-sigmas-fields.png"))
    _save_keypoints(page, editor)
    typed = [0.1, 0.05, 0.025, *[0.05] * (count - 4), 0.2]
    assert head().keypoints == [*samples.PERSON_KEYPOINTS[:-1], "tail"]
    assert head().sigmas == typed
    api = page.request.get(f"{live_url}/api/v1/datasets/{dataset.pk}/studio/categories")
    assert api.ok and api.json()[0]["sigmas"] == typed

    # The class's own sigmas come back in the fields; a renamed point keeps its σ.
    for k, value in enumerate(typed):
        expect(fields.nth(k)).to_have_value(f"{value:g}")
    editor.locator("#kp-editor-names li").first.locator("input[type=text]").fill("skull")
    fields.nth(1).fill("0.04")
    _save_keypoints(page, editor)
    assert head().keypoints[0] == "skull"
    assert head().sigmas == [0.1, 0.04, *typed[2:]]

    # Every σ cleared: the defaults again ([]).
    for k in range(count):
        fields.nth(k).fill("")
    _save_keypoints(page, editor)
    assert head().sigmas == []
    for k in range(count):
        expect(fields.nth(k)).to_have_value("")
    assert not errors, errors


def test_polygons_are_placed_by_touch_and_closed_with_enter_or_a_double_click(live_url, chromium):
    teacher = make_user("touch_t", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user("touch_s")
    add_member(course, student)
    dataset = _sample(student, course, "shapes_segmentation", 2)
    uid = str(dataset.items.order_by("id")[1].uid)
    context = chromium.new_context(
        locale="en-US", viewport={"width": 1024, "height": 768}, has_touch=True
    )
    try:
        page = context.new_page()
        sign_in(page, live_url, student.username)
        view = _open(page, f"{live_url}/datasets/{dataset.pk}/studio/{uid}/")
        before = {a["uid"] for a in _annotations(page)}
        for point in [*POLYGON[:4], POLYGON[0]]:
            page.touchscreen.tap(*_at(view, point))
        (polygon,) = _new(page, before)
        assert _close(polygon["segmentation"][0], [v for p in POLYGON[:4] for v in p])
        # Two more: closed with Enter, and with a double-click (its second click adds nothing).
        page.keyboard.press("Escape")
        for point in [(44, 44), (60, 44), (52, 60)]:
            page.touchscreen.tap(*_at(view, point))
        page.keyboard.press("Enter")
        for point in [(44, 4), (60, 4)]:
            _click(page, view, point)
        page.mouse.dblclick(*_at(view, (52, 18)))
        rings = [a["segmentation"][0] for a in _new(page, before)]
        assert len(rings) == 3
        assert _close(rings[1], [44, 44, 60, 44, 52, 60])
        assert _close(rings[2], [44, 4, 60, 4, 52, 18])
        expect(page.locator("#studio-changes")).to_have_text("3")
    finally:
        context.close()


def test_rle_js_round_trips_with_pycocotools(live_url, new_page):
    """rle.js encodes what pycocotools decodes and decodes what it encodes; fill holes as scipy."""
    page = new_page("en")
    page.goto(f"{live_url}/accounts/login/")
    rng = np.random.default_rng(13)
    masks = []
    for k in range(80):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        mask = (rng.random((height, width)) < rng.random() ** 2).astype(np.uint8)
        if k % 4 == 0:  # blocks: long runs, numbers of several chunks
            mask[:] = 0
            mask[int(rng.integers(0, height)) :, int(rng.integers(0, width)) :] = 1
        masks.append(mask)
    masks += [np.zeros((5, 7), np.uint8), np.ones((6, 3), np.uint8)]
    cases = [
        {
            "h": m.shape[0],
            "w": m.shape[1],
            "mask": m.ravel(order="F").tolist(),  # column-major, as rle.js holds masks
            "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode("ascii"),
        }
        for m in masks
    ]
    answers = page.evaluate(
        """async (cases) => {
            const rle = await import("/static/js/studio/rle.js");
            const { fillHoles } = await import("/static/js/studio/tools/brush.js");
            return cases.map((c) => {
                const mask = Uint8Array.from(c.mask);
                const mine = rle.encodeWithBox(mask, c.h);
                const back = rle.decodeMask(c.counts, c.h, c.w);
                return {counts: mine.counts, bbox: mine.bbox, area: mine.area,
                        decoded: back ? Array.from(back) : null,
                        filled: Array.from(fillHoles(mask, c.h, c.w).mask)};
            });
        }""",
        cases,
    )
    for mask, case, answer in zip(masks, cases, answers, strict=True):
        rle = {"size": list(mask.shape), "counts": answer["counts"].encode("ascii")}
        assert (mask_utils.decode(rle) == mask).all()  # pycocotools reads rle.js
        assert answer["counts"] == case["counts"]  # the very same string
        assert answer["decoded"] == case["mask"]  # rle.js reads pycocotools
        assert answer["area"] == int(mask_utils.area(rle))
        if mask.any():
            assert answer["bbox"] == mask_utils.toBbox(rle).tolist()
        else:
            assert answer["bbox"] is None
        filled = ndimage.binary_fill_holes(mask).astype(np.uint8)
        assert answer["filled"] == filled.ravel(order="F").tolist()

    # 4000×3000 with a hole, built on both sides; malformed counts are refused.
    big = np.zeros((3000, 4000), np.uint8)
    big[100:2900, 50:3900] = 1
    big[500:600, 700:800] = 0
    expected = mask_utils.encode(np.asfortranarray(big))["counts"].decode("ascii")
    found = page.evaluate(
        """async () => {
            const rle = await import("/static/js/studio/rle.js");
            const h = 3000, w = 4000, mask = new Uint8Array(h * w);
            for (let x = 50; x < 3900; x += 1) mask.fill(1, x * h + 100, x * h + 2900);
            for (let x = 700; x < 800; x += 1) mask.fill(0, x * h + 500, x * h + 600);
            const t0 = performance.now();
            const counts = rle.encodeMask(mask);
            const t1 = performance.now();
            const back = rle.decodeMask(counts, h, w);
            const t2 = performance.now();
            const same = back.every((v, i) => v === mask[i]);
            const bad = ["", "0000", "o".repeat(50), "_o5", "52é"]
                .map((t) => rle.decodeMask(t, 4, 6));
            return {counts, same, bad, encodeMs: t1 - t0, decodeMs: t2 - t1};
        }"""
    )
    assert found["counts"] == expected and found["same"]
    assert found["bad"] == [None] * 5
    assert found["encodeMs"] < 500 and found["decodeMs"] < 500  # one linear pass each
