"""Assignments: who sees and submits what, the limits, scoring, the leaderboard and the CSV."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from tests.conftest import PERSONAS, assert_api_error
from webapp.assignments import actions, scoring
from webapp.assignments.models import Assignment, Submission
from webapp.assignments.text import render_markdown
from webapp.datasets.models import Category, Dataset, Item, StoredImage
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db
CLASSES = ["cat", "dog"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def make_dataset(
    world,
    *,
    owner="teacher",
    visibility="handout",
    classes=CLASSES,
    name="pets",
    kind="classification",
):
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.user(owner),
        name=name,
        kind=kind,
        visibility=visibility,
        status="ready",
        head=1,
    )
    for index, class_name in enumerate(classes):
        Category.objects.create(dataset=dataset, index=index, name=class_name, valid_from=1)
    return dataset


def add_images(dataset, settings, labels: list[int]) -> None:
    """Real 8×8 PNGs on disk: the label's class is bright (1) or dark (0)."""
    root = settings.MEDIA_ROOT / "images"
    root.mkdir(parents=True, exist_ok=True)
    for number, label in enumerate(labels):
        name = f"images/{dataset.pk}-{number}.png"
        Image.new("L", (8, 8), 230 if label else 20).save(settings.MEDIA_ROOT / name)
        image = StoredImage.objects.create(
            sha256=f"{dataset.pk:032d}{number:032d}",
            file=name,
            thumb=name,
            content_type="image/png",
            width=8,
            height=8,
            channels=1,
            bytes=70,
            phash="0" * 16,
        )
        Item.objects.create(
            dataset=dataset, image=image, original_path=name, category_index=label, valid_from=1
        )


def make_job(world, dataset, owner="alice", status="succeeded", **fields) -> Job:
    fields.setdefault("spec", {"model": "logistic", "epochs": 1, "input_size": 8})
    return Job.objects.create(
        course=world.course,
        owner=world.user(owner),
        dataset=dataset,
        dataset_version=1,
        status=status,
        **fields,
    )


def make_assignment(world, **fields) -> Assignment:
    values = {
        "course": world.course,
        "created_by": world.teacher,
        "title": "Pets",
        "description": "Train **well**.",
        "dataset": fields.pop("dataset", None) or make_dataset(world),
        "dataset_version": 1,
        "hidden_test": fields.pop("hidden_test", None)
        or make_dataset(world, visibility="hidden_test", name="secret pets"),
        "deadline": timezone.now() + timedelta(days=7),
        "daily_limit": 3,
    }
    values.update(fields)
    return Assignment.objects.create(**values)


def api_submit(world, persona, assignment, job):
    return Client().post(
        f"/api/v1/assignments/{assignment.pk}/submissions",
        {"job": job.pk},
        content_type="application/json",
        **world.bearer(persona),
    )


def page(world, persona, url):
    return world.client(persona).get(url)


# --- who sees what ------------------------------------------------------------------------

MEMBERS = {
    "anon": 302,
    "alice": 200,
    "bob": 200,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}
TEACHERS = {**MEMBERS, "alice": 403, "bob": 403, "ta": 403}
STAFF = {**MEMBERS, "alice": 404, "bob": 404}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_opens_the_assignment_pages(world, persona):
    assignment = make_assignment(world)
    course = world.course.pk
    urls = {
        f"/courses/{course}/assignments/": MEMBERS,
        f"/assignments/{assignment.pk}/": MEMBERS,
        f"/assignments/{assignment.pk}/live/": MEMBERS,
        f"/courses/{course}/assignments/new/": TEACHERS,
        f"/assignments/{assignment.pk}/edit/": TEACHERS,
        f"/assignments/{assignment.pk}/marks.csv": STAFF,
    }
    for url, expected in urls.items():
        assert page(world, persona, url).status_code == expected[persona], url


