"""The explorer's Regime analysis, Regime definitions and Queues tabs in a real browser (Playwright +
Debian's chromium) against the explorer app (tests/e2e/explorer_support.serve_explorer) on a seeded database.

A researcher's session: the regime bests show every trust figure and the verdict in words; deploy
downloads a bundle that `load_bundle` accepts and that holds the bests of the database; a custom
regime is written in the rule editor, tested on history, saved, edited and disabled (a rule that can
never match is refused and nothing is saved); a queue is paused and resumed from its buttons. Every
data-changing step goes through the browser's confirmation dialog. Screenshots go to
test-artifacts/explorer/ (git-ignored). About 100 s measured on 2 cores under a load average above 20 (most of it
training the 3 tiny models).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.explorer_support import ARTIFACTS, browser_page, serve_explorer
from tests.support import TINY_GRID, tiny_bests

pytestmark = pytest.mark.slow

QUEUE_GRID = {**TINY_GRID, "name": "explorer-queue", "model_specs": {**TINY_GRID["model_specs"], "horizons": [2, 4]}}
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three tiny SYNTH configurations trained and scored (rules detector), a pending queue, and the
    explorer serving that database."""
    from forex_pipeline.queue.lifecycle import submit_grid

    with tiny_bests(tmp_path_factory.mktemp("explorer-regimes")) as seeded:
        settings, engine = seeded["settings"], seeded["engine"]
        queue_id = submit_grid(engine, QUEUE_GRID, settings.artifacts_dir)
        with serve_explorer(settings.database_url, settings.artifacts_dir) as url:
            yield {"url": url, "engine": engine, "settings": settings, "queue_id": queue_id}


@pytest.fixture(scope="module")
def page(seeded: dict[str, Any]) -> Iterator[Any]:
    with browser_page(seeded["url"]) as tab:
        yield tab


def done(page: Any, view: str, text: str) -> None:
    """Wait for the view's success banner to say `text` (the confirmed action has committed)."""
    page.locator(f"#{view}-banner .banner-success").filter(has_text=text).wait_for(timeout=TIMEOUT_MS)


def svg_texts(page: Any, selector: str) -> list[str]:
    """The text of SVG elements (Plotly's legend entries and point labels), which inner_text does not give."""
    return page.locator(selector).evaluate_all("elements => elements.map(e => e.textContent)")


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _bests(seeded: dict[str, Any]):  # noqa: ANN202
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_best_models import current_bests

    with session_scope(seeded["engine"]) as session:
        return current_bests(session)


def test_regime_analysis_shows_every_trust_figure_and_the_verdict(page: Any, seeded: dict[str, Any]) -> None:
    from forex_pipeline.pipeline.trust import plain_words

    page.locator(".tab").get_by_text("Regimes", exact=True).click()
    grid = page.locator("#regimes-grid")
    for header in ("sharpe", "holdout_sharpe", "deflated_sharpe", "noise_p_value", "pbo", "baseline_sharpe", "over_baseline", "significant"):
        assert grid.locator(f".ag-header-cell[col-id='{header}']").count() == 1, header
    bests = _bests(seeded)
    first = bests.sort_values(["regime", "rank"]).iloc[0]
    row = grid.locator(f".ag-row[row-id='{first['regime']}:{first['rank']}']").first
    row.wait_for(timeout=TIMEOUT_MS)
    cell = row.locator(".ag-cell[col-id='deflated_sharpe']")
    assert cell.inner_text().strip() == f"{first['deflated_sharpe']:.3f}"
    assert row.locator(".ag-cell[col-id='pbo']").inner_text().strip() == f"{first['pbo']:.3f}"
    row.locator(".ag-cell[col-id='regime']").click()
    page.get_by_role("button", name="View details").click()
    verdict = page.locator("#regimes-verdict")
    verdict.wait_for(timeout=TIMEOUT_MS)
    import pandas as pd

    expected = plain_words({k: None if v is pd.NA else v for k, v in first.to_dict().items()}, seeded["settings"].regimes.significance)
    assert verdict.inner_text().strip() == expected
    # the three charts: each regime a labelled trace / point
    page.locator("#regimes-timeline .legendtext").first.wait_for(timeout=TIMEOUT_MS)
    legend = " ".join(svg_texts(page, "#regimes-timeline .legendtext"))
    assert first["regime"] in legend
    labels = svg_texts(page, "#regimes-risk .textpoint")
    assert f"{first['regime']} #{first['rank']}" in labels and len(labels) == len(bests)
    assert page.locator("#regimes-heatmap .hm, #regimes-heatmap .heatmaplayer").count() >= 1
    page.get_by_role("button", name="Backtest").click()
    page.locator("#regimes-backtest-summary").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#regimes-backtest-summary").inner_text().startswith("final return")
    shot(page, "regime_analysis")


def test_deploy_downloads_a_bundle_that_load_bundle_accepts(page: Any, seeded: dict[str, Any], tmp_path: Path) -> None:
    from forex_pipeline.pipeline.bundle import load_bundle

    page.locator(".tab").get_by_text("Regimes", exact=True).click()
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.get_by_role("button", name="Deploy (download bundle)").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("bundle-SYNTH-1h-") and saved.suffix == ".zip"
    bundle = load_bundle(saved)
    bests = _bests(seeded)
    top = bests[bests["rank"] == 1].set_index("regime")["partition_key"].to_dict()
    assert {regime: entry.partition_key for regime, entry in bundle.entries.items()} == top


