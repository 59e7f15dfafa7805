"""Browser tests: Playwright for Python drives Debian's headless Chromium against daphne.

Every page a test looks at goes through `shot()`, which also runs axe-core on it: a serious or
critical accessibility violation fails the test (after it has run to its end, so that one run
lists every page's violations), and each page's violations are written to test-artifacts/axe/.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests import live

ARTIFACTS = live.ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_RESULTS = ARTIFACTS / "axe"
# Vendored for the tests only (static/vendor/README.md): no page of the product loads it.
AXE_SCRIPT = live.ROOT / "static" / "vendor" / "axe-core-4.14.1" / "axe.min.js"
AXE_BLOCKING = ("serious", "critical")
AXE_TARGETS_SHOWN = 3
_axe_failures: list[str] = []  # the running test's serious and critical violations, by page
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a test that passed otherwise when axe found serious or critical violations."""
    _axe_failures.clear()
    result = yield
    if _axe_failures:
        failures = "\n".join(_axe_failures)
        _axe_failures.clear()
        pytest.fail(f"Accessibility (axe-core), serious or critical:\n{failures}", pytrace=False)
    return result


def check_accessibility(page, name: str) -> list[dict]:
    """Run axe-core on the page, save its violations as test-artifacts/axe/<name>.json."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    violations = result["violations"]
    AXE_RESULTS.mkdir(parents=True, exist_ok=True)
    (AXE_RESULTS / f"{name}.json").write_text(
        json.dumps({"url": page.url, "violations": violations}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    for violation in violations:
        if violation["impact"] in AXE_BLOCKING:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
            more = len(targets) - AXE_TARGETS_SHOWN
            _axe_failures.append(
                f"  {name} ({page.url}): {violation['id']} [{violation['impact']}] "
                f"{violation['help']}: {', '.join(targets[:AXE_TARGETS_SHOWN])}"
                + (f" and {more} more" if more > 0 else "")
            )
    return violations


def shot(page, name: str) -> Path:
    """Check the page with axe-core and save a full-page screenshot under test-artifacts/."""
    check_accessibility(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
