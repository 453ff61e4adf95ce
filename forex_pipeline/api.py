"""The public Python API for notebooks and scripts, under the specification's names.

Every function calls the same core functions as the `forex-pipeline` command (grid expansion,
the queue lifecycle and worker, the store's repositories, checkpoints, the regime labeller), so a
notebook and the CLI always agree. Storage comes from the settings (FOREX_SETTINGS, DAGSTER_HOME,
FOREX_DATABASE_URL, FOREX_ARTIFACTS_DIR); the database is migrated to head on first use.
examples/api_example.py drives a small grid end to end; docs/api.md lists the functions.

    from forex_pipeline import api
    grid = api.generate_config_grid("examples/grids/demo.yaml")
    queue_id = api.submit_queue(grid.spec)
    api.run_queue(queue_id)
    api.evaluate_regime_improvements()
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from forex_pipeline.grid.expand import Grid as ExpandedGrid
    from forex_pipeline.grid.spec import GridSpec
    from forex_pipeline.settings import Settings
    from forex_pipeline.store.training_queue import QueueRecord

__all__ = [
    "ConfigGrid",
    "backtest_all_inference_configs",
    "cancel_queue",
    "classify_regime",
    "compute_config_hash",
    "config_exists_in_db",
    "evaluate_regime_improvements",
    "generate_config_grid",
    "list_checkpoints",
    "pause_queue",
    "queue_status",
    "resume_from_checkpoint",
    "resume_queue",
    "run_queue",
    "save_checkpoint",
    "submit_queue",
    "training_history",
]


def _settings() -> Settings:
    from forex_pipeline.settings import get_settings

    return get_settings()


@lru_cache(maxsize=4)
def _migrated(url: str) -> Engine:
    from forex_pipeline.store.db import get_engine, upgrade

    upgrade(url)
    return get_engine(url)


def _engine() -> Engine:
    return _migrated(_settings().database_url)


@dataclass(frozen=True)
class ConfigGrid:
    """A validated, expanded grid: its spec, its model configurations in grid order and its hash."""

    spec: GridSpec
    expanded: ExpandedGrid

    @property
    def configurations(self) -> list[Any]:
        return list(self.expanded.configurations)

    @property
    def config_hashes(self) -> list[str]:
        """The specification's config_hash of every configuration (training_runs.config_hash)."""
        return [c.model_config_hash for c in self.expanded.configurations]

    def __len__(self) -> int:
        return len(self.expanded.configurations)


def generate_config_grid(grid: str | Path | dict[str, Any]) -> ConfigGrid:
    """Validate and expand a grid (a YAML file or its mapping) into its model configurations, as
    `forex-pipeline grid plan` does; a bad grid raises InputError naming the field."""
    from forex_pipeline.grid.expand import expand_grid, load_grid_spec, parse_grid_spec

    spec = load_grid_spec(Path(grid)) if isinstance(grid, (str, Path)) else parse_grid_spec(grid)
    return ConfigGrid(spec, expand_grid(spec))


def compute_config_hash(config: Any) -> str:
    """The one canonical sha256 of a configuration (a mapping, or a spec with `.canonical()`), the
    hash every table and file uses (forex_pipeline/hashing.py)."""
    from forex_pipeline.hashing import config_hash

    return config_hash(config.canonical() if hasattr(config, "canonical") else config)


def config_exists_in_db(config_hash: str) -> bool:
    """True when the model configuration with this hash has a completed training run (what a queue
    skips: `SELECT id FROM training_runs WHERE config_hash = ?` plus its status)."""
    from forex_pipeline.store import training_runs
    from forex_pipeline.store.db import session_scope

    with session_scope(_engine()) as session:
        return bool(training_runs.find_completed_hashes(session, [config_hash]))


