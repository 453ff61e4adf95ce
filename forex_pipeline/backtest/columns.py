"""The columns of a backtest result row: the contract between the internal loop and the
`inference_backtests` table (docs/architecture.md, "Backtest results"). No heavy imports here."""

from __future__ import annotations

CONFIG_COLUMNS: tuple[str, ...] = (
    "prediction_method",
    "ensemble_method",
    "confidence_threshold",
    "lookback_window",
    "inference_config_hash",
)
METRIC_COLUMNS: tuple[str, ...] = (
    "sharpe",
    "sortino",
    "max_drawdown",
    "total_return",
    "win_rate",
    "profit_factor",
    "trade_count",
    "exposure",
    "n_bars",
)
# Metrics that may be undefined (NaN in a frame, NULL in the database); counts never are.
NULLABLE_METRICS: tuple[str, ...] = tuple(c for c in METRIC_COLUMNS if c not in ("trade_count", "n_bars"))
RESULT_COLUMNS: tuple[str, ...] = (*CONFIG_COLUMNS, "regime", *METRIC_COLUMNS)

# ---------------------------------------------------------------------------------------------------
# Trust columns (issue 10). RESULT_COLUMNS above is what `inference_backtests` stores today (one row per
# configuration and regime over the whole test segment). The evaluation frame (backtest/run.py,
# `run_evaluation_backtests`) has one row per (configuration, regime, segment) and these columns:
#
#   segment          selection | holdout (both modes; walk-forward pools its folds into selection),
#                    test (the whole test segment, the specification's single backtest)
#   sharpe_per_bar   mean / std (ddof 1) of the regime's per-bar returns, not annualised (the DSR's SR)
#   skewness         m3 / m2^1.5 of the same returns
#   kurtosis         m4 / m2^2, non-excess (3 for a normal)
#   sum_ret .. sum_quad   sums of r, r^2, r^3, r^4: pool segments or folds exactly
#   block_sum_ret, block_sum_sq, block_n_bars   lists of CSCV_BLOCKS (16) floats: the regime's sums of
#                    r, r^2 and bar counts in 16 equal consecutive blocks of the segment, what the
#                    probability of backtest overfitting (CSCV) needs (regimes/significance.py)
#
# Attribution (every per-regime figure, the same set): a trade belongs to the regime it was entered
# in, with all its bars' returns and its costs; bars without a trade belong to their own label
# (backtest/simulator.py explains the rule and why).
SEGMENT_COLUMN = "segment"
MOMENT_COLUMNS: tuple[str, ...] = ("sharpe_per_bar", "skewness", "kurtosis", "sum_ret", "sum_sq", "sum_cube", "sum_quad")
BLOCK_COLUMNS: tuple[str, ...] = ("block_sum_ret", "block_sum_sq", "block_n_bars")
TRUST_COLUMNS: tuple[str, ...] = (*MOMENT_COLUMNS, *BLOCK_COLUMNS)
EVALUATION_COLUMNS: tuple[str, ...] = (*CONFIG_COLUMNS, "regime", SEGMENT_COLUMN, *METRIC_COLUMNS, *TRUST_COLUMNS)
# Baseline strategies (flat, long, short, momentum) and noise runs carry these instead of CONFIG_COLUMNS.
BASELINE_COLUMNS: tuple[str, ...] = ("baseline", "regime", SEGMENT_COLUMN, *METRIC_COLUMNS, *TRUST_COLUMNS)
NOISE_COLUMNS: tuple[str, ...] = ("noise_model", *EVALUATION_COLUMNS)
