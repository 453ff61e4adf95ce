"""inference_backtests: one row per inference configuration, regime and segment of a trained model.

Rows are written in one round trip from column arrays (binary COPY on PostgreSQL, executemany on
SQLite), and the same write keeps what readers need without scanning the table: the run's summaries
(store/run_summaries.py) and the per-regime trial moments (COUNT / SUM / SUM of squares of the per-bar
Sharpe over one segment, running totals in regime_trial_moments). The other read the trust figures need
(regimes/significance.py) is the CSCV block lists of the trials of one (feature set, horizon), the set
over which the probability of backtest overfitting is computed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Text, and_, cast, delete, func, select, text
from sqlalchemy.orm import Session

from forex_pipeline.backtest.columns import CONFIG_COLUMNS, METRIC_COLUMNS
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.store import run_summaries
from forex_pipeline.store.common import dialect_insert, in_chunks, select_frame
from forex_pipeline.store.tables import (
    BACKTEST_BLOCKS,
    BACKTEST_COLUMNS,
    BACKTEST_FLOATS,
    BACKTEST_METRICS,
    BACKTEST_SEGMENT,
    CONFIRMING_SEGMENT_PREFIX,
    InferenceBacktest,
    RegimeTrialMoments,
    TrainingRun,
    json_safe,
    new_uuid,
    utcnow,
)

# Columns a frame may leave out (stored as NULL): the trust columns. Everything else is required.
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c for c in BACKTEST_COLUMNS if c in BACKTEST_FLOATS and c not in BACKTEST_METRICS) + BACKTEST_BLOCKS
_NULLABLE = frozenset((*BACKTEST_METRICS, *OPTIONAL_COLUMNS))
_FLOAT_COLUMNS = frozenset((*BACKTEST_FLOATS, "confidence_threshold"))
_INT_COLUMNS = frozenset(("lookback_window", "trade_count", "n_bars"))
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('inference_backtests', 'id')) FROM generate_series(1, :n)"


def _block_list(value: Any) -> list[float] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    values = json.loads(value) if isinstance(value, str) else value
    return np.asarray(values, dtype=np.float64).reshape(-1).tolist()


def _block_json(value: Any) -> str | None:
    """A block list as the JSON text both backends store (non-finite floats as null), None for none."""
    values = _block_list(value)
    if values is None:
        return None
    try:
        return json.dumps(values, allow_nan=False)
    except ValueError:
        return json.dumps(json_safe(values))


def _block_texts(values: list[Any]) -> list[str | None]:
    """_block_json of every value, as JSON numbers of the same floats; the usual column (lists of one
    length, every float finite, the rest missing) formatted by `_json_float_lists`."""
    present = [i for i, v in enumerate(values) if isinstance(v, (list, np.ndarray))]
    missing = all(v is None or (isinstance(v, float) and v != v) for v in values if not isinstance(v, (list, np.ndarray)))
    if present and missing:
        try:
            rows = np.asarray([values[i] for i in present], dtype=np.float64)
        except ValueError:   # ragged
            rows = None
        if rows is not None and rows.ndim == 2 and rows.shape[1] and np.isfinite(rows).all():
            out: list[str | None] = [None] * len(values)
            for i, part in zip(present, _json_float_lists(rows)):
                out[i] = part
            return out
    return [_block_json(v) for v in values]


def _json_float_lists(rows: np.ndarray) -> list[str]:
    """Each row of a 2-D array of finite floats as a JSON array text, e.g. `[1, 0.25, 1e-7]`.

    Arrow's float-to-string cast writes each number's shortest round-trip digits (double-conversion),
    as Python's repr does, so json.loads gives back the same floats (-0.0 reads as 0); it formats a
    model's 540 x 16 block sums in about 1 ms where json.dumps takes 5 (about 10 ms of the 100 ms a
    model's record may take, issue 14).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n, k = rows.shape
    numbers = pc.cast(pa.array(rows.reshape(-1)), pa.string())
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), numbers)
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ", "), "]", "").to_pylist()