def submit_queue(grid: GridSpec | ConfigGrid | dict[str, Any], *, name: str | None = None, priority: int = 0, max_parallel: int | None = None) -> int:
    """Queue a grid as `grid submit --no-run` does; returns the queue id."""
    from forex_pipeline.queue.lifecycle import submit_grid

    spec = grid.spec if isinstance(grid, ConfigGrid) else grid
    return submit_grid(_engine(), spec, _settings().artifacts_dir, name=name, priority=priority, max_parallel=max_parallel)


def run_queue(queue_id: int, *, through_dagster: bool = False) -> QueueRecord:
    """Work a queue to its end in this process (the worker `queue run` uses). With through_dagster,
    each batch is a Dagster run recorded in the instance at DAGSTER_HOME, exactly as the CLI runs it;
    without, the batches call the same per-batch function directly (no Dagster import: quick in a notebook)."""
    from forex_pipeline.queue.worker import process_batch, run_queue as work

    settings, engine = _settings(), _engine()
    if through_dagster:
        import os

        import dagster as dg

        from forex_pipeline.dagster_defs.jobs import execute_batch
        from forex_pipeline.dagster_defs.partitions import register_partitions
        from forex_pipeline.queue.lifecycle import configurations_of
        from forex_pipeline.settings import dagster_home

        dagster_home().mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
        instance = dg.DagsterInstance.get()
        register_partitions(instance, configurations_of(queue_status(queue_id).grid_spec))
        return work(engine, settings, queue_id, lambda qid, batch: execute_batch(instance, qid, batch), artifacts_dir=settings.artifacts_dir)

    def batch(qid: int, configurations: list[Any]) -> Any:
        return process_batch(engine, settings, qid, configurations, artifacts_dir=settings.artifacts_dir, sample_dir=_sample_dir())

    return work(engine, settings, queue_id, batch, artifacts_dir=settings.artifacts_dir)


def _sample_dir() -> Path | None:
    import os

    value = os.environ.get("FOREX_SAMPLE_DATA")
    return Path(value) if value else None


def queue_status(queue_id: int) -> QueueRecord:
    """The queue row as it is now (status, counts, skipped_count, priority, max_parallel, ...)."""
    from forex_pipeline.queue.lifecycle import _queue
    from forex_pipeline.store.db import session_scope

    with session_scope(_engine()) as session:
        return _queue(session, queue_id)


def pause_queue(queue_id: int) -> QueueRecord:
    """Finish the model in flight, then stop (`queue pause`); a waiting queue pauses at once and
    leaves a checkpoint file, as the worker does when it stops."""
    from forex_pipeline.queue.checkpoint import checkpoint_if_stopped
    from forex_pipeline.queue.lifecycle import pause

    return checkpoint_if_stopped(_engine(), _settings(), pause(_engine(), queue_id))


def cancel_queue(queue_id: int) -> QueueRecord:
    """Stop now; finished models stay (`queue cancel`); a waiting queue leaves a checkpoint file."""
    from forex_pipeline.queue.checkpoint import checkpoint_if_stopped
    from forex_pipeline.queue.lifecycle import cancel

    return checkpoint_if_stopped(_engine(), _settings(), cancel(_engine(), queue_id))


def resume_queue(queue_id: int) -> QueueRecord:
    """Make a paused, interrupted or failed queue runnable again (`queue resume`); then run_queue."""
    from forex_pipeline.queue.lifecycle import resume

    return resume(_engine(), queue_id, _settings())


def save_checkpoint(queue_id: int, path: str | Path | None = None) -> Path:
    """Write the queue's checkpoint (the specification's structure plus sha256) to `path`, or into
    storage.checkpoints_dir under a generated name (`queue export`); returns the file."""
    import json

    from forex_pipeline.io import atomic_write_text
    from forex_pipeline.queue.checkpoint import export_checkpoint, write_checkpoint_file

    if path is None:
        return write_checkpoint_file(_engine(), queue_id, _settings().checkpoints_dir, "manual")
    atomic_write_text(Path(path), json.dumps(export_checkpoint(_engine(), queue_id), indent=2))
    return Path(path)


