"""Validate a raw bar table against named rules before it becomes a bar frame.

Rule names match the keys of settings `data.validation` (ValidationSettings): missing_columns,
timestamp, duplicates, order, non_positive, high_low, nan, price_range, time_range. Each rule's policy is `reject` (raise
BarValidationError naming the file, the first offending data row, its value and the rule; nothing is
returned, so nothing gets written) or `drop` (the offending rows are dropped and counted in the report).

Rules run in this order, each on the rows that survived the ones before it, so every dropped row is
counted under exactly one rule: timestamp, time_range, nan, non_positive, price_range, high_low,
duplicates, order. price_range and time_range use the plausible bounds in ValidationSettings.
`order` with `drop` keeps a row only if it is later than every kept row before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forex_pipeline.errors import InputError
from forex_pipeline.data.schema import BAR_COLUMNS, INDEX_NAME, PRICE_COLUMNS
from forex_pipeline.data.timestamps import TimestampParser, timestamp_parser
from forex_pipeline.settings import ValidationSettings

RULES: tuple[str, ...] = (
    "missing_columns", "timestamp", "duplicates", "order", "non_positive", "high_low", "nan", "price_range", "time_range",
)
ROW_RULES: tuple[str, ...] = ("timestamp", "time_range", "nan", "non_positive", "price_range", "high_low", "duplicates", "order")
TIMESTAMP_ALIASES: tuple[str, ...] = ("timestamp", "time", "datetime", "date")


class BarValidationError(InputError):
    """A raw bar table broke a rule whose policy is `reject`; the message names file, row, value and rule."""

    def __init__(self, source: str, rule: str, row: int | None, value: str, detail: str, count: int = 1) -> None:
        self.source = source
        self.rule = rule
        self.row = row
        self.value = value
        self.count = count
        where = "header" if row is None else f"row {row}"
        more = f" ({count} rows break this rule)" if count > 1 else ""
        super().__init__(f"{source}: {where}: rule '{rule}' failed: {detail}: {value}{more}")


@dataclass(frozen=True)
class ValidationReport:
    """What validation did to one raw table: rows in and out, rows dropped per rule."""

    source: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def total_dropped(self) -> int:
        return self.rows_in - self.rows_out

    def summary(self) -> str:
        """One line for logs and the CLI: rows in/out and non-zero drop counts."""
        drops = ", ".join(f"{rule}={n}" for rule, n in self.dropped.items() if n) or "none"
        return f"{self.source}: {self.rows_in} rows in, {self.rows_out} rows out, dropped: {drops}"


def canonical_columns(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rename columns to timestamp/open/high/low/close[/volume] (case-insensitive); reject missing ones."""
    lowered: dict[str, list[str]] = {}
    for column in raw.columns:
        lowered.setdefault(str(column).strip().lower(), []).append(str(column))
    found = [str(c) for c in raw.columns]
    for column in found:  # pandas renames a repeated CSV header `close` to `close.1`
        base, dot, suffix = column.rpartition(".")
        if dot and suffix.isdigit() and base.strip().lower() in lowered:
            raise BarValidationError(source, "missing_columns", None, f"found {found}", f"column {base!r} appears more than once")
    for name, originals in lowered.items():
        if len(originals) > 1:
            raise BarValidationError(source, "missing_columns", None, f"found {found}", f"column {name!r} appears {len(originals)} times")
    stamp_columns = [lowered[a][0] for a in TIMESTAMP_ALIASES if a in lowered]
    if len(stamp_columns) > 1:
        raise BarValidationError(
            source, "missing_columns", None, f"found {found}", f"several timestamp columns {stamp_columns}; expected exactly one"
        )
    missing = [c for c in PRICE_COLUMNS if c not in lowered]
    if not stamp_columns:
        missing.insert(0, "timestamp (or time/datetime/date)")
    if missing:
        raise BarValidationError(source, "missing_columns", None, f"found {found}", f"missing column(s) {missing}")
    rename = {stamp_columns[0]: "timestamp"}
    rename.update({lowered[c][0]: c for c in BAR_COLUMNS if c in lowered})
    return raw[list(rename)].rename(columns=rename)


