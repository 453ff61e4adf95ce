"""The single Dagster Definitions of forex_pipeline: it only assembles assets, checks, jobs, sensors and resources."""

from __future__ import annotations

import dagster as dg

from forex_pipeline.dagster_defs.assets.market_data import bars, raw_bars
from forex_pipeline.dagster_defs.assets.model_configs import features, trained_model_and_backtests
from forex_pipeline.dagster_defs.assets.regime_bests import regime_bests, regime_bests_job
from forex_pipeline.dagster_defs.batch_events import enough_free_disk, no_failure_streak, training_progress
from forex_pipeline.dagster_defs.control_jobs import CONTROL_JOBS
from forex_pipeline.dagster_defs.jobs import BATCH_JOBS, grid_batch, grid_batch_celery
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.sensors import (
    batch_terminated_sensor_for,
    queue_failure_sensor_for,
    queue_outcome_sensor_for,
    regime_bests_refresh_sensor_for,
    training_queue_sensor_for,
)

defs = dg.Definitions(
    assets=[raw_bars, bars, features, trained_model_and_backtests, regime_bests, training_progress],
    asset_checks=[enough_free_disk, no_failure_streak],
    jobs=[grid_batch, grid_batch_celery, regime_bests_job, *CONTROL_JOBS],
    sensors=[
        training_queue_sensor_for(BATCH_JOBS),
        queue_outcome_sensor_for(list(BATCH_JOBS.values())),
        queue_failure_sensor_for(list(BATCH_JOBS.values())),
        batch_terminated_sensor_for(list(BATCH_JOBS.values())),
        regime_bests_refresh_sensor_for(regime_bests_job),
    ],
    resources={"storage": ForexStorage()},
)
