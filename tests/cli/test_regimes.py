"""Custom regimes are data: added from the CLI, they are labelled, backtested and ranked without code."""

from __future__ import annotations

from typer.testing import CliRunner

from forex_pipeline.cli import app
from forex_pipeline.settings import get_settings
from forex_pipeline.store import inference_backtests, regime_best_models, training_runs
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID

runner = CliRunner()


def test_rules_are_parsed_and_refused_with_the_field_named(grid_env):
    assert runner.invoke(app, ["regimes", "add", "q", "--rule", "volatility_percentile:x:"]).exit_code != 0
    bad = runner.invoke(app, ["regimes", "add", "q", "--rule", "moon_phase:0:1"])
    assert bad.exit_code == 1 and "moon_phase" in bad.output
    assert runner.invoke(app, ["regimes", "disable", "no_such_regime"]).exit_code == 1


def test_a_custom_regime_is_scored_and_ranked(grid_env):
    from forex_pipeline.queue import lifecycle
    from forex_pipeline.queue import worker
    # replace calm_ranging by an equivalent custom regime: the same bars must land in it
    assert runner.invoke(app, ["regimes", "disable", "calm_ranging"]).exit_code == 0
    added = runner.invoke(
        app,
        ["regimes", "add", "quiet_range", "--rule", "trend_strength::0.25", "--rule", "volatility_percentile::0.4",
         "--description", "calm, directionless"],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["regimes", "list"], env={"COLUMNS": "250"})
    assert "quiet_range" in listed.output and "custom" in listed.output
    tested = runner.invoke(app, ["regimes", "test", "SYNTH"], env={"COLUMNS": "200"})
    assert tested.exit_code == 0 and "quiet_range" in tested.output and "calm_ranging" not in tested.output
    assert "accuracy against the generator" in tested.output

    settings = get_settings()
    engine = get_engine(settings.database_url)
    grid = {
        **TINY_GRID,
        "model_specs": {"model_types": ["ridge"], "encoders": ["none"], "horizons": [1], "hyperparameters": {"ridge": [{"alpha": 1.0}]}},
    }
    queue_id = lifecycle.submit_grid(engine, grid, settings.artifacts_dir)
    final = worker.run_queue(
        engine,
        settings,
        queue_id,
        lambda qid, batch: worker.process_batch(engine, settings, qid, batch, artifacts_dir=settings.artifacts_dir, sample_dir=None),
        artifacts_dir=settings.artifacts_dir,
    )
    assert final.status == "completed"
    with session_scope(engine) as session:
        run = training_runs.runs_of_queue(session, queue_id)[0]
        regimes = set(inference_backtests.get_backtests(session, run.id)["regime"])
        bests = regime_best_models.current_bests(session)
    assert "quiet_range" in regimes and "calm_ranging" not in regimes
    assert "calm_ranging" not in set(bests["regime"])
    assert set(bests["regime"]) <= {"bull_trending", "bear_trending", "volatile_ranging", "quiet_range"}
