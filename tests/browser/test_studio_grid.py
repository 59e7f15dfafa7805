"""The studio's label grid in the browser: a student labels a range of thumbnails by Shift+click
and a number key, relabels one and undoes it, accepts a model's proposal with Enter, finds it
all again after a reload, commits a version with a message and trains on that version with a
real worker — with screenshots of the grid in Japanese and in English."""

import itertools

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import drafts, ingest, samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset, Version
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
IMAGES = 40  # the first 40 of scikit-learn's digits: every class four times
TILES = "#grid li.g-tile"
SAVED = "#autosave-state[data-state=saved]"
WORDS = {
    "ja": {"unlabelled": "未ラベル", "committed": "バージョン 3 を確定しました。"},
    "en": {"unlabelled": "unlabelled", "committed": "Version 3 committed."},
}


def _small_digits(student, course) -> Dataset:
    """A student's classification dataset of a few real digits, ingested inline (no worker)."""
    dataset = Dataset.objects.create(
        course=course, owner=student, name="すうじ", kind="classification"
    )
    result = samples.SAMPLES["digits"].build()
    run = ingest.Ingest(dataset, ingest.Categories(result.categories), processes=1)
    run.run(itertools.islice(result.records, IMAGES))
    dataset_tasks._finish(run, dataset, result.format)
    dataset.refresh_from_db()
    return dataset


def _tiles(page, uids: list[str]):
    """The tile of the n-th image (by its uid: a commit copies the rows it changes, so the
    order of the "all" queue may differ after it)."""
    return lambda number: page.locator(f"#tile-{uids[number]}")


