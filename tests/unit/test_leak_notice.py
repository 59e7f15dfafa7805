"""Hidden test set membership never shows through a student's pages or API answers.

A student who saw a count (or even a notice shown or not) of their images that look like the
hidden test set could delete or upload images one at a time and learn which ones are in it. So
what alice sees must not depend on the test set's images at all, while teachers and TAs see the
pairs. The test swaps which pictures the hidden test set holds (same items, same size, so its
public summary is unchanged) and compares alice's pages and API bodies byte for byte, after each
of her deletions.
"""

import json
import re

import pytest
from django.core.cache import cache

from tests.conftest import PERSONAS
from tests.unit.test_dataset_api import Api, blocks, png, upload_and_ingest, zip_of
from webapp.datasets import dedup, queries
from webapp.datasets.models import Item

pytestmark = pytest.mark.django_db

CSRF = re.compile(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[A-Za-z0-9]+')


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_PROCESSES = 1


def _nudged(seed: int):
    pixels = blocks(seed)
    pixels[10, 10] += 3 if pixels[10, 10] < 250 else -3  # another file, the same picture
    return pixels


class Scene:
    """Alice's dataset with two look-alikes (a, b) of the teacher's hidden test set (t1, t2)."""

    def __init__(self, world):
        self.world = world
        self.test_set = upload_and_ingest(
            world,
            "teacher",
            zip_of(
                {
                    "x/t1.png": png(blocks(101)),
                    "x/t2.png": png(_nudged(102)),
                    "y/t3.png": png(blocks(103)),
                }
            ),
            "classification",
            visibility="hidden_test",
        )
        spare = upload_and_ingest(  # the pictures the test set holds in the control case
            world,
            "teacher",
            zip_of({"s/1.png": png(blocks(301)), "s/2.png": png(blocks(302))}),
            "classification",
        )
        self.mine = upload_and_ingest(
            world,
            "alice",
            zip_of(
                {
                    "cat/a.png": png(blocks(101)),  # the same file as t1
                    "cat/b.png": png(blocks(102)),  # a few pixels away from t2
                    "cat/c.png": png(blocks(21)),
                    "dog/d.png": png(blocks(22)),
                    "dog/e.png": png(blocks(23)),
                }
            ),
            "classification",
        )
        tests = dict(Item.objects.filter(dataset=self.test_set).values_list("original_path", "pk"))
        self.t1, self.t2 = tests["x/t1.png"], tests["x/t2.png"]
        self.look_alike_images = {pk: Item.objects.get(pk=pk).image_id for pk in (self.t1, self.t2)}
        self.other_images = dict(
            zip(
                (self.t1, self.t2),
                Item.objects.filter(dataset=spare).values_list("image_id", flat=True),
                strict=True,
            )
        )
        self.ids = dict(queries.items_at(self.mine).values_list("original_path", "pk"))

    def test_set_holds(self, images: dict[int, int]) -> None:
        """Point the test set's items at other pictures; its rows and summary stay the same."""
        for item_id, image_id in images.items():
            Item.objects.filter(pk=item_id).update(image_id=image_id)
        cache.clear()  # look-alike pairs are cached per version, and no version changed

    def alice_sees(self) -> dict[str, str]:
        client, api = self.world.client("alice"), Api(self.world, "alice")
        dataset, course = self.mine.pk, self.world.course.pk
        pages = [
            f"/datasets/{dataset}/",
            f"/datasets/{dataset}/gallery/",
            f"/courses/{course}/datasets/",
        ] + [
            f"/datasets/{dataset}/items/{pk}/"
            for pk in queries.items_at(self.mine).values_list("pk", flat=True)
        ]
        seen = {}
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, path
            seen[path] = CSRF.sub(r"\1-", response.content.decode())
        for path, params in [
            (f"/api/v1/datasets/{dataset}", {}),
            (f"/api/v1/datasets/{dataset}/items", {}),
            (f"/api/v1/datasets/{dataset}/versions", {}),
            ("/api/v1/datasets", {"course": course}),
        ]:
            response = api.get(path, **params)
            assert response.status_code == 200, path
            seen[path] = json.dumps(response.json(), sort_keys=True, default=str)
        return seen

    def delete(self, path: str) -> None:
        client = self.world.client("alice")
        response = client.post(
            f"/datasets/{self.mine.pk}/edit/", {"op": "delete", "items": [self.ids[path]]}
        )
        assert response.status_code == 302
        client.get(f"/datasets/{self.mine.pk}/")  # shows (and uses up) “Saved as a new version”
        self.mine.refresh_from_db()


def _staff_count(world, scene) -> int:
    return (dedup.leak_summary(world.teacher, scene.mine) or {}).get("count", 0)


def test_deleting_look_alikes_one_at_a_time_never_changes_what_alice_sees(world):
    scene = Scene(world)
    teacher = world.client("teacher")
    steps = [(None, 2), ("cat/a.png", 1), ("cat/b.png", 0), ("cat/c.png", 0)]
    for deleted, still_leaking in steps:
        if deleted:
            scene.delete(deleted)
        scene.test_set_holds(scene.look_alike_images)
        with_look_alikes = scene.alice_sees()
        staff_page = teacher.get(f"/datasets/{scene.mine.pk}/").content.decode()
        assert _staff_count(world, scene) == still_leaking
        scene.test_set_holds(scene.other_images)
        without = scene.alice_sees()
        assert _staff_count(world, scene) == 0

        assert with_look_alikes.keys() == without.keys()
        for path in with_look_alikes:
            assert with_look_alikes[path] == without[path], f"{path} after deleting {deleted}"
        page = with_look_alikes[f"/datasets/{scene.mine.pk}/"]
        assert 'id="test-set-notice"' in page  # the same reminder at every step
        assert 'id="leaks"' not in page and "nearly identical to an image" not in page
        assert f"/datasets/{scene.test_set.pk}/items/" not in "".join(with_look_alikes.values())

        # Meanwhile the teacher sees each remaining pair, with the test image's thumbnail.
        expected = {2: {scene.t1, scene.t2}, 1: {scene.t2}, 0: set()}[still_leaking]
        assert ('id="leaks"' in staff_page) == bool(expected)
        for test_item in (scene.t1, scene.t2):
            thumb = f"/datasets/{scene.test_set.pk}/items/{test_item}/thumb"
            assert (thumb in staff_page) == (test_item in expected)


def test_only_teachers_and_tas_see_which_images_look_like_the_test_set(world):
    scene = Scene(world)
    a = scene.ids["cat/a.png"]
    test_thumb = f"/datasets/{scene.test_set.pk}/items/{scene.t1}/thumb"
    for persona in PERSONAS:
        client = world.client(persona)
        detail = client.get(f"/datasets/{scene.mine.pk}/")
        item = client.get(f"/datasets/{scene.mine.pk}/items/{a}/")
        listing = client.get(f"/courses/{world.course.pk}/datasets/")
        if persona in ("teacher", "ta"):
            page = detail.content.decode()
            assert 'id="leaks"' in page and test_thumb in page
            assert "2 images of this dataset are nearly identical" in page
            assert 'id="item-leaks"' in item.content.decode()
            assert f"/datasets/{scene.test_set.pk}/items/{scene.t1}/" in item.content.decode()
            assert "2 test-set look-alikes" in listing.content.decode()
        elif persona == "alice":
            for response in (detail, item, listing):
                body = response.content.decode()
                assert response.status_code == 200
                assert "leak" not in body.replace("test-set-notice", "")
                assert f"/datasets/{scene.test_set.pk}/items/" not in body
            assert 'id="test-set-notice"' in detail.content.decode()
        else:  # bob, carol, the other teacher: not their dataset; anon: sign in first
            assert detail.status_code in (302, 404) and item.status_code in (302, 404)
            if listing.status_code == 200:  # bob lists the class's datasets, not alice's leaks
                assert "look-alike" not in listing.content.decode()


def test_no_notice_in_a_class_without_a_hidden_test_set(world):
    mine = upload_and_ingest(
        world,
        "alice",
        zip_of({"cat/a.png": png(blocks(1)), "dog/b.png": png(blocks(2))}),
        "classification",
    )
    page = world.client("alice").get(f"/datasets/{mine.pk}/").content.decode()
    assert 'id="test-set-notice"' not in page
