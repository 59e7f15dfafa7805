"""Japanese and English: the browser chooses, the header switches, every string is translated."""

from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db
PO_FILE = Path(settings.BASE_DIR) / "locale" / "ja" / "LC_MESSAGES" / "django.po"


def test_language_follows_the_browser():
    ja = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5").content.decode()
    en = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="ja">' in ja and "ログイン" in ja
    assert '<html lang="en">' in en and "Sign in" in en and "ログイン" not in en


def test_header_switch_changes_language_and_stays_on_the_page():
    client = Client()
    response = client.post(
        "/i18n/setlang/",
        {"language": "en", "next": "/accounts/register/"},
        HTTP_ACCEPT_LANGUAGE="ja",
    )
    assert response["Location"] == "/accounts/register/"
    page = client.get("/accounts/register/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "Create my account" in page


def test_every_message_has_a_japanese_translation():
    catalogue = polib.pofile(str(PO_FILE))
    missing = [e.msgid for e in catalogue if not e.obsolete and not e.translated()]
    fuzzy = [e.msgid for e in catalogue if "fuzzy" in e.flags]
    assert missing == [] and fuzzy == []


def test_every_template_string_is_in_the_catalogue():
    """A string added to a template without running makemessages would show in English."""
    import re

    known = {e.msgid for e in polib.pofile(str(PO_FILE))}
    pattern = re.compile(r'{%\s*translate\s+"([^"]+)"')
    missing = []
    for template in (Path(settings.BASE_DIR) / "templates").rglob("*.html"):
        for msgid in pattern.findall(template.read_text()):
            if msgid not in known and msgid.replace("%", "%%") not in known:
                missing.append(f"{template.name}: {msgid}")
    assert missing == []


def test_user_supplied_class_names_are_escaped(world):
    world.course.name = '<script>alert("x")</script>クラス'
    world.course.save()
    page = world.client("alice").get(f"/courses/{world.course.pk}/").content.decode()
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;" in page and "クラス" in page
