"""Queue control from the launchpad: a typed grid config checked before launch, and the control jobs."""

from __future__ import annotations

import copy
from pathlib import Path

import dagster as dg
import pytest
import yaml

from forex_pipeline.dagster_defs.control_jobs import (
    cancel_queue,
    pause_queue,
    plan_grid,
    resume_queue,
    retry_failed_queue,
    submit_grid_job,
)
from forex_pipeline.dagster_defs.launch_config import GridConfig, IndicatorTimeframes, PreprocessingConfig, grid_dict
from forex_pipeline.features.spec import INDICATORS, Preprocessing
from forex_pipeline.grid.expand import parse_grid_spec
from forex_pipeline.grid.spec import GridSpecError
from forex_pipeline.store import training_queue
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "grids").glob("*.yaml"))


def _job(job: dg.JobDefinition) -> dg.JobDefinition:
    """The job as the code location holds it (with its resources)."""
    from forex_pipeline.dagster_defs.definitions import defs

    return defs.resolve_job_def(job.name)


def _with(path: tuple[str, ...], value) -> dict:  # noqa: ANN001
    grid = copy.deepcopy(TINY_GRID)
    node = grid
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return grid


def test_the_typed_config_mirrors_the_grid_schema():
    assert set(IndicatorTimeframes.model_fields) == set(INDICATORS)
    assert set(PreprocessingConfig.model_fields) == set(Preprocessing.model_fields)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_grid_file_is_a_valid_launchpad_config(path):
    raw = yaml.safe_load(path.read_text())
    assert dg.validate_run_config(plan_grid, raw)
    assert parse_grid_spec(grid_dict(GridConfig(**raw))) == parse_grid_spec(raw)


@pytest.mark.parametrize(
    "bad, where",
    [
        ({**TINY_GRID, "model_specs": {**TINY_GRID["model_specs"], "model_typs": ["ridge"]}}, "model_typs"),
        (_with(("model_specs", "model_types"), ["ridgee"]), "ridgee"),
        (_with(("model_specs", "encoders"), ["pcaa"]), "pcaa"),
        (_with(("feature_sets", "base_timeframes"), ["1hh"]), "1hh"),
        (_with(("feature_sets", "indicator_timeframes"), [{"rsii": ["1h"]}]), "rsii"),
        (_with(("feature_sets", "additional_features"), [["volume_profil"]]), "volume_profil"),
    ],
)
def test_a_typo_is_refused_by_the_launchpad_schema(bad, where):
    """The webserver checks the schema as the config is typed: nothing runs, the error names the typo."""
    with pytest.raises(dg.DagsterInvalidConfigError, match=where):
        dg.validate_run_config(submit_grid_job, bad)


@pytest.mark.parametrize(
    "bad",
    [
        _with(("model_specs", "hyperparameters"), {"ridge": [{"alphaa": 1.0}]}),
        _with(("model_specs", "hyperparameters"), {"ridgee": [{"alpha": 1.0}]}),
        _with(("model_specs", "horizons"), [0]),
        _with(("feature_sets", "as_of"), "yesterday"),
        _with(("feature_sets", "indicator_timeframes"), [{"rsi": ["1m"]}]),
    ],
)
def test_what_the_schema_cannot_say_fails_the_launch_with_grid_plans_messages(bad):
    with pytest.raises(GridSpecError) as expected:
        parse_grid_spec(bad, source="launchpad config")
    with pytest.raises(dg.DagsterConfigMappingFunctionError) as refused:
        dg.validate_run_config(submit_grid_job, bad)
    assert str(refused.value.__cause__) == str(expected.value)


def test_plan_sizes_the_grid_and_trains_nothing(grid_env):
    with dg.instance_for_test() as instance:
        result = _job(plan_grid).execute_in_process(run_config=TINY_GRID, instance=instance)
    summary = result.output_for_node("plan_grid_op")
    assert summary["model_configurations"] == 6 and summary["to_train"] == 6 and summary["estimated_seconds_one_run"] > 0
    assert summary["estimate_source"].startswith("time estimate uncalibrated")  # nothing recorded: scaled by the probe
    with session_scope(get_engine(grid_env_url())) as session:
        assert training_queue.list_queues(session) == []


def grid_env_url() -> str:
    from forex_pipeline.settings import get_settings

    return get_settings().database_url


def test_pause_resume_cancel_and_retry_from_the_launchpad(grid_env):
    engine = get_engine(grid_env_url())
    with dg.instance_for_test() as instance:
        queue_id = _job(submit_grid_job).execute_in_process(run_config=TINY_GRID, instance=instance).output_for_node("submit_grid_op")
        config = {"ops": {"pause_queue_op": {"config": {"queue_id": queue_id}}}}
        assert _job(pause_queue).execute_in_process(run_config=config, instance=instance).output_for_node("pause_queue_op") == "running"
        with session_scope(engine) as session:
            training_queue.set_queue_status(session, queue_id, "paused")  # what the sensor does once no run is in flight
        resumed = _job(resume_queue).execute_in_process(run_config={"ops": {"resume_queue_op": {"config": {"queue_id": queue_id}}}}, instance=instance)
        assert resumed.output_for_node("resume_queue_op") == "running"
        retry = _job(retry_failed_queue).execute_in_process(
            run_config={"ops": {"retry_failed_op": {"config": {"queue_id": queue_id}}}}, instance=instance, raise_on_error=False
        )
        assert not retry.success
        failure = retry.failure_data_for_node("retry_failed_op")
        assert f"queue {queue_id} is running" in failure.user_failure_data.description
        _job(cancel_queue).execute_in_process(run_config={"ops": {"cancel_queue_op": {"config": {"queue_id": queue_id}}}}, instance=instance)
        unknown = _job(pause_queue).execute_in_process(
            run_config={"ops": {"pause_queue_op": {"config": {"queue_id": 999}}}}, instance=instance, raise_on_error=False
        )
        assert "no training queue with id 999" in unknown.failure_data_for_node("pause_queue_op").user_failure_data.description
    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
    assert queue.cancel_requested


@pytest.mark.parametrize(
    "bad",
    [
        _with(("feature_sets", "days_history"), [150, 400]),
        {**TINY_GRID, "model_specs": {**TINY_GRID["model_specs"], "encoders": ["pca"], "encoder_dims": [64]}},
    ],
    ids=["days_history", "encoder_dims"],
)
def test_what_the_data_cannot_serve_fails_the_launch_with_grid_plans_messages(grid_env, bad):
    """The launchpad refuses what `grid plan` refuses from the data (data_problems), with its messages."""
    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.grid.expand import data_problems, expand_grid
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    problems = data_problems(expand_grid(parse_grid_spec(bad)), settings, settings.artifacts_dir, default_sample_dir())
    assert len(problems) == 1 and ("days_history[1] = 400" in problems[0] or "encoder_dims[0] = 64" in problems[0])
    with pytest.raises(dg.DagsterConfigMappingFunctionError) as refused:
        dg.validate_run_config(submit_grid_job, bad)
    assert problems[0] in str(refused.value.__cause__)
