"""Keep or delete: record one trained model and its backtests, update the regime bests, decide which
model files stay, all in ONE database transaction.

Order independence: each regime's bests are the top N of all models seen so far under a total
order (score, then trades, then hash), and top_N(S + m) == top_N(top_N(S) + m), so models recorded
one at a time, in any order or from parallel runs, end in the same bests. Parallel writers are
serialised by a lock taken first in the transaction (row locks on regime_definitions on
PostgreSQL; SQLite's single writer). Files are deleted only after the commit: a crash in between
leaves a file the database already calls deleted, which `cleanup_files` removes on recovery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.settings import Settings
from forex_pipeline.store import repository
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.model_files import ModelFileInfo, delete_model_file


@dataclass(frozen=True)
class RecordResult:
    """The outcome of one keep-or-delete transaction."""

    training_run_id: int
    kept: bool
    regimes_in_top: tuple[str, ...]
    best_sharpe: float | None
    deleted_run_ids: tuple[int, ...]
    new_best_events: tuple[dict[str, Any], ...] = ()
    deleted_paths: tuple[str, ...] = field(default=())


def record_failure(
    session: Session,
    *,
    feature_set: FeatureSetSpec,
    model_spec: ModelSpec,
    error: str,
    queue_id: int | None,
    dagster_run_id: str | None,
) -> None:
    """A failed configuration is recorded with its error; it holds no file and no backtests."""
    identity = repository.training_run_fields(feature_set, model_spec)
    repository.upsert_training_run(session, identity, queue_id=queue_id, dagster_run_id=dagster_run_id)
    repository.mark_run_status(session, identity["model_config_hash"], "failed", error_message=error[:8000])


def _regime_names(session: Session, settings: Settings) -> list[str]:
    """The regimes scored now (regime_catalog); the ones the YAML added since the last seed get their row."""
    from forex_pipeline.regimes.catalog import active_regimes

    repository.seed_regime_definitions(session, settings)
    return list(active_regimes(session, settings).definitions)


def _lock_all_regimes(session: Session, regimes: list[str]) -> None:
    """Take every regime's lock in name order (no deadlock between parallel writers)."""
    for regime in sorted(regimes):
        repository.lock_regime(session, regime)


