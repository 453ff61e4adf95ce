"""The History view's functions and its page callback (through Dash's HTTP endpoint), on a seeded database."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import pandas as pd
import pytest
import yaml

from forex_pipeline.errors import InputError
from forex_pipeline.explorer import history
from forex_pipeline.explorer.app import create_app, tab_of
from forex_pipeline.explorer.common import ExplorerContext
from forex_pipeline.settings import get_settings
from forex_pipeline.store.db import dispose_engines
from tests.explorer.seed import INFERENCE_GRID, REGIMES, seed_history

N_RUNS = 120


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerContext]:
    home = tmp_path_factory.mktemp("history_view")
    url = f"sqlite:///{home / 'forex.db'}"
    seed_history(url, N_RUNS, detailed=(1, 2), bests=(2,))
    yield ExplorerContext(url, home / "artifacts", get_settings())
    dispose_engines()


def test_filters_from_controls_read_the_bar_and_name_bad_fields() -> None:
    filters = history.filters_from_controls("failed", "rf", "EURUSD", "2026-01-02", "2026-01-03", 0.5, -0.2, "  rf   max_depth=4 ")
    assert filters == {"status": "failed", "model_type": "rf", "symbol": "EURUSD", "since": "2026-01-02", "until": "2026-01-04",
                       "min_sharpe": 0.5, "max_drawdown": 0.2, "search": "rf max_depth=4"}
    with pytest.raises(InputError, match="created to 2026-01-01 is before created from 2026-01-02"):
        history.filters_from_controls(start_date="2026-01-02", end_date="2026-01-01")
    with pytest.raises(InputError, match="min Sharpe: 'abc' is not a number"):
        history.filters_from_controls(min_sharpe="abc")
    with pytest.raises(InputError, match="at most 8"):
        history.filters_from_controls(search="a b c d e f g h i")


def test_a_page_request_becomes_the_store_query() -> None:
    query = history.history_filter({"since": "2026-01-02", "until": "2026-01-04"}, {"startRow": 100, "endRow": 150,
                                                                                  "sortModel": [{"colId": "best_sharpe", "sort": "asc"}]})
    assert (query.page, query.page_size, query.sort) == (3, 50, "best_sharpe")
    assert query.since.isoformat() == "2026-01-02T00:00:00+00:00" and query.until.day == 4
    assert history.sort_key([{"colId": "configuration", "sort": "asc"}]) == "-created_at"   # not sortable in the store
    assert history.sort_key([{"colId": "created_at", "sort": "desc"}]) == "-created_at"


def post_rows(client, request: dict) -> dict:  # noqa: ANN001 - Flask test client
    """The grid's page request through Dash's update endpoint, as the browser sends it."""
    body = {
        "output": f"{history.GRID_ID}.getRowsResponse",
        "outputs": {"id": history.GRID_ID, "property": "getRowsResponse"},
        "inputs": [{"id": history.GRID_ID, "property": "getRowsRequest", "value": request}],
        "state": [{"id": history.FILTERS_ID, "property": "data", "value": history.filters_from_controls(status="completed")}],
        "changedPropIds": [f"{history.GRID_ID}.getRowsRequest"],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    return json.loads(response.data)["response"][history.GRID_ID]["getRowsResponse"]


def test_pages_come_from_the_database_through_the_callback(seeded: ExplorerContext) -> None:
    app = create_app(seeded.database_url, seeded.artifacts_dir)
    client = app.server.test_client()
    completed = sum(1 for i in range(1, N_RUNS + 1) if i % 13 != 5 and i % 47 != 11)   # the seed's status rule
    first = post_rows(client, {"startRow": 0, "endRow": 50, "sortModel": [{"colId": "created_at", "sort": "asc"}]})
    second = post_rows(client, {"startRow": 50, "endRow": 100, "sortModel": [{"colId": "created_at", "sort": "asc"}]})
    assert first["rowCount"] == second["rowCount"] == completed
    ids = [row["id"] for row in first["rowData"] + second["rowData"]]
    assert len(first["rowData"]) == 50 and ids == sorted(ids) and len(set(ids)) == 100
    row = first["rowData"][0]
    assert row["status"] == "completed" and " | " in row["configuration"] and row["created_at"].startswith("2026-01-01 00:07")


def test_results_compare_and_rerun_tables(seeded: ExplorerContext) -> None:
    from forex_pipeline.store.history import best_sharpe_by_model_and_regime
    from forex_pipeline.store.inference_backtests import get_backtests

    with seeded.read_session() as session:
        backtests = get_backtests(session, 1)
        bests = best_sharpe_by_model_and_regime(session, [1, 2, 3], min_trades=0)
    rows, regimes = history.results_table(backtests, "selection", "sharpe")
    assert len(rows) == len(INFERENCE_GRID) and regimes == ["all", *sorted(r for r in REGIMES if r != "all")]
    pick = backtests[(backtests["segment"] == "selection") & (backtests["regime"] == "calm_ranging")
                     & (backtests["prediction_method"] == "recursive") & (backtests["ensemble_method"] == "stacking")
                     & (backtests["confidence_threshold"] == 0.7) & (backtests["lookback_window"] == 200)]["sharpe"].item()
    row = next(r for r in rows if (r["prediction_method"], r["ensemble_method"], r["confidence_threshold"], r["lookback_window"])
               == ("recursive", "stacking", 0.7, 200))
    assert row["calm_ranging"] == pytest.approx(pick)
    best = history.best_configuration(backtests, "selection")
    top = backtests[(backtests["segment"] == "selection") & (backtests["regime"] == "all")]["sharpe"].max()
    assert next(r for r in rows if all(r[c] == best[c] for c in history.CONFIG_COLUMNS))["all"] == pytest.approx(top)

    runs = history._runs(seeded, [1, 2, 3])
    table, names = history.compare_rows(runs, bests)
    assert names == ["run 1", "run 2", "run 3"]
    by_field = {r["field"]: r for r in table}
    assert by_field["best Sharpe: all"]["run 1"] == pytest.approx(round(top, 4))
    assert by_field["model_type"]["run 2"] == runs[1].model_type
    with pytest.raises(InputError, match="select 2 to 5 runs to compare \\(1 selected\\)"):
        history.compare_rows(runs[:1], bests)

    frame = backtests.copy()
    rerun, _ = history.rerun_rows(frame, "selection")
    assert {"trades (all)", "max drawdown (all)"} <= set(rerun[0])


def test_export_file_is_a_grid_or_a_zip_of_grids(seeded: ExplorerContext) -> None:
    from forex_pipeline.grid.expand import expand_grid

    runs = history._runs(seeded, [1, 2, 3])
    name, content = history.export_file(runs[:1], "json")
    assert name == "explorer-export.json"
    assert {c.model_config_hash for c in expand_grid(json.loads(content)).configurations} == {runs[0].model_config_hash}
    name, content = history.export_file(runs, "yaml")
    grids = [yaml.safe_load(content)] if name.endswith(".yaml") else [
        yaml.safe_load(data) for data in map(zipfile.ZipFile(io.BytesIO(content)).read, zipfile.ZipFile(io.BytesIO(content)).namelist())]
    exported = {c.model_config_hash for grid in grids for c in expand_grid(grid).configurations}
    assert exported == {run.model_config_hash for run in runs}
    with pytest.raises(InputError, match="select the runs"):
        history.export_file([], "yaml")


def test_the_rerun_form_names_a_bad_field() -> None:
    grid = history.inference_grid_from_inputs(["direct"], ["mean", "weighted"], "0, 0.5", "20; 100")
    assert (grid.confidence_thresholds, grid.lookback_windows) == ([0.0, 0.5], [20, 100])
    with pytest.raises(InputError, match="lookback windows: '20, x' is not a comma-separated list of integers"):
        history.inference_grid_from_inputs(["direct"], ["mean"], "0.5", "20, x")
    with pytest.raises(InputError, match="prediction_methods"):
        history.inference_grid_from_inputs([], ["mean"], "0.5", "20")


def test_links_open_a_tab(seeded: ExplorerContext) -> None:
    from forex_pipeline.dagster_defs.metadata import explorer_link

    link = explorer_link("http://127.0.0.1:8050/", "history", config="abc123")
    assert link == "http://127.0.0.1:8050/?tab=history&config=abc123"
    assert tab_of(link.split("/", 3)[3].removeprefix("?")) == "history" and tab_of("?tab=nope") is None
    with seeded.read_session() as session:
        from forex_pipeline.store.training_runs import get_training_run

        run = get_training_run(session, 2)
    assert history._run_from_link(seeded, f"?tab=history&config={run.model_config_hash}")[0] == 2
    assert history._run_from_link(seeded, "?run=7")[0] == 7


def test_details_panel_of_a_run(seeded: ExplorerContext) -> None:
    panel = str(history.details_panel(seeded, 2))
    assert "regime best in" in panel and "bull_trending" in panel and "history-results-grid" in panel
    with pytest.raises(InputError, match="training run 99999 does not exist"):
        history.details_panel(seeded, 99999)


def test_frame_records_are_plain_json() -> None:
    frame = pd.DataFrame({"created_at": [pd.Timestamp("2026-01-01 10:00", tz="UTC"), None], "x": [1.5, float("nan")]})
    assert history._plain_records(frame) == [{"created_at": "2026-01-01 10:00:00", "x": 1.5}, {"created_at": None, "x": None}]
    json.dumps(history._plain_records(frame))


def test_search_words_as_the_configuration_column_writes_them(seeded: ExplorerContext) -> None:
    """`EURUSD 4h 180d atr:4h rsi:4h ...`: the label's words find the runs they describe (180d is not 1800d)."""
    from forex_pipeline.store.history import HistoryFilter, query_history
    from tests.explorer.seed import configurations

    expected = {i for i, c in enumerate(configurations(N_RUNS), start=1)
                if c.feature_set.base_timeframe == "4h" and c.feature_set.days_history == 180}
    with seeded.read_session() as session:
        page = query_history(session, HistoryFilter(search="rsi:4h 180d", page_size=N_RUNS))
    assert expected and set(page.rows["id"]) == expected