def _checked_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every contract column (absent trust columns as NaN / None) in contract order,
    after checking its columns and required values."""
    missing = [c for c in BACKTEST_COLUMNS if c not in frame.columns and c not in OPTIONAL_COLUMNS]
    extra = [c for c in frame.columns if c not in BACKTEST_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"backtest frame columns: missing {missing}, unexpected {extra}; expected {list(BACKTEST_COLUMNS)}"
        )
    nulls = [c for c in BACKTEST_COLUMNS if c in frame.columns and c not in _NULLABLE and frame[c].isna().any()]
    if nulls:
        raise ValueError(f"backtest frame has missing values in required column(s) {nulls}")
    absent = {c: (None if c in BACKTEST_BLOCKS else np.nan) for c in BACKTEST_COLUMNS if c not in frame.columns}
    return frame.assign(**absent).loc[:, list(BACKTEST_COLUMNS)].reset_index(drop=True)


def _column_values(frame: pd.DataFrame) -> dict[str, list[Any] | np.ndarray]:
    """Per contract column, the values the drivers take: floats (NaN = NULL), ints, str, blocks as JSON text."""
    out: dict[str, list[Any] | np.ndarray] = {}
    for name in BACKTEST_COLUMNS:
        if name in BACKTEST_BLOCKS:
            out[name] = _block_texts(frame[name].tolist())
        elif name in _FLOAT_COLUMNS:
            out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        elif name in _INT_COLUMNS:
            out[name] = frame[name].to_numpy(dtype=np.int64)
        else:
            out[name] = [str(v) for v in frame[name].tolist()]
    return out


def _insert_postgresql(session: Session, training_run_id: int, values: dict[str, Any], n: int) -> np.ndarray:
    """Binary COPY of the rows with ids taken from the table's sequence first (one round trip each)."""
    from sqlalchemy.exc import IntegrityError

    from forex_pipeline.store.pg_copy import CopyColumn, copy_columns

    ids = np.fromiter(session.scalars(text(_NEXT_IDS), {"n": n}), dtype=np.int64, count=n)
    columns = [
        CopyColumn("id", "int4", ids),
        CopyColumn("training_run_id", "int4", np.full(n, training_run_id)),
        CopyColumn("created_at", "timestamptz", utcnow()),
    ]
    for name in BACKTEST_COLUMNS:
        if name in BACKTEST_BLOCKS:
            columns.append(CopyColumn(name, "jsonb", values[name]))
        elif name in _FLOAT_COLUMNS:
            columns.append(CopyColumn(name, "float8", values[name]))
        elif name in _INT_COLUMNS:
            columns.append(CopyColumn(name, "int4", values[name]))
        else:
            columns.append(CopyColumn(name, "text", values[name]))
    documents = values.get("documents")
    if documents is not None:
        for name in SPEC_DOCUMENT_COLUMNS:
            kind = "float8" if name == "backtest_duration_seconds" else "text" if name == "backtest_uuid" else "jsonb"
            column = documents[name]
            if kind == "float8":
                column = np.asarray([np.nan if v is None else v for v in column], dtype=np.float64)
            columns.append(CopyColumn(name, kind, column))
    connection = session.connection()
    try:
        copy_columns(connection.connection.dbapi_connection, InferenceBacktest.__tablename__, columns, n)
    except Exception as exc:
        if getattr(exc, "pgcode", "") and str(exc.pgcode).startswith("23"):   # integrity_constraint_violation
            raise IntegrityError(f"COPY {InferenceBacktest.__tablename__}", None, exc) from exc
        raise
    return ids


