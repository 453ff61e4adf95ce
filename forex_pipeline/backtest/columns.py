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