def list_checkpoints(queue_id: int | None = None) -> list[Any]:
    """Checkpoint files in storage.checkpoints_dir, newest first, each validated (`queue checkpoints`)."""
    from forex_pipeline.queue.checkpoint import list_checkpoints as listing

    uuid = queue_status(queue_id).queue_uuid if queue_id is not None else None
    return listing(_settings().checkpoints_dir, uuid)


def resume_from_checkpoint(path: str | Path) -> int:
    """Validate a checkpoint (version, sha256, grid: a tampered file raises CheckpointError) and make
    its queue runnable (`queue resume --checkpoint FILE`); returns the queue id to run_queue."""
    from forex_pipeline.queue.checkpoint import resume_from_checkpoint as resume

    return resume(_engine(), Path(path), _settings())


def backtest_all_inference_configs(config_hash: str, *, per_regime: bool = False) -> pd.DataFrame:
    """The results of every inference configuration of one trained model configuration: one row per
    configuration and segment (the specification's inference_backtests rows with backtest_metrics and
    regime_metrics), or with per_regime one row per regime as well. The internal loop runs when the
    model trains (run_queue); it never retrains."""
    import pandas as pd
    from sqlalchemy import select

    from forex_pipeline.keys import REGIME_ALL
    from forex_pipeline.store import inference_backtests, training_runs
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.tables import InferenceBacktest

    with session_scope(_engine()) as session:
        run = training_runs.get_training_run_by_hash(session, config_hash)
        if run is None:
            raise LookupError(f"no training run with config_hash {config_hash}")
        frame = inference_backtests.get_backtests(session, run.id)
        documents = pd.DataFrame(
            session.execute(
                select(InferenceBacktest.id, InferenceBacktest.backtest_uuid, InferenceBacktest.inference_params,
                       InferenceBacktest.backtest_metrics, InferenceBacktest.regime_metrics)
                .where(InferenceBacktest.training_run_id == run.id, InferenceBacktest.regime == REGIME_ALL)
            ).all(),
            columns=["id", "backtest_uuid", "inference_params", "backtest_metrics", "regime_metrics"],
        )
    if per_regime:
        return frame
    overall = frame[frame["regime"] == REGIME_ALL]
    return overall.merge(documents, on="id", how="left").reset_index(drop=True)


def classify_regime(bars: pd.DataFrame, *, timeframe: str, train_end: int | None = None) -> pd.Series:
    """The regime of every bar (OHLC frame indexed by UTC open time) under the settings' detector and
    the regimes scored now (built-ins plus enabled custom ones), as the pipeline labels them."""
    import pandas as pd

    from forex_pipeline.regimes.labels import label_regimes
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_definitions import active_regimes

    with session_scope(_engine()) as session:
        regimes = active_regimes(session, _settings())
    timestamps = pd.DatetimeIndex(bars.index)
    labels = label_regimes(bars["close"].to_numpy(dtype=float), regimes, timeframe=timeframe, train_end=train_end, timestamps=timestamps)
    return pd.Series(labels, index=bars.index, name="regime")


def evaluate_regime_improvements() -> pd.DataFrame:
    """The standing bests of every regime: rank, model, inference configuration, score, the previous
    best score and the improvement over it, with the trust figures (what `results bests` shows)."""
    from forex_pipeline.store import regime_best_models
    from forex_pipeline.store.db import session_scope

    with session_scope(_engine()) as session:
        return regime_best_models.current_bests(session)


def training_history() -> pd.DataFrame:
    """Every training run under the specification's column names (training_runs)."""
    import pandas as pd
    from sqlalchemy import text

    columns = ("id, run_uuid, config_hash, symbol, base_timeframe, days_history, horizon, model_type, encoder, status, "
               "feature_count, training_duration_seconds, model_file_path, model_file_size_bytes, is_model_kept, "
               "best_regimes, created_at, created_by")
    with _engine().connect() as connection:
        return pd.read_sql_query(text(f"SELECT {columns} FROM training_runs ORDER BY id"), connection)
