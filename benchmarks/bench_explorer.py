"""Benchmark: how long the explorer's History view takes from a page request to its rows, on PostgreSQL
holding the full grid's backtests.

A scratch PostgreSQL database is filled (COPY) with RUNS training runs (default 49,000: the
specification's full grid), each with 135 inference configurations x 5 regimes (`all` and the four
built-ins) on the selection segment: 49,000 x 675 = 33 million backtest rows at the default. Then the
History grid's page request is POSTed to Dash's update endpoint of `create_app` (Flask's test client:
the callback, the database query, the row labels and the JSON response; no browser, no network), with
a filter (status, model type, min Sharpe), a sort (best Sharpe) and a deep page, REQUESTS times.

Printed, name=value, one per line:
  explorer_runs, explorer_backtest_rows, fill_seconds   the database
  explorer_page_p50_ms, explorer_page_p95_ms   request -> rows through the app (want p95 < 300)
  explorer_search_p95_ms    the same with a text search over the configuration (`rf max_depth=4`)
  store_page_p95_ms         the same pages from store/history.query_history directly (baseline)
  explorer_over_store_p95   explorer_page_p95_ms / store_page_p95_ms, same process (the app's own cost)

Run: PYTHONPATH=. python benchmarks/bench_explorer.py [--runs 49000] [--requests 40] [--keep]
     PYTHONPATH=. python benchmarks/bench_explorer.py --database-url postgresql://postgres@127.0.0.1:5432/bench_scale
     (the second measures a database another benchmark filled, e.g. bench_scale.py's full grid, as it is:
     nothing is seeded or dropped)
(PostgreSQL at FOREX_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres; the
scratch database wt_explorer_history_bench is dropped at the end unless --keep).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from forex_pipeline.explorer import history  # noqa: E402
from forex_pipeline.explorer.app import create_app  # noqa: E402
from forex_pipeline.store import db  # noqa: E402
from tests.explorer.seed import INFERENCE_GRID, REGIMES, seed_history  # noqa: E402

DATABASE = "wt_explorer_history_bench"
FILTERS = {"status": "completed", "model_type": "rf", "min_sharpe": 0.5}
SORT = [{"colId": "best_sharpe", "sort": "desc"}]


def scratch_url(admin_url: str, keep_existing: bool) -> tuple[str, bool]:
    """The scratch database's URL, created empty (or reused when --reuse and present); (url, filled already)."""
    admin = create_engine(db.parse_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'").scalar() is not None
            if exists and keep_existing:
                return db.parse_url(admin_url).set(database=DATABASE).render_as_string(hide_password=False), True
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    finally:
        admin.dispose()
    return db.parse_url(admin_url).set(database=DATABASE).render_as_string(hide_password=False), False


def drop(admin_url: str) -> None:
    admin = create_engine(db.parse_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    finally:
        admin.dispose()


def page_request(client, filters: dict, start_row: int) -> tuple[float, int]:  # noqa: ANN001 - Flask test client
    """(milliseconds, rows) of one page request through Dash's update endpoint."""
    body = {
        "output": f"{history.GRID_ID}.getRowsResponse",
        "outputs": {"id": history.GRID_ID, "property": "getRowsResponse"},
        "inputs": [{"id": history.GRID_ID, "property": "getRowsRequest",
                    "value": {"startRow": start_row, "endRow": start_row + history.PAGE_SIZE, "sortModel": SORT}}],
        "state": [{"id": history.FILTERS_ID, "property": "data", "value": filters}],
        "changedPropIds": [f"{history.GRID_ID}.getRowsRequest"],
    }
    started = time.perf_counter()
    response = client.post("/_dash-update-component", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"page request failed ({response.status_code}): {response.data[:500]!r}")
    payload = response.get_json()["response"][history.GRID_ID]["getRowsResponse"]
    return elapsed, int(payload["rowCount"])


def store_request(context, filters: dict, start_row: int) -> float:  # noqa: ANN001
    """Milliseconds of the same page from store/history.query_history alone."""
    from forex_pipeline.store.history import query_history

    started = time.perf_counter()
    with context.read_session() as session:
        query_history(session, history.history_filter(filters, {"startRow": start_row, "sortModel": SORT}))
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=49_000, help="training runs (x 675 backtest rows each)")
    parser.add_argument("--requests", type=int, default=40, help="timed page requests per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (and reuse it next time)")
    parser.add_argument("--database-url", help="measure this already-filled database instead (neither seeded nor dropped)")
    args = parser.parse_args()
    admin_url = os.environ.get("FOREX_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if args.database_url:
        url, filled = args.database_url, True
        args.keep = True
    else:
        url, filled = scratch_url(admin_url, keep_existing=args.keep)
    fill_seconds = 0.0
    try:
        if not filled:
            started = time.perf_counter()
            seed_history(url, args.runs, detailed=(), bests=(), configs_per_run=len(INFERENCE_GRID), regimes=REGIMES,
                         segments=("selection",), bulk=True)
            fill_seconds = time.perf_counter() - started
        app = create_app(url, ROOT / "dagster_home" / "artifacts")
        client = app.server.test_client()
        from forex_pipeline.explorer.common import ExplorerContext
        from forex_pipeline.settings import get_settings

        context = ExplorerContext(url, ROOT / "dagster_home" / "artifacts", get_settings())
        _, matching = page_request(client, FILTERS, 0)
        rng = np.random.default_rng(0)
        deep = [int(p) * history.PAGE_SIZE for p in rng.integers(max(1, matching // history.PAGE_SIZE // 2),
                                                                   max(2, matching // history.PAGE_SIZE), args.requests)]
        for start in deep[:3]:                                   # warm the pool and the caches
            page_request(client, FILTERS, start)
        app_ms = [page_request(client, FILTERS, start)[0] for start in deep]
        store_ms = [store_request(context, FILTERS, start) for start in deep]
        search = {**FILTERS, "min_sharpe": None, "search": "rf max_depth=4"}
        search_ms = [page_request(client, search, 0)[0] for _ in range(max(5, args.requests // 4))]
        with context.read_session() as session:
            from sqlalchemy import text

            rows = session.execute(text("SELECT COUNT(*) FROM inference_backtests")).scalar()
            runs = session.execute(text("SELECT COUNT(*) FROM training_runs")).scalar()
    finally:
        db.dispose_engines()
        if not args.keep:
            drop(admin_url)
    print(f"explorer_runs={runs}")
    print(f"explorer_backtest_rows={rows}")
    print(f"explorer_matching_runs={matching}")
    print(f"fill_seconds={fill_seconds:.1f}")
    print(f"explorer_page_p50_ms={np.percentile(app_ms, 50):.1f}")
    print(f"explorer_page_p95_ms={np.percentile(app_ms, 95):.1f}")
    print(f"explorer_search_p95_ms={np.percentile(search_ms, 95):.1f}")
    print(f"store_page_p95_ms={np.percentile(store_ms, 95):.1f}")
    print(f"explorer_over_store_p95={np.percentile(app_ms, 95) / np.percentile(store_ms, 95):.2f}")


if __name__ == "__main__":
    main()
