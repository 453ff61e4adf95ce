"""The internal loop for one trained model: every inference configuration, scored per regime.

`run_inference_backtests` predicts the members once per prediction method (the only model calls),
then `backtest_member_predictions` turns them into the (forecast, confidence) series, runs the
simulator over all configurations at once and returns the "Backtest results" frame of
docs/architecture.md. The confidence window is warmed up on the rows just before the test segment
(never after t), so the first test bars already have a full lookback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forex_pipeline.backtest.columns import RESULT_COLUMNS
from forex_pipeline.backtest.confidence import rolling_size_rank
from forex_pipeline.backtest.ensembles import combine, member_agreement
from forex_pipeline.backtest.inference_grid import InferenceConfig, inference_configs
from forex_pipeline.backtest.metrics import metrics_from_stats
from forex_pipeline.backtest.simulator import simulate_grid
from forex_pipeline.data.timeframes import bars_per_year
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.keys import REGIME_ALL, REGIME_UNCLASSIFIED
from forex_pipeline.models.base import Combiners, TrainedModel
from forex_pipeline.settings import InferenceGridSettings, Settings, SymbolCosts



@dataclass(frozen=True)
class BacktestOutput:
    frame: pd.DataFrame             # RESULT_COLUMNS, one row per (inference configuration, regime)
    prediction_seconds: float       # predict_members calls only
    simulation_seconds: float       # ensembles, confidence, simulation, metrics and the frame


@dataclass(frozen=True)
class RegimeCodes:
    codes: np.ndarray               # (n,) int64 index into names
    names: tuple[str, ...]


def encode_regimes(labels: np.ndarray, preferred_order: tuple[str, ...] = ()) -> RegimeCodes:
    """Regime names -> integer codes; names listed in `preferred_order` first, then the rest sorted."""
    labels = np.asarray(labels, dtype=object)
    if labels.ndim != 1:
        raise ValueError(f"regime labels must be 1-d, got shape {labels.shape}")
    if any(not isinstance(x, str) or not x for x in labels):
        raise ValueError("regime labels must be non-empty strings (use 'unclassified' for bars matching no rule)")
    present = set(labels.tolist())
    if REGIME_ALL in present:
        raise ValueError(f"{REGIME_ALL!r} is reserved for the whole test segment and cannot label a bar")
    names = tuple(n for n in preferred_order if n in present) + tuple(sorted(present - set(preferred_order)))
    lookup = {name: i for i, name in enumerate(names)}
    return RegimeCodes(np.fromiter((lookup[x] for x in labels), dtype=np.int64, count=labels.size), names)


def backtest_member_predictions(
    members: dict[str, np.ndarray],
    combiners: dict[str, Combiners],
    n_warmup: int,
    close: np.ndarray,
    regimes: RegimeCodes,
    horizon: int,
    costs: SymbolCosts,
    grid: InferenceGridSettings,
    annualisation: float,
    max_matrix_bytes: int,
) -> pd.DataFrame:
    """The backtest frame from member predictions (K, n_warmup + n_test) per prediction method."""
    configs = inference_configs(grid)
    lookbacks = np.asarray(grid.lookback_windows, dtype=np.int64)
    thresholds = np.asarray(grid.confidence_thresholds, dtype=np.float64)
    n_test = close.shape[0]
    n_regimes = len(regimes.names)
    n_ens = len(grid.ensemble_methods)
    per_ensemble_bytes = 2 * lookbacks.size * (n_warmup + n_test) * 8
    ens_chunk = max(1, min(n_ens, max_matrix_bytes // max(per_ensemble_bytes, 1)))
    blocks = []
    for method in grid.prediction_methods:
        if method not in members:
            raise ValueError(f"member predictions for prediction method {method!r} are missing")
        if method not in combiners:
            raise ValueError(f"model has no combiners for prediction method {method!r}")
        m = np.asarray(members[method], dtype=np.float64)
        if m.ndim != 2 or m.shape[1] != n_warmup + n_test:
            raise ValueError(
                f"member predictions for {method!r} have shape {m.shape}, expected (K, {n_warmup + n_test})"
            )
        for start in range(0, n_ens, ens_chunk):
            ensembles = grid.ensemble_methods[start : start + ens_chunk]
            forecasts = np.stack([combine(m, combiners[method], e) for e in ensembles])
            agreement = np.stack([member_agreement(m, f) for f in forecasts])
            ranks = rolling_size_rank(forecasts, lookbacks)                      # (E, L, n)
            conf = (ranks * agreement[:, None, :])[:, :, n_warmup:].reshape(-1, n_test)
            fc = np.repeat(forecasts[:, None, n_warmup:], lookbacks.size, axis=1).reshape(-1, n_test)
            blocks.append(
                simulate_grid(fc, conf, thresholds, close, horizon, costs, regimes.codes, n_regimes, max_matrix_bytes)
            )
    stats = np.concatenate(blocks, axis=0).reshape(len(configs), n_regimes + 1, -1)
    return _frame(configs, stats, (*regimes.names, REGIME_ALL), annualisation)


def _frame(configs: list[InferenceConfig], stats: np.ndarray, regime_names: tuple[str, ...], annualisation: float) -> pd.DataFrame:
    """One row per (configuration, regime), regime 'all' first."""
    order = [len(regime_names) - 1, *range(len(regime_names) - 1)]
    stats = stats[:, order, :]
    names = [regime_names[i] for i in order]
    n_cfg, n_reg = stats.shape[:2]
    metrics = metrics_from_stats(stats, annualisation)
    columns: dict[str, object] = {
        "prediction_method": np.repeat([c.prediction_method for c in configs], n_reg),
        "ensemble_method": np.repeat([c.ensemble_method for c in configs], n_reg),
        "confidence_threshold": np.repeat([c.confidence_threshold for c in configs], n_reg),
        "lookback_window": np.repeat([c.lookback_window for c in configs], n_reg).astype(np.int64),
        "inference_config_hash": np.repeat([c.hash for c in configs], n_reg),
        "regime": np.tile(names, n_cfg),
    }
    columns.update({name: values.reshape(-1) for name, values in metrics.items()})
    return pd.DataFrame(columns, columns=list(RESULT_COLUMNS))


def _check_rows(rows: np.ndarray, n_rows: int) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.size < 2 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"test_rows must be a 1-d integer array of at least 2 rows, got shape {rows.shape} dtype {rows.dtype}")
    if rows[0] < 0 or rows[-1] >= n_rows or (np.diff(rows) <= 0).any():
        raise ValueError(f"test_rows must be strictly increasing row numbers within the matrix (0..{n_rows - 1})")
    return rows.astype(np.int64)


def _test_labels(regime_labels: np.ndarray, test_rows: np.ndarray, n_rows: int) -> np.ndarray:
    labels = np.asarray(regime_labels, dtype=object)
    if labels.shape == (n_rows,):
        return labels[test_rows]
    if labels.shape == test_rows.shape:
        return labels
    raise ValueError(
        f"regime_labels has {labels.shape[0] if labels.ndim else 0} entries; expected one per matrix row "
        f"({n_rows}) or one per test row ({test_rows.size})"
    )


def _apply_thread_setting(threads: int) -> None:
    """settings.performance.numba_threads: 0 keeps numba's default, n > 0 caps the kernel's threads."""
    if threads > 0:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def run_inference_backtests(
    model: TrainedModel,
    matrix: FeatureMatrix,
    test_rows: np.ndarray,
    regime_labels: np.ndarray,
    settings: Settings,
    symbol: str,
) -> BacktestOutput:
    """All inference configurations of `model` on `test_rows`, per regime (labels per matrix or test row)."""
    test_rows = _check_rows(test_rows, matrix.n_rows)
    costs = settings.data.costs_for(symbol)
    regimes = encode_regimes(
        _test_labels(regime_labels, test_rows, matrix.n_rows),
        (*settings.regimes.definitions, REGIME_UNCLASSIFIED),
    )
    grid = settings.inference_grid
    n_warmup = int(min(max(grid.lookback_windows), test_rows[0]))
    rows = np.concatenate([np.arange(test_rows[0] - n_warmup, test_rows[0], dtype=np.int64), test_rows])
    started = time.perf_counter()
    members = {method: model.predict_members(matrix, rows, method) for method in grid.prediction_methods}
    prediction_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _apply_thread_setting(settings.performance.numba_threads)
    frame = backtest_member_predictions(
        members,
        model.combiners,
        n_warmup,
        matrix.close[test_rows],
        regimes,
        model.model_spec.horizon,
        costs,
        grid,
        bars_per_year(matrix.base_timeframe),
        settings.performance.backtest_max_matrix_bytes,
    )
    return BacktestOutput(frame, prediction_seconds, time.perf_counter() - started)


def config_equity(
    model: TrainedModel,
    matrix: FeatureMatrix,
    test_rows: np.ndarray,
    config: InferenceConfig,
    settings: Settings,
    symbol: str,
) -> pd.Series:
    """Equity (cumulative simple return after costs) of one inference configuration over the test rows,
    built exactly as in `run_inference_backtests` (same warm-up, ensemble and confidence)."""
    from forex_pipeline.backtest.simulator import equity_curve

    test_rows = _check_rows(test_rows, matrix.n_rows)
    n_warmup = int(min(max(settings.inference_grid.lookback_windows), test_rows[0]))
    rows = np.concatenate([np.arange(test_rows[0] - n_warmup, test_rows[0], dtype=np.int64), test_rows])
    members = model.predict_members(matrix, rows, config.prediction_method)
    forecast = combine(members, model.combiners[config.prediction_method], config.ensemble_method)
    ranks = rolling_size_rank(forecast[None, :], np.asarray([config.lookback_window], dtype=np.int64))[0, 0]
    confidence = ranks * member_agreement(members, forecast)
    _, returns = equity_curve(
        forecast[n_warmup:],
        confidence[n_warmup:],
        config.confidence_threshold,
        matrix.close[test_rows],
        model.model_spec.horizon,
        settings.data.costs_for(symbol),
    )
    return pd.Series(np.expm1(np.cumsum(returns)), index=matrix.timestamps[test_rows], name=config.hash)
