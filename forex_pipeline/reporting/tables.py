"""Typed tables for the UI: one record per row, one typed value per column, no Markdown.

A table is a list of plain records whose keys are exactly the column names of its schema. The
Dagster shell turns them into `TableMetadataValue`s; no cell value (a `|`, a newline, Markdown)
can shift a column because no cell is ever joined into text with its neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forex_pipeline.keys import split_model_config_key
from forex_pipeline.models.files import ModelFileError
from forex_pipeline.reporting.charts import inference_config_label
from forex_pipeline.store.spec_files import read_spec

Cell = str | int | float | bool | None
COLUMN_TYPES = ("string", "int", "float", "bool")


@dataclass(frozen=True)
class Column:
    """One column of a typed table: its name, its type (string, int, float, bool) and what it holds."""

    name: str
    type: str
    description: str

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {COLUMN_TYPES}")


@dataclass(frozen=True)
class Table:
    """Columns and records; every record has exactly the columns' names as keys, each value of its column's type."""

    columns: tuple[Column, ...]
    records: tuple[dict[str, Cell], ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        for index, record in enumerate(self.records):
            if list(record) != names:
                raise ValueError(f"record {index} has columns {list(record)}, expected {names}")
            for column in self.columns:
                check_cell(column, record[column.name], index)


PYTHON_TYPES: Mapping[str, tuple[type, ...]] = {"string": (str,), "int": (int,), "float": (float, int), "bool": (bool,)}


def check_cell(column: Column, value: Cell, row: int) -> None:
    """Refuse a value that is not of its column's type (None is an empty cell)."""
    if value is None:
        return
    wrong_bool = isinstance(value, bool) and column.type != "bool"
    if wrong_bool or not isinstance(value, PYTHON_TYPES[column.type]):
        raise TypeError(f"record {row}, column {column.name!r}: {value!r} is not a {column.type}")


def number(value: object) -> float | None:
    """A finite float, or None for a missing, NaN or infinite value (an empty cell, never the text 'nan')."""
    if value is None:
        return None
    result = float(value)  # type: ignore[arg-type]
    return result if np.isfinite(result) else None


def model_label(artifacts_dir: Path, partition_key: str) -> str:
    """The readable name of a configuration (`EURUSD 1h 365d | rf h5 n_estimators=50`) from its spec files;
    the partition key itself when the spec files are gone, so a row is never lost for want of a name."""
    try:
        fs_key, ms_key = split_model_config_key(partition_key)
        return f"{read_spec(artifacts_dir, 'feature_set', fs_key).label} | {read_spec(artifacts_dir, 'model_spec', ms_key).label}"
    except (FileNotFoundError, ValueError, ModelFileError):
        return partition_key


BESTS_COLUMNS: tuple[Column, ...] = (
    Column("regime", "string", "market regime"),
    Column("rank", "int", "1 = best in the regime"),
    Column("model", "string", "feature set | model spec, with hyperparameters"),
    Column("config_hash", "string", "model configuration hash (first 12 characters)"),
    Column("inference", "string", "prediction/ensemble method, confidence threshold, lookback"),
    Column("sharpe", "float", "annualised Sharpe ratio in the regime on the selection segment (where the best was chosen)"),
    Column("holdout_sharpe", "float", "annualised Sharpe in the same regime on the later holdout segment (confirmation)"),
    Column("holdout_trades", "int", "trades in the regime on the holdout segment"),
    Column("improvement", "float", "score gained over the previous rank-1"),
    Column("trades", "int", "trades in the regime"),
    Column("trials", "int", "inference configurations tried in the regime"),
    Column("deflated_sharpe", "float", "deflated Sharpe ratio: probability the Sharpe is not luck among the trials"),
    Column("noise_p_value", "float", "share of random-forecast grids whose best does as well (trials accounted)"),
    Column("pbo", "float", "probability of backtest overfitting (CSCV) in the regime"),
    Column("baseline_sharpe", "float", "best of flat, long, short, momentum in the regime"),
    Column("over_baseline", "float", "Sharpe gained over the best baseline"),
    Column("significant", "bool", "deflated Sharpe, noise p-value and holdout all pass their thresholds"),
    Column("kept", "bool", "model file kept on disk"),
    Column("updated", "string", "when this rank was set (UTC)"),
    Column("partition_key", "string", "Dagster partition of the configuration"),
)


def bests_table(bests: pd.DataFrame, regimes: Sequence[str], artifacts_dir: Path) -> Table:
    """The regime bests as one typed table, regimes in `regimes` order (others after), ranks ascending."""
    if bests.empty:
        return Table(BESTS_COLUMNS, ())
    order = {name: index for index, name in enumerate(regimes)}
    frame = bests.assign(_order=bests["regime"].map(lambda r: order.get(r, len(order)))).sort_values(["_order", "regime", "rank"])
    labels: dict[str, str] = {}
    records = []
    for row in frame.to_dict("records"):
        key = str(row["partition_key"])
        if key not in labels:
            labels[key] = model_label(artifacts_dir, key)
        records.append(
            {
                "regime": str(row["regime"]),
                "rank": int(row["rank"]),
                "model": labels[key],
                "config_hash": str(row["model_config_hash"])[:12],
                "inference": inference_config_label(row),
                "sharpe": number(row["score"]),
                "holdout_sharpe": number(row.get("holdout_score")),
                "holdout_trades": None if number(row.get("holdout_trades")) is None else int(row["holdout_trades"]),
                "improvement": number(row["improvement"]),
                "trades": int(row["trade_count"]),
                "trials": int(row["n_trials"]),
                "deflated_sharpe": number(row["deflated_sharpe"]),
                "noise_p_value": number(row.get("null_p_value")),
                "pbo": number(row.get("pbo")),
                "baseline_sharpe": number(row.get("baseline_score")),
                "over_baseline": number(row.get("improvement_over_baseline")),
                "significant": bool(row.get("significant") is True or row.get("significant") == 1),
                "kept": bool(row["kept"]),
                "updated": pd.Timestamp(row["updated_at"]).strftime("%Y-%m-%d %H:%M"),
                "partition_key": key,
            }
        )
    return Table(BESTS_COLUMNS, tuple(records))
