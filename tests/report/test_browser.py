"""The report as a person sees it: opened in headless Chromium (Debian's package), with every
request that would leave the machine counted and blocked.

Needs `/usr/bin/chromium` and the `playwright` package (no browser download: Playwright drives
the system Chromium). Under CI (CI=true) a missing browser fails the test; elsewhere it is a
skip that says what to install. A screenshot lands in reports/ for people to look at.
"""

import os
import shutil
from pathlib import Path

import pytest

from .conftest import BROKEN, CORRECT

pytestmark = pytest.mark.xdist_group("report")  # shares the CLI run with test_report.py

INSTALL = "apt-get install -y chromium (Debian's package) and pip install playwright"
SCREENSHOT = Path(__file__).resolve().parents[2] / "reports" / "report-browser.png"


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason}; CI must run the browser test ({INSTALL})")
    pytest.skip(f"{reason}; to run it: {INSTALL}")


def _chromium() -> str | None:
    for candidate in (os.environ.get("PARITY_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    executable = _chromium()
    if executable is None:
        _unavailable("Chromium is not installed (/usr/bin/chromium)")
    with sync_playwright() as p:
        # Chromium refuses to sandbox itself as root (containers, CI).
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=executable, args=args)
        yield b
        b.close()


def open_page(browser, path: Path):
    """Open `path`: (page, requests other than the page itself (all blocked), script errors)."""
    url = path.resolve().as_uri()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside, errors = [], []

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.on("websocket", lambda ws: outside.append(ws.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    return page, outside, errors


@pytest.fixture(scope="module")
def opened(cli_report, browser):
    """The CLI's report, opened."""
    _, d = cli_report
    page, outside, errors = open_page(browser, d / "parity.html")
    yield page, outside, errors
    page.close()


def test_the_matrix_has_one_row_per_implementation(opened):
    page, _, _ = opened
    rows = page.locator("#matrix tbody tr")
    assert rows.count() == 2
    names = [rows.nth(k).get_attribute("data-implementation") for k in range(2)]
    assert names == [CORRECT, BROKEN]
    assert page.locator("#matrix").is_visible()
    broken = page.locator(f'#matrix tr[data-implementation="{BROKEN}"] td[data-check="output"]')
    good = page.locator(f'#matrix tr[data-implementation="{CORRECT}"] td[data-check="output"]')
    assert broken.inner_text().startswith("\u2717") and good.inner_text().startswith("\u2713")
    # The colour tells them apart too.
    colour = "e => getComputedStyle(e).backgroundColor"
    assert broken.evaluate(colour) != good.evaluate(colour)


def test_the_broken_row_leads_to_its_failure_and_reproduce_command(opened):
    page, _, _ = opened
    page.locator(f'#matrix tr[data-implementation="{BROKEN}"] td.impl a').click()
    section = page.locator(f'section[data-implementation="{BROKEN}"]')
    failure = section.locator('div.failure[data-check="output"]')
    command = failure.locator("pre.reproduce")
    assert command.is_visible()
    assert command.inner_text().startswith(
        f"python -m parity check --impl {BROKEN} --only output --case ")
    assert "likely cause" in failure.inner_text()
    button = failure.locator("button.copy")
    button.click()
    # The inline script ran: the label changes once the clipboard's promise settles ("copied",
    # or "select and copy"), asynchronously, and goes back after 1.5 s. Waited for (Playwright
    # polls up to 5 s), not read at once: read at once it raced the promise (one CI run in three).
    from playwright.sync_api import expect

    expect(button).not_to_have_text("copy")


def test_plots_are_drawn(opened):
    page, _, _ = opened
    plots = page.locator("figure.plot svg[role=img]")
    assert plots.count() >= 4  # error vs length x2, gradients grid, distribution
    for k in range(plots.count()):
        box = plots.nth(k).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50


def test_no_request_leaves_the_machine_and_no_script_error(opened):
    page, outside, errors = opened
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert outside == []
    assert errors == []


def test_the_request_count_sees_a_page_that_reaches_out(cli_report, browser, tmp_path):
    """The check above can fail: the same page with one remote image and one remote script."""
    _, d = cli_report
    tampered = tmp_path / "tampered.html"
    tampered.write_text((d / "parity.html").read_text().replace(
        "</body>", '<img src="https://example.invalid/pixel.png">'
                   '<script src="http://example.invalid/x.js"></script></body>'))
    page, outside, _ = open_page(browser, tampered)
    page.close()
    assert sorted(outside) == ["http://example.invalid/x.js",
                               "https://example.invalid/pixel.png"]
