"""The studio's canvas in the browser, on a few images of the detection sample: a student draws
two boxes with the mouse (one snapped to the image's corner), moves and resizes one, changes its
class with a number key, undoes and redoes that, finds everything saved after a reload, keeps
working offline (the change waits and is sent when the network is back), walks to the next
image and back, and commits a version holding the boxes — with screenshots in both languages."""

import itertools

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import drafts, ingest, samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Annotation, Dataset, Version

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
IMAGES = 5
READY = "#studio-canvas[data-ready=true]"
SAVED = "#studio-save[data-state=saved]"


def _small_shapes(student, course) -> Dataset:
    """A student's copy of the first images of the detection sample, ingested inline."""
    dataset = Dataset.objects.create(course=course, owner=student, name="図形", kind="detection")
    result = samples.SAMPLES["shapes_detection"].build()
    run = ingest.Ingest(dataset, ingest.Categories(result.categories), processes=1)
    run.run(itertools.islice(result.records, IMAGES))
    dataset_tasks._finish(run, dataset, result.format)
    dataset.refresh_from_db()
    return dataset


def _screen(page, x: float, y: float) -> tuple[float, float]:
    """An image point in the page's pixels, as the canvas shows it now."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
              const s = window.manabiStudio, r = s.container.getBoundingClientRect();
              return [r.left + s.stage.x() + x * s.scale, r.top + s.stage.y() + y * s.scale];
            }""",
            [x, y],
        )
    )


def _drag(page, start, end) -> None:
    page.mouse.move(*_screen(page, *start))
    page.mouse.down()
    page.mouse.move(*_screen(page, *end), steps=6)
    page.mouse.up()


def _annotation(page, uid: str) -> dict | None:
    return page.evaluate("(uid) => window.manabiStudio.annotations.get(uid) || null", uid)


def _selected(page) -> str | None:
    return page.evaluate("window.manabiStudio.selected")


def _server_view(page) -> dict:
    """The image as the API answers it now (the caller's draft over the head)."""
    return page.evaluate(
        """() => fetch(`/api/v1/datasets/${JSON.parse(document.getElementById('studio-config')
             .textContent).dataset}/studio/items/${window.manabiStudio.item.uid}`)
             .then((r) => r.json())"""
    )


def _close(a: list[float], b: list[float], tolerance: float = 0.35) -> bool:
    return all(abs(p - q) <= tolerance for p, q in zip(a, b, strict=True))


