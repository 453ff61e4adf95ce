"""One configuration end to end: backtests are out of sample, and a trained configuration is never trained again."""

from __future__ import annotations

import numpy as np

from forex_pipeline.pipeline import configuration as two_phase
from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
from forex_pipeline.settings import get_settings
from forex_pipeline.store import inference_backtests, training_runs
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID


def test_backtests_trade_only_the_test_segment_after_the_embargo(grid_env, monkeypatch):
    import forex_pipeline.backtest.run as backtest_run
    import forex_pipeline.models.registry as registry

    settings = get_settings()
    engine = get_engine(settings.database_url)
    configuration = expand_grid(parse_grid_spec(TINY_GRID)).configurations[-1]
    seen: dict[str, np.ndarray] = {}
    original_backtest, original_train = backtest_run.run_evaluation_backtests, registry.train_model

    def spy_backtest(model, matrix, test_rows, labels, settings_, symbol, segments=None, **options):
        seen["test_rows"], seen["n_rows"] = np.asarray(test_rows), matrix.n_rows
        return original_backtest(model, matrix, test_rows, labels, settings_, symbol, segments, **options)

    def spy_train(matrix, spec, context):
        seen["trained"] = seen.get("trained", 0) + 1
        return original_train(matrix, spec, context)

    monkeypatch.setattr(backtest_run, "run_evaluation_backtests", spy_backtest)
    monkeypatch.setattr(registry, "train_model", spy_train)
    outcome = two_phase.run_configuration(
        configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir
    )
    assert outcome.status == "completed"
    horizon, n = configuration.model_spec.horizon, seen["n_rows"]
    n_train = int(n * settings.training.train_fraction)
    n_validation_end = int(n * (settings.training.train_fraction + settings.training.validation_fraction))
    test_rows = seen["test_rows"]
    # every traded row lies after the training rows, the validation rows and the embargo between them
    assert test_rows.min() >= n_validation_end and test_rows.min() > n_train + horizon
    assert test_rows.max() == n - 1 and np.all(np.diff(test_rows) == 1)
    with session_scope(engine) as session:
        run = training_runs.get_training_run_by_hash(session, configuration.model_config_hash)
        frame = inference_backtests.get_backtests(session, run.id)
    overall = frame[frame["regime"] == "all"]
    # selection and holdout (after an embargo of horizon rows): each a part of the test rows
    assert len(overall) == 135 * 2 and set(overall["segment"]) == {"selection", "holdout"}
    sizes = overall.groupby("segment")["n_bars"].max()
    assert sizes["selection"] + sizes["holdout"] + horizon == len(test_rows)

    again = two_phase.run_configuration(
        configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir
    )
    assert again.status == "skipped"
    assert seen["trained"] == 1