def _open_grid(page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#grid[data-ready=true]")).to_have_count(1)
    expect(page.locator(TILES)).to_have_count(IMAGES)


def test_student_labels_in_the_grid_commits_a_version_and_trains_on_it(
    live_url, new_page, celery_worker_process
):
    teacher = make_user("gridt", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user("grids")
    add_member(course, student)
    dataset = _small_digits(student, course)
    shown = drafts.queue(dataset, student, "all", 0, IMAGES)["items"]  # the grid's order
    uids = [row["uid"] for row in shown]
    labels = [row["category"] for row in shown]
    # A model's round proposed classes for two images: a sure 7 and an unsure 3.
    drafts.write_proposals(
        dataset,
        student,
        1,
        [
            {"item": uids[20], "category": 7, "score": 0.93},
            {"item": uids[21], "category": 3, "score": 0.41},
        ],
    )
    grid_url = f"{live_url}/datasets/{dataset.pk}/studio/"

    page = new_page("ja")
    tile = _tiles(page, uids)
    sign_in(page, live_url, student.username)
    _open_grid(page, grid_url)
    expect(tile(21).locator(".g-proposal")).to_have_text("提案: 3 (0.41)")
    expect(page.locator("#class-list .class-btn")).to_have_count(10)
    expect(page.locator("#class-list .class-btn").first.locator("kbd")).to_have_text("1")
    shot(page, "ja-90-studio-grid")

    # Shift+click selects a range; the key labels all four at once (class "2" has the key 3).
    tile(0).click()
    tile(3).click(modifiers=["Shift"])
    expect(page.locator(f"{TILES}[aria-selected=true]")).to_have_count(4)
    page.keyboard.press("3")
    for number in range(4):
        expect(tile(number).locator(".g-label")).to_have_text("2")
    # One image relabelled by its key, then undone: it has its own class again.
    tile(5).click()
    page.keyboard.press("9")
    expect(tile(5).locator(".g-label")).to_have_text("8")
    page.keyboard.press("Control+z")
    expect(tile(5).locator(".g-label")).to_have_text(str(labels[5]))
    # Ctrl+Z once more would take back the range; redo puts the 8 back, undo takes it away.
    page.keyboard.press("Control+Shift+z")
    expect(tile(5).locator(".g-label")).to_have_text("8")
    page.keyboard.press("Control+z")
    expect(tile(5).locator(".g-label")).to_have_text(str(labels[5]))
    # Enter accepts the sure proposal; x clears another image's class.
    tile(20).click()
    page.keyboard.press("Enter")
    expect(tile(20).locator(".g-label")).to_have_text("7")
    expect(tile(20).locator(".g-proposal")).to_be_hidden()
    tile(30).click()
    page.keyboard.press("x")
    expect(tile(30).locator(".g-label")).to_have_text(WORDS["ja"]["unlabelled"])
    expect(page.locator("#unlabelled-count")).to_have_text("1")
    expect(page.locator(SAVED)).to_have_count(1, timeout=10_000)

    # The least-confident queue starts with the unsure proposal.
    page.locator("input[name=queue][value=least_confident]").check()
    expect(page.locator(TILES).first).to_have_attribute("data-uid", uids[21])
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    shot(page, "ja-91-studio-grid-shortcuts")
    page.keyboard.press("Escape")

    # After a reload the labels are those of the draft.
    _open_grid(page, grid_url + "?queue=all")
    for number in range(4):
        expect(tile(number).locator(".g-label")).to_have_text("2")
    expect(tile(5).locator(".g-label")).to_have_text(str(labels[5]))
    expect(tile(20).locator(".g-label")).to_have_text("7")
    expect(tile(30).locator(".g-label")).to_have_text(WORDS["ja"]["unlabelled"])
    draft = drafts.draft_of(dataset, student)
    seen = drafts.labels_of(draft, uids)
    assert [seen[uids[n]] for n in range(4)] == [2, 2, 2, 2]
    assert seen[uids[5]] == labels[5] and seen[uids[20]] == 7 and seen[uids[30]] is None

    # Meanwhile the teacher committed another class for the first image: the commit stops at
    # that conflict, lists it, and goes through once the student takes the teacher's label.
    drafts.apply(dataset, teacher, [{"op": "label", "item": uids[0], "category": 5}])
    drafts.commit(dataset, teacher, "先生の修正")
    page.locator("#commit-open").click()
    page.fill("#commit-message", "数字の2を直した")
    page.locator("#commit-submit").click()
    conflict = page.locator("#commit-conflicts li")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("あなた:「2」、相手:「5」")
    shot(page, "ja-92-studio-grid-conflict")
    conflict.get_by_role("button", name="相手の変更を使う").click()
    expect(conflict).to_have_count(0)
    page.locator("#commit-submit").click()
    expect(page.locator("#commit-result")).to_contain_text(WORDS["ja"]["committed"])
    expect(page.locator("#draft-count")).to_have_text("下書きに変更はありません")
    expect(tile(0).locator(".g-label")).to_have_text("5")  # the page was read again
    version = Version.objects.get(dataset=dataset, number=3)
    assert version.summary == "数字の2を直した"
    dataset.refresh_from_db()
    assert dataset.head == 3
    page.locator("#train-link").click()
    page.wait_for_url(f"{live_url}/datasets/{dataset.pk}/train/")
    page.locator("input[name=preset][value=logistic]").check()
    page.fill("#f-epochs", "1")
    page.fill("#f-input_size", "8")
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")
    expect(page.locator("#job-status")).to_have_class("badge job-succeeded", timeout=180_000)
    job = Job.objects.get(dataset=dataset)
    assert job.dataset_version == 3
    assert job.status == "succeeded"

    # The same grid in English, after the commit: the head's labels, an empty draft.
    english = new_page("en")
    tile_en = _tiles(english, uids)
    sign_in(english, live_url, student.username)
    _open_grid(english, grid_url)
    expect(tile_en(0).locator(".g-label")).to_have_text("5")
    expect(tile_en(1).locator(".g-label")).to_have_text("2")
    expect(tile_en(30).locator(".g-label")).to_have_text(WORDS["en"]["unlabelled"])
    expect(tile_en(21).locator(".g-proposal")).to_have_text("Proposed: 3 (0.41)")
    expect(english.locator("#draft-count")).to_have_text("No changes in your draft")
    tile_en(6).click()
    tile_en(8).click(modifiers=["Control"])
    english.locator("#select-several").click()  # a tablet's way to Ctrl+click
    tile_en(10).click()
    expect(english.locator(f"{TILES}[aria-selected=true]")).to_have_count(3)
    shot(english, "en-90-studio-grid")
