"""A labelling assignment in the browser: a teacher hands four digits to two students (two per
image), one labels them in the studio's grid and the other through the drafts, the teacher reads
the agreement (Cohen's kappa as computed by hand), resolves the disagreement and publishes one
version holding the resolved labels — with screenshots of every labelling page in Japanese and
in English."""

import itertools

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot as full_page_shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import drafts, ingest, samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset, Item, at_version
from webapp.labelling import actions
from webapp.labelling.models import LabellingAssignment

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
IMAGES = 4
TILES = "#grid li.g-tile"
SAVED = "#autosave-state[data-state=saved]"


def shot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-picture
    full_page_shot(page, name)


def _unlabelled_digits(teacher, course) -> Dataset:
    """The teacher's pool: four real digits, their classes (0–9) kept, their labels taken off."""
    dataset = Dataset.objects.create(
        course=course, owner=teacher, name="数字プール", kind="classification"
    )
    result = samples.SAMPLES["digits"].build()
    run = ingest.Ingest(dataset, ingest.Categories(result.categories), processes=1)
    run.run(itertools.islice(result.records, IMAGES))
    dataset_tasks._finish(run, dataset, result.format)
    Item.objects.filter(dataset=dataset).update(category_index=None)
    dataset.refresh_from_db()
    return dataset


def test_two_students_label_the_teacher_reads_kappa_resolves_and_publishes(live_url, new_page):
    teacher = make_user("labt", teacher=True, display_name="佐藤先生")
    course = make_course(teacher, "深層学習 ラベル付け")
    alice = make_user("laba", display_name="山田花子")
    bob = make_user("labb", display_name="鈴木太郎")
    add_member(course, alice)
    add_member(course, bob)
    dataset = _unlabelled_digits(teacher, course)
    a, b, c, d = [str(u) for u in dataset.items.order_by("id").values_list("uid", flat=True)]

    # The teacher (Japanese) opens the form from the class page and hands the pool out.
    page = new_page("ja")
    sign_in(page, live_url, "labt")
    page.goto(f"{live_url}/courses/{course.pk}/")
    page.locator("#new-labelling").click()
    page.fill("#id_title", "数字のラベル付け")
    page.fill("#id_instructions", "数字を見て、そのクラスを選んでください。")
    page.select_option("#id_dataset", str(dataset.pk))
    page.select_option("#id_per_image", "2")
    expect(page.locator("#id_everyone")).to_be_checked()
    shot(page, "ja-97-labelling-form")
    page.locator("#labelling-form button[type=submit]").click()
    assignment = LabellingAssignment.objects.get()
    page.wait_for_url(f"{live_url}/labelling/{assignment.pk}/")
    assert assignment.tasks.count() == 2 * IMAGES  # both students get every image
    expect(page.locator("#fig-images")).to_have_text(str(IMAGES))

    # alice (Japanese) finds it on the class page and labels in the grid: 0 0 1 1.
    student = new_page("ja")
    sign_in(student, live_url, "laba")
    student.goto(f"{live_url}/courses/{course.pk}/")
    panel = student.locator("#labelling-panel")
    expect(panel).to_contain_text("数字のラベル付け")
    expect(panel.locator(".progress-count")).to_have_text(f"0 / {IMAGES}")
    shot(student, "ja-97-labelling-course-panel")
    panel.get_by_role("link", name="ラベルを付ける").click()
    expect(student.locator("#grid[data-ready=true]")).to_have_count(1)
    expect(student.locator(TILES)).to_have_count(IMAGES)
    student.locator(TILES).nth(0).click()
    student.locator(TILES).nth(1).click(modifiers=["Shift"])
    student.keyboard.press("1")  # the first class, "0"
    student.locator(TILES).nth(2).click()
    student.locator(TILES).nth(3).click(modifiers=["Shift"])
    student.keyboard.press("2")  # the second class, "1"
    expect(student.locator(SAVED)).to_have_count(1, timeout=10_000)
    assert drafts.labels_of(drafts.draft_of(dataset, alice), [a, b, c, d]) == {
        a: 0,
        b: 0,
        c: 1,
        d: 1,
    }
    student.goto(f"{live_url}/labelling/{assignment.pk}/")
    expect(student.locator("#my-images tbody tr")).to_have_count(IMAGES)
    shot(student, "ja-97-labelling-mine")
    student.locator("#mark-all-done").click()
    expect(student.locator("#my-progress .progress-count")).to_have_text(f"{IMAGES} / {IMAGES}")

    # bob labels through the drafts (what the studio's API does): 0 1 1 1, and is done.
    answer = drafts.apply(
        dataset,
        bob,
        [
            {"op": "label", "item": uid, "category": k}
            for uid, k in ((a, 0), (b, 1), (c, 1), (d, 1))
        ],
    )
    assert not answer["refused"]
    actions.mark_done(assignment, bob)

    # The teacher reads the agreement. By hand: p_o = 3/4 (they differ on image b only);
    # alice gave "0" twice and "1" twice, bob "0" once and "1" three times:
    # p_e = (2·1 + 2·3) / 4² = 0.5; Cohen's κ = (0.75 − 0.5) / (1 − 0.5) = 0.500.
    page.goto(f"{live_url}/labelling/{assignment.pk}/")
    expect(page.locator("#kappa-cohen")).to_have_text("0.500")
    expect(page.locator("#fig-observed")).to_have_text("0.750")
    expect(page.locator("#fig-compared")).to_have_text(str(IMAGES))
    expect(page.locator("#disagreements li")).to_have_count(1)
    expect(page.locator("#disagreements li")).to_contain_text("山田花子: 0")
    expect(page.locator("#disagreements li")).to_contain_text("鈴木太郎: 1")
    expect(page.locator("#student-progress .progress-count")).to_have_text(
        [f"{IMAGES} / {IMAGES}"] * 2
    )
    shot(page, "ja-97-labelling-overview")

    # It resolves the one disagreement with alice's label and publishes.
    page.locator("#disagreements li a").click()
    page.wait_for_url(f"{live_url}/labelling/{assignment.pk}/images/{b}/")
    expect(page.locator(".lab-version")).to_have_count(2)
    shot(page, "ja-97-labelling-resolve")
    page.locator(f'.lab-version[data-student="{alice.pk}"] button').click()
    page.wait_for_url(f"{live_url}/labelling/{assignment.pk}/?show=disagree")
    expect(page.locator("#disagreements li")).to_have_count(0)
    page.locator("#publish-button").click()
    expect(page.locator("#published")).to_have_text("v2 として公開済み")
    dataset.refresh_from_db()
    assert dataset.head == 2
    labels = dict(
        Item.objects.filter(at_version(2), dataset=dataset).values_list("uid", "category_index")
    )
    assert {str(k): v for k, v in labels.items()} == {a: 0, b: 0, c: 1, d: 1}
    before = Item.objects.filter(at_version(1), dataset=dataset).values_list(
        "category_index", flat=True
    )
    assert set(before) == {None}  # version 1 as it was

    # The same pages in English: the teacher's and bob's.
    english = new_page("en")
    sign_in(english, live_url, "labt")
    english.goto(f"{live_url}/labelling/{assignment.pk}/")
    expect(english.locator("#kappa-cohen")).to_have_text("0.500")
    expect(english.locator("#published")).to_have_text("published as v2")
    shot(english, "en-97-labelling-overview")
    english.goto(f"{live_url}/labelling/{assignment.pk}/images/{b}/")
    expect(english.locator(f'.lab-version[data-student="{alice.pk}"]')).to_contain_text("Chosen")
    shot(english, "en-97-labelling-resolve")
    english.goto(f"{live_url}/courses/{course.pk}/labelling/new/")
    shot(english, "en-97-labelling-form")
    english.goto(f"{live_url}/courses/{course.pk}/labelling/")
    expect(english.locator("#labelling-all tbody tr")).to_have_count(1)
    shot(english, "en-97-labelling-list")
    page.goto(f"{live_url}/courses/{course.pk}/labelling/")
    shot(page, "ja-97-labelling-list")

    bob_page = new_page("en")
    sign_in(bob_page, live_url, "labb")
    bob_page.goto(f"{live_url}/courses/{course.pk}/")
    expect(bob_page.locator("#labelling-panel .progress-count")).to_have_text(
        f"{IMAGES} / {IMAGES}"
    )
    shot(bob_page, "en-97-labelling-course-panel")
    bob_page.goto(f"{live_url}/labelling/{assignment.pk}/")
    expect(bob_page.locator("#my-images tbody tr")).to_have_count(IMAGES)
    expect(bob_page.locator("#my-images")).not_to_contain_text("山田花子")
    shot(bob_page, "en-97-labelling-mine")