def test_student_draws_boxes_undoes_saves_offline_and_commits(live_url, new_page):
    teacher = make_user("canvast", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user("canvass")
    add_member(course, student)
    dataset = _small_shapes(student, course)
    names = [c["name"] for c in dataset.categories.order_by("index").values("name")]

    page = new_page("en")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_url, "canvass")
    page.goto(f"{live_url}/datasets/{dataset.pk}/")
    page.locator("#annotate").click()  # the studio opens the first image's canvas
    expect(page.locator(READY)).to_have_count(1)
    expect(page.locator("#studio-position")).to_have_text(f"1 / {IMAGES}")
    expect(page.locator("[data-tool=box]")).to_have_attribute("aria-pressed", "true")
    first_item = page.evaluate("window.manabiStudio.item.uid")
    before = page.evaluate("window.manabiStudio.annotations.size")
    assert before >= 1  # the sample's own boxes
    expect(page.locator("#studio-objects li")).to_have_count(before)

    # Two boxes; the first starts a fraction of a pixel from the corner and snaps onto it.
    _drag(page, (0.3, 0.3), (20, 18))
    first = _selected(page)
    assert _close(_annotation(page, first)["bbox"], [0, 0, 20, 18])
    _drag(page, (30, 34), (50, 50))
    second = _selected(page)
    assert second != first
    assert _close(_annotation(page, second)["bbox"], [30, 34, 20, 16])
    expect(page.locator("#studio-objects li")).to_have_count(before + 2)

    # Move the selected box by dragging it, then resize it by its bottom-right handle.
    _drag(page, (40, 42), (45, 44))
    assert _close(_annotation(page, second)["bbox"], [35, 36, 20, 16])
    _drag(page, (55, 52), (58, 56))
    assert _close(_annotation(page, second)["bbox"], [35, 36, 23, 20])
    category = _annotation(page, second)["category"]
    other = 1 if category != 1 else 0
    page.keyboard.press(str(other + 1))  # the number key of another class
    assert _annotation(page, second)["category"] == other
    expect(page.locator(f"#studio-objects li[data-uid='{second}']")).to_contain_text(names[other])
    page.keyboard.press("Control+z")
    assert _annotation(page, second)["category"] == category
    page.keyboard.press("Control+Shift+z")
    assert _annotation(page, second)["category"] == other
    expect(page.locator(SAVED)).to_have_count(1)
    shot(page, "studio-canvas-en")
    page.keyboard.press("?")
    expect(page.locator("#studio-keys")).to_be_visible()
    expect(page.locator("#studio-keys")).to_contain_text("Move the selected box by one pixel")
    shot(page, "studio-keys-en")
    page.keyboard.press("Escape")
    expect(page.locator("#studio-keys")).to_be_hidden()

    # Zoom about the cursor (the image point under it stays put), pan with space + drag, fit.
    count = page.evaluate("window.manabiStudio.annotations.size")
    fitted = page.evaluate("window.manabiStudio.scale")
    page.mouse.move(*_screen(page, 16, 48))
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"window.manabiStudio.scale > {fitted * 1.5}")
    under = page.evaluate("() => window.manabiStudio.view.toImage(window.manabiStudio.view.last)")
    assert _close([under["x"], under["y"]], [16, 48], 0.2)
    x = page.evaluate("window.manabiStudio.stage.x()")
    page.keyboard.down(" ")
    _drag(page, (16, 48), (26, 48))
    page.keyboard.up(" ")
    assert page.evaluate("window.manabiStudio.stage.x()") > x + 20
    assert page.evaluate("window.manabiStudio.annotations.size") == count  # no box drawn
    page.keyboard.press("0")
    assert abs(page.evaluate("window.manabiStudio.scale") - fitted) < 1e-6

    # Saved: the server has both boxes, and a reload shows them again.
    served = {a["uid"]: a for a in _server_view(page)["annotations"]}
    assert _close(served[first]["bbox"], [0, 0, 20, 18])
    assert _close(served[second]["bbox"], [35, 36, 23, 20]) and served[second]["category"] == other
    page.reload()
    expect(page.locator(READY)).to_have_count(1)
    assert _close(_annotation(page, second)["bbox"], [35, 36, 23, 20])
    assert _annotation(page, first) is not None

    # Tab on the canvas walks the objects in their order.
    page.locator("#studio-canvas").focus()
    page.keyboard.press("Tab")
    assert _selected(page) == page.evaluate("[...window.manabiStudio.annotations.keys()][0]")
    page.keyboard.press("Escape")
    assert _selected(page) is None

    # Offline: the change waits (kept in localStorage) and goes when the network is back.
    page.context.set_offline(True)
    page.locator(f"#studio-objects li[data-uid='{first}'] button").click()
    page.locator("#studio-canvas").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#studio-save[data-state=offline]")).to_have_count(1)
    assert _close(_annotation(page, first)["bbox"], [1, 0, 20, 18])
    stored = page.evaluate(
        "Object.keys(localStorage).filter((k) => k.startsWith('manabi-studio-'))"
    )
    assert stored, "pending changes are kept in localStorage while offline"
    page.context.set_offline(False)
    expect(page.locator(SAVED)).to_have_count(1, timeout=20_000)
    assert _close(
        {a["uid"]: a for a in _server_view(page)["annotations"]}[first]["bbox"], [1, 0, 20, 18]
    )

    # The next image, and back (both fetched ahead).
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    expect(page.locator("#studio-position")).to_have_text(f"2 / {IMAGES}")
    assert page.evaluate("window.manabiStudio.item.uid") != first_item
    assert first_item not in page.url
    page.keyboard.press("a")
    expect(page.locator("#studio-position")).to_have_text(f"1 / {IMAGES}")
    assert _close(_annotation(page, second)["bbox"], [35, 36, 23, 20])

    # A new class from the side panel: chosen at once, for the selected box too.
    page.locator(f"#studio-objects li[data-uid='{second}'] button").click()
    page.locator("#studio-new-class").fill("hexagon")
    page.locator("#studio-add-class button").click()
    expect(page.locator(".class-button[aria-pressed=true]")).to_contain_text("hexagon")
    assert _annotation(page, second)["category"] == len(names)
    expect(page.locator(SAVED)).to_have_count(1)

    # Commit a version: it holds the boxes and the new class.
    page.locator("#studio-commit-open").click()
    page.locator("#studio-commit-message").fill("Two more boxes")
    page.locator("#studio-commit button[type=submit]").click()
    expect(page.locator("#studio-commit-result")).to_have_attribute("data-version", "2")
    expect(page.locator("#studio-changes")).to_have_text("0")
    version = Version.objects.get(dataset=dataset, number=2)
    assert version.summary == "Two more boxes"
    committed = {
        str(a.uid): a for a in Annotation.objects.filter(item__dataset=dataset, item__valid_to=None)
    }
    assert _close(committed[first].bbox, [1, 0, 20, 18])
    assert _close(committed[second].bbox, [35, 36, 23, 20])
    assert committed[second].category_index == len(names)
    assert dataset.categories.get(index=len(names), valid_to=None).name == "hexagon"
    assert errors == []

    ja = new_page("ja")
    sign_in(ja, live_url, "canvass")
    ja.goto(f"{live_url}/datasets/{dataset.pk}/studio/{first_item}/")
    expect(ja.locator(READY)).to_have_count(1)
    expect(ja.locator("#studio-canvas")).to_have_attribute("aria-label", "画像キャンバス")
    ja.locator(f"#studio-objects li[data-uid='{second}'] button").click()
    shot(ja, "studio-canvas-ja")


