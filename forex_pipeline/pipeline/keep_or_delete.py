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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from forex_pipeline.errors import OperationError
from forex_pipeline.keys import REGIME_ALL, RunStatus
from forex_pipeline.models.spec import ModelConfiguration
from forex_pipeline.settings import RegimeSettings, Settings
from forex_pipeline.store import inference_backtests, regime_best_models, regime_definitions, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.models.files import ModelFileInfo, delete_model_file
from forex_pipeline.pipeline.trust import (
    TrustReference,
    annotate,
    group_pbo,
    load_reference,
    ranking_segments,
    reference_dir,
    recorded_trial_blocks,
    reference_keys,
)


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
    configuration: ModelConfiguration,
    error: str,
    queue_id: int | None,
    dagster_run_id: str | None,
) -> None:
    """A failed configuration is recorded with its error; it holds no file and no backtests."""
    identity = training_runs.training_run_fields(configuration)
    training_runs.upsert_training_run(session, identity, queue_id=queue_id, dagster_run_id=dagster_run_id)
    training_runs.mark_run_status(session, identity["model_config_hash"], RunStatus.FAILED, error_message=error[:8000])


def _lock_regimes(session: Session, settings: Settings) -> RegimeSettings:
    """Lock every regime definition in name order (no deadlock between parallel writers) and return the
    regimes scored now; the ones the YAML added since the last seed get their row first."""
    return regime_definitions.locked_active_regimes(session, settings)


