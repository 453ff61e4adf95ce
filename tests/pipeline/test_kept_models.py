"""Kept models again (equity, another inference grid) and deleting runs, on models the pipeline trained."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.errors import OperationError
from forex_pipeline.models.files import resolve_model_path
from forex_pipeline.grid.expand import expand_grid
from forex_pipeline.pipeline.configuration import run_configuration
from forex_pipeline.pipeline.keep_or_delete import delete_runs
from forex_pipeline.pipeline.kept_models import kept_model_equity, open_kept_model, rerun_inference
from forex_pipeline.settings import InferenceGridSettings, get_settings
from forex_pipeline.store import inference_backtests, regime_best_models, training_runs
from forex_pipeline.store.db import dispose_engines, get_engine, session_scope, upgrade
from tests.support import TINY_GRID, write_test_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[training_runs.TrainingRunRecord]]:
    """Three tiny configurations trained and recorded once by the pipeline (keep_top_n_per_regime = 1)."""
    home = tmp_path_factory.mktemp("kept_models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        patch.setenv("FOREX_DATABASE_URL", f"sqlite:///{home / 'forex_pipeline.db'}")
        patch.setenv("FOREX_ARTIFACTS_DIR", str(home / "artifacts"))
        patch.setenv("FOREX_SETTINGS", str(write_test_settings(home / "settings.yaml", evaluation={"noise_models": 10})))
        settings = get_settings()
        upgrade(settings.database_url)
        engine = get_engine(settings.database_url)
        grid = {**TINY_GRID, "model_specs": {**TINY_GRID["model_specs"], "horizons": [1, 3]}}
        for configuration in expand_grid(grid).configurations[:3]:
            outcome = run_configuration(configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir)
            assert outcome.status == "completed", outcome.error
        with session_scope(engine) as session:
            runs = training_runs.get_training_runs(session, [1, 2, 3])
        yield runs
        dispose_engines()


def test_another_inference_grid_reproduces_the_stored_rows_and_equity(trained: list) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    kept = next(run for run in trained if run.kept)
    model = open_kept_model(engine, settings, settings.artifacts_dir, kept.id)
    small = InferenceGridSettings(prediction_methods=["direct"], ensemble_methods=["mean", "weighted"],
                                  confidence_thresholds=[0.0, 0.5], lookback_windows=[100])
    frame = rerun_inference(engine, model, small, settings)
    assert len(frame.drop_duplicates("inference_config_hash")) == 4
    with session_scope(engine) as session:
        stored = inference_backtests.get_backtests(session, kept.id)
    merged = frame.merge(stored, on=["inference_config_hash", "regime", "segment"], suffixes=("", "_stored"))
    assert len(merged) == len(frame) > 0           # the same configurations, regimes and segments as recorded
    np.testing.assert_allclose(merged["sharpe"], merged["sharpe_stored"], rtol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(merged["trade_count"], merged["trade_count_stored"])
    from forex_pipeline.backtest.inference_grid import InferenceConfig

    curve = kept_model_equity(model, InferenceConfig("direct", "mean", 0.0, 100), settings)
    assert isinstance(curve.index, pd.DatetimeIndex) and len(curve) == model.test_rows.size and np.isfinite(curve).all()


def test_a_deleted_model_cannot_be_opened_and_a_regime_best_cannot_be_deleted(trained: list) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        bests = regime_best_models.best_regimes_of_runs(session, [run.id for run in trained])
    best = next(run for run in trained if run.id in bests)
    others = [run for run in trained if run.id not in bests]
    with pytest.raises(OperationError, match=rf"nothing deleted: run {best.id} is a regime best \("):
        delete_runs(engine, settings, [run.id for run in others] + [best.id])
    with session_scope(engine) as session:              # all or nothing: the others are still there
        assert len(training_runs.get_training_runs(session, [run.id for run in trained])) == 3
    assert resolve_model_path(best.model_path, settings.artifacts_dir).exists()
    with pytest.raises(OperationError, match="run 99 does not exist"):
        delete_runs(engine, settings, [99])
    assert others, "keep_top_n_per_regime = 1 over 3 models should leave one out of every top"
    victim = others[0]
    with pytest.raises(OperationError, match="deleted"):
        open_kept_model(engine, settings, settings.artifacts_dir, victim.id)
    assert delete_runs(engine, settings, [victim.id]) == (victim.id,)
    with session_scope(engine) as session:
        assert training_runs.get_training_run(session, victim.id) is None
        assert inference_backtests.get_backtests(session, victim.id).empty
