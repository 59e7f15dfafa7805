"""Model-assisted labelling in the browser, with a real Celery worker: a student's tiny digits
classifier pre-annotates the unlabelled images of the grid (least confident first, all above a
threshold accepted, one rejected by its key, the rest rejected from the panel), and a tiny
detector pre-annotates the canvas (proposals dashed with scores, one accepted, one rejected),
with screenshots of the panel in use in Japanese and in English."""

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import drafts, ingest, samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import tasks
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
IMAGES, UNLABELLED = 60, 20  # digits; the last 20 had their labels cleared in version 2
TILES = "#grid li.g-tile"
READY = "#studio-canvas[data-ready=true]"
WORDS = {
    "en": {"done": "Done: 20 proposals on 20 images.", "accepted": "proposals accepted."},
    "ja": {"done": "完了: 4 枚の画像に"},
}


def _train(dataset: Dataset, spec: dict, version: int = 1) -> Job:
    job = Job.objects.create(
        course=dataset.course, owner=dataset.owner, dataset=dataset, dataset_version=version,
        spec=spec,
    )  # fmt: skip
    tasks.train(job.pk)  # here, synchronously: the round is what the worker is watched doing
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def _digits_with_a_run(student, course) -> tuple[Dataset, Job]:
    """60 real digits, a logistic regression trained on them, then the labels of the last 20
    cleared and committed as version 2 (what a student does before asking a model)."""
    dataset = Dataset.objects.create(
        course=course, owner=student, name="数字", kind="classification"
    )
    result = samples.SAMPLES["digits"].build()
    run = ingest.Ingest(dataset, ingest.Categories(result.categories), processes=1)
    run.run(itertools.islice(result.records, IMAGES))
    dataset_tasks._finish(run, dataset, result.format)
    dataset.refresh_from_db()
    job = _train(dataset, {"model": "logistic", "epochs": 5, "input_size": 8, "lr": 0.05})
    cleared = dataset.items.order_by("id").values_list("uid", flat=True)[IMAGES - UNLABELLED :]
    answer = drafts.apply(
        dataset, student, [{"op": "label", "item": str(u), "category": None} for u in cleared]
    )
    assert not answer["refused"], answer
    drafts.commit(dataset, student, "labels cleared")
    connection.close()  # this thread's own connection
    return dataset, job


def _shapes_with_a_run(student, course) -> tuple[Dataset, Job]:
    dataset = Dataset.objects.create(
        course=course,
        owner=student,
        name="図形",
        kind="detection",
        source="sample:shapes_detection",
    )
    dataset_tasks.copy_sample(dataset.pk, "shapes_detection", "ja")
    dataset.refresh_from_db()
    spec = {
        "kind": "detection",
        "model": "centernet_tiny",
        "epochs": 2,
        "input_size": 64,
        "lr": 2e-3,
    }
    job = _train(dataset, spec)
    connection.close()
    return dataset, job


def _proposal_scores(page) -> list[float]:
    texts = page.locator(f"{TILES} .g-proposal:visible").all_inner_texts()
    return [float(text.rsplit("(", 1)[1].rstrip(")")) for text in texts]


