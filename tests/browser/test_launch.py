"""The Train page in Japanese and English: build layers and watch the shapes, preview the
augmentation, launch a job on the digits, and compare the three transfer modes."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import tasks
from webapp.jobs.models import Job, JobGroup

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINISHED = {"ja": "完了", "en": "finished"}


def _student_with_digits(lang: str, prefix: str):
    teacher = make_user(f"{prefix}t_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"{prefix}s_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name="digits", kind="classification", source="sample:digits"
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", lang)  # inline, not through the worker
    dataset.refresh_from_db()
    return student, course, dataset


def _shot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the sticky bar and side card where they belong
    shot(page, name)


def _rows_shapes(page) -> list[str]:
    return page.locator("#layer-rows tr td:nth-child(4)").all_inner_texts()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_builds_layers_previews_augmentation_and_trains(
    live_url, new_page, celery_worker_process, lang
):
    student, _course, dataset = _student_with_digits(lang, "lb")
    page = new_page(lang)
    sign_in(page, live_url, student.username)
    page.goto(f"{live_url}/datasets/{dataset.pk}/")
    page.locator("#train-card a.btn").click()
    page.wait_for_url(f"{live_url}/datasets/{dataset.pk}/train/")
    expect(page.locator("#model-summary")).to_contain_text("simple_cnn")
    _shot(page, f"{lang}-40-train-page")

    # The builder: the starter list gets its shapes from the trainer, layer by layer.
    page.locator(".tab:has(input[value=layers])").click()
    page.fill("#f-input_size", "8")
    page.locator("#f-input_size").dispatch_event("change")
    expect(page.locator("#output-shape")).to_have_text("10")
    assert _rows_shapes(page) == ["16×8×8", "16×4×4", "256", "64", "64"]
    page.select_option("#layer-type", "Dense")
    page.click("#add-layer")
    expect(page.locator("#layer-rows tr")).to_have_count(6)
    expect(page.locator("#layer-rows tr").nth(5).locator("td").nth(3)).to_have_text("64")
    total = page.locator("#total-params").inner_text()
    assert total.replace(",", "").split()[0].isdigit() or any(c.isdigit() for c in total)

    # A convolution after Flatten does not fit: the trainer names the layer.
    page.select_option("#layer-type", "Conv2d")
    page.click("#add-layer")
    expect(page.locator("#layer-rows tr.bad")).to_have_count(1)
    expect(page.locator("#layer-rows tr").nth(6)).to_have_class("bad")
    expect(page.locator("#layer-rows tr.bad .row-error")).to_contain_text("Flatten")
    _shot(page, f"{lang}-41-layer-builder-error")
    page.locator("#layer-rows tr").nth(6).locator(".tools button").last.click()
    expect(page.locator("#layer-rows tr.bad")).to_have_count(0)
    expect(page.locator("#output-shape")).to_have_text("10")
    _shot(page, f"{lang}-42-layer-builder")

    # Augmentation: the dataset's own images, drawn again on Shuffle.
    page.check("#f-augment")
    expect(page.locator("#preview-grid canvas")).to_have_count(24)
    before = page.locator("#preview-grid canvas").nth(1).evaluate("c => c.toDataURL()")
    page.click("#shuffle")
    after = page.locator("#preview-grid canvas").nth(1).evaluate("c => c.toDataURL()")
    assert before != after
    _shot(page, f"{lang}-43-augmentation-preview")

    # A bad value is explained before submitting, in the page's language.
    page.fill("#f-epochs", "0")
    expect(page.locator("[data-error-for=epochs]")).not_to_be_empty()
    page.fill("#f-epochs", "1")
    expect(page.locator("[data-error-for=epochs]")).to_be_empty()

    # Train the lecture's logistic regression on 8×8 digits for one epoch.
    page.uncheck("#f-augment")
    page.locator(".tab").first.click()
    page.check("input[name=preset][value=logistic]")
    spec = page.evaluate("window.manabiTrain.buildSpec()")
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")
    job = Job.objects.get(owner=student)
    assert spec == {
        "model": "logistic",
        "epochs": 1,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 0.001,
        "input_size": 8,
    }
    assert job.spec == {**spec, "kind": "classification"}  # validate_job adds the dataset's kind
    expect(page.locator("#log li").last).to_have_text(FINISHED[lang], timeout=90_000)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_compares_the_three_transfer_modes_from_an_earlier_run(
    live_url, new_page, celery_worker_process, lang
):
    student, course, dataset = _student_with_digits(lang, "tm")
    earlier = Job.objects.create(
        course=course,
        owner=student,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"model": "logistic", "epochs": 1, "input_size": 8},
    )
    tasks.train(earlier.pk)  # inline: the run to start from has finished
    earlier.refresh_from_db()
    assert earlier.status == "succeeded", earlier.error

    page = new_page(lang)
    sign_in(page, live_url, student.username)
    page.goto(f"{live_url}/datasets/{dataset.pk}/train/")
    expect(page.locator("#compare-modes")).to_be_disabled()
    page.select_option("#f-transfer_source", f"job:{earlier.pk}")
    expect(page.locator("input[name=preset][value=logistic]")).to_be_checked()
    expect(page.locator("#source-note")).to_contain_text("logistic")
    expect(page.locator("#compare-modes")).to_be_enabled()
    page.fill("#f-input_size", "8")
    page.fill("#f-epochs", "1")
    page.check("input[name=transfer_mode][value=fine_tuning]")
    expect(page.locator("#server-check")).to_be_empty()
    expect(page.locator("#model-summary")).to_contain_text("logistic")
    _shot(page, f"{lang}-44-transfer-three-modes")
    page.click("#compare-modes")
    page.wait_for_url(f"{live_url}/groups/*/")
    group = JobGroup.objects.get(owner=student)
    jobs = list(group.jobs.order_by("pk"))
    assert [job.label for job in jobs] == ["scratch", "feature_extraction", "fine_tuning"]
    assert all(
        job.spec["transfer"]["source"] == f"job:{earlier.pk}" and job.spec["input_size"] == 8
        for job in jobs
    )
    for job in jobs:
        _wait_finished(job)
    page.reload()
    _shot(page, f"{lang}-45-transfer-group")
    assert json.dumps([job.status for job in jobs]) == json.dumps(["succeeded"] * 3), [
        job.error for job in jobs
    ]


def _wait_finished(job, seconds: float = 120) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ("succeeded", "failed", "cancelled"):
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job.pk} is still {job.status}")