def _numeric(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _format_row(table: pd.DataFrame, position: int, columns: tuple[str, ...]) -> str:
    return " ".join(f"{c}={_show(table[c].iloc[position])}" for c in columns if c in table.columns)


@dataclass
class _Checker:
    """Applies the rules one by one to the surviving rows, raising or dropping per policy."""

    table: pd.DataFrame
    source: str
    policy: ValidationSettings
    alive: np.ndarray
    dropped: dict[str, int]

    def apply(self, rule: str, bad: np.ndarray, describe: Callable[[int], tuple[str, str]]) -> None:
        """Mark `bad` rows (among the alive ones) as violating `rule`: raise or drop per policy."""
        bad = bad & self.alive
        count = int(bad.sum())
        if count == 0:
            return
        if getattr(self.policy, rule) == "reject":
            first = int(np.flatnonzero(bad)[0])
            detail, value = describe(first)
            raise BarValidationError(self.source, rule, first + 1, value, detail, count)
        self.alive &= ~bad
        self.dropped[rule] += count


def validate_bars(
    raw: pd.DataFrame,
    *,
    source: str,
    parse_timestamps: TimestampParser | None = None,
    validation: ValidationSettings | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a raw table (row i = data row i+1 of `source`) and return the bar frame and a report.

    `parse_timestamps` defaults to the generic parser with naive times read as UTC.
    """
    parse_timestamps = parse_timestamps or timestamp_parser("UTC")
    policy = validation or ValidationSettings()
    table = canonical_columns(raw, source).reset_index(drop=True)
    n = len(table)
    checker = _Checker(table, source, policy, np.ones(n, dtype=bool), {rule: 0 for rule in RULES})

    stamps = parse_timestamps(table["timestamp"])
    ts = stamps.as_unit("ns").asi8 if n else np.empty(0, dtype="int64")
    nat = np.asarray(stamps.isna())
    checker.apply(
        "timestamp", nat, lambda i: ("timestamp is unparseable or not a valid time", _show(table["timestamp"].iloc[i]))
    )

    earliest = pd.Timestamp(year=policy.earliest_year, month=1, day=1, tz="UTC").value
    latest = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).value
    checker.apply(
        "time_range",
        ~nat & ((ts < earliest) | (ts > latest)),
        lambda i: (f"timestamp outside {policy.earliest_year}-01-01 .. today", _stamp(table, stamps, i)),
    )

    values = {c: _numeric(table[c]) for c in PRICE_COLUMNS}
    values["volume"] = _numeric(table["volume"]) if "volume" in table.columns else np.zeros(n)
    nan_bad = np.zeros(n, dtype=bool)
    for column in BAR_COLUMNS:
        nan_bad |= ~np.isfinite(values[column])
    checker.apply(
        "nan", nan_bad, lambda i: ("missing, non-numeric or infinite value", _format_row(table, i, BAR_COLUMNS))
    )

    non_positive = np.zeros(n, dtype=bool)
    for column in PRICE_COLUMNS:
        non_positive |= values[column] <= 0
    non_positive |= values["volume"] < 0
    checker.apply(
        "non_positive", non_positive, lambda i: ("price <= 0 or volume < 0", _format_row(table, i, BAR_COLUMNS))
    )

    out_of_range = np.zeros(n, dtype=bool)
    for column in PRICE_COLUMNS:
        out_of_range |= (values[column] < policy.min_price) | (values[column] > policy.max_price)
    checker.apply(
        "price_range",
        out_of_range,
        lambda i: (f"price outside the plausible {policy.min_price:g} .. {policy.max_price:g}", _format_row(table, i, PRICE_COLUMNS)),
    )

    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    high_low = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
    checker.apply(
        "high_low",
        high_low,
        lambda i: ("high < max(open, close), low > min(open, close) or high < low", _format_row(table, i, PRICE_COLUMNS)),
    )

    _check_time_order(checker, ts, stamps)

    keep = checker.alive
    index = pd.DatetimeIndex(ts[keep], tz="UTC", name=INDEX_NAME) if n else pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME)
    bars = pd.DataFrame({c: values[c][keep] for c in BAR_COLUMNS}, index=index.as_unit("ns"))
    report = ValidationReport(source=source, rows_in=n, rows_out=int(keep.sum()), dropped=checker.dropped)
    return bars, report


def _stamp(table: pd.DataFrame, stamps: pd.DatetimeIndex, position: int) -> str:
    return f"{_show(table['timestamp'].iloc[position])} (UTC {stamps[position]})"


def _check_time_order(checker: _Checker, ts: np.ndarray, stamps: pd.DatetimeIndex) -> None:
    """Apply `duplicates` (same time as an earlier row) then `order` (earlier than a previous row)."""
    positions = np.flatnonzero(checker.alive)
    alive_ts = ts[positions]
    duplicated = pd.Index(alive_ts).duplicated(keep="first")
    dup_bad = np.zeros(len(ts), dtype=bool)
    dup_bad[positions[duplicated]] = True

    def describe_duplicate(i: int) -> tuple[str, str]:
        first = int(positions[np.flatnonzero(alive_ts == ts[i])[0]])
        return f"timestamp repeats row {first + 1}", _stamp(checker.table, stamps, i)

    checker.apply("duplicates", dup_bad, describe_duplicate)

    positions = np.flatnonzero(checker.alive)
    alive_ts = ts[positions]
    if len(alive_ts) < 2:
        return
    previous_max = np.maximum.accumulate(alive_ts)[:-1]
    late = np.concatenate([[False], alive_ts[1:] <= previous_max])
    order_bad = np.zeros(len(ts), dtype=bool)
    order_bad[positions[late]] = True

    def describe_order(i: int) -> tuple[str, str]:
        k = int(np.searchsorted(positions, i))
        before = int(positions[int(np.argmax(alive_ts[:k]))])
        return f"timestamp is not after row {before + 1} ({_stamp(checker.table, stamps, before)})", _stamp(checker.table, stamps, i)

    checker.apply("order", order_bad, describe_order)