def test_a_classifier_pre_annotates_the_grid_and_its_proposals_are_settled(
    live_url, new_page, celery_worker_process
):
    teacher = make_user("assist_t", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user("assist_s")
    add_member(course, student)
    with ThreadPoolExecutor(1) as pool:
        dataset, job = pool.submit(_digits_with_a_run, student, course).result()
    grid_url = f"{live_url}/datasets/{dataset.pk}/studio/"

    page = new_page("en")
    sign_in(page, live_url, student.username)
    page.goto(grid_url + "?queue=unlabelled")
    expect(page.locator(f"{TILES}")).to_have_count(IMAGES)
    panel = page.locator("#assist-panel")
    expect(panel.locator("#assist-job option")).to_have_count(1)
    expect(panel.locator("#assist-job option")).to_contain_text(f"#{job.pk} logistic")
    panel.locator("#assist-limit").fill(str(UNLABELLED))
    panel.locator("#assist-start").click()
    # The worker answers; the page reloads its images and the panel says what was done.
    expect(panel.locator("#assist-status")).to_have_text(WORDS["en"]["done"], timeout=60_000)
    expect(page.locator(f"{TILES} .g-proposal:visible")).to_have_count(UNLABELLED)
    expect(panel.locator("#assist-waiting")).to_have_text("Proposals waiting in your draft: 20")

    # Least confident first: the 20 proposals lead, lowest score first.
    queue = drafts.queue(dataset, student, "least_confident", 0, UNLABELLED)["items"]
    stored = [row["proposal"]["score"] for row in queue]
    page.locator("input[name=queue][value=least_confident]").check()
    expect(page.locator(TILES).first).to_have_attribute("data-uid", queue[0]["uid"])
    scores = _proposal_scores(page)
    assert scores == sorted(scores) == [round(s, 2) for s in stored], scores
    shot(page, "en-95-model-assist-grid")

    # Accept every proposal at least as sure as the median: exactly those become labels.
    threshold = round(stored[UNLABELLED // 2], 2)
    above = sum(score >= threshold for score in stored)
    panel.locator("#assist-threshold").fill(f"{threshold:.2f}")
    panel.locator("#assist-accept").click()
    expect(panel.locator("#assist-message")).to_have_text(f"{above} {WORDS['en']['accepted']}")
    expect(panel.locator("#assist-waiting")).to_have_text(
        f"Proposals waiting in your draft: {UNLABELLED - above}"
    )
    draft = drafts.draft_of(dataset, student)
    labelled = drafts.labels_of(draft)
    assert sum(category is not None for category in labelled.values()) == above

    # The same panel in Japanese, with proposals still waiting.
    japanese = new_page("ja")
    sign_in(japanese, live_url, student.username)
    japanese.goto(grid_url + "?queue=least_confident")
    expect(japanese.locator("#assist-waiting")).to_have_text(
        f"下書きの未処理の提案: {UNLABELLED - above} 件"
    )
    japanese.locator(".grid-side").evaluate("(side) => { side.scrollTop = side.scrollHeight; }")
    shot(japanese, "ja-95-model-assist-grid")

    # One unsure proposal rejected with its key in the grid, the rest from the panel.
    page.locator("input[name=queue][value=least_confident]").check()
    first = page.locator(TILES).first
    expect(first.locator(".g-proposal")).to_be_visible()
    first.click()
    page.keyboard.press("x")
    expect(first.locator(".g-proposal")).to_be_hidden()
    expect(page.locator("#autosave-state[data-state=saved]")).to_have_count(1, timeout=10_000)
    panel.locator("#assist-reject").click()
    rest = UNLABELLED - above - 1
    expect(panel.locator("#assist-message")).to_have_text(f"{rest} proposals rejected.")
    expect(panel.locator("#assist-waiting")).to_have_text("Proposals waiting in your draft: 0")
    assert drafts.summary(dataset, student)["proposals"] == 0


def test_a_detector_pre_annotates_the_canvas_one_proposal_accepted_one_rejected(
    live_url, new_page, celery_worker_process
):
    teacher = make_user("assist_dt", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user("assist_ds")
    add_member(course, student)
    with ThreadPoolExecutor(1) as pool:
        dataset, job = pool.submit(_shapes_with_a_run, student, course).result()

    page = new_page("ja")
    sign_in(page, live_url, student.username)
    page.goto(f"{live_url}/datasets/{dataset.pk}/studio/")
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    panel = page.locator("#assist-panel")
    panel.locator("#assist-limit").fill("4")
    panel.locator("#assist-start").click()
    expect(panel.locator("#assist-status")).to_contain_text(WORDS["ja"]["done"], timeout=60_000)

    # The image with the most proposals, opened on the canvas: they are drawn dashed.
    chosen = {}
    for item in drafts.queue(dataset, student, "all", 0, 4)["items"]:
        view = drafts.item_view(dataset, student, item["uid"])
        chosen[item["uid"]] = [a["uid"] for a in view["annotations"] if a["proposal"]]
    uid, proposed = max(chosen.items(), key=lambda pair: len(pair[1]))
    assert len(proposed) >= 2, chosen
    page.goto(f"{live_url}/datasets/{dataset.pk}/studio/{uid}/")
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    objects = page.locator("#studio-objects li.proposal")
    expect(objects).to_have_count(len(proposed))
    dashed = "(uid) => window.manabiStudio._groups.get(uid).find('Rect')[0].dash()"
    assert all(page.evaluate(dashed, uid) == [6, 4] for uid in proposed)
    page.locator("#assist-panel").scroll_into_view_if_needed()
    shot(page, "ja-95-model-assist-canvas")

    # Enter accepts the selected proposal; Delete rejects another.
    canvas = page.locator("#studio-canvas")
    objects.nth(0).locator("button").click()
    canvas.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#studio-objects li.proposal")).to_have_count(len(proposed) - 1)
    page.locator("#studio-objects li.proposal").nth(0).locator("button").click()
    canvas.focus()
    page.keyboard.press("Delete")
    expect(page.locator("#studio-objects li.proposal")).to_have_count(len(proposed) - 2)
    expect(page.locator("#studio-save[data-state=saved]")).to_have_count(1, timeout=10_000)
    view = drafts.item_view(dataset, student, uid)["annotations"]
    kept = {a["uid"]: a["proposal"] for a in view}
    assert kept[proposed[0]] is None  # accepted: a plain annotation now
    assert sum(u in kept for u in proposed) == len(proposed) - 1  # one rejected, gone

    # The panel in English on the same image.
    english = new_page("en")
    sign_in(english, live_url, student.username)
    english.goto(f"{live_url}/datasets/{dataset.pk}/studio/{uid}/")
    expect(english.locator(READY)).to_have_count(1, timeout=15_000)
    expect(english.locator("#assist-status")).to_contain_text("Done: ")
    english.locator("#assist-panel").scroll_into_view_if_needed()
    shot(english, "en-95-model-assist-canvas")
