"""Headless Chromium for tests that look at a page as a reader does (Playwright driving the
Debian chromium package; .ci/run installs both). Skips with the reason when either is missing."""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("CELLBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def browser_page():
    """A fresh page in headless Chromium; its console errors, uncaught exceptions and failed requests
    (not those the page aborted itself, such as a finished event stream) are collected in
    ``page.problems``."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (test extra)")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium: install the Debian package chromium (apt-get install chromium), as .ci/run does")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.problems = []
            page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url} ({r.failure})")
                    if r.failure != "net::ERR_ABORTED" else None)  # aborted: a stream the page closed itself
            yield page
        finally:
            browser.close()