def update_bests(
    session: Session, new_rows: pd.DataFrame, standing: pd.DataFrame, settings: Settings, regimes: list[str]
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Merge `new_rows` (backtests of newly recorded models, with ids) into the `standing` bests.

    Returns the new bests of every regime and the new-best events (a regime whose rank 1 changed).
    """
    from forex_pipeline.regimes.selection import select_regime_bests

    selection = select_regime_bests(
        new_rows[new_rows["regime"].isin(regimes)],
        standing,
        top_n=settings.file_management.keep_top_n_per_regime,
        min_trades=settings.regimes.min_trades,
        regimes=regimes,
    )
    bests = selection.bests
    for regime in regimes:
        rows = bests[bests["regime"] == regime]
        repository.replace_regime_bests(session, regime, rows_for_store(rows))
    return bests, list(selection.events)


def update_kept_flags(session: Session, before: set[int], after: set[int]) -> list[repository.TrainingRunRecord]:
    """kept := in the new bests, for the runs whose fate can change (old bests, the new model, new bests);
    returns the runs that just left every top N and still hold a file. Touches O(regimes x top N) rows,
    not the whole table, so recording stays cheap with tens of thousands of models."""
    from sqlalchemy import select, update

    from forex_pipeline.store.tables import TrainingRun

    dropped = sorted(before - after)
    if after:
        session.execute(update(TrainingRun).where(TrainingRun.id.in_(sorted(after))).values(kept=True))
    if not dropped:
        return []
    session.execute(update(TrainingRun).where(TrainingRun.id.in_(dropped)).values(kept=False))
    rows = session.scalars(
        select(TrainingRun)
        .where(TrainingRun.id.in_(dropped), TrainingRun.model_path.is_not(None), TrainingRun.file_deleted_at.is_(None))
        .order_by(TrainingRun.id)
        .execution_options(populate_existing=True)
    )
    return [repository.get_training_run(session, row.id) for row in rows]


def rows_for_store(rows: pd.DataFrame) -> list[dict[str, Any]]:
    fields = repository.BEST_ROW_FIELDS
    records = rows.loc[:, [c for c in fields if c in rows.columns]].to_dict("records")
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in records]


def record_outcome(
    engine: Engine,
    *,
    settings: Settings,
    feature_set: FeatureSetSpec,
    model_spec: ModelSpec,
    model_file: ModelFileInfo,
    backtests: pd.DataFrame,
    metrics: dict[str, Any],
    training_seconds: float,
    backtest_seconds: float,
    queue_id: int | None,
    dagster_run_id: str | None,
) -> RecordResult:
    """Write the run and its backtests, update the bests and kept flags in one transaction; then delete files."""
    identity = repository.training_run_fields(feature_set, model_spec)
    with session_scope(engine) as session:
        regimes = _regime_names(session, settings)
        _lock_all_regimes(session, regimes)
        run = repository.upsert_training_run(session, identity, queue_id=queue_id, dagster_run_id=dagster_run_id)
        repository.batch_insert_backtests(session, run.id, backtests, replace=True)
        repository.mark_run_status(
            session,
            identity["model_config_hash"],
            "completed",
            training_seconds=training_seconds,
            backtest_seconds=backtest_seconds,
            metrics=_json_metrics(metrics),
            model_path=str(model_file.path),
            model_sha256=model_file.sha256,
            model_bytes=model_file.bytes,
            dagster_run_id=dagster_run_id,
        )
        stored = repository.get_backtests(session, run.id)
        stored = stored.rename(columns={"id": "inference_backtest_id"})
        stored["model_config_hash"] = identity["model_config_hash"]
        stored["partition_key"] = identity["partition_key"]
        stored["base_timeframe"] = feature_set.base_timeframe
        standing = repository.current_bests(session)
        bests, events = update_bests(session, stored, standing, settings, regimes)
        to_delete = update_kept_flags(
            session,
            before={int(i) for i in standing.get("training_run_id", [])} | {run.id},
            after={int(i) for i in bests.get("training_run_id", [])},
        )
        if settings.file_management.delete_unkept_models:
            for record in to_delete:
                repository.mark_file_deleted(session, record.id)
        else:
            to_delete = []
        in_top = tuple(sorted(bests.loc[bests["training_run_id"] == run.id, "regime"].unique()))
        overall = stored[stored["regime"] == "all"]["sharpe"]
        best_sharpe = float(overall.max()) if overall.notna().any() else None
    deleted_paths = tuple(str(r.model_path) for r in to_delete if r.model_path)
    for path in deleted_paths:
        delete_model_file(Path(path))
    return RecordResult(
        training_run_id=run.id,
        kept=bool(in_top),
        regimes_in_top=in_top,
        best_sharpe=best_sharpe,
        deleted_run_ids=tuple(r.id for r in to_delete),
        new_best_events=tuple(events),
        deleted_paths=deleted_paths,
    )


def _json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = number if number == number and abs(number) != float("inf") else None
    return out


def cleanup_files(engine: Engine, artifacts_dir: Path, *, min_age_seconds: float) -> list[Path]:
    """Remove model files the database does not hold as kept (crash leftovers, deleted-but-present files)."""
    from forex_pipeline.store.model_files import remove_orphans
    from forex_pipeline.store.tables import TrainingRun
    from sqlalchemy import select

    with session_scope(engine) as session:
        known = session.scalars(
            select(TrainingRun.model_path).where(
                TrainingRun.model_path.is_not(None), TrainingRun.file_deleted_at.is_(None)
            )
        ).all()
    return remove_orphans(artifacts_dir, [Path(p) for p in known], min_age_seconds=min_age_seconds)
