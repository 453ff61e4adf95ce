"""The explorer served in a thread for browser tests, and Playwright helpers for its grid and controls."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "explorer"          # git-ignored (test-artifacts/)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_explorer(database_url: str, artifacts_dir: Path) -> Iterator[str]:
    """`create_app` on a free port in a background thread (werkzeug, threaded); yields its base URL."""
    from werkzeug.serving import make_server

    from forex_pipeline.explorer.app import create_app

    app = create_app(database_url, artifacts_dir)
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="explorer", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def pick(page: Any, dropdown_id: str, option: str) -> None:
    """Choose `option` in a dcc.Dropdown."""
    page.click(f"#{dropdown_id}")
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def paging_summary(page: Any, grid_id: str) -> str:
    """AG Grid's pager text, e.g. `1 to 50 of 2,000`."""
    return page.inner_text(f"#{grid_id} .ag-paging-row-summary-panel").strip()


def wait_for_total(page: Any, grid_id: str, total: int, timeout: float = 30.0) -> None:
    """Wait until the grid's pager reports `total` rows in all."""
    expected = f"of {total:,}"
    wait_for(f"{grid_id} to show {expected!r}", lambda: paging_summary(page, grid_id).endswith(expected), timeout)


ROWS_SCRIPT = """([grid, column]) => [...document.querySelectorAll(`#${grid} .ag-center-cols-container .ag-row`)].map(row => [
    Number(row.getAttribute("row-index")),
    (row.querySelector('[col-id="id"]') || {innerText: row.getAttribute("row-id") || ""}).innerText.trim(),
    (row.querySelector(`[col-id="${column}"]`) || {innerText: ""}).innerText.trim(),
])"""


def visible_rows(page: Any, grid_id: str, column: str) -> list[str]:
    """The text of `column` in the rendered rows of the grid's current page, in display order, once
    every rendered row is loaded (an infinite-model row shows blank cells while its block loads)."""
    def loaded() -> list[list[Any]] | None:
        rows = page.evaluate(ROWS_SCRIPT, [grid_id, column])
        return rows if rows and all(row[1] for row in rows) else None

    return [text for _, _, text in sorted(wait_for(f"loaded rows of {grid_id}", loaded))]


def select_rows(page: Any, grid_id: str, row_ids: list[int]) -> None:
    """Tick the selection checkbox of each row (they must be on the current page)."""
    for row_id in row_ids:
        page.locator(f'#{grid_id} .ag-row[row-id="{row_id}"] .ag-selection-checkbox input').first.check()


def clear_selection(page: Any, grid_id: str) -> None:
    """Untick every ticked row of the grid's current page."""
    ticked = page.locator(f"#{grid_id} .ag-row .ag-selection-checkbox input:checked")
    while ticked.count():
        ticked.first.uncheck()


@contextmanager
def browser_page(url: str) -> Iterator[Any]:
    """A Playwright page of Debian's chromium on `url` (1500 x 1100, downloads accepted, every confirmation
    dialog accepted); skips the test when Playwright or chromium is missing. Playwright's sync API handles
    a dialog only while a Playwright call runs, so wait for a result through the page, not time.sleep."""
    import pytest

    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(url)
            yield page
        finally:
            browser.close()
