"""run_inference_backtests with a hand-made TrainedModel double: frame contract, warm-up, values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.backtest.inference_grid import InferenceConfig
from forex_pipeline.backtest.metrics import max_drawdown, sharpe, sortino, total_return
from forex_pipeline.backtest.run import RESULT_COLUMNS, run_evaluation_backtests, run_inference_backtests
from forex_pipeline.data.timeframes import bars_per_year
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import PREDICTION_METHODS, Combiners
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.settings import (
    DEFAULT_SETTINGS_FILE,
    InferenceGridSettings,
    PerformanceSettings,
    Settings,
    load_settings,
)
from tests.backtest.test_simulator import reference

N = 900
TEST = np.arange(600, N)


class FakeModel:
    """K = 3 members whose forecasts are lagged returns scaled per member and method (causal)."""

    def __init__(self, horizon: int = 3) -> None:
        self.model_spec = ModelSpec(model_type="ridge", horizon=horizon)
        self.feature_set_hash = "fs"
        self.combiners = {
            method: Combiners(np.array([0.2, 0.3, 0.5]), 1e-5, np.array([0.4, -0.1, 0.9])) for method in PREDICTION_METHODS
        }
        self.requested: list[np.ndarray] = []

    @property
    def n_members(self) -> int:
        return 3

    def predict_members(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        self.requested.append(np.asarray(rows))
        sign = {"direct": 1.0, "recursive": -1.0, "direct_multi": 0.5}[method]
        lag = matrix.X[rows, 0]
        return np.stack([sign * lag * (k + 1) + 1e-4 * np.sin(rows * (k + 2)) for k in range(3)])


def make_matrix(seed: int = 0) -> FeatureMatrix:
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, N)))
    lag = np.concatenate([[0.0], np.diff(np.log(close))])
    stamps = pd.date_range("2021-01-04", periods=N, freq="h", tz="UTC", name="timestamp")
    return FeatureMatrix("fs", stamps, lag[:, None], ("ret_lag_1",), close, "1h", "EURUSD")


def labels_for(n: int) -> np.ndarray:
    names = np.array(["bull_trending", "calm_ranging", "unclassified", "my_custom"], dtype=object)
    return names[(np.arange(n) // 37) % 4]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(DEFAULT_SETTINGS_FILE)


def test_frame_contract(settings: Settings) -> None:
    model = FakeModel()
    out = run_inference_backtests(model, make_matrix(), TEST, labels_for(N), settings, "EUR/USD")
    frame = out.frame
    assert tuple(frame.columns) == RESULT_COLUMNS
    assert len(frame) == 135 * 5
    assert frame["inference_config_hash"].nunique() == 135
    assert list(frame["regime"].iloc[:5]) == ["all", "bull_trending", "calm_ranging", "unclassified", "my_custom"]
    per_config = frame.groupby("inference_config_hash")
    # attribution rule (simulator.py): a bar shared by a flip between trades of two regimes counts in
    # both, so the regimes' bars cover the segment at least once; their returns add up exactly
    assert (per_config["n_bars"].apply(lambda s: s.iloc[0] <= s.iloc[1:].sum())).all()
    log_total = np.log1p(frame["total_return"])
    assert np.allclose(log_total.groupby(frame["inference_config_hash"]).apply(lambda s: s.iloc[0] - s.iloc[1:].sum()), 0.0, atol=1e-12)
    assert (frame.loc[frame["regime"] == "all", "n_bars"] == TEST.size).all()
    assert (frame.loc[frame["regime"] == "all", "trade_count"] > 0).all()
    assert frame["trade_count"].dtype == np.int64 and frame["lookback_window"].dtype == np.int64
    assert out.prediction_seconds >= 0 and out.simulation_seconds > 0


def test_predicts_each_method_once_with_warmup_before_the_test_rows(settings: Settings) -> None:
    model = FakeModel()
    run_inference_backtests(model, make_matrix(), TEST, labels_for(N), settings, "EURUSD")
    assert len(model.requested) == 3
    for rows in model.requested:
        np.testing.assert_array_equal(rows, np.arange(600 - 200, N))


def test_one_configuration_equals_an_independent_computation(settings: Settings) -> None:
    model = FakeModel(horizon=4)
    matrix = make_matrix(1)
    labels = labels_for(N)
    frame = run_inference_backtests(model, matrix, TEST, labels, settings, "EURUSD").frame
    config = InferenceConfig("recursive", "stacking", 0.5, 100)
    rows = np.arange(600 - 200, N)
    members = model.predict_members(matrix, rows, "recursive")
    combiners = model.combiners["recursive"]
    forecast = combiners.stacking_intercept + combiners.stacking_coef @ members
    agree = (np.sign(members) == np.sign(forecast)).mean(axis=0)
    size = np.abs(forecast)
    conf = np.array([(size[t - 100 : t] < size[t]).mean() + 0.5 * (size[t - 100 : t] == size[t]).mean() for t in range(200, rows.size)])
    conf *= agree[200:]
    codes = pd.Series(labels[TEST]).map({"bull_trending": 0, "calm_ranging": 1, "unclassified": 2, "my_custom": 3}).to_numpy()
    costs = settings.data.costs_for("EURUSD")
    stats, returns, positions, parts = reference(forecast[200:], conf, 0.5, matrix.close[TEST], 4, costs, codes, 4)
    got = frame[(frame["inference_config_hash"] == config.hash) & (frame["regime"] == "all")].iloc[0]
    year = bars_per_year("1h")
    assert got["sharpe"] == pytest.approx(sharpe(returns, year), rel=1e-9)
    assert got["sortino"] == pytest.approx(sortino(returns, year), rel=1e-9)
    assert got["max_drawdown"] == pytest.approx(max_drawdown(returns), rel=1e-9)
    assert got["total_return"] == pytest.approx(total_return(returns), rel=1e-9)
    assert got["exposure"] == pytest.approx((positions != 0).mean())
    calm = frame[(frame["inference_config_hash"] == config.hash) & (frame["regime"] == "calm_ranging")].iloc[0]
    calm_returns = np.array([value for _, owner, value, _ in parts if owner == 1])
    assert calm["sharpe"] == pytest.approx(sharpe(calm_returns, year), rel=1e-9)
    assert calm["trade_count"] == stats[1, 5]


def test_labels_per_matrix_row_or_per_test_row_are_the_same(settings: Settings) -> None:
    labels = labels_for(N)
    a = run_inference_backtests(FakeModel(), make_matrix(), TEST, labels, settings, "EURUSD").frame
    b = run_inference_backtests(FakeModel(), make_matrix(), TEST, labels[TEST], settings, "EURUSD").frame
    pd.testing.assert_frame_equal(a, b)


def test_custom_grid_size_and_bad_inputs(settings: Settings) -> None:
    grid = InferenceGridSettings(
        prediction_methods=["direct"], ensemble_methods=["mean"], confidence_thresholds=[0.0, 0.9], lookback_windows=[20]
    )
    small = settings.model_copy(update={"inference_grid": grid})
    frame = run_inference_backtests(FakeModel(), make_matrix(), TEST, labels_for(N), small, "EURUSD").frame
    assert len(frame) == 2 * 5
    with pytest.raises(ValueError, match="regime_labels"):
        run_inference_backtests(FakeModel(), make_matrix(), TEST, labels_for(10), settings, "EURUSD")
    with pytest.raises(ValueError, match="test_rows"):
        run_inference_backtests(FakeModel(), make_matrix(), np.array([5, 4, 6]), labels_for(N), settings, "EURUSD")
    with pytest.raises(KeyError, match="XAUUSD"):
        run_inference_backtests(FakeModel(), make_matrix(), TEST, labels_for(N), settings, "XAUUSD")
    with pytest.raises(ValueError, match="reserved"):
        run_inference_backtests(FakeModel(), make_matrix(), TEST, np.full(N, "all", dtype=object), settings, "EURUSD")


def test_progress_counts_every_inference_configuration_once_and_changes_nothing(settings: Settings) -> None:
    """`on_progress` sees the configurations done rise block by block to all 135 (in chunks under a
    tight memory budget too), and the results are those of a run without it."""
    tight = settings.model_copy(update={"performance": PerformanceSettings(backtest_max_matrix_bytes=10_000, numba_threads=0)})
    for current in (settings, tight):
        seen: list[tuple[int, int]] = []
        frame = run_evaluation_backtests(FakeModel(), make_matrix(), TEST, labels_for(N), current, "EURUSD", on_progress=lambda d, t: seen.append((d, t))).frame
        total = frame["inference_config_hash"].nunique()
        assert total == 135 and {t for _, t in seen} == {total}
        done = [d for d, _ in seen]
        assert done == sorted(set(done)) and done[-1] == total and done[0] > 0
        pd.testing.assert_frame_equal(frame, run_evaluation_backtests(FakeModel(), make_matrix(), TEST, labels_for(N), current, "EURUSD").frame)
    assert len(seen) > 3  # the tight budget reports in more, smaller blocks


def test_memory_budget_chunks_without_changing_results(settings: Settings) -> None:
    tight = settings.model_copy(update={"performance": PerformanceSettings(backtest_max_matrix_bytes=10_000, numba_threads=1)})
    import numba

    threads = numba.get_num_threads()
    a = run_inference_backtests(FakeModel(), make_matrix(), TEST, labels_for(N), settings, "EURUSD").frame
    try:
        b = run_inference_backtests(FakeModel(), make_matrix(), TEST, labels_for(N), tight, "EURUSD").frame
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(threads)
    pd.testing.assert_frame_equal(a, b)
