"""Personas and factories shared by every test.

The class `course` has teacher, ta, alice and bob; `other_course` has other_teacher and carol.
"""

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from webapp.accounts.actions import issue_token
from webapp.accounts.models import Course, Membership, Role, User

PASSWORD = "correct-horse-battery"
PERSONAS = ["anon", "alice", "bob", "carol", "ta", "teacher", "other_teacher"]


def make_user(username: str, *, teacher: bool = False, **fields) -> User:
    return User.objects.create_user(
        username=username, password=PASSWORD, is_teacher=teacher, **fields
    )


def make_course(owner: User, name: str = "Deep learning 1") -> Course:
    course = Course.objects.create(name=name, created_by=owner)
    Membership.objects.create(course=course, user=owner, role=Role.TEACHER)
    return course


def add_member(course: Course, user: User, role: str = Role.STUDENT) -> Membership:
    return Membership.objects.create(course=course, user=user, role=role)


@dataclass
class World:
    teacher: User
    ta: User
    alice: User
    bob: User
    carol: User
    other_teacher: User
    course: Course
    other_course: Course

    def user(self, persona: str) -> User | None:
        return None if persona == "anon" else getattr(self, persona)

    def bearer(self, persona: str) -> dict[str, str]:
        """Request headers with a fresh API token of the persona (none for anon)."""
        if persona == "anon":
            return {}
        raw, _token = issue_token(self.user(persona))
        return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def client(self, persona: str) -> Client:
        client = Client()
        if persona != "anon":
            client.force_login(self.user(persona))
        return client


def assert_api_error(response, status: int) -> dict:
    """The API's error shape: JSON {"detail": str, "errors": {field: message}} with `status`."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], dict)
    return body


@pytest.fixture
def world(db) -> World:
    teacher = make_user("teacher", teacher=True, display_name="Sato Sensei")
    other_teacher = make_user("other_teacher", teacher=True)
    ta = make_user("ta")
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    course = make_course(teacher, "Deep learning 1")
    add_member(course, ta, Role.TA)
    add_member(course, alice)
    add_member(course, bob)
    other_course = make_course(other_teacher, "Other class")
    add_member(other_course, carol)
    # The students' accounts were made by their class (a roster import or its join code).
    User.objects.filter(pk__in=[alice.pk, bob.pk]).update(created_in_course=course)
    User.objects.filter(pk=carol.pk).update(created_in_course=other_course)
    for student in (alice, bob, carol):
        student.refresh_from_db()
    return World(teacher, ta, alice, bob, carol, other_teacher, course, other_course)


@pytest.fixture(autouse=True)
def _fast_passwords(request, settings):
    """In-process tests hash with MD5 (fast); browser tests keep the real hasher, because the
    live server in another process must verify what the test stored."""
    if "browser" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    """Tests read English unless they ask for Japanese (Accept-Language, override)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Login throttling counts live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker process against the real Redis and the test database."""
    from tests import live

    live.require_redis()
    with django_db_blocker.unblock():
        worker = live.Worker(live.ROOT / "test-artifacts" / "logs" / "celery-worker.log")
    yield worker
    worker.stop()


def pytest_collection_modifyitems(config, items):
    """Run browser tests last: fast failures first, and Playwright's event loop after the rest."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def pytest_configure(config):
    # pycocotools 2.0.11 decodes masks through numpy's pre-2.0 `__array__` protocol: one
    # DeprecationWarning per mask decoded (tens of thousands in a run), none of them ours.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    )


def ready_dataset(
    course: Course,
    owner: User,
    *,
    kind: str = "detection",
    name: str = "",
    images: int = 3,
    visibility: str = "private",
    keypoints: tuple = (),
    skeleton: tuple = (),
    box_area: float = 400.0,
):
    """A ready dataset at version 1 made row by row (no image files): classes cat (0) and dog
    (1), `images` 100×80 images; the first one labelled cat (classification) or holding one
    cat box [10, 10, 20, 20] (other kinds)."""
    from webapp.datasets.models import Annotation, Category, Dataset, Item, StoredImage, Version

    dataset = Dataset.objects.create(
        course=course, owner=owner, name=name or f"{kind} {owner.username}", kind=kind,
        visibility=visibility, status="ready", head=1,
    )  # fmt: skip
    for index, category in enumerate(("cat", "dog")):
        Category.objects.create(
            dataset=dataset, index=index, name=category, valid_from=1,
            keypoints=list(keypoints), skeleton=[list(pair) for pair in skeleton],
        )  # fmt: skip
    for n in range(images):
        image, _ = StoredImage.objects.get_or_create(
            sha256=f"{n:064d}",
            defaults=dict(file=f"f{n}", thumb=f"t{n}", content_type="image/png", width=100,
                          height=80, channels=3, bytes=10, phash="0" * 16),
        )  # fmt: skip
        Item.objects.create(
            dataset=dataset, image=image, original_path=f"img{n}.png", valid_from=1,
            category_index=0 if kind == "classification" and n == 0 else None,
        )  # fmt: skip
    if kind != "classification" and images:
        Annotation.objects.create(
            item=dataset.items.order_by("id").first(), category_index=0, bbox=[10, 10, 20, 20],
            area=box_area,
        )  # fmt: skip
    Version.objects.create(dataset=dataset, number=1, summary="first")
    return dataset