API_MEMBERS = {**MEMBERS, "anon": 401}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_lists_assignments_and_reads_the_leaderboard(world, persona):
    assignment = make_assignment(world)
    client, headers = Client(), world.bearer(persona)
    listed = client.get(f"/api/v1/courses/{world.course.pk}/assignments", **headers)
    board = client.get(f"/api/v1/assignments/{assignment.pk}/leaderboard", **headers)
    assert listed.status_code == board.status_code == API_MEMBERS[persona]
    if listed.status_code == 200:
        (item,) = listed.json()
        assert item["title"] == "Pets" and "<strong>well</strong>" in item["description_html"]
        assert ("hidden_test" in item) == (persona in ("ta", "teacher"))
    else:
        assert_api_error(listed, API_MEMBERS[persona])


SUBMIT = {
    "anon": 401,
    "alice": 201,
    "bob": 400,  # alice's run is not his: as if it did not exist
    "carol": 404,
    "ta": 403,
    "teacher": 403,
    "other_teacher": 404,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_runs_owner_submits_it(world, persona):
    assignment = make_assignment(world)
    job = make_job(world, assignment.dataset)
    response = api_submit(world, persona, assignment, job)
    if SUBMIT[persona] == 201:
        assert response.status_code == 201
        assert response.json()["status"] == "queued"
    else:
        body = assert_api_error(response, SUBMIT[persona])
        assert Submission.objects.count() == 0
        if SUBMIT[persona] == 400:
            assert "job" in body["errors"]


SEE_SUBMISSION = {**API_MEMBERS, "bob": 404}


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_submission_is_seen_by_its_student_and_the_staff(world, persona):
    assignment = make_assignment(world)
    sid = api_submit(world, "alice", assignment, make_job(world, assignment.dataset)).json()["id"]
    response = Client().get(
        f"/api/v1/assignments/{assignment.pk}/submissions/{sid}", **world.bearer(persona)
    )
    assert response.status_code == SEE_SUBMISSION[persona]
    if response.status_code == 200:
        assert response.json()["status"] == "queued" and response.json()["score"] is None


def test_students_never_see_the_hidden_test_set(world):
    assignment = make_assignment(world)
    hidden = assignment.hidden_test
    student = page(world, "alice", f"/assignments/{assignment.pk}/").content.decode()
    teacher = page(world, "teacher", f"/assignments/{assignment.pk}/").content.decode()
    assert hidden.name not in student and f"/datasets/{hidden.pk}/" not in student
    assert "hidden test set held by the teacher" in student
    assert hidden.name in teacher and f"/datasets/{hidden.pk}/" in teacher


def test_students_see_only_their_own_submissions_and_anonymous_ranks(world):
    assignment = make_assignment(world)
    world.alice.display_name = "Alice Liddell"
    world.alice.save()
    job = make_job(world, assignment.dataset)
    Submission.objects.create(
        assignment=assignment,
        student=world.alice,
        job=job,
        hidden_version=1,
        status="scored",
        score=0.9,
    )
    bob = page(world, "bob", f"/assignments/{assignment.pk}/live/").content.decode()
    alice = page(world, "alice", f"/assignments/{assignment.pk}/live/").content.decode()
    ta = page(world, "ta", f"/assignments/{assignment.pk}/live/").content.decode()
    assert "Alice Liddell" not in bob and f"/jobs/{job.pk}/" not in bob
    assert "a classmate" in bob and "90.00%" in bob
    assert "Alice Liddell" in alice and f"/jobs/{job.pk}/" in alice
    assert "Alice Liddell" in ta and 'id="marks"' in ta
    board = (
        Client()
        .get(f"/api/v1/assignments/{assignment.pk}/leaderboard", **world.bearer("bob"))
        .json()
    )
    assert board["entries"] == [
        {
            "rank": 1,
            "name": None,
            "username": None,
            "you": False,
            "score": 0.9,
            "submitted_at": board["entries"][0]["submitted_at"],
        }
    ]
    assignment.show_names = True
    assignment.save()
    assert (
        "Alice Liddell"
        in page(world, "bob", f"/assignments/{assignment.pk}/live/").content.decode()
    )


# --- refusals -----------------------------------------------------------------------------


def test_the_daily_limit_is_kept_and_failed_scorings_do_not_count(world):
    assignment = make_assignment(world, daily_limit=2)
    jobs = [make_job(world, assignment.dataset) for _ in range(4)]
    assert api_submit(world, "alice", assignment, jobs[0]).status_code == 201
    assert api_submit(world, "alice", assignment, jobs[1]).status_code == 201
    body = assert_api_error(api_submit(world, "alice", assignment, jobs[2]), 429)
    assert "today's 2 submissions" in body["detail"] and "midnight" in body["detail"]
    Submission.objects.filter(job=jobs[1]).update(status="failed")
    assert api_submit(world, "alice", assignment, jobs[2]).status_code == 201
    Submission.objects.update(created_at=timezone.now() - timedelta(days=1))
    assert api_submit(world, "alice", assignment, jobs[3]).status_code == 201
    # bob's allowance is his own
    assert (
        api_submit(world, "bob", assignment, make_job(world, assignment.dataset, "bob")).status_code
        == 201
    )


def test_no_submission_after_the_deadline(world):
    assignment = make_assignment(world, deadline=timezone.now() - timedelta(minutes=1))
    body = assert_api_error(
        api_submit(world, "alice", assignment, make_job(world, assignment.dataset)), 403
    )
    assert "deadline" in body["detail"]
    html = page(world, "alice", f"/assignments/{assignment.pk}/").content.decode()
    assert "submissions are closed" in html and 'id="submit-form"' not in html


def test_runs_that_do_not_fit_are_refused_with_the_reason(world):
    assignment = make_assignment(world)
    other = make_dataset(world, owner="alice", visibility="private", name="my own pets")
    cases = [
        (make_job(world, other), 400, "trained on “my own pets”"),
        (make_job(world, assignment.dataset, status="running"), 400, "not finished successfully"),
        (
            make_job(world, assignment.dataset, result={"folds": [0.5, 0.6]}),
            400,
            "one model per fold",
        ),
    ]
    for job, status, words in cases:
        body = assert_api_error(api_submit(world, "alice", assignment, job), status)
        assert words in body["detail"] and "job" in body["errors"]
    good = make_job(world, assignment.dataset)
    assert api_submit(world, "alice", assignment, good).status_code == 201
    body = assert_api_error(api_submit(world, "alice", assignment, good), 409)
    assert "already submitted" in body["detail"]


def test_the_submit_form_names_the_refusal(world):
    assignment = make_assignment(world, daily_limit=1)
    first, second = make_job(world, assignment.dataset), make_job(world, assignment.dataset)
    client = world.client("alice")
    url = f"/assignments/{assignment.pk}/submit/"
    assert client.post(url, {"job": first.pk}).status_code == 302
    html = client.post(url, {"job": second.pk}, follow=True).content.decode()
    assert "today&#x27;s 1 submissions" in html or "today's 1 submissions" in html
    assert Submission.objects.count() == 1


# --- the teacher's form -------------------------------------------------------------------


def _form(dataset, hidden, **fields):
    return {
        "title": "Digits",
        "description": "# Task\n\nBeat **90%**.",
        "dataset": dataset.pk,
        "dataset_version": "",
        "hidden_test": hidden.pk,
        "metric": "macro_f1",
        "deadline": (timezone.localtime() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "daily_limit": 2,
        **fields,
    }


def test_teacher_creates_an_assignment_on_the_current_version(world):
    dataset = make_dataset(world)
    hidden = make_dataset(world, visibility="hidden_test", name="secret")
    url = f"/courses/{world.course.pk}/assignments/new/"
    response = world.client("teacher").post(url, _form(dataset, hidden))
    assignment = Assignment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/assignments/{assignment.pk}/"
    assert assignment.dataset_version == 1 and assignment.metric == "macro_f1"
    assert assignment.created_by == world.teacher


def test_the_form_refuses_a_test_set_that_is_not_hidden_or_has_unknown_classes(world):
    dataset = make_dataset(world)
    shared = make_dataset(world, visibility="shared", name="shared")
    odd = make_dataset(world, visibility="hidden_test", name="odd", classes=["cat", "bird"])
    client = world.client("teacher")
    url = f"/courses/{world.course.pk}/assignments/new/"
    html = client.post(url, _form(dataset, shared)).content.decode()
    assert "Select a valid choice" in html  # only hidden test sets are offered
    html = client.post(url, _form(dataset, odd)).content.decode()
    assert "bird" in html and "Students could never get those images right" in html
    html = client.post(url, _form(dataset, odd, dataset_version=5)).content.decode()
    assert "versions 1 to 1" in html
    assert not Assignment.objects.exists()


def test_markdown_is_rendered_and_sanitised(world):
    html = str(
        render_markdown(
            "# Title\n\n<script>alert('x')</script>\n\n[ok](https://example.org) "
            "[bad](javascript:alert(1)) <img src=x onerror=alert(1)>"
        )
    )
    assert "<h1>Title</h1>" in html
    assert "<script" not in html and "alert('x')" not in html
    assert "javascript:" not in html and "onerror" not in html
    assert 'href="https://example.org" rel="noopener noreferrer"' in html
    assignment = make_assignment(world, description="<script>steal()</script>**hi**")
    detail = page(world, "alice", f"/assignments/{assignment.pk}/").content.decode()
    assert "steal()" not in detail and "<strong>hi</strong>" in detail


# --- the leaderboard and the CSV ----------------------------------------------------------


def _scored(assignment, student, score, minutes_ago):
    job = Job.objects.create(
        course=assignment.course,
        owner=student,
        dataset=assignment.dataset,
        dataset_version=1,
        spec={},
        status="succeeded",
    )
    return Submission.objects.create(
        assignment=assignment,
        student=student,
        job=job,
        hidden_version=1,
        status="scored",
        score=score,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_leaderboard_takes_each_students_best_and_breaks_ties_by_time(world):
    assignment = make_assignment(world)
    _scored(assignment, world.alice, 0.8, minutes_ago=30)
    _scored(assignment, world.alice, 0.9, minutes_ago=10)
    _scored(assignment, world.bob, 0.9, minutes_ago=20)  # same best, reached earlier
    board = (
        Client()
        .get(f"/api/v1/assignments/{assignment.pk}/leaderboard", **world.bearer("teacher"))
        .json()
    )
    assert [(e["rank"], e["username"], e["score"]) for e in board["entries"]] == [
        (1, "bob", 0.9),
        (2, "alice", 0.9),
    ]


def test_marks_export_is_utf8_with_bom_for_excel(world):
    world.alice.display_name = "山田 花子"
    world.alice.save()
    world.bob.display_name = "=HYPERLINK(1)"
    world.bob.save()
    assignment = make_assignment(world)
    _scored(assignment, world.alice, 0.75, minutes_ago=5)
    _scored(assignment, world.alice, 0.5, minutes_ago=3)
    response = page(world, "ta", f"/assignments/{assignment.pk}/marks.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["username", "name", "best score", "submissions", "last submitted"]
    by_user = {row[0]: row for row in rows[1:]}
    assert set(by_user) == {"alice", "bob"}  # students only, even those without a submission
    assert by_user["alice"][1:4] == ["山田 花子", "0.7500", "2"]
    assert by_user["alice"][4].count(":") == 1
    assert by_user["bob"][1:] == ["'=HYPERLINK(1)", "", "0", ""]  # never a formula in Excel


# --- scoring ------------------------------------------------------------------------------


def _saved_model(job, classes, settings, bright_class: int):
    """A logistic model that says `classes[bright_class]` for bright images, the other for dark."""
    import torch

    from trainer import export, registry

    model = registry.build("logistic", num_classes=len(classes), in_channels=1, input_size=8)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        weight = registry.head(model).weight  # (classes, 64)
        weight[bright_class] = 1.0
        weight[1 - bright_class] = -1.0
    out = settings.MEDIA_ROOT / "jobs" / str(job.pk)
    out.mkdir(parents=True)
    export.save_safetensors(model, out / "model.safetensors")
    card = {
        "classes": classes,
        "input": {"size": [8, 8], "channels": 1, "mean": [0.5], "std": [0.25]},
        "spec": {"model": "logistic"},
    }
    (out / "model_card.json").write_text(json.dumps(card))


def _submission(world, settings, model_classes, bright_class=1, hidden_classes=CLASSES):
    hidden = make_dataset(world, visibility="hidden_test", name="secret", classes=hidden_classes)
    add_images(hidden, settings, [0, 1, 1, 0, 1])
    assignment = make_assignment(world, hidden_test=hidden)
    job = make_job(world, assignment.dataset)
    _saved_model(job, model_classes, settings, bright_class)
    return actions.submit(world.alice, assignment, job)


def test_scoring_matches_classes_by_name_whatever_their_order(world, settings):
    # The model lists dog first: its output 0 is "dog", and bright images are dogs (label 1).
    submission = _submission(world, settings, ["Dog", "cat"], bright_class=0)
    assert scoring.score_submission(submission.pk) == "scored"
    submission.refresh_from_db()
    assert submission.score == 1.0 and submission.details["images"] == 5


def test_scoring_counts_wrong_answers(world, settings):
    submission = _submission(world, settings, ["cat", "dog"], bright_class=0)  # all backwards
    scoring.score_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == "scored" and submission.score == 0.0


def test_a_class_the_model_never_learnt_is_explained_to_the_student(world, settings):
    submission = _submission(world, settings, ["cat", "fox"])
    assert scoring.score_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.score is None
    assert "does not know the class(es) “dog”" in submission.error
    html = page(world, "alice", f"/assignments/{submission.assignment_id}/live/").content.decode()
    assert "does not know the class(es) “dog”" in html
    ja = world.client("alice").get(
        f"/assignments/{submission.assignment_id}/live/", HTTP_ACCEPT_LANGUAGE="ja"
    )
    assert ja.status_code == 200


def test_missing_model_files_fail_with_a_reason(world, settings):
    hidden = make_dataset(world, visibility="hidden_test", name="secret")
    add_images(hidden, settings, [0, 1])
    assignment = make_assignment(world, hidden_test=hidden)
    submission = actions.submit(world.alice, assignment, make_job(world, assignment.dataset))
    assert scoring.score_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert "cannot be loaded" in submission.error and "model_card.json" in submission.error


def test_class_names_match_across_case_and_full_width_forms():
    from trainer.scoring import ClassMismatch, class_map

    assert class_map(["ＣＡＴ ", "bird", "dog"], ["dog", "cat"]) == [1, -1, 0]
    with pytest.raises(ClassMismatch) as refused:
        class_map(["cat"], ["cat", "犬"])
    assert refused.value.missing == ["犬"]


def test_macro_f1_agrees_with_scikit_learn_and_never_credits_unknown_classes():
    import torch
    from sklearn.metrics import f1_score

    from trainer.scoring import macro_f1

    truth = [0, 0, 1, 1, 2, 2, 2]
    predicted = [0, 1, 1, -1, 2, 2, 0]  # -1: a class the test set does not have
    expected = f1_score(truth, predicted, labels=[0, 1, 2], average="macro")
    assert macro_f1(torch.tensor(predicted), torch.tensor(truth)) == pytest.approx(expected)


# --- detection assignments ------------------------------------------------------------------

SHAPES = ["circle", "square"]


def _detection_assignment(world, **fields):
    dataset = make_dataset(world, name="shapes", classes=SHAPES, kind="detection")
    hidden = make_dataset(
        world, visibility="hidden_test", name="secret shapes", classes=SHAPES, kind="detection"
    )
    return make_assignment(world, dataset=dataset, hidden_test=hidden, metric="map50", **fields)


def add_boxes(dataset, settings, boxes: list[list[tuple[int, list[float]]]]) -> None:
    """One 32×32 PNG per entry, each with its (category index, [x, y, w, h]) objects."""
    from webapp.datasets.models import Annotation

    add_images(dataset, settings, [0] * len(boxes))
    for item, objects in zip(
        Item.objects.filter(dataset=dataset).order_by("pk"), boxes, strict=True
    ):
        item.category_index = None  # detection items carry objects, not one label
        item.save()
        for category, box in objects:
            Annotation.objects.create(item=item, category_index=category, bbox=box)


def test_a_detection_assignment_is_scored_by_map50_and_the_form_says_so(world):
    dataset = make_dataset(world, name="shapes", classes=SHAPES, kind="detection")
    hidden = make_dataset(
        world, visibility="hidden_test", name="secret", classes=SHAPES, kind="detection"
    )
    client = world.client("teacher")
    url = f"/courses/{world.course.pk}/assignments/new/"
    html = client.post(url, _form(dataset, hidden, metric="accuracy")).content.decode()
    assert "An assignment on a dataset for object detection is scored by mAP@0.5." in html
    assert not Assignment.objects.exists()
    assert client.post(url, _form(dataset, hidden, metric="map50")).status_code == 302
    assert Assignment.objects.get().metric == "map50"
    classification = make_dataset(world, name="pets 2")
    hidden_pets = make_dataset(world, visibility="hidden_test", name="secret pets 2")
    html = client.post(url, _form(classification, hidden_pets, metric="map50")).content.decode()
    assert "is scored by Accuracy, Macro-averaged F1" in html
    html = client.post(url, _form(dataset, hidden_pets, metric="map50")).content.decode()
    assert "of another kind than the dataset" in html


def test_a_run_of_another_kind_is_refused_with_a_clear_message(world):
    detection = _detection_assignment(world)
    classification = make_assignment(world)
    classifier = make_job(world, classification.dataset)
    detector = make_job(world, detection.dataset, spec={"kind": "detection", "epochs": 1})
    body = assert_api_error(api_submit(world, "alice", detection, classifier), 400)
    assert body["detail"] == (
        "This run is a model for classification; this assignment scores models for object "
        "detection. Submit a run trained on “shapes”."
    )
    body = assert_api_error(api_submit(world, "alice", classification, detector), 400)
    assert (
        "a model for object detection; this assignment scores models for classification"
        in (body["detail"])
    )
    assert not Submission.objects.exists()
    assert api_submit(world, "alice", detection, detector).status_code == 201


def test_a_detection_submission_is_scored_by_the_trainers_detection_scorer(
    world, settings, monkeypatch
):
    from trainer.loops import detection as detection_loop

    assignment = _detection_assignment(world)
    add_boxes(
        assignment.hidden_test,
        settings,
        [[(0, [1, 2, 10, 12])], [(1, [0, 0, 8, 8]), (0, [4, 4, 20, 20])], []],
    )
    seen = {}

    class FakeScore:
        def to_dict(self):
            return {"map50": 0.625, "map": 0.41, "images": 3, "objects": 3}

    def fake_score(model_dir, items, classes, keypoints=None):
        seen.update(model_dir=model_dir, items=items, classes=classes, keypoints=keypoints)
        return FakeScore()

    monkeypatch.setattr(detection_loop, "score", fake_score)  # trainer.inference calls it
    job = make_job(world, assignment.dataset, spec={"kind": "detection", "epochs": 1})
    submission = actions.submit(world.alice, assignment, job)
    assert scoring.score_submission(submission.pk) == "scored"
    submission.refresh_from_db()
    assert submission.score == 0.625 and submission.details["map"] == 0.41
    assert str(seen["model_dir"]).endswith(f"jobs/{job.pk}") and seen["classes"] == SHAPES
    assert seen["keypoints"] is None
    objects = [[(a.category, a.bbox) for a in item.annotations] for item in seen["items"]]
    assert objects == [[(0, [1, 2, 10, 12])], [(1, [0, 0, 8, 8]), (0, [4, 4, 20, 20])], []]
    assert all(item.path.endswith(".png") and item.label is None for item in seen["items"])
    # The leaderboard and the marks say what the score is.
    html = page(world, "teacher", f"/assignments/{assignment.pk}/").content.decode()
    leaderboard = html.split('id="leaderboard"', 1)[1].split("</section>", 1)[0]
    assert "mAP@0.5" in leaderboard and "62.50%" in leaderboard
    assert "mAP@0.5" in html.split('id="marks"', 1)[1]
    mine = page(world, "alice", f"/assignments/{assignment.pk}/live/").content.decode()
    assert "mAP@0.5" in mine.split('id="my-submissions"', 1)[1].split("</section>", 1)[0]


def test_a_detection_run_is_offered_with_its_map50(world):
    assignment = _detection_assignment(world)
    make_job(
        world,
        assignment.dataset,
        spec={"kind": "detection", "model": "centernet_tiny", "epochs": 1},
        metrics={"test_map50": 0.5, "val_map50": 0.75},
    )
    html = page(world, "alice", f"/assignments/{assignment.pk}/").content.decode()
    assert "centernet_tiny · mAP@0.5 50.0% · v1" in html
