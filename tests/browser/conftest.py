"""Browser tests: Playwright for Python drives Debian's headless Chromium against daphne."""

import os
import shutil
from pathlib import Path

import pytest

from tests import live

ARTIFACTS = live.ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Browser tests need Debian's chromium; ./manabi test installs it.")
    return path


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker):
    """daphne serving HTTP and websockets on a free port, on the test database."""
    with django_db_blocker.unblock():
        proc, url = live.start_daphne(ARTIFACTS / "logs" / "daphne.log")
    yield url
    live.stop(proc)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in the test thread while it is open
    # (database teardown included); the ORM calls made meanwhile are ordinary sync calls.
    # Module scope: the loop must be gone before other tests use async_to_sync.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def new_page(chromium):
    """Open a page in a fresh browser profile speaking the given language."""
    contexts = []

    def open_page(language: str):
        context = chromium.new_context(
            locale={"ja": "ja-JP", "en": "en-US"}[language],
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
