"""A finished digits job's results, a confusion cell, the mistakes sorted, compare, Try it."""

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import tasks
from webapp.jobs.models import Job, JobGroup

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _digit_png() -> bytes:
    image = Image.new("L", (64, 64), 0)
    image.paste(255, (28, 8, 36, 56))  # a one, roughly
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _load_images(page):
    """Thumbnails load lazily: load them all before a full-page screenshot."""
    page.evaluate(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')"
    )
    page.wait_for_function("[...document.images].every(i => i.complete)")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays on top of the shot


VAL_COLOUR = (0xD5, 0x5E, 0x00)  # the validation curve on the job page
RUN_COLOURS = [(0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00)]  # the first two runs on the compare page
# Pixels of one colour on a chart's canvas: the curve was drawn, not only tabled.
PAINTED = """([id, [r, g, b]]) => {
    const canvas = document.querySelector(`#${id} canvas`);
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const near = (value, wanted) => Math.abs(value - wanted) < 10;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
        if (near(d[i], r) && near(d[i + 1], g) && near(d[i + 2], b)) n++;
    }
    return n;
}"""


def _expect_chart(page, figure_id, *, series, epochs, colours):
    """A chart drew its curves on the canvas and lists every epoch of each in its table."""
    figure = page.locator(f"#{figure_id}")
    expect(figure.locator("canvas")).to_be_visible()
    expect(figure).to_have_attribute("data-series", str(series))
    expect(figure.locator(".u-legend .u-series")).to_have_count(series + 1)  # + the x axis
    expect(figure.locator(".chart-data tbody tr")).to_have_count(epochs)
    cells = figure.locator(".chart-data tbody td").all_inner_texts()
    assert len(cells) == series * epochs and "—" not in cells
    for colour in colours:
        assert page.evaluate(PAINTED, [figure_id, list(colour)]) > 50


def _runs(student, course, lang):
    # The row by hand and the task called here: the action would also queue it for the worker.
    dataset = Dataset.objects.create(
        course=course, owner=student, name="digits", kind="classification", source="sample:digits"
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", lang)
    dataset.refresh_from_db()
    group = JobGroup.objects.create(course=course, owner=student, title="lr", variable="lr")
    jobs = []
    for lr in (0.05, 0.005):
        job = Job.objects.create(
            course=course,
            owner=student,
            dataset=dataset,
            dataset_version=dataset.head,
            spec={"model": "logistic", "epochs": 3, "input_size": 8, "lr": lr},
            group=group,
            label=str(lr),
        )
        tasks.train(job.pk)  # inline: the page opens on finished jobs
        jobs.append(job)
    connection.close()  # this thread's own connection
    return group, jobs


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_reads_results_opens_a_cell_sorts_mistakes_compares_and_tries(
    live_url, new_page, celery_worker_process, lang
):
    teacher = make_user(f"rt_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"rs_{lang}")
    add_member(course, student)
    # Playwright's event loop runs in this thread: the job's events are sent from another one.
    with ThreadPoolExecutor(1) as pool:
        group, (job, other) = pool.submit(_runs, student, course, lang).result()

    page = new_page(lang)
    sign_in(page, live_url, f"rs_{lang}")
    page.goto(f"{live_url}/jobs/{job.pk}/")
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    _expect_chart(page, "curves", series=2, epochs=3, colours=[VAL_COLOUR])
    expect(page.locator("#confusion tbody tr")).to_have_count(10)
    _load_images(page)
    shot(page, f"{lang}-50-job-result")

    miss = page.locator("#confusion td.miss a").first
    count = int(miss.inner_text())
    miss.click()
    expect(page.locator("#cell-gallery li")).to_have_count(count)
    _load_images(page)
    shot(page, f"{lang}-51-confusion-cell")

    page.locator("[data-sort=asc]").click()
    values = [
        float(v)
        for v in page.locator("#mistakes li").evaluate_all(
            "tiles => tiles.map(t => t.dataset.confidence)"
        )
    ]
    assert values == sorted(values) and len(values) > 1
    page.locator("[data-sort=desc]").click()
    first = float(page.locator("#mistakes li").first.get_attribute("data-confidence"))
    assert first == max(values)

    page.locator("#try-card input[type=file]").set_input_files(
        {"name": "one.png", "mimeType": "image/png", "buffer": _digit_png()}
    )
    expect(page.locator("#try-card .try-bars .bar-row")).to_have_count(5, timeout=30_000)
    shot(page, f"{lang}-52-try-it")

    page.goto(f"{live_url}/compare/?jobs={job.pk},{other.pk}")
    _expect_chart(page, "compare-val_acc", series=2, epochs=3, colours=RUN_COLOURS)
    _expect_chart(page, "compare-val_loss", series=2, epochs=3, colours=RUN_COLOURS)
    expect(page.locator("#differ code")).to_have_text("lr")
    shot(page, f"{lang}-53-compare")
    page.goto(f"{live_url}/groups/{group.pk}/")
    expect(page.locator("#runs tbody tr")).to_have_count(2)

    page.goto(f"{live_url}/jobs/{job.pk}/try/")
    page.locator("#try-card input[type=file]").set_input_files(
        {"name": "one.png", "mimeType": "image/png", "buffer": _digit_png()}
    )
    expect(page.locator("#try-card .try-bars .bar-row")).to_have_count(5, timeout=30_000)
    shot(page, f"{lang}-54-try-page")
