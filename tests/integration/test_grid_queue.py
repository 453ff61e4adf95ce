"""A grid queue worked through Dagster runs: completion, dedup, keep-or-delete, pause, cancel, failures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from forex_pipeline.models.files import resolve_model_path
from forex_pipeline.queue import checkpoint

from forex_pipeline.queue import lifecycle

from forex_pipeline.store import training_queue

from forex_pipeline.queue import worker
from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
from forex_pipeline.dagster_defs.jobs import execute_batch
from forex_pipeline.dagster_defs.partitions import register_partitions
from forex_pipeline.settings import get_settings
from forex_pipeline.store import regime_best_models
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID

pytestmark = pytest.mark.slow


def _run(instance: dg.DagsterInstance, queue_id: int):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        grid = training_queue.get_queue(session, queue_id).grid_spec
    register_partitions(instance, lifecycle.configurations_of(grid))
    return worker.run_queue(
        engine, settings, queue_id, lambda qid, batch: execute_batch(instance, qid, batch), artifacts_dir=settings.artifacts_dir
    )


def _runs(engine):
    with session_scope(engine) as session:
        from sqlalchemy import select

        from forex_pipeline.store.tables import TrainingRun

        return {r.model_config_hash: r for r in session.scalars(select(TrainingRun)).all()}


def test_queue_completes_through_dagster_and_keeps_only_regime_bests(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        final = _run(instance, queue_id)
        assert final.status == "completed"
        assert final.completed_models == 6 and final.failed_models == 0
        done = instance.get_materialized_partitions(dg.AssetKey("trained_model"))
        assert len(done) == 6
        runs = instance.get_runs(dg.RunsFilter(job_name="grid_batch"))
        assert len(runs) == 3  # 6 configurations, models_per_run = 2

    runs = _runs(engine)
    with session_scope(engine) as session:
        bests = regime_best_models.current_bests(session)
    in_bests = set(bests["model_config_hash"])
    assert 1 <= len(in_bests) <= 4  # top 1 of each of 4 regimes
    for run in runs.values():
        assert run.status == "completed"
        assert run.kept == (run.model_config_hash in in_bests)
        assert not run.model_path or not Path(run.model_path).is_absolute()  # relative to the artefact store
        assert resolve_model_path(run.model_path, settings.artifacts_dir).exists() == run.kept
        if run.kept:
            assert hashlib.sha256(resolve_model_path(run.model_path, settings.artifacts_dir).read_bytes()).hexdigest() == run.model_sha256
        else:
            assert run.file_deleted_at is not None
    model_files = list((settings.artifacts_dir / "models").rglob("*.joblib"))
    assert len(model_files) == len(in_bests)
    assert (bests.groupby("regime")["rank"].max() == 1).all()

    from forex_pipeline.reporting.dashboard import build_dashboard

    dashboard = build_dashboard(settings.database_url, settings, settings.artifacts_dir)
    records = dashboard.table.records
    assert [(r["regime"], r["rank"], r["partition_key"]) for r in records] == sorted(
        zip(bests["regime"], bests["rank"], bests["partition_key"]),
        key=lambda t: (list(settings.regimes.definitions).index(t[0]) if t[0] in settings.regimes.definitions else 99, t[0], t[1]),
    )
    for record in records:  # readable names, the hash in its own column
        fs_label, ms_label = record["model"].split(" | ")
        assert fs_label.startswith("SYNTH ") and record["config_hash"] not in record["model"]
        assert record["partition_key"].split("|")[0] not in record["model"]
    assert set(dashboard.charts) == {"model_regime_heatmap", "risk_vs_return", "equity_of_bests", "regime_timeline"}
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in dashboard.charts.values())


def test_resubmitted_grid_is_not_retrained(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    with dg.instance_for_test() as instance:
        _run(instance, lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir))
        before = {h: r.completed_at for h, r in _runs(engine).items()}
        second = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
        assert lifecycle.pending_configurations(engine, second) == []
        final = _run(instance, second)
    assert final.status == "completed"
    assert {h: r.completed_at for h, r in _runs(engine).items()} == before


def test_pause_finishes_the_current_model_then_resume_completes(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    calls = []

    def pause_after_first(qid, batch):
        result = worker.process_batch(
            engine, settings, qid, batch[:1], artifacts_dir=settings.artifacts_dir, sample_dir=None
        )
        calls.append(len(result.outcomes))
        lifecycle.pause(engine, qid)
        return worker.process_batch(engine, settings, qid, batch[1:], artifacts_dir=settings.artifacts_dir, sample_dir=None)

    final = worker.run_queue(engine, settings, queue_id, pause_after_first, artifacts_dir=settings.artifacts_dir)
    assert final.status == "paused"
    assert final.completed_models == 1
    lifecycle.resume(engine, queue_id, settings)
    with dg.instance_for_test() as instance:
        final = _run(instance, queue_id)
    assert final.status == "completed" and final.completed_models == 6


def test_cancel_stops_now_and_keeps_finished_work(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)

    def cancel_after_two(qid, batch):
        result = worker.process_batch(engine, settings, qid, batch, artifacts_dir=settings.artifacts_dir, sample_dir=None)
        lifecycle.cancel(engine, qid)
        return result

    final = worker.run_queue(engine, settings, queue_id, cancel_after_two, artifacts_dir=settings.artifacts_dir)
    assert final.status == "cancelled"
    assert final.completed_models == 2
    assert sum(r.status == "completed" for r in _runs(engine).values()) == 2
    with pytest.raises(lifecycle.QueueError, match="cancelled"):
        lifecycle.resume(engine, queue_id, settings)


def test_failing_models_are_recorded_and_a_failure_streak_pauses_the_queue(grid_env, monkeypatch):
    from tests.support import write_test_settings

    monkeypatch.setenv("FOREX_SETTINGS", str(write_test_settings(grid_env / "strict.yaml", queue={"max_consecutive_failures": 2})))
    settings = get_settings()
    engine = get_engine(settings.database_url)
    grid = {
        **TINY_GRID,
        "feature_sets": {**TINY_GRID["feature_sets"], "days_history": [30]},
        "model_specs": {**TINY_GRID["model_specs"], "horizons": [150, 200, 250]},
    }
    queue_id = lifecycle.submit_grid(engine, grid, settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        final = _run(instance, queue_id)
    assert final.status == "paused"
    assert final.failed_models == 2
    assert "failures in a row" in final.error_message
    failed = [r for r in _runs(engine).values() if r.status == "failed"]
    assert len(failed) == 2
    assert all("horizon" in r.error_message for r in failed)
    assert all(r.model_path is None for r in failed)


def test_checkpoint_export_import_round_trip(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)

    def one_then_pause(qid, batch):
        result = worker.process_batch(engine, settings, qid, batch[:1], artifacts_dir=settings.artifacts_dir, sample_dir=None)
        lifecycle.pause(engine, qid)
        return result

    worker.run_queue(engine, settings, queue_id, one_then_pause, artifacts_dir=settings.artifacts_dir)
    exported = checkpoint.export_checkpoint(engine, queue_id)
    assert len(exported["completed_runs"]) == 1 and exported["current_index"] == 1 and exported["total_configs"] == 6
    with pytest.raises(checkpoint.CheckpointError, match=f"already imported as queue {queue_id}"):
        checkpoint.import_checkpoint(engine, exported, settings.artifacts_dir)  # its queue is still open
    lifecycle.cancel(engine, queue_id)
    imported = checkpoint.import_checkpoint(engine, exported, settings.artifacts_dir)
    assert len(lifecycle.pending_configurations(engine, imported)) == 5
    with pytest.raises(checkpoint.CheckpointError, match=f"already imported as queue {imported}"):
        checkpoint.import_checkpoint(engine, exported, settings.artifacts_dir)
    tampered = {**exported, "queue": {**exported["queue"], "grid_hash": "0" * 64}}
    with pytest.raises(checkpoint.CheckpointError, match="sha256 does not match"):
        checkpoint.import_checkpoint(engine, tampered, settings.artifacts_dir)


def test_grid_expansion_matches_queue_total(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    with session_scope(engine) as session:
        assert training_queue.get_queue(session, queue_id).total_models == expand_grid(parse_grid_spec(TINY_GRID)).size


def test_low_disk_space_pauses_the_queue_before_training(grid_env, monkeypatch):
    from tests.support import write_test_settings

    monkeypatch.setenv("FOREX_SETTINGS", str(write_test_settings(grid_env / "full.yaml", queue={"min_free_disk_gb": 1e9})))
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        final = _run(instance, queue_id)
    assert final.status == "paused"
    assert "min_free_disk_gb" in final.error_message and "GB free" in final.error_message
    assert _runs(engine) == {}


def test_a_queue_with_failures_says_so_and_resume_retries_only_them(grid_env, monkeypatch):
    import forex_pipeline.models.registry as registry

    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    original = registry.train_model
    broken = {"on": True}

    def flaky(matrix, spec, context):  # noqa: ANN001, ANN202 - elasticnet breaks until it is "fixed"
        if broken["on"] and spec.model_type == "elasticnet":
            raise RuntimeError("elasticnet solver crashed")
        return original(matrix, spec, context)

    monkeypatch.setattr(registry, "train_model", flaky)

    def plain(qid, batch):  # noqa: ANN001, ANN202
        return worker.process_batch(engine, settings, qid, batch, artifacts_dir=settings.artifacts_dir, sample_dir=None)

    final = worker.run_queue(engine, settings, queue_id, plain, artifacts_dir=settings.artifacts_dir)
    assert final.status == "completed" and final.failed_models == 3 and final.completed_models == 3
    assert final.error_message.startswith("completed, 3 failed") and f"queue resume {queue_id}" in final.error_message
    trained = {h for h, r in _runs(engine).items() if r.status == "completed"}

    broken["on"] = False
    resumed = lifecycle.resume(engine, queue_id, settings)
    assert resumed.status == "paused" and resumed.failed_models == 0
    assert len(lifecycle.pending_configurations(engine, queue_id)) == 3  # only the failures come back
    final = worker.run_queue(engine, settings, queue_id, plain, artifacts_dir=settings.artifacts_dir)
    assert final.status == "completed" and final.failed_models == 0 and final.completed_models == 6
    assert not final.error_message
    assert trained <= {h for h, r in _runs(engine).items() if r.status == "completed"}
    with pytest.raises(lifecycle.QueueError, match="nothing to resume"):
        lifecycle.resume(engine, queue_id, settings)


def test_a_tampered_model_file_is_quarantined_and_its_configuration_can_be_retrained(grid_env):
    from forex_pipeline.reporting.dashboard import build_dashboard

    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        _run(instance, queue_id)
    kept = [r for r in _runs(engine).values() if r.kept and r.model_path]
    assert kept
    victim = kept[0]
    resolve_model_path(victim.model_path, settings.artifacts_dir).write_bytes(b"not the model that was trained")
    dashboard = build_dashboard(settings.database_url, settings, settings.artifacts_dir)  # no exception
    assert dashboard.n_models >= 1
    after = _runs(engine)[victim.model_config_hash]
    assert after.status == "failed" and not after.kept and after.file_deleted_at is not None
    assert "sha256" in after.error_message and "quarantine" in after.error_message
    assert not resolve_model_path(victim.model_path, settings.artifacts_dir).exists()
    assert list((settings.artifacts_dir / "quarantine").rglob("*"))
    lifecycle.resume(engine, queue_id, settings)
    assert [c.model_config_hash for c in lifecycle.pending_configurations(engine, queue_id)] == [victim.model_config_hash]