def _definition(seeded: dict[str, Any], name: str):  # noqa: ANN202
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_definitions import get_regime_definition

    with session_scope(seeded["engine"]) as session:
        return get_regime_definition(session, name)


def select_regime(page: Any, row: Any, name: str) -> None:
    """Click a definitions row and wait until the editor holds that regime."""
    from playwright.sync_api import expect

    row.locator(".ag-cell[col-id='name']").click()
    expect(page.locator("#definitions-name")).to_have_value(name, timeout=TIMEOUT_MS)


def test_write_test_save_edit_and_disable_a_custom_regime(page: Any, seeded: dict[str, Any]) -> None:
    page.locator(".tab").get_by_text("Regime definitions", exact=True).click()
    calm = page.locator("#definitions-grid .ag-row[row-id='calm_ranging']")
    calm.wait_for(timeout=TIMEOUT_MS)
    # with the rules detector built-ins match first: calm_ranging would take every bar quiet_range matches
    select_regime(page, calm, "calm_ranging")
    page.get_by_role("button", name="Disable").click()
    done(page, "definitions", "calm_ranging: disabled")
    assert not _definition(seeded, "calm_ranging").enabled

    page.get_by_role("button", name="New").click()
    page.fill("#definitions-name", "quiet_range")
    page.fill("#definitions-description", "flat and calm")
    page.fill("#definitions-rule-trend_strength", "< 0.3")
    page.fill("#definitions-rule-volatility_percentile", "< 40th percentile")
    page.get_by_role("button", name="Test on history").click()
    share = page.locator("#definitions-share-quiet_range")
    share.wait_for(timeout=TIMEOUT_MS)
    assert int(share.locator("td").nth(1).inner_text()) > 0
    assert any(text.startswith("quiet_range (") for text in svg_texts(page, "#definitions-test-result .legendtext"))
    assert _definition(seeded, "quiet_range") is None            # testing saves nothing
    shot(page, "regime_test_on_history")

    page.fill("#definitions-rule-returns", "> 0.5 and < 0.1")     # can never match: refused, nothing saved
    page.get_by_role("button", name="Save").click()
    error = page.locator("#definitions-banner .banner-error")
    error.wait_for(timeout=TIMEOUT_MS)
    assert "returns" in error.inner_text() and "min 0.5 is greater than max 0.1" in error.inner_text()
    assert _definition(seeded, "quiet_range") is None
    page.fill("#definitions-rule-returns", "")
    page.get_by_role("button", name="Save").click()
    done(page, "definitions", "quiet_range: added")
    assert _definition(seeded, "quiet_range").rules["trend_strength"] == {"max": 0.3, "max_inclusive": False}
    page.locator("#definitions-grid .ag-row[row-id='quiet_range']").wait_for(timeout=TIMEOUT_MS)

    page.fill("#definitions-rule-trend_strength", "< 0.25")       # edit
    page.get_by_role("button", name="Save").click()
    done(page, "definitions", "quiet_range: saved")
    assert _definition(seeded, "quiet_range").rules["trend_strength"] == {"max": 0.25, "max_inclusive": False}
    page.get_by_role("button", name="Disable").click()
    done(page, "definitions", "quiet_range: disabled")
    assert not _definition(seeded, "quiet_range").enabled

    select_regime(page, calm, "calm_ranging")
    page.get_by_role("button", name="Delete").click()
    page.locator("#definitions-banner .banner-error").filter(has_text="built in").wait_for(timeout=TIMEOUT_MS)
    assert _definition(seeded, "calm_ranging") is not None
    page.get_by_role("button", name="Enable").click()
    done(page, "definitions", "calm_ranging: enabled")
    assert _definition(seeded, "calm_ranging").enabled
    shot(page, "regime_definitions")


def _queue(seeded: dict[str, Any]):  # noqa: ANN202
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.training_queue import get_queue

    with session_scope(seeded["engine"]) as session:
        return get_queue(session, seeded["queue_id"])


def test_pause_and_resume_a_queue(page: Any, seeded: dict[str, Any]) -> None:
    page.locator(".tab").get_by_text("Queues", exact=True).click()
    row = page.locator(f"#queues-grid .ag-row[row-id='{seeded['queue_id']}']")
    row.wait_for(timeout=TIMEOUT_MS)
    assert row.locator(".ag-cell[col-id='progress']").inner_text().startswith(f"0/{_queue(seeded).total_models}")
    row.locator(".ag-cell[col-id='name']").click()
    page.get_by_role("button", name="Pause").click()
    done(page, "queues", f"queue {seeded['queue_id']}: paused")
    assert _queue(seeded).status == "paused"
    row.locator(".ag-cell[col-id='status']").filter(has_text="paused").wait_for(timeout=TIMEOUT_MS)
    shot(page, "queue_paused")
    page.get_by_role("button", name="Resume").click()
    done(page, "queues", "resumed")
    assert _queue(seeded).status == "running"
    assert (_queue(seeded).checkpoint or {}).get("mode") == "daemon"
    shot(page, "queue_resumed")