def update_bests(
    session: Session,
    new_rows: pd.DataFrame,
    standing: pd.DataFrame,
    settings: Settings,
    regimes: list[str],
    references: Mapping[tuple[str, int], TrustReference | None] | None = None,
    artifacts_dir: Path | None = None,
    catalog: RegimeSettings | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Merge `new_rows` (backtests of newly recorded models, with ids, feature_set_hash and horizon)
    into the `standing` bests, and annotate every best with its trust figures.

    Ranking and keep-or-delete use the selection segment only; each best reports its holdout figures.
    N and V of the deflated Sharpe are read from the database (every trial recorded in the regime,
    the new ones included), so every standing best is re-deflated here, and so is its noise p-value
    (it accounts for N). PBO is recomputed from the stored blocks for the (feature set, horizon)
    groups the new rows belong to (the only trial sets that changed). `references` gives each
    group's noise and baseline runs; missing groups are read from their cache files under
    `artifacts_dir` (default settings.artifacts_dir), keyed by `catalog` (the scored regimes; read
    from the database when not given).
    Returns the new bests of every regime and the new-best events (a regime whose rank 1 changed).
    When no new model enters any top N (the usual case once a grid is large) the standing rows are
    the bests as they stand (regimes/selection.outside_every_top) and only their trust figures change.
    """
    from forex_pipeline.regimes.selection import outside_every_top, select_regime_bests
    from forex_pipeline.regimes.significance import TrialMoments

    selection_segment, holdout_segment = ranking_segments(settings.evaluation)
    trials = {
        regime: TrialMoments(*moments)
        for regime, moments in inference_backtests.regime_trial_moments(session, selection_segment).items()
    }
    candidates = new_rows[new_rows["regime"].isin(regimes) & new_rows["segment"].isin([selection_segment, holdout_segment])]
    top_n, min_trades = settings.file_management.keep_top_n_per_regime, settings.regimes.min_trades
    if outside_every_top(candidates, standing, top_n, min_trades, regimes, selection_segment):
        bests, events = standing.sort_values(["regime", "rank"], kind="mergesort").reset_index(drop=True), []
    else:
        selection = select_regime_bests(
            candidates, standing, top_n=top_n, min_trades=min_trades, regimes=regimes, trials=trials,
            selection_segment=selection_segment, holdout_segment=holdout_segment,
        )
        bests, events = selection.bests, list(selection.events)
    if not bests.empty:
        groups = {(str(f), int(h)) for f, h in zip(bests["feature_set_hash"], bests["horizon"])}
        new_groups = {(str(f), int(h)) for f, h in zip(new_rows["feature_set_hash"], new_rows["horizon"])}
        found = dict(references or {})
        missing = groups - set(found)
        if missing:
            if catalog is None:
                from forex_pipeline.store.regime_definitions import active_regimes

                catalog = active_regimes(session, settings)
            found.update(_cached_references(missing, bests, settings, catalog, artifacts_dir))
        pbo = {
            group: group_pbo(recorded_trial_blocks(session, group, regimes, selection_segment, known=new_rows))
            for group in groups & new_groups
        }
        bests = annotate(bests, trials=trials, references=found, pbo=pbo, settings=settings, segment=selection_segment)
    regime_best_models.replace_bests(session, rows_by_regime(bests, regimes))
    return bests, events


def _cached_references(
    groups: set[tuple[str, int]], bests: pd.DataFrame, settings: Settings, catalog: RegimeSettings, artifacts_dir: Path | None
) -> dict[tuple[str, int], TrustReference | None]:
    """The cached reference runs of standing bests' (feature set, horizon) groups, None for those not on
    disk (`catalog`: the scored regimes, store.regime_definitions.active_regimes)."""
    from forex_pipeline.keys import split_model_config_key

    first: dict[tuple[str, int], tuple[str, str]] = {}
    for f, h, key, symbol in zip(bests["feature_set_hash"], bests["horizon"], bests["partition_key"], bests["symbol"]):
        first.setdefault((str(f), int(h)), (str(key), str(symbol)))
    keys = reference_keys({group: first[group][1] for group in groups}, settings, catalog)
    root = artifacts_dir or settings.artifacts_dir
    return {
        group: load_reference(reference_dir(root, split_model_config_key(first[group][0])[0], group[1], keys[group]))
        for group in groups
    }


def rows_for_store(rows: pd.DataFrame) -> list[dict[str, Any]]:
    fields = regime_best_models.BEST_ROW_FIELDS
    records = rows.loc[:, [c for c in fields if c in rows.columns]].to_dict("records")
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in records]


def rows_by_regime(bests: pd.DataFrame, regimes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each of `regimes`' rows of `bests` as store rows (rows_for_store), empty for a regime without bests."""
    out: dict[str, list[dict[str, Any]]] = {regime: [] for regime in regimes}
    if bests.empty:
        return out
    for regime, row in zip(bests["regime"], rows_for_store(bests)):
        if regime in out:
            out[regime].append(row)
    return out


def record_outcome(
    engine: Engine,
    *,
    settings: Settings,
    configuration: ModelConfiguration,
    model_file: ModelFileInfo,
    backtests: pd.DataFrame,
    metrics: dict[str, Any],
    training_seconds: float,
    backtest_seconds: float,
    queue_id: int | None,
    dagster_run_id: str | None,
    reference: TrustReference | None = None,
    artifacts_dir: Path | None = None,
    feature_count: int | None = None,
) -> RecordResult:
    """Write the run and its backtests, update the bests and kept flags in one transaction; then delete files.

    `reference` is the noise and baseline runs of the model's (feature set, horizon) (pipeline/trust.py);
    the other groups' are read from their cache files under `artifacts_dir`; the model path is recorded
    relative to it."""
    from forex_pipeline.models.files import resolve_model_path, stored_model_path

    store_root = Path(artifacts_dir or settings.artifacts_dir)
    identity = training_runs.training_run_fields(configuration)
    with session_scope(engine) as session:
        catalog = _lock_regimes(session, settings)
        regimes = list(catalog.definitions)
        run = training_runs.upsert_training_run(session, identity, queue_id=queue_id, dagster_run_id=dagster_run_id)
        ids = inference_backtests.write_backtests(session, run.id, backtests, replace=True, duration_seconds=backtest_seconds)
        training_runs.mark_run_status(
            session,
            identity["model_config_hash"],
            RunStatus.COMPLETED,
            training_seconds=training_seconds,
            backtest_seconds=backtest_seconds,
            metrics=_json_metrics(metrics),
            model_path=stored_model_path(model_file.path, store_root),
            model_sha256=model_file.sha256,
            model_bytes=model_file.bytes,
            dagster_run_id=dagster_run_id,
            feature_count=feature_count,
        )
        stored = inference_backtests.stored_rows(backtests, run.id, ids).rename(columns={"id": "inference_backtest_id"})
        stored["model_config_hash"] = identity["model_config_hash"]
        stored["partition_key"] = identity["partition_key"]
        stored["symbol"] = configuration.feature_set.symbol
        stored["base_timeframe"] = configuration.feature_set.base_timeframe
        stored["feature_set_hash"] = configuration.feature_set_hash
        stored["horizon"] = int(configuration.model_spec.horizon)
        standing = regime_best_models.current_bests(session)
        group = (configuration.feature_set_hash, int(configuration.model_spec.horizon))
        bests, events = update_bests(
            session, stored, standing, settings, regimes,
            references={group: reference} if reference is not None else None, artifacts_dir=artifacts_dir, catalog=catalog,
        )
        delete_files = settings.file_management.delete_unkept_models
        before = {int(i) for i in standing.get("training_run_id", [])} | {run.id}
        after = {int(i) for i in bests.get("training_run_id", [])}
        regimes_by_run: dict[int, list[str]] = {}
        for run_id, regime in zip(bests.get("training_run_id", []), bests.get("regime", [])):
            regimes_by_run.setdefault(int(run_id), []).append(str(regime))
        to_delete = training_runs.set_kept(
            session, before=before, after=after, delete_files=delete_files, best_regimes=regimes_by_run
        )
        if not delete_files:
            to_delete = []
        in_top = tuple(sorted(bests.loc[bests["training_run_id"] == run.id, "regime"].unique()))
        overall = stored[(stored["regime"] == REGIME_ALL) & (stored["segment"] == ranking_segments(settings.evaluation)[0])]["sharpe"]
        best_sharpe = float(overall.max()) if overall.notna().any() else None
    deleted_paths = tuple(str(resolve_model_path(r.model_path, store_root)) for r in to_delete if r.model_path)
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


# A run in these states belongs to a queue at work: deleting it would let the queue train it again.
UNDELETABLE_STATUSES: tuple[str, ...] = (RunStatus.PENDING, RunStatus.RUNNING)


def delete_runs(engine: Engine, settings: Settings, training_run_ids: list[int]) -> tuple[int, ...]:
    """Delete training runs, their backtests and their model files: all of them or none.

    In one transaction, under every regime's lock (so no parallel keep-or-delete can make one a best
    meanwhile): a run that is a regime best, is pending or running, or does not exist refuses the whole
    request with an OperationError naming each. Files are removed after the commit (as in
    `record_outcome`). The deleted backtests leave the trial counts of later deflated Sharpe ratios.
    Returns the ids deleted.
    """
    ids = list(dict.fromkeys(int(i) for i in training_run_ids))
    if not ids:
        raise OperationError("no training run selected to delete")
    with session_scope(engine) as session:
        _lock_regimes(session, settings)
        runs = {run.id: run for run in training_runs.get_training_runs(session, ids)}
        bests = regime_best_models.best_regimes_of_runs(session, ids)
        problems = [f"run {i} does not exist (deleted already?)" for i in ids if i not in runs]
        problems += [f"run {i} is a regime best ({', '.join(bests[i])}): it is kept" for i in ids if i in bests]
        problems += [
            f"run {i} is {runs[i].status} in a queue: cancel or finish the queue first"
            for i in ids if i in runs and runs[i].status in UNDELETABLE_STATUSES
        ]
        if problems:
            raise OperationError("nothing deleted: " + "; ".join(problems))
        training_runs.delete_training_runs(session, ids)
    for run in runs.values():
        if run.model_path and run.file_deleted_at is None:
            delete_model_file(Path(run.model_path))
    return tuple(ids)


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
    from forex_pipeline.models.files import remove_orphans

    from forex_pipeline.models.files import resolve_model_path

    with session_scope(engine) as session:
        known = training_runs.model_paths_on_disk(session)
    return remove_orphans(artifacts_dir, [resolve_model_path(p, artifacts_dir) for p in known], min_age_seconds=min_age_seconds)
