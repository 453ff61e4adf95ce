"""The dashboard reads kept model files while other workers train: a file removed by their
keep-or-delete after the bests were read is skipped, not quarantined."""

from __future__ import annotations

from forex_pipeline.models.files import resolve_model_path
from forex_pipeline.pipeline.configuration import run_configuration
from forex_pipeline.queue import lifecycle
from forex_pipeline.reporting.dashboard import equity_curves
from forex_pipeline.settings import get_settings
from forex_pipeline.store import regime_best_models, training_runs
from forex_pipeline.store.db import get_engine, session_scope
from forex_pipeline.store.tables import TrainingRun
from tests.support import TINY_GRID


def test_a_best_deleted_by_another_worker_after_the_read_is_skipped_not_quarantined(grid_env) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    configuration = lifecycle.configurations_of(TINY_GRID)[0]
    outcome = run_configuration(configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir)
    assert outcome.status == "completed" and outcome.kept
    with session_scope(engine) as session:
        bests = regime_best_models.current_bests(session)  # what the dashboard read
        run = training_runs.get_training_run_by_hash(session, configuration.model_config_hash)
    assert equity_curves(bests, settings, settings.artifacts_dir)  # the file loads: an equity curve per regime best

    with session_scope(engine) as session:  # meanwhile another worker's model pushes it out and deletes its file
        session.query(TrainingRun).filter_by(id=run.id).update({"kept": False})
        training_runs.mark_file_deleted(session, run.id)
    resolve_model_path(run.model_path, settings.artifacts_dir).unlink()
    assert equity_curves(bests, settings, settings.artifacts_dir) == {}
    with session_scope(engine) as session:
        after = training_runs.get_training_run(session, run.id)
    assert after.status == "completed" and after.error_message is None  # not quarantined
    assert not (settings.artifacts_dir / "quarantine").exists()


def test_a_kept_file_that_is_gone_is_still_quarantined(grid_env) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    configuration = lifecycle.configurations_of(TINY_GRID)[0]
    run_configuration(configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir)
    with session_scope(engine) as session:
        bests = regime_best_models.current_bests(session)
        run = training_runs.get_training_run_by_hash(session, configuration.model_config_hash)
    resolve_model_path(run.model_path, settings.artifacts_dir).unlink()  # the database still says kept: the file was lost
    equity_curves(bests, settings, settings.artifacts_dir)
    with session_scope(engine) as session:
        after = training_runs.get_training_run(session, run.id)
    assert after.status == "failed" and "missing" in after.error_message
