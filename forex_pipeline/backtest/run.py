"""The internal loop for one trained model: every inference configuration, scored per regime.

`run_inference_backtests` predicts the members once per prediction method (the only model calls),
then `backtest_member_predictions` turns them into the (forecast, confidence) series, runs the
simulator over all configurations at once and returns the "Backtest results" frame of
docs/architecture.md. The confidence window is warmed up on the rows just before the test segment
(never after t), so the first test bars already have a full lookback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forex_pipeline.backtest.columns import (
    BASELINE_COLUMNS,
    BLOCK_COLUMNS,
    EVALUATION_COLUMNS,
    RESULT_COLUMNS,
    SEGMENT_COLUMN,
)
from forex_pipeline.backtest.confidence import rolling_size_rank
from forex_pipeline.backtest.ensembles import combine, member_agreement
from forex_pipeline.backtest.inference_grid import InferenceConfig, inference_configs
from forex_pipeline.backtest.metrics import metrics_from_stats, trust_from_stats
from forex_pipeline.backtest.segments import Segment, evaluation_segments, folds_of, scored_segments, whole_test
from forex_pipeline.backtest.simulator import simulate_grid
from forex_pipeline.data.timeframes import bars_per_year
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.keys import REGIME_ALL, REGIME_UNCLASSIFIED
from forex_pipeline.models.base import Combiners, TrainedModel
from forex_pipeline.settings import InferenceGridSettings, Settings, SymbolCosts

InferenceProgress = Callable[[int, int], None]
"""Called as the internal loop goes: (inference configurations done, total), after each block of series."""


@dataclass(frozen=True)
class BacktestOutput:
    frame: pd.DataFrame             # RESULT_COLUMNS or EVALUATION_COLUMNS (backtest/columns.py)
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


@dataclass(frozen=True)
class Piece:
    """Consecutive rows of the (warm-up + test) series forecast by one model: its member predictions
    (K, rows) per prediction method and its combiners. Walk-forward concatenates one piece per fold."""

    members: dict[str, np.ndarray]
    combiners: dict[str, Combiners]


def _series(
    pieces: list[Piece],
    n_warmup: int,
    n_test: int,
    grid: InferenceGridSettings,
    max_matrix_bytes: int,
):
    """Yield (forecasts, confidences) blocks (series, n_test) in the grid's series order. Each piece is
    combined with its own combiners and the forecasts concatenated before the confidence ranks, so
    a rank window reaching back past a fold's first row sees the forecasts issued there then."""
    lookbacks = np.asarray(grid.lookback_windows, dtype=np.int64)
    n_ens = len(grid.ensemble_methods)
    per_ensemble_bytes = 2 * lookbacks.size * (n_warmup + n_test) * 8
    ens_chunk = max(1, min(n_ens, max_matrix_bytes // max(per_ensemble_bytes, 1)))
    for method in grid.prediction_methods:
        parts = []
        for piece in pieces:
            if method not in piece.members:
                raise ValueError(f"member predictions for prediction method {method!r} are missing")
            if method not in piece.combiners:
                raise ValueError(f"model has no combiners for prediction method {method!r}")
            m = np.asarray(piece.members[method], dtype=np.float64)
            if m.ndim != 2:
                raise ValueError(f"member predictions for {method!r} have shape {m.shape}, expected (K, rows)")
            parts.append((m, piece.combiners[method]))
        total = sum(m.shape[1] for m, _ in parts)
        if total != n_warmup + n_test:
            raise ValueError(
                f"member predictions for {method!r} cover {total} rows, expected {n_warmup + n_test} (warm-up + test)"
            )
        for start in range(0, n_ens, ens_chunk):
            ensembles = grid.ensemble_methods[start : start + ens_chunk]
            forecasts = np.stack([np.concatenate([combine(m, c, e) for m, c in parts]) for e in ensembles])
            agreement = np.stack(
                [
                    np.concatenate([member_agreement(m, f[a : a + m.shape[1]]) for (m, _), a in zip(parts, _offsets(parts))])
                    for f in forecasts
                ]
            )
            ranks = rolling_size_rank(forecasts, lookbacks)                      # (E, L, n)
            conf = (ranks * agreement[:, None, :])[:, :, n_warmup:].reshape(-1, n_test)
            fc = np.repeat(forecasts[:, None, n_warmup:], lookbacks.size, axis=1).reshape(-1, n_test)
            yield fc, conf


def _offsets(parts: list[tuple[np.ndarray, Combiners]]) -> list[int]:
    """First row of each piece in the concatenated series."""
    return [int(x) for x in np.cumsum([0] + [m.shape[1] for m, _ in parts[:-1]])]


def pool_stats(stats: np.ndarray, positions: tuple[int, ...], axis: int) -> np.ndarray:
    """The statistics of the concatenation of the segments at `positions` along `axis`: every sum,
    count and CSCV block adds up (block b of the pool = block b of each part); the drawdown
    (MAX_DD_LOG) is the largest within a part, a lower bound of the concatenation's."""
    from forex_pipeline.backtest.simulator import MAX_DD_LOG

    parts = np.take(stats, list(positions), axis=axis)
    pooled = parts.sum(axis=axis)
    pooled[..., MAX_DD_LOG] = parts[..., MAX_DD_LOG].max(axis=axis)
    return pooled


def segment_names(segments: tuple[Segment, ...]) -> tuple[str, ...]:
    """The names of segment_stats' segment axis (walk-forward folds pooled into `selection`)."""
    return tuple(name for name, _ in scored_segments(segments))


def segment_stats(
    forecasts: np.ndarray,
    confidences: np.ndarray,
    thresholds: np.ndarray,
    close: np.ndarray,
    horizon: int,
    costs: SymbolCosts,
    regime_codes: np.ndarray,
    n_regimes: int,
    segments: tuple[Segment, ...],
    max_matrix_bytes: int | None = None,
) -> np.ndarray:
    """simulate_grid on each segment on its own (positions closed at each segment's end):
    (series, thresholds, scored segments, n_regimes + 1, N_STATS), walk-forward folds pooled into
    `selection` (`segment_names` names the axis)."""
    n = close.shape[0]
    for segment in segments:
        if segment.stop > n:
            raise ValueError(f"segment {segment.name!r} [{segment.start}, {segment.stop}) exceeds the {n} test rows")
    stats = np.stack(
        [
            simulate_grid(
                forecasts[:, sg.start : sg.stop], confidences[:, sg.start : sg.stop], thresholds,
                close[sg.start : sg.stop], horizon, costs, regime_codes[sg.start : sg.stop], n_regimes, max_matrix_bytes,
            )
            for sg in segments
        ],
        axis=2,
    )
    scored = scored_segments(tuple(segments))
    if all(len(positions) == 1 for _, positions in scored):
        return stats
    return np.stack([pool_stats(stats, positions, axis=2) for _, positions in scored], axis=2)


def backtest_member_predictions(
    members: dict[str, np.ndarray] | Sequence[Piece],
    combiners: dict[str, Combiners] | None,
    n_warmup: int,
    close: np.ndarray,
    regimes: RegimeCodes,
    horizon: int,
    costs: SymbolCosts,
    grid: InferenceGridSettings,
    annualisation: float,
    max_matrix_bytes: int,
    segments: tuple[Segment, ...] | None = None,
    on_progress: InferenceProgress | None = None,
) -> pd.DataFrame:
    """The evaluation frame (EVALUATION_COLUMNS) from member predictions (K, n_warmup + n_test) per
    prediction method and their combiners, or from consecutive Pieces of several models (walk-forward,
    `combiners` None): one row per (configuration, scored segment, regime); default one segment `test`.
    `on_progress(done, total)` follows the inference configurations after each block of series."""
    configs = inference_configs(grid)
    thresholds = np.asarray(grid.confidence_thresholds, dtype=np.float64)
    n_test = close.shape[0]
    segments = whole_test(n_test) if segments is None else tuple(segments)
    pieces = [Piece(members, combiners or {})] if isinstance(members, dict) else list(members)
    n_regimes = len(regimes.names)
    blocks, done = [], 0
    for fc, conf in _series(pieces, n_warmup, n_test, grid, max_matrix_bytes):
        blocks.append(segment_stats(fc, conf, thresholds, close, horizon, costs, regimes.codes, n_regimes, segments, max_matrix_bytes))
        done += blocks[-1].shape[0] * thresholds.size  # a configuration is one (series, threshold)
        if on_progress is not None:
            on_progress(done, len(configs))
    names = segment_names(segments)
    stats = np.concatenate(blocks, axis=0).reshape(len(configs), len(names), n_regimes + 1, -1)
    return _frame(configs, stats, names, (*regimes.names, REGIME_ALL), annualisation)


def _frame(
    configs: list[InferenceConfig],
    stats: np.ndarray,
    segment_names: tuple[str, ...],
    regime_names: tuple[str, ...],
    annualisation: float,
) -> pd.DataFrame:
    """One row per (configuration, segment, regime), regime 'all' first within a segment."""
    order = [len(regime_names) - 1, *range(len(regime_names) - 1)]
    stats = stats[:, :, order, :]
    names = [regime_names[i] for i in order]
    n_cfg, n_seg, n_reg = stats.shape[:3]
    per_config = n_seg * n_reg
    columns: dict[str, object] = {
        "prediction_method": np.repeat([c.prediction_method for c in configs], per_config),
        "ensemble_method": np.repeat([c.ensemble_method for c in configs], per_config),
        "confidence_threshold": np.repeat([c.confidence_threshold for c in configs], per_config),
        "lookback_window": np.repeat([c.lookback_window for c in configs], per_config).astype(np.int64),
        "inference_config_hash": np.repeat([c.hash for c in configs], per_config),
        "regime": np.tile(names, n_cfg * n_seg),
        SEGMENT_COLUMN: np.tile(np.repeat(segment_names, n_reg), n_cfg),
    }
    columns.update(_stat_columns(stats, annualisation))
    return pd.DataFrame(columns, columns=list(EVALUATION_COLUMNS))


def _stat_columns(stats: np.ndarray, annualisation: float) -> dict[str, object]:
    """Metric and trust columns, flattened in the leading axes' order; block columns as lists."""
    out: dict[str, object] = {name: values.reshape(-1) for name, values in metrics_from_stats(stats, annualisation).items()}
    for name, values in trust_from_stats(stats).items():
        if name in BLOCK_COLUMNS:
            out[name] = values.reshape(-1, values.shape[-1]).tolist()
        else:
            out[name] = values.reshape(-1)
    return out


BASELINES: tuple[str, ...] = ("flat", "long", "short", "momentum")


def momentum_bars(trend_hours: float, base_timeframe: str) -> int:
    """The regime labels' trend span (settings.regimes.trend_hours) in bars of `base_timeframe` (at least 1)."""
    from forex_pipeline.data.timeframes import timeframe_minutes

    return max(1, round(trend_hours * 60.0 / timeframe_minutes(base_timeframe)))


def baseline_forecasts(close: np.ndarray, test_rows: np.ndarray, trend_window: int) -> np.ndarray:
    """(4, n_test) forecasts of the baselines on the test rows, in BASELINES order.

    flat: never trades; long / short: always one unit long / short; momentum: the sign of the log
    return over the last `trend_window` bars (the regime labels' trend window), from closes up to t
    only (0, i.e. no trade, before `trend_window` bars of history).
    """
    close = np.asarray(close, dtype=np.float64)
    test_rows = np.asarray(test_rows, dtype=np.int64)
    if trend_window < 1:
        raise ValueError(f"trend_window must be >= 1, got {trend_window}")
    log_close = np.log(close)
    past = test_rows - trend_window
    momentum = np.where(past >= 0, log_close[test_rows] - log_close[np.maximum(past, 0)], 0.0)
    n = test_rows.size
    return np.stack([np.zeros(n), np.ones(n), -np.ones(n), momentum])


def run_baseline_backtests(
    close: np.ndarray,
    test_rows: np.ndarray,
    regime_labels: np.ndarray,
    settings: Settings,
    symbol: str,
    horizon: int,
    base_timeframe: str,
    segments: tuple[Segment, ...] | None = None,
) -> pd.DataFrame:
    """BASELINE_COLUMNS: flat, long, short and momentum through the same simulator, costs, horizon,
    labels and segments as the inference grid (labels per close or per test row)."""
    close = np.asarray(close, dtype=np.float64)
    test_rows = _check_rows(test_rows, close.shape[0])
    regimes = encode_regimes(_test_labels(regime_labels, test_rows, close.shape[0]), (*settings.regimes.definitions, REGIME_UNCLASSIFIED))
    n_test = test_rows.size
    segments = whole_test(n_test) if segments is None else tuple(segments)
    forecasts = baseline_forecasts(close, test_rows, momentum_bars(settings.regimes.trend_hours, base_timeframe))
    stats = segment_stats(
        forecasts, np.ones_like(forecasts), np.array([0.0]), close[test_rows], horizon,
        settings.data.costs_for(symbol), regimes.codes, len(regimes.names), segments,
    )[:, 0]                                                               # (4, segments, G + 1, N_STATS)
    regime_names = (*regimes.names, REGIME_ALL)
    order = [len(regime_names) - 1, *range(len(regime_names) - 1)]
    stats = stats[:, :, order, :]
    n_seg, n_reg = stats.shape[1:3]
    columns: dict[str, object] = {
        "baseline": np.repeat(BASELINES, n_seg * n_reg),
        "regime": np.tile([regime_names[i] for i in order], len(BASELINES) * n_seg),
        SEGMENT_COLUMN: np.tile(np.repeat(segment_names(segments), n_reg), len(BASELINES)),
    }
    columns.update(_stat_columns(stats, bars_per_year(base_timeframe)))
    return pd.DataFrame(columns, columns=list(BASELINE_COLUMNS))


def noise_members(
    rng: np.random.Generator, n_members: int, n_rows: int, methods: tuple[str, ...], max_persistence: float
) -> dict[str, np.ndarray]:
    """Random member forecasts of one noise model: independent of every price, shaped like a model's.

    A common AR(1) factor with persistence phi = exp(-1 / L), L drawn log-uniformly in [1,
    max_persistence] bars (real forecasts are persistent: without persistence a random forecast
    flips almost every bar and its costs alone would make noise look worse than it is), plus 0.5 x
    an independent AR(1) per member and method, so members mostly agree as a real model's do.
    """
    from scipy.signal import lfilter

    length = float(np.exp(rng.uniform(0.0, np.log(max(max_persistence, 1.0)))))
    phi = float(np.exp(-1.0 / length))
    scale = np.sqrt(1.0 - phi * phi)
    factor = lfilter([scale], [1.0, -phi], rng.standard_normal(n_rows))
    out = {}
    for method in methods:
        own = lfilter([scale], [1.0, -phi], rng.standard_normal((n_members, n_rows)), axis=1)
        out[method] = factor[None, :] + 0.5 * own
    return out


NOISE_MAXIMA_COLUMNS: tuple[str, ...] = ("noise_model", "regime", SEGMENT_COLUMN, "best_sharpe", "best_sharpe_per_bar", "eligible")


def run_noise_backtests(
    close: np.ndarray,
    regime_labels: np.ndarray,
    settings: Settings,
    symbol: str,
    horizon: int,
    base_timeframe: str,
    segments: tuple[Segment, ...] | None = None,
    n_models: int | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """The noise baseline: `n_models` random-forecast models through the same inference grid,
    ensembles, confidence, simulator, costs, labels and segments as a real model (test closes and
    labels of the test rows). Returns NOISE_MAXIMA_COLUMNS: per (noise model, regime, segment) the
    best Sharpe over the grid's configurations with >= regimes.min_trades trades (NaN if none), i.e.
    what the selection rule would have picked from a model that knows nothing. Deterministic per
    seed; depends on the feature set (closes, labels, symbol, timeframe), the horizon, the grid and
    the evaluation settings only: compute once per (feature set, horizon) and cache.
    """
    close = _check_close_prices(close)
    n_test = close.shape[0]
    labels = np.asarray(regime_labels, dtype=object)
    if labels.shape != (n_test,):
        raise ValueError(f"regime_labels must hold one label per test close ({n_test}), got shape {labels.shape}")
    regimes = encode_regimes(labels, (*settings.regimes.definitions, REGIME_UNCLASSIFIED))
    evaluation = settings.evaluation
    n_models = evaluation.noise_models if n_models is None else int(n_models)
    rng = np.random.default_rng(evaluation.noise_seed if seed is None else seed)
    segments = whole_test(n_test) if segments is None else tuple(segments)
    grid = settings.inference_grid
    n_warmup = int(max(grid.lookback_windows))
    members_k = settings.training.members
    neutral = Combiners(np.full(members_k, 1.0 / members_k), 0.0, np.full(members_k, 1.0 / members_k))
    combiners = {m: neutral for m in grid.prediction_methods}
    year = bars_per_year(base_timeframe)
    thresholds = np.asarray(grid.confidence_thresholds, dtype=np.float64)
    min_trades = settings.regimes.min_trades
    costs = settings.data.costs_for(symbol)
    n_regimes = len(regimes.names)
    regime_names = (*regimes.names, REGIME_ALL)
    records = []
    for model in range(n_models):
        members = noise_members(rng, members_k, n_warmup + n_test, tuple(grid.prediction_methods), max(4.0 * horizon, 20.0))
        stats = np.concatenate(
            [
                segment_stats(fc, conf, thresholds, close, horizon, costs, regimes.codes, n_regimes, segments)
                for fc, conf in _series([Piece(members, combiners)], n_warmup, n_test, grid, settings.performance.backtest_max_matrix_bytes)
            ],
            axis=0,
        )
        stats = stats.reshape(-1, *stats.shape[2:])                                 # (configs, segments, G + 1, N)
        metrics = metrics_from_stats(stats, year)
        sharpe = np.where(metrics["trade_count"] >= min_trades, metrics["sharpe"], np.nan)
        sharpe = np.where(np.isfinite(sharpe), sharpe, -np.inf)
        best = sharpe.max(axis=0)                                                  # (segments, G + 1)
        eligible = np.isfinite(sharpe).sum(axis=0)
        for j, segment in enumerate(segment_names(segments)):
            for g, name in enumerate(regime_names):
                value = float(best[j, g]) if eligible[j, g] else float("nan")
                records.append((model, name, segment, value, value / np.sqrt(year), int(eligible[j, g])))
    return pd.DataFrame.from_records(records, columns=list(NOISE_MAXIMA_COLUMNS))


def _check_close_prices(close: np.ndarray) -> np.ndarray:
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1 or close.size < 2 or not (np.isfinite(close) & (close > 0)).all():
        raise ValueError("close must be a 1-d array of at least 2 finite, positive prices")
    return close


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


def _evaluate(
    models: Sequence[TrainedModel],
    matrix: FeatureMatrix,
    test_rows: np.ndarray,
    regime_labels: np.ndarray,
    settings: Settings,
    symbol: str,
    segments: tuple[Segment, ...] | None,
    on_progress: InferenceProgress | None = None,
) -> BacktestOutput:
    """Predict and backtest; with several models (walk-forward), model i forecasts from the first row of
    fold i to the first row of fold i + 1 (the first model also the warm-up rows, the last one every
    row after its fold: embargo and holdout)."""
    test_rows = _check_rows(test_rows, matrix.n_rows)
    costs = settings.data.costs_for(symbol)
    regimes = encode_regimes(
        _test_labels(regime_labels, test_rows, matrix.n_rows),
        (*settings.regimes.definitions, REGIME_UNCLASSIFIED),
    )
    grid = settings.inference_grid
    n_warmup = int(min(max(grid.lookback_windows), test_rows[0]))
    rows = np.concatenate([np.arange(test_rows[0] - n_warmup, test_rows[0], dtype=np.int64), test_rows])
    starts = [0] + [n_warmup + fold.start for fold in folds_of(segments or ())][1:]
    if len(starts) != len(models):
        raise ValueError(f"{len(models)} model(s) for {len(starts)} walk-forward fold(s): one model per fold is needed")
    bounds = list(zip(starts, [*starts[1:], rows.size]))
    started = time.perf_counter()
    pieces = [
        Piece({method: model.predict_members(matrix, rows[a:b], method) for method in grid.prediction_methods}, model.combiners)
        for model, (a, b) in zip(models, bounds)
    ]
    prediction_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _apply_thread_setting(settings.performance.numba_threads)
    frame = backtest_member_predictions(
        pieces,
        None,
        n_warmup,
        matrix.close[test_rows],
        regimes,
        models[0].model_spec.horizon,
        costs,
        grid,
        bars_per_year(matrix.base_timeframe),
        settings.performance.backtest_max_matrix_bytes,
        segments,
        on_progress,
    )
    return BacktestOutput(frame, prediction_seconds, time.perf_counter() - started)


def run_inference_backtests(
    model: TrainedModel,
    matrix: FeatureMatrix,
    test_rows: np.ndarray,
    regime_labels: np.ndarray,
    settings: Settings,
    symbol: str,
) -> BacktestOutput:
    """All inference configurations of `model` on `test_rows`, per regime (labels per matrix or test row):
    the specification's single backtest over the whole test segment, RESULT_COLUMNS (the stored contract)."""
    output = _evaluate([model], matrix, test_rows, regime_labels, settings, symbol, None)
    return BacktestOutput(output.frame.loc[:, list(RESULT_COLUMNS)], output.prediction_seconds, output.simulation_seconds)


def run_evaluation_backtests(
    model: TrainedModel | Sequence[TrainedModel],
    matrix: FeatureMatrix,
    test_rows: np.ndarray,
    regime_labels: np.ndarray,
    settings: Settings,
    symbol: str,
    segments: tuple[Segment, ...] | None = None,
    on_progress: InferenceProgress | None = None,
) -> BacktestOutput:
    """EVALUATION_COLUMNS, one row per (configuration, segment, regime), on the segments of
    settings.evaluation (selection / holdout; embargo = the model's horizon) unless `segments` are
    given. Walk-forward: one model per fold (`model` a sequence, fold i's trained on the rows before
    fold i: pipeline/walk_forward.py), the folds pooled into `selection`. Members are predicted once."""
    models = [model] if not isinstance(model, Sequence) else list(model)
    if not models:
        raise ValueError("run_evaluation_backtests needs at least one model")
    test_rows = _check_rows(test_rows, matrix.n_rows)
    if segments is None:
        segments = evaluation_segments(test_rows.size, settings.evaluation, models[0].model_spec.horizon)
    return _evaluate(models, matrix, test_rows, regime_labels, settings, symbol, tuple(segments), on_progress)


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
