"""Cost of the specification's columns on the hot path: recording one model's backtest rows.

Compares, in one process and one SQLite database, inserting a model's rows as before issue 15
(the narrow rows only) and as now (the `all` rows also carry backtest_uuid, inference_params,
backtest_metrics, regime_metrics and backtest_duration_seconds; the generated columns cost nothing on
SQLite). Prints name=value lines; the ratio is what matters.

    python benchmarks/bench_spec_columns.py [--models 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=30)
    args = parser.parse_args()

    import pandas as pd
    from sqlalchemy import insert

    from forex_pipeline.store import db, inference_backtests, training_runs
    from forex_pipeline.store.tables import InferenceBacktest
    from tests.store.conftest import backtest_frame, run_identity

    frame = pd.concat([backtest_frame(0, segment="selection"), backtest_frame(1, segment="holdout")], ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db.upgrade(url)
        engine = db.make_engine(url)

        def narrow(session, run_id: int) -> None:  # noqa: ANN001 - the rows as recorded before issue 15
            session.execute(insert(InferenceBacktest.__table__), inference_backtests._backtest_rows(run_id, frame))

        def with_documents(session, run_id: int) -> None:  # noqa: ANN001
            inference_backtests.batch_insert_backtests(session, run_id, frame, duration_seconds=20.0)

        timings = {"narrow": 0.0, "spec": 0.0}
        for i in range(args.models):
            for name, insert_rows in (("narrow", narrow), ("spec", with_documents)):
                with db.session_scope(engine) as session:
                    run = training_runs.insert_training_run(session, run_identity(2 * i + (name == "spec")))
                    started = time.perf_counter()
                    insert_rows(session, run.id)
                    session.flush()
                    timings[name] += time.perf_counter() - started
        engine.dispose()
    rows = len(frame)
    print(f"rows_per_model={rows}")
    print(f"record_backtests_narrow_ms={timings['narrow'] / args.models * 1000:.2f}")
    print(f"record_backtests_spec_ms={timings['spec'] / args.models * 1000:.2f}")
    print(f"spec_columns_cost_ratio={timings['spec'] / timings['narrow']:.3f}")


if __name__ == "__main__":
    main()
