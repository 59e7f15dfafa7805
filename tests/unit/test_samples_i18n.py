"""The built-in samples speak the interface language: the list, a copy's name, its page.

A copy stores the name it was given when it was made (in its copier's language); until somebody
renames it, pages show the sample's name in the reader's language. The sample it came from is
named on its page in the reader's language.
"""

import json

import pytest
from django.utils.html import escape

from webapp.datasets.models import Dataset
from webapp.datasets.samples import SAMPLES

pytestmark = pytest.mark.django_db

LANGUAGES = {"en": "en-US,en;q=0.9", "ja": "ja,en;q=0.5"}
OTHER = {"en": "ja", "ja": "en"}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_sample_list_speaks_the_interface_language(world, lang):
    page = world.client("alice").get(
        f"/courses/{world.course.pk}/datasets/", HTTP_ACCEPT_LANGUAGE=LANGUAGES[lang]
    )
    body = page.content.decode()
    assert f'<html lang="{lang}">' in body
    for sample in SAMPLES.values():
        assert f"<strong>{escape(sample.title[lang])}</strong>" in body
        assert escape(sample.description[lang]) in body
        assert escape(sample.title[OTHER[lang]]) not in body
        assert escape(sample.description[OTHER[lang]]) not in body
    kinds = {"en": "Object detection", "ja": "物体検出"}  # so a student finds the detector's data
    assert f'<span class="badge sample-kind">{kinds[lang]}</span>' in body


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_copy_is_named_in_its_copiers_language(world, lang):
    client = world.client("alice")
    response = client.post(
        f"/courses/{world.course.pk}/datasets/sample/",
        {"sample": "digits"},
        HTTP_ACCEPT_LANGUAGE=LANGUAGES[lang],
    )
    assert response.status_code == 302
    assert Dataset.objects.get(owner=world.alice).name == SAMPLES["digits"].title[lang]

    headers = world.bearer("bob")
    api = client.post(
        "/api/v1/datasets/samples",
        json.dumps({"course": world.course.pk, "sample": "faces"}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE=LANGUAGES[lang],
        **headers,
    )
    assert api.status_code == 202, api.content
    assert Dataset.objects.get(pk=api.json()["id"]).name == SAMPLES["faces"].title[lang]


@pytest.mark.parametrize("copied_in", ["en", "ja"])
def test_a_copys_page_names_its_sample_in_the_readers_language(world, copied_in):
    world.client("alice").post(
        f"/courses/{world.course.pk}/datasets/sample/",
        {"sample": "digits"},
        HTTP_ACCEPT_LANGUAGE=LANGUAGES[copied_in],
    )
    dataset = Dataset.objects.get(owner=world.alice)
    digits = SAMPLES["digits"]
    for reader in ("en", "ja"):
        body = (
            world.client("alice")
            .get(f"/datasets/{dataset.pk}/", HTTP_ACCEPT_LANGUAGE=LANGUAGES[reader])
            .content.decode()
        )
        source = body[body.index('id="sample-source"') :].split("</p>")[0]
        assert escape(digits.title[reader]) in source
        assert escape(digits.description[reader]) in source
        assert escape(digits.title[OTHER[reader]]) not in source
        assert ("Copied from the built-in sample" in source) == (reader == "en")


def test_a_dataset_that_is_no_copy_names_no_sample(world):
    dataset = Dataset.objects.create(
        course=world.course, owner=world.alice, name="mine", kind="classification"
    )
    body = world.client("alice").get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="sample-source"' not in body


def test_sample_text_falls_back_to_english_for_other_languages():
    digits = SAMPLES["digits"]
    assert digits.in_language("ja-jp")["title"] == digits.title["ja"]
    assert digits.in_language("fr")["title"] == digits.title["en"]
    assert digits.in_language(None)["description"] == digits.description["en"]


def _h1(body: str) -> str:
    return body[body.index("<h1>") : body.index("</h1>")]


@pytest.mark.parametrize("copied_in", ["en", "ja"])
def test_an_unrenamed_copy_is_named_in_the_readers_language(world, copied_in):
    """The demo's digits, copied under the Japanese default, read in English for English users."""
    world.client("teacher").post(
        f"/courses/{world.course.pk}/datasets/sample/",
        {"sample": "digits", "visibility": "handout"},
        HTTP_ACCEPT_LANGUAGE=LANGUAGES[copied_in],
    )
    dataset = Dataset.objects.get(owner=world.teacher)
    digits = SAMPLES["digits"]
    for reader in ("en", "ja"):
        client = world.client("teacher")
        headers = {"HTTP_ACCEPT_LANGUAGE": LANGUAGES[reader]}
        page = client.get(f"/datasets/{dataset.pk}/", **headers).content.decode()
        assert escape(digits.title[reader]) in _h1(page)
        assert escape(digits.title[OTHER[reader]]) not in _h1(page)
        listing = client.get(f"/courses/{world.course.pk}/datasets/", **headers).content.decode()
        assert f">{escape(digits.title[reader])}</a>" in listing
        assert f">{escape(digits.title[OTHER[reader]])}</a>" not in listing


def test_a_renamed_copy_keeps_its_own_name_in_every_language(world):
    from webapp.datasets.actions import rename_dataset

    world.client("alice").post(
        f"/courses/{world.course.pk}/datasets/sample/",
        {"sample": "digits"},
        HTTP_ACCEPT_LANGUAGE=LANGUAGES["ja"],
    )
    dataset = Dataset.objects.get(owner=world.alice)
    rename_dataset(dataset, "My digits")
    for reader in ("en", "ja"):
        page = (
            world.client("alice")
            .get(f"/datasets/{dataset.pk}/", HTTP_ACCEPT_LANGUAGE=LANGUAGES[reader])
            .content.decode()
        )
        assert "My digits" in _h1(page)
