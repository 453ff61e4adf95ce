"""Walk-forward evaluation (pipeline/walk_forward.py, backtest/segments.py): each fold's model is
trained on the rows before the fold only, and a small ridge grid run through the real pipeline stores
selection figures equal to those of the concatenated out-of-sample returns of its folds, recomputed
here configuration by configuration from the fold models' own forecasts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st

from forex_pipeline.backtest.confidence import rolling_size_rank
from forex_pipeline.backtest.ensembles import combine, member_agreement
from forex_pipeline.backtest.inference_grid import inference_configs
from forex_pipeline.backtest.metrics import sharpe
from forex_pipeline.backtest.simulator import equity_curve
from forex_pipeline.data.timeframes import bars_per_year
from forex_pipeline.features.splits import split_rows
from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
from forex_pipeline.models.context import TrainingContext
from forex_pipeline.models.registry import train_model
from forex_pipeline.pipeline.artifacts import ensure_feature_matrix
from forex_pipeline.pipeline.configuration import run_configuration
from forex_pipeline.pipeline.walk_forward import fold_settings, train_fold_models
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, get_settings, load_settings
from forex_pipeline.store import inference_backtests, training_runs
from forex_pipeline.store.db import dispose_engines, get_engine, session_scope, upgrade
from tests.pipeline.trust_market import grid, import_market, market
from tests.support import write_test_settings

FOLDS = 3


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.integers(2000, 100_000), st.floats(0.3, 0.95), st.integers(1, 24))
def test_fold_settings_put_the_test_segment_exactly_at_the_fold(n_rows: int, position: float, horizon: int) -> None:
    base = load_settings(DEFAULT_SETTINGS_FILE)
    fold_start = int(n_rows * position)
    training = fold_settings(base, n_rows, fold_start).training
    splits = split_rows(n_rows, horizon, training.train_fraction, training.validation_fraction)
    assert splits.test[0] == fold_start                               # the fold is the family's test segment
    assert splits.validation[-1] + horizon < fold_start               # embargo before the fold
    share = base.training.train_fraction / (base.training.train_fraction + base.training.validation_fraction)
    assert abs(splits.validation[0] / fold_start - share) < 2.0 / fold_start + 1e-9


@pytest.fixture()
def walk_forward_env(isolated_storage: Path, monkeypatch: pytest.MonkeyPatch):
    settings_file = write_test_settings(
        isolated_storage / "settings.yaml",
        evaluation={"mode": "walk_forward", "folds": FOLDS, "noise_models": 10},
        regimes={"detector": "rules"},
        file_management={"keep_top_n_per_regime": 2},
    )
    monkeypatch.setenv("FOREX_SETTINGS", str(settings_file))
    settings = get_settings()
    upgrade(settings.database_url)
    yield settings
    dispose_engines()


def _pieces(models, matrix, rows, bounds, method, ensemble):
    """Forecast and member agreement of each fold model on its own rows, concatenated in time."""
    forecasts, agreements = [], []
    for model, (a, b) in zip(models, bounds):
        members = model.predict_members(matrix, rows[a:b], method)
        forecast = combine(members, model.combiners[method], ensemble)
        forecasts.append(forecast)
        agreements.append(member_agreement(members, forecast))
    return np.concatenate(forecasts), np.concatenate(agreements)


def test_walk_forward_grid_scores_the_concatenated_out_of_sample_returns_of_its_folds(walk_forward_env) -> None:
    settings = walk_forward_env
    bars, _ = market(3, settings, edge=0.3)
    import_market(settings.artifacts_dir, bars)
    configurations = expand_grid(parse_grid_spec(grid("wf", alphas=(1.0, 100.0)))).configurations
    engine = get_engine(settings.database_url)
    for configuration in configurations:
        outcome = run_configuration(configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir)
        assert outcome.status == "completed", outcome.error

    configuration = configurations[0]
    with session_scope(engine) as session:
        run = training_runs.get_training_run_by_hash(session, configuration.model_config_hash)
        stored = inference_backtests.get_backtests(session, run.id)
    assert set(stored["segment"]) == {"selection", "holdout"}          # folds are pooled, never stored apart

    # the folds, computed here from the settings' definition: the first 60% of the test rows less the
    # embargo, cut into three consecutive slices; the holdout after the embargo
    spec, horizon = configuration.model_spec, configuration.model_spec.horizon
    matrix, _ = ensure_feature_matrix(configuration.feature_set, settings, settings.artifacts_dir, None)
    test = split_rows(matrix.n_rows, horizon, settings.training.train_fraction, settings.training.validation_fraction).test
    n = test.size
    boundary = int(n * settings.evaluation.selection_fraction)
    edges = [j * (boundary - horizon) // FOLDS for j in range(FOLDS + 1)]
    model = train_model(matrix, spec, TrainingContext(settings=settings, artifacts_dir=settings.artifacts_dir, seed=0))
    models = train_fold_models(model, matrix, spec, test, TrainingContext(settings=settings, artifacts_dir=settings.artifacts_dir, seed=0))
    assert len(models) == FOLDS
    # fold k's model never saw its fold: the same models come out of a matrix whose rows from the
    # fold on are scrambled (features and closes), and they differ from the first fold's model
    rng = np.random.default_rng(0)
    for k in (1, 2):
        first = int(test[edges[k]])
        scrambled = dataclasses.replace(
            matrix,
            X=np.concatenate([matrix.X[:first], rng.standard_normal(matrix.X[first:].shape)]),
            close=np.concatenate([matrix.close[:first], matrix.close[first:] * np.exp(rng.normal(0, 0.01, matrix.n_rows - first))]),
        )
        again = train_fold_models(model, scrambled, spec, test, TrainingContext(settings=settings, artifacts_dir=settings.artifacts_dir, seed=0))
        earlier = np.arange(first - 50, first)
        np.testing.assert_array_equal(again[k].predict_members(matrix, earlier, "direct"), models[k].predict_members(matrix, earlier, "direct"))
        assert not np.allclose(models[k].predict_members(matrix, earlier, "direct"), model.predict_members(matrix, earlier, "direct"))

    warmup = min(max(settings.inference_grid.lookback_windows), int(test[0]))
    rows = np.concatenate([np.arange(test[0] - warmup, test[0]), test])
    starts = [0, warmup + edges[1], warmup + edges[2]]
    bounds = list(zip(starts, [*starts[1:], rows.size]))
    close = matrix.close[test]
    costs = settings.data.costs_for(configuration.feature_set.symbol)
    year = bars_per_year("1h")
    checked = 0
    everything = stored[stored["regime"] == "all"].set_index(["inference_config_hash", "segment"])
    for config in inference_configs(settings.inference_grid):
        forecast, agreement = _pieces(models, matrix, rows, bounds, config.prediction_method, config.ensemble_method)
        ranks = rolling_size_rank(forecast[None, :], np.asarray([config.lookback_window]))[0, 0]
        confidence = (ranks * agreement)[warmup:]
        forecast = forecast[warmup:]
        returns = np.concatenate([
            equity_curve(forecast[a:b], confidence[a:b], config.confidence_threshold, close[a:b], horizon, costs)[1]
            for a, b in zip(edges, edges[1:])
        ])
        holdout = equity_curve(forecast[boundary:], confidence[boundary:], config.confidence_threshold, close[boundary:], horizon, costs)[1]
        selection_row = everything.loc[(config.hash, "selection")]
        holdout_row = everything.loc[(config.hash, "holdout")]
        assert selection_row["n_bars"] == returns.size == boundary - horizon
        assert selection_row["total_return"] == pytest.approx(np.expm1(returns.sum()), rel=1e-9, abs=1e-12)
        expected = sharpe(returns, year)
        if np.isfinite(expected):
            assert selection_row["sharpe"] == pytest.approx(expected, rel=1e-9)
            checked += 1
        else:
            assert np.isnan(selection_row["sharpe"])
        assert holdout_row["n_bars"] == holdout.size
        assert holdout_row["total_return"] == pytest.approx(np.expm1(holdout.sum()), rel=1e-9, abs=1e-12)
    assert checked >= 60                                              # most configurations trade

    # the bests rank on the pooled selection and report the holdout
    from forex_pipeline.store.regime_best_models import current_bests

    with session_scope(engine) as session:
        bests = current_bests(session)
    assert len(bests) and bests["holdout_score"].notna().any() and bests["n_trials"].max() == 270
