"""Charts drawn from a detection run's events: the job page charts mAP and the loss parts it
carries, and a comparison group overlays twelve runs (more colours than Okabe–Ito has, so the
later ones are dashed) — in Japanese and in English. The events are stored as a worker would."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import PAINTED
from tests.conftest import add_member, make_course, make_user
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job, JobEvent, JobGroup

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
EPOCHS = 3
RUNS = 12
MAP_TITLE = {"ja": "エポックごとのmAP@0.5", "en": "mAP@0.5 per epoch"}
BEST_LABEL = {"ja": "最高の検証 mAP@0.5", "en": "Best validation mAP@0.5"}
EPOCH_LINE = {"ja": "エポック 3：検証 mAP@0.5 50.0%", "en": "epoch 3: validation mAP@0.5 50.0%"}
HEAT_MAP = {"ja": "ヒートマップ損失", "en": "heat-map loss"}
MAP50_COLOUR, MAP_COLOUR = [0xD5, 0x5E, 0x00], [0x00, 0x9E, 0x73]


def _epoch(run: int, epoch: int) -> dict:
    return {
        "epoch": epoch,
        "fold": 0,
        "lr": 0.001,
        "seconds": 2.0,
        "images_per_s": 50.0,
        "train_loss": 3.0 / epoch + 0.1 * run,
        "train_heatmap": 2.0 / epoch,
        "train_size": 0.6 / epoch,
        "train_offset": 0.3 / epoch,
        "val_loss": 3.2 / epoch + 0.1 * run,
        "val_map50": 0.2 + 0.1 * epoch + 0.02 * run,
        "val_map": 0.1 + 0.05 * epoch + 0.01 * run,
    }


def _detection_group(student, course) -> tuple[JobGroup, list[Job]]:
    dataset = Dataset.objects.create(course=course, owner=student, name="boxes", kind="detection")
    group = JobGroup.objects.create(course=course, owner=student, title="lr", variable="lr")
    jobs = []
    for run in range(RUNS):
        job = Job.objects.create(
            course=course,
            owner=student,
            dataset=dataset,
            dataset_version=1,
            spec={"kind": "detection", "model": "centernet_tiny", "epochs": EPOCHS},
            group=group,
            label=f"run {run + 1}",
            status="cancelled",  # finished, with no results to load: the curves are the page
        )
        started = {"kind": "detection", "model": "centernet_tiny", "parameters": 1000}
        events = [("started", {**started, "device": "cpu", "fold": 0})]
        events += [("epoch", _epoch(run, epoch)) for epoch in range(1, EPOCHS + 1)]
        events += [("failed", {"cancelled": True, "reason": "cancelled"})]
        for number, (kind, data) in enumerate(events, start=1):
            JobEvent.objects.create(
                job=job, number=number, attempt=1, seq=number, kind=kind, data=data
            )
        jobs.append(job)
    return group, jobs


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_detection_curves_on_the_job_page_and_twelve_runs_compared(live_url, new_page, lang):
    teacher = make_user(f"ct_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"cs_{lang}")
    add_member(course, student)
    group, jobs = _detection_group(student, course)

    page = new_page(lang)
    sign_in(page, live_url, f"cs_{lang}")
    page.goto(f"{live_url}/jobs/{jobs[0].pk}/")
    curves = page.locator("#curves")
    expect(curves.locator("figcaption h2")).to_have_text(MAP_TITLE[lang])
    expect(curves).to_have_attribute("data-series", "2")  # mAP@0.5 and mAP@0.5:0.95
    expect(curves.locator(".chart-data tbody tr")).to_have_count(EPOCHS)
    assert "—" not in curves.locator(".chart-data tbody td").all_inner_texts()
    for colour in (MAP50_COLOUR, MAP_COLOUR):
        assert page.evaluate(PAINTED, ["curves", colour]) > 50
    losses = page.locator("#loss-curves")
    expect(losses).to_have_attribute("data-series", "5")  # loss, validation loss, three parts
    expect(losses.locator(".chart-data thead")).to_contain_text(HEAT_MAP[lang])
    expect(page.locator("#best-val")).to_have_text("50.0%")  # the best epoch's val_map50
    expect(page.locator(".facts dt").nth(3)).to_have_text(BEST_LABEL[lang])
    expect(page.locator("#job-status")).to_have_class("badge job-cancelled")
    expect(page.locator("#log li").nth(-2)).to_contain_text(EPOCH_LINE[lang])  # then cancelled
    shot(page, f"{lang}-60-detection-job-curves")

    page.goto(f"{live_url}/groups/{group.pk}/")
    expect(page.locator("#runs tbody tr")).to_have_count(RUNS)
    for key in ("val_map50", "val_map", "train_loss"):
        figure = page.locator(f"#compare-{key}")
        expect(figure.locator("canvas")).to_be_visible()
        expect(figure).to_have_attribute("data-series", str(RUNS))
        expect(figure.locator(".u-legend .u-series")).to_have_count(RUNS + 1)
        expect(figure.locator(".chart-data tbody tr")).to_have_count(EPOCHS)
        cells = figure.locator(".chart-data tbody td").all_inner_texts()
        assert len(cells) == RUNS * EPOCHS and "—" not in cells
    markers = page.locator("#compare-val_map50 .u-legend .u-series .u-marker")
    styles = markers.evaluate_all("ms => ms.map(m => getComputedStyle(m).borderTopStyle)")
    assert styles[1:9] == ["solid"] * 8 and styles[9:] == ["dashed"] * (RUNS - 8)  # 0: the x
    expect(page.locator("#runs thead")).to_contain_text(BEST_LABEL[lang])
    shot(page, f"{lang}-61-compare-twelve-detection-runs")