def _insert_sqlite(session: Session, training_run_id: int, values: dict[str, Any], n: int) -> np.ndarray:
    """One executemany of plain values (blocks already JSON text, so no per-value type processing);
    SQLite numbers the new rows max(id) + 1, + 2, ... in order (single writer), so the run's n highest
    ids are the rows in frame order."""
    documents = values.get("documents")
    columns = ["training_run_id", "created_at", *BACKTEST_COLUMNS, *(SPEC_DOCUMENT_COLUMNS if documents else ())]
    cells = [
        [training_run_id] * n,
        [utcnow().replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")] * n,   # UTCDateTime's storage
        *(
            [None if v != v else v for v in values[c].tolist()] if c in _FLOAT_COLUMNS
            else values[c].tolist() if c in _INT_COLUMNS
            else values[c]
            for c in BACKTEST_COLUMNS
        ),
        *((documents[c] for c in SPEC_DOCUMENT_COLUMNS) if documents else ()),
    ]
    placeholders = ", ".join("?" * len(columns))
    session.connection().exec_driver_sql(
        f"INSERT INTO {InferenceBacktest.__tablename__} ({', '.join(columns)}) VALUES ({placeholders})", list(zip(*cells))
    )
    newest = session.scalars(
        select(InferenceBacktest.id)
        .where(InferenceBacktest.training_run_id == training_run_id)
        .order_by(InferenceBacktest.id.desc())
        .limit(n)
    ).all()
    return np.asarray(newest[::-1], dtype=np.int64)


def write_backtests(
    session: Session,
    training_run_id: int,
    frame: pd.DataFrame,
    *,
    replace: bool = False,
    duration_seconds: float | None = None,
) -> np.ndarray:
    """Insert one model's backtest rows in one round trip (binary COPY on PostgreSQL, executemany on
    SQLite) and bring its run summaries and the regimes' trial moments up to date; returns the new
    rows' ids in frame order.

    `frame` has the columns of backtest/columns.py EVALUATION_COLUMNS (the trust columns may be left
    out: NULL; NaN metrics are stored as NULL). With replace=True the run's earlier rows (and any
    regime bests pointing at them) are deleted first and taken out of the trial moments. Each
    configuration's `all` rows carry the specification's JSON documents (configuration_documents;
    `duration_seconds` is the model's internal-loop time).
    """
    frame = _checked_frame(frame)
    if session.get(TrainingRun, training_run_id) is None:
        raise LookupError(f"no training run with id {training_run_id}")
    if replace:
        _forget_backtests(session, training_run_id)
    if frame.empty:
        return np.empty(0, dtype=np.int64)
    values = _column_values(frame)
    values["documents"] = configuration_documents(frame, duration_seconds)
    insert_rows = _insert_postgresql if session.get_bind().dialect.name == "postgresql" else _insert_sqlite
    ids = insert_rows(session, training_run_id, values, len(frame))
    _add_trial_moments(session, trial_moment_deltas(frame))
    summaries = run_summaries.summarise(frame, ids)
    run_summaries.merge_summaries(session, training_run_id, summaries, existing={} if replace else None)
    return ids


def stored_rows(frame: pd.DataFrame, training_run_id: int, ids: np.ndarray) -> pd.DataFrame:
    """The rows write_backtests just stored, as get_backtests would read them back (id, training_run_id,
    the contract columns; NULL -> NaN, blocks as the lists given), built from the frame, not a query."""
    checked = _checked_frame(frame)
    columns: dict[str, Any] = {"id": np.asarray(ids, dtype=np.int64), "training_run_id": training_run_id}
    for name in BACKTEST_COLUMNS:
        if name in _FLOAT_COLUMNS:
            columns[name] = pd.to_numeric(checked[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            columns[name] = checked[name].to_numpy()
    return pd.DataFrame(columns)


INFERENCE_PARAMS: tuple[str, ...] = tuple(c for c in CONFIG_COLUMNS if c != "inference_config_hash")


SPEC_DOCUMENT_COLUMNS: tuple[str, ...] = (
    "backtest_uuid", "inference_params", "backtest_metrics", "regime_metrics", "backtest_duration_seconds",
)


def configuration_documents(frame: pd.DataFrame, duration_seconds: float | None) -> dict[str, list[Any]]:
    """Per row of `frame`, the specification's per-configuration fields (docs/spec_mapping.md): each
    configuration's `all` row of each segment gets backtest_uuid, inference_params, backtest_metrics,
    regime_metrics ({regime: metrics} of the same segment; JSON text, NaN as null) and
    backtest_duration_seconds (the model's internal-loop time shared equally by its configurations,
    which run in one vectorised pass); per-regime rows keep them NULL."""
    n = len(frame)
    out: dict[str, list[Any]] = {name: [None] * n for name in SPEC_DOCUMENT_COLUMNS}
    if n == 0:
        return out
    metrics = _json_objects(frame, METRIC_COLUMNS)
    params = _json_objects(frame, INFERENCE_PARAMS)
    regimes = [str(r) for r in frame["regime"].tolist()]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(frame["inference_config_hash"].tolist(), frame[BACKTEST_SEGMENT].tolist())):
        groups.setdefault(key, []).append(i)
    n_configurations = len({key[0] for key in groups}) or 1
    share = None if duration_seconds is None else float(duration_seconds) / n_configurations
    names = {regime: json.dumps(regime) for regime in set(regimes)}
    for rows in groups.values():
        overall = [i for i in rows if regimes[i] == REGIME_ALL]
        if not overall:
            continue
        i = overall[0]
        out["backtest_uuid"][i] = new_uuid()
        out["inference_params"][i] = params[i]
        out["backtest_metrics"][i] = metrics[i]
        out["regime_metrics"][i] = "{" + ", ".join(f"{names[regimes[j]]}: {metrics[j]}" for j in rows if regimes[j] != REGIME_ALL) + "}"
        out["backtest_duration_seconds"][i] = share
    return out


def _json_objects(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """Per row of `frame`, the JSON object text {column: value} of `columns` (non-finite floats as null),
    built column-wise by Arrow: json.dumps of 675 records took 6 ms of a model's record (issue 14)."""
    import pyarrow.compute as pc

    parts: list[Any] = []
    for k, name in enumerate(columns):
        parts += [("{" if k == 0 else ", ") + json.dumps(name) + ": ", _json_texts(frame[name])]
    return pc.binary_join_element_wise(*parts, "}", "").to_pylist()


def _json_texts(column: pd.Series) -> Any:
    """A column's values as JSON texts in an Arrow string array: numbers in their shortest round-trip
    digits (`_json_float_lists`), non-finite floats and missing values as null, text through json.dumps."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_bool_dtype(column.dtype):
        values: Any = pa.array(["true" if v else "false" for v in column.tolist()], pa.string())
    elif pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any():
        values = pc.cast(pa.array(column.to_numpy(dtype=np.int64)), pa.string())
    elif pd.api.types.is_float_dtype(column.dtype):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        values = pc.cast(pa.array(numbers, mask=~np.isfinite(numbers)), pa.string())
    else:
        cells = [None if pd.isna(v) else v for v in column.tolist()]
        texts = {v: json.dumps(json_safe(v)) for v in set(cells) if v is not None}
        values = pa.array([None if v is None else texts[v] for v in cells], pa.string())
    return pc.fill_null(values, "null")


def batch_insert_backtests(
    session: Session,
    training_run_id: int,
    frame: pd.DataFrame,
    *,
    replace: bool = False,
    duration_seconds: float | None = None,
) -> int:
    """write_backtests, returning how many rows were written."""
    return len(write_backtests(session, training_run_id, frame, replace=replace, duration_seconds=duration_seconds))


def trial_moment_deltas(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (regime, segment) of a frame's rows (not 'all'): the trials, finite per-bar Sharpes and their
    sum and sum of squares it adds to regime_trial_moments. Grouped on one integer code per (regime,
    segment) in sorted order: the same groupby sums, row order and all, without string keys."""
    regimes, segments = frame["regime"].tolist(), frame["segment"].tolist()
    keep = np.flatnonzero([r != REGIME_ALL for r in regimes])
    if not len(keep):
        return []
    keys = sorted({(regimes[i], segments[i]) for i in keep})
    code = {key: j for j, key in enumerate(keys)}
    sr = pd.to_numeric(frame["sharpe_per_bar"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)[keep]
    codes = np.fromiter((code[(regimes[i], segments[i])] for i in keep), dtype=np.int64, count=len(keep))
    grouped = pd.DataFrame({"key": codes, "sr": sr, "sq": sr * sr}).groupby("key", sort=True)
    sums, finite, trials = grouped[["sr", "sq"]].sum(), grouped["sr"].count(), grouped.size()
    return [
        {"b_regime": str(keys[j][0]), "b_segment": str(keys[j][1]), "b_trials": int(n), "b_finite": int(n_finite),
         "b_sum": float(total), "b_sum_sq": float(total_sq)}
        for j, n, n_finite, total, total_sq in zip(
            sums.index.tolist(), trials.tolist(), finite.tolist(), sums["sr"].tolist(), sums["sq"].tolist()
        )
    ]


def _add_trial_moments(session: Session, deltas: list[dict[str, Any]]) -> None:
    """Add (or, negated, take away) trial moment deltas: one INSERT .. ON CONFLICT DO UPDATE of every
    (regime, segment), a missing row starting from zero."""
    if not deltas:
        return
    table = RegimeTrialMoments.__table__
    statement = dialect_insert(session, table)
    added = statement.excluded
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["regime", "segment"],
            set_={
                "trials": table.c.trials + added.trials,
                "finite_trials": table.c.finite_trials + added.finite_trials,
                "sum_sharpe_per_bar": table.c.sum_sharpe_per_bar + added.sum_sharpe_per_bar,
                "sum_sq_sharpe_per_bar": table.c.sum_sq_sharpe_per_bar + added.sum_sq_sharpe_per_bar,
            },
        ),
        [
            {"regime": d["b_regime"], "segment": d["b_segment"], "trials": d["b_trials"], "finite_trials": d["b_finite"],
             "sum_sharpe_per_bar": d["b_sum"], "sum_sq_sharpe_per_bar": d["b_sum_sq"]}
            for d in deltas
        ],
    )


def _forget_backtests(session: Session, training_run_id: int) -> None:
    """Delete a run's rows and summaries and take its trials out of the moments (a re-recorded run)."""
    test = InferenceBacktest
    sr = test.sharpe_per_bar
    old = session.execute(
        select(test.regime, test.segment, func.count(), func.count(sr), func.sum(sr), func.sum(sr * sr))
        .where(test.training_run_id == training_run_id)
        .group_by(test.regime, test.segment)
    ).all()
    if not old:   # no rows, hence no summaries (they are written and deleted with the rows)
        return
    _add_trial_moments(session, [
        {"b_regime": regime, "b_segment": segment, "b_trials": -int(n), "b_finite": -int(n_finite),
         "b_sum": -float(total or 0.0), "b_sum_sq": -float(total_sq or 0.0)}
        for regime, segment, n, n_finite, total, total_sq in old if regime != REGIME_ALL
    ])
    run_summaries.delete_summaries(session, training_run_id)
    session.execute(delete(test).where(test.training_run_id == training_run_id))


def get_backtests(session: Session, training_run_id: int, segments: Iterable[str] | None = None) -> pd.DataFrame:
    """A run's backtest rows (id, training_run_id and the contract columns; NULL -> NaN, blocks as lists),
    optionally only the given segments."""
    columns = ["id", "training_run_id", *BACKTEST_COLUMNS]
    statement = select(*(getattr(InferenceBacktest, c) for c in columns)).where(
        InferenceBacktest.training_run_id == training_run_id
    )
    if segments is not None:
        statement = statement.where(InferenceBacktest.segment.in_(list(segments)))
    return select_frame(session, statement.order_by(InferenceBacktest.id), columns, float_columns=BACKTEST_FLOATS)


def not_confirming(table: Any = InferenceBacktest) -> Any:
    """Rows a figure may rank on: every segment but the holdouts (`holdout`, and `holdout_k` of older walk-forward rows),
    which only confirm a best and never choose one. Legacy `test` rows count as ranked."""
    return ~table.segment.like(f"{CONFIRMING_SEGMENT_PREFIX}%")


def regime_trial_moments(session: Session, segment: str) -> dict[str, tuple[int, int, float, float]]:
    """Per regime (not 'all'): (trials, trials with a per-bar Sharpe, SUM(sharpe_per_bar),
    SUM(sharpe_per_bar^2)) over every recorded row of `segment`.

    These are N and the sums behind V of the deflated Sharpe (regimes/significance.py TrialMoments),
    read from the running totals every backtest write keeps (regime_trial_moments), one row a regime.
    """
    moments = RegimeTrialMoments
    statement = (
        select(moments.regime, moments.trials, moments.finite_trials, moments.sum_sharpe_per_bar, moments.sum_sq_sharpe_per_bar)
        .where(moments.segment == segment, moments.regime != REGIME_ALL, moments.trials > 0)
        .order_by(moments.regime)
    )
    return {
        str(regime): (int(n), int(n_finite), float(total), float(total_sq))
        for regime, n, n_finite, total, total_sq in session.execute(statement)
    }


def _trial_set(feature_set_hash: str, horizon: int, regimes: Iterable[str], segment: str) -> Any:
    """The WHERE clause of one trial set: rows of `segment` in `regimes` of the runs of one (feature
    set, horizon) that carry blocks (the caller joins TrainingRun)."""
    test, run = InferenceBacktest, TrainingRun
    return and_(
        run.feature_set_hash == feature_set_hash,
        run.horizon == int(horizon),
        test.segment == segment,
        test.regime.in_([r for r in dict.fromkeys(regimes) if r != REGIME_ALL]),
        test.block_sum_ret.is_not(None),
    )


def trial_blocks(
    session: Session,
    feature_set_hash: str,
    horizon: int,
    regimes: Iterable[str],
    segment: str,
    run_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """The CSCV inputs of every trial of one (feature set, horizon) in `regimes` on `segment`:
    regime, training_run_id, inference_config_hash and the three block lists (rows without blocks
    are left out), ordered by regime, run, configuration; only the runs `run_ids` when given. Trials
    of one feature set and horizon share their segments, hence their blocks."""
    test, run = InferenceBacktest, TrainingRun
    regimes = [r for r in dict.fromkeys(regimes) if r != REGIME_ALL]
    columns = ["regime", "training_run_id", "inference_config_hash", *BACKTEST_BLOCKS]
    run_chunks = [None] if run_ids is None else list(in_chunks(sorted({int(i) for i in run_ids})))
    rows: list[Any] = []
    for chunk in in_chunks(regimes):
        for runs in run_chunks:
            where = _trial_set(feature_set_hash, horizon, chunk, segment)
            if runs is not None:
                where = and_(where, test.training_run_id.in_(list(runs)))
            statement = (
                select(
                    test.regime, test.training_run_id, test.inference_config_hash,
                    *(cast(getattr(test, c), Text) for c in BACKTEST_BLOCKS),
                )
                .join(run, run.id == test.training_run_id)
                .where(where)
                .order_by(test.regime, test.training_run_id, test.inference_config_hash)
            )
            rows.extend(session.execute(statement).all())
    # The block lists are read as JSON text and parsed in one call per column (a group holds tens of
    # thousands of them: per-value JSON processing was most of a keep-or-delete transaction).
    rows = [r for r in rows if r[3] is not None and r[3] != "null"]
    frame = pd.DataFrame({name: [r[i] for r in rows] for i, name in enumerate(columns[:3])}, columns=columns[:3])
    for i, name in enumerate(BACKTEST_BLOCKS, start=3):
        texts = [r[i] if r[i] is not None and r[i] != "null" else "null" for r in rows]
        parsed = _float_lists_of_json(texts)
        values = json.loads("[" + ",".join(texts) + "]") if parsed is None else parsed
        cells = np.empty(len(values), dtype=object)
        for k, value in enumerate(values):
            cells[k] = value
        frame[name] = cells
    return frame.loc[:, columns]


def _float_lists_of_json(texts: list[str]) -> list[np.ndarray] | None:
    """The inverse of `_json_float_lists`: JSON arrays of numbers as float arrays, parsed by Arrow's
    string-to-float cast (a group's 20,000 to 65,000 block lists took 0.3 s of json.loads, the read a
    worker makes the first time it scores a group); None when some text is anything else (a null
    inside, a nested list, `null` itself), which json.loads then reads."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not texts:
        return []
    strings = pa.array(texts, pa.string())
    if not (pc.all(pc.starts_with(strings, "[")).as_py() and pc.all(pc.ends_with(strings, "]")).as_py()):
        return None
    parts = pc.split_pattern(pc.utf8_slice_codeunits(strings, 1, -1), ",")
    try:
        values = pc.cast(pc.utf8_trim_whitespace(pc.list_flatten(parts)), pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    offsets = parts.offsets.to_numpy()
    widths = np.diff(offsets)
    if (widths == widths[0]).all():   # the usual group: every list of one length, rows of one 2-D array
        return list(values.reshape(len(texts), int(widths[0])))
    return np.split(values, offsets[1:-1])


def trial_block_versions(
    session: Session, feature_set_hash: str, horizon: int, regimes: Iterable[str], segment: str
) -> dict[int, tuple[int, int, float | None]]:
    """Per training run in the trial set of `trial_blocks`: (rows, largest row id, SUM(sharpe_per_bar)),
    an aggregate that changes whenever the run's stored trials do (re-recorded rows get new ids), so
    a reader can keep the blocks it has already read and fetch only new or changed runs."""
    test, run = InferenceBacktest, TrainingRun
    out: dict[int, tuple[int, int, float | None]] = {}
    for chunk in in_chunks([r for r in dict.fromkeys(regimes) if r != REGIME_ALL]):
        statement = (
            select(test.training_run_id, func.count(), func.max(test.id), func.sum(test.sharpe_per_bar))
            .join(run, run.id == test.training_run_id)
            .where(_trial_set(feature_set_hash, horizon, chunk, segment))
            .group_by(test.training_run_id)
        )
        for run_id, count, last_id, total in session.execute(statement):
            version = (int(count), int(last_id), None if total is None else float(total))
            previous = out.get(int(run_id))
            if previous is not None:        # a run's regimes spread over two chunks: merge the aggregates
                totals = [t for t in (previous[2], version[2]) if t is not None]
                version = (previous[0] + version[0], max(previous[1], version[1]), sum(totals) if totals else None)
            out[int(run_id)] = version
    return out