def test_the_resolve_page_draws_each_students_skeleton_side_by_side(live_url, new_page):
    teacher = make_user("labt2", teacher=True)
    course = make_course(teacher, "姿勢のラベル付け")
    students = [make_user("labk1", display_name="山田花子"), make_user("labk2")]
    for student in students:
        add_member(course, student)
    dataset = Dataset.objects.create(course=course, owner=teacher, name="棒人間", kind="keypoints")
    result = samples.SAMPLES["keypoints"].build()
    run = ingest.Ingest(dataset, ingest.Categories(result.categories), processes=1)
    run.run(itertools.islice(result.records, 1))
    dataset_tasks._finish(run, dataset, result.format)
    dataset.refresh_from_db()
    assignment = actions.create_assignment(teacher, course, dataset, title="関節点", per_image=2)
    (item,) = [str(u) for u in dataset.items.values_list("uid", flat=True)]
    (figure,) = drafts.item_view(dataset, teacher, item)["annotations"]
    # The first student keeps the figure as it is; the second moves its head 6 pixels right.
    actions.mark_done(assignment, students[0])
    moved = list(figure["keypoints"])
    moved[0] += 6
    data = {k: figure[k] for k in ("category", "bbox", "keypoints")}
    answer = drafts.apply(
        dataset,
        students[1],
        [{"op": "update", "item": item, "uid": figure["uid"], "revision": figure["revision"],
          "data": {**data, "keypoints": moved}}],
    )  # fmt: skip
    assert not answer["refused"]
    for language in ("ja", "en"):
        page = new_page(language)
        sign_in(page, live_url, "labt2")
        page.goto(f"{live_url}/labelling/{assignment.pk}/images/{item}/")
        expect(page.locator(".lab-version svg")).to_have_count(2)
        expect(page.locator(".lab-version").first.locator("circle")).not_to_have_count(0)
        expect(page.locator(".lab-version").first.locator("line")).not_to_have_count(0)
        expect(page.locator("#image-agreement")).not_to_have_text("—")
        shot(page, f"{language}-97-labelling-resolve-keypoints")