def test_proposals_are_accepted_and_rejected_and_a_conflict_is_settled(live_url, new_page):
    teacher = make_user("canvasp", teacher=True, display_name="Sato Sensei")
    course = make_course(teacher, "深層学習")
    student = make_user("canvasq")
    add_member(course, student)
    dataset = _small_shapes(student, course)
    item = dataset.items.order_by("id").first()
    theirs = Annotation.objects.filter(item=item).order_by("id").first()
    uid, item_uid = str(theirs.uid), str(item.uid)
    drafts.write_proposals(
        dataset,
        student,
        7,
        [
            {"item": item_uid, "category": 0, "bbox": [2, 40, 12, 12], "score": 0.87},
            {"item": item_uid, "category": 1, "bbox": [44, 2, 10, 10], "score": 0.31},
        ],
    )
    moved = [theirs.bbox[0] + 2, theirs.bbox[1], theirs.bbox[2], theirs.bbox[3]]
    change = {"op": "update", "item": item_uid, "uid": uid, "revision": theirs.revision}
    change["data"] = {"category": theirs.category_index, "bbox": moved}
    drafts.apply(dataset, teacher, [change])  # the teacher is editing the same image

    page = new_page("en")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_url, "canvasq")
    page.goto(f"{live_url}/datasets/{dataset.pk}/studio/{item_uid}/")
    expect(page.locator(READY)).to_have_count(1)
    expect(page.locator("#studio-others")).to_have_text("Also editing this image: Sato Sensei")
    proposals = page.locator("#studio-objects li.proposal")
    expect(proposals).to_have_count(2)
    expect(proposals.first).to_contain_text("proposal, score 0.87")
    strong, weak = (
        proposals.first.get_attribute("data-uid"),
        proposals.last.get_attribute("data-uid"),
    )
    dashed = "(uid) => window.manabiStudio._groups.get(uid).find('Rect')[0].dash()"
    assert page.evaluate(dashed, strong) == [6, 4]

    proposals.first.locator("button").click()
    page.locator("#studio-canvas").focus()
    page.keyboard.press("Enter")  # accept the strong one
    assert _annotation(page, strong)["proposal"] is None
    page.locator(f"#studio-objects li[data-uid='{weak}'] button").click()
    page.locator("#studio-canvas").focus()
    page.keyboard.press("Delete")  # reject the weak one
    assert _annotation(page, weak) is None
    expect(page.locator(SAVED)).to_have_count(1)
    served = {a["uid"]: a for a in _server_view(page)["annotations"]}
    assert served[strong]["proposal"] is None and weak not in served

    # The teacher commits first; the student's later move of the same box is a conflict.
    drafts.commit(dataset, teacher, "Moved a box")
    page.locator(f"#studio-objects li[data-uid='{uid}'] button").click()
    page.locator("#studio-canvas").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#studio-save[data-state=conflict]")).to_have_count(1)
    conflict = page.locator(f"#studio-conflicts li[data-uid='{uid}']")
    expect(conflict).to_contain_text("was changed by")
    shot(page, "studio-conflict-en")
    conflict.locator("[data-keep=theirs]").click()
    expect(conflict).to_have_count(0)
    expect(page.locator(SAVED)).to_have_count(1)
    assert _close(_annotation(page, uid)["bbox"], moved)
    served = {a["uid"]: a for a in _server_view(page)["annotations"]}
    assert _close(served[uid]["bbox"], moved) and served[uid]["revision"] == theirs.revision + 1
    assert errors == []
