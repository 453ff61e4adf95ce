"""The explorer's History view in a real browser (Playwright + Debian's chromium) over 2,000 seeded runs.

A researcher filters, sorts, pages and searches the history; opens a run's details (its 135 inference
configurations per regime); compares three runs; exports configurations and re-submits the export to
`grid plan`; tries to delete a regime best (refused, nothing deleted) and deletes another run.
Screenshots go to test-artifacts/explorer/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.explorer_support import (
    ARTIFACTS,
    browser_page,
    clear_selection,
    ROOT,
    paging_summary,
    pick,
    select_rows,
    serve_explorer,
    visible_rows,
    wait_for,
    wait_for_total,
)
from tests.conftest import fx_data_dir
from tests.explorer.seed import seed_history

pytestmark = pytest.mark.slow

N_RUNS = 2000
GRID = "history-grid"


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A migrated SQLite database seeded with 2,000 runs, the explorer serving it; (url, db file, env)."""
    from forex_pipeline.store.db import dispose_engines
    from tests.support import write_test_settings

    home = tmp_path_factory.mktemp("explorer")
    database = home / "forex_pipeline.db"
    env = {
        "DAGSTER_HOME": str(home), "FOREX_DATABASE_URL": f"sqlite:///{database}", "FOREX_ARTIFACTS_DIR": str(home / "artifacts"),
        "FOREX_SETTINGS": str(write_test_settings(home / "settings.yaml")),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        seed_history(env["FOREX_DATABASE_URL"], N_RUNS, detailed=(1, 2, 3, 4, 5), bests=(2,))
        with serve_explorer(env["FOREX_DATABASE_URL"], home / "artifacts") as url:
            yield url, database, env
        dispose_engines()


@pytest.fixture(scope="module")
def page(explorer: tuple[str, Path, dict[str, str]]) -> Iterator[Any]:
    with browser_page(explorer[0]) as tab:
        tab.wait_for_selector(f"#{GRID} .ag-row")
        yield tab


def sql(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def banner_text(page: Any, containing: str = "") -> str:
    """The history banner's message, once it holds `containing`."""
    def text() -> str:
        message = page.inner_text("#history-banner").strip()
        return message if message and containing in message else ""

    return wait_for(f"{containing!r} in the history banner", text)


def test_filter_sort_page_and_search(page: Any, explorer: tuple[str, Path, dict[str, str]]) -> None:
    _, database, _ = explorer
    wait_for_total(page, GRID, N_RUNS)
    assert paging_summary(page, GRID).startswith("1 to 50 of")
    shot(page, "01_history")

    # filter: status (counted independently in the database)
    failed = sql(database, "SELECT COUNT(*) FROM training_runs WHERE status = 'failed'")[0][0]
    pick(page, "history-status", "failed")
    wait_for_total(page, GRID, failed)
    assert set(visible_rows(page, GRID, "status")) == {"failed"}
    page.click("#history-clear")
    wait_for_total(page, GRID, N_RUNS)

    # filter: model type + min Sharpe; the count is the runs with an `all` row reaching it
    expected = sql(database, "SELECT COUNT(DISTINCT r.id) FROM training_runs r JOIN inference_backtests b ON b.training_run_id = r.id "
                             "WHERE r.model_type = 'rf' AND b.regime = 'all' AND b.segment = 'selection' AND b.sharpe >= 1.0")[0][0]
    pick(page, "history-model-type", "rf")
    page.fill("#history-min-sharpe", "1")
    page.press("#history-min-sharpe", "Enter")
    wait_for_total(page, GRID, expected)
    assert set(visible_rows(page, GRID, "model_type")) == {"rf"}
    assert min(float(v) for v in visible_rows(page, GRID, "best_sharpe")) >= 1.0
    shot(page, "02_filtered")

    # sort: Best Sharpe descending (two clicks) puts the database's maximum first
    top = sql(database, "SELECT MAX(b.sharpe) FROM training_runs r JOIN inference_backtests b ON b.training_run_id = r.id "
                        "WHERE r.model_type = 'rf' AND b.regime = 'all' AND b.segment = 'selection'")[0][0]
    header = page.locator(f'#{GRID} .ag-header-cell[col-id="best_sharpe"] .ag-header-cell-label')
    header.click()
    wait_for("ascending sort", lambda: page.locator(f'#{GRID} .ag-header-cell[col-id="best_sharpe"][aria-sort="ascending"]').count())
    header.click()
    wait_for("the best Sharpe first", lambda: (visible_rows(page, GRID, "best_sharpe") or ["nan"])[0] == f"{top:.3f}")
    values = [float(v) for v in visible_rows(page, GRID, "best_sharpe")]
    assert values == sorted(values, reverse=True)

    # page: the second and the last page of the filtered set
    page.click("#history-clear")
    wait_for_total(page, GRID, N_RUNS)
    page.locator(f"#{GRID} .ag-paging-button").filter(has=page.locator(".ag-icon-next")).click()
    wait_for("page 2", lambda: paging_summary(page, GRID).startswith("51 to 100"))
    page.locator(f"#{GRID} .ag-paging-button").filter(has=page.locator(".ag-icon-last")).click()
    wait_for("the last page", lambda: paging_summary(page, GRID).startswith(f"{N_RUNS - 49:,} to {N_RUNS:,}"))

    # search: words over the configuration, key=value exactly (max_depth=4, not 40)
    depth_4 = sql(database, "SELECT COUNT(*) FROM training_runs WHERE model_spec LIKE '%\"max_depth\": 4}%'")[0][0]
    assert depth_4 > 0
    page.fill("#history-search", "rf max_depth=4")
    page.press("#history-search", "Enter")
    wait_for_total(page, GRID, depth_4)
    labels = visible_rows(page, GRID, "configuration")
    assert labels and all(" rf " in f" {label} " and "max_depth=4" in label.split() for label in labels)
    shot(page, "03_search")
    page.click("#history-clear")
    wait_for_total(page, GRID, N_RUNS)


def _oldest_first(page: Any) -> None:
    """Sort by creation, oldest first: runs 1..5 (the detailed ones) lead the first page."""
    header = page.locator(f'#{GRID} .ag-header-cell[col-id="created_at"] .ag-header-cell-label')
    for _ in range(3):
        if page.locator(f'#{GRID} .ag-header-cell[col-id="created_at"][aria-sort="ascending"]').count():
            break
        header.click()
        page.wait_for_timeout(300)
    wait_for("run 1 first", lambda: (visible_rows(page, GRID, "id") or [""])[0] == "1")


def test_details_and_compare_three(page: Any) -> None:
    _oldest_first(page)
    select_rows(page, GRID, [1])
    page.click("#history-details-button")
    page.wait_for_selector("#history-details-title")
    assert page.inner_text("#history-details-title").startswith("Run 1: ")
    wait_for("135 inference configurations", lambda: paging_summary(page, "history-results-grid").endswith("of 135"))
    headers = page.locator("#history-results-grid .ag-header-cell-text").all_inner_texts()
    assert {"sharpe: all", "sharpe: bull_trending", "sharpe: calm_ranging"} <= set(headers)
    assert "model file" in page.inner_text("#history-details-body")
    shot(page, "04_details")

    select_rows(page, GRID, [3, 4])
    page.click("#history-compare-button")
    page.wait_for_selector("#history-compare-title")
    assert page.inner_text("#history-compare-title") == "Compare runs 1, 3, 4"
    headers = page.locator("#history-compare-grid .ag-header-cell-text").all_inner_texts()
    assert [h for h in headers if h.startswith("run ")] == ["run 1", "run 3", "run 4"]
    fields = page.locator('#history-compare-grid [col-id="field"].ag-cell').all_inner_texts()
    assert "best Sharpe: all" in fields and "hyperparameters" in fields
    shot(page, "05_compare")

    select_rows(page, GRID, [2, 5, 6])                   # six runs: compare refuses
    page.click("#history-compare-button")
    assert banner_text(page, "compare") == "select 2 to 5 runs to compare (6 selected)"


def test_export_and_resubmit_then_delete(page: Any, explorer: tuple[str, Path, dict[str, str]], tmp_path: Path) -> None:
    _, database, env = explorer
    clear_selection(page, GRID)
    select_rows(page, GRID, [1, 3, 4])
    with page.expect_download() as download:
        page.click("#history-export-button")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert banner_text(page, "exported").startswith("exported 3 configuration(s)")
    files = [exported]
    if exported.suffix == ".zip":
        import zipfile

        with zipfile.ZipFile(exported) as archive:
            archive.extractall(tmp_path / "grids")
        files = sorted((tmp_path / "grids").glob("*.yaml"))
    planned = trained = 0
    for grid_file in files:              # re-submittable: grid plan accepts every file and knows them as trained
        result = subprocess.run([sys.executable, "-m", "forex_pipeline.cli", "grid", "plan", str(grid_file)], cwd=ROOT,
                                env={**os.environ, **env, "PYTHONPATH": str(ROOT), "FOREX_SAMPLE_DATA": str(fx_data_dir())},
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        planned += int(re.search(r"model configurations\D*(\d+)", result.stdout).group(1))
        trained += int(re.search(r"already trained\D*(\d+)", result.stdout).group(1))
    assert (planned, trained) == (3, 3)

    # delete a regime best: refused with the reason, nothing deleted
    clear_selection(page, GRID)
    select_rows(page, GRID, [2, 3])
    page.click("#history-delete-button")
    message = banner_text(page, "nothing deleted")
    assert "run 2 is a regime best (bull_trending)" in message
    assert sql(database, "SELECT COUNT(*) FROM training_runs WHERE id IN (2, 3)")[0][0] == 2
    shot(page, "06_delete_refused")

    page.locator(f'#{GRID} .ag-row[row-id="2"] .ag-selection-checkbox input').uncheck()
    page.click("#history-delete-button")
    assert banner_text(page, "deleted run(s)") == "deleted run(s) 3 with their backtests and model files"
    wait_for_total(page, GRID, N_RUNS - 1)
    assert sql(database, "SELECT COUNT(*) FROM training_runs WHERE id = 3")[0][0] == 0
    assert sql(database, "SELECT COUNT(*) FROM inference_backtests WHERE training_run_id = 3")[0][0] == 0
