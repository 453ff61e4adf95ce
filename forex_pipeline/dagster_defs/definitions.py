"""The single Dagster Definitions of forex_pipeline: it only assembles assets, checks, jobs, sensors and resources."""

from __future__ import annotations

import dagster as dg

from forex_pipeline.dagster_defs.assets.market_data import bars, raw_bars
from forex_pipeline.dagster_defs.assets.model_configs import features, trained_model_and_backtests
from forex_pipeline.dagster_defs.assets.regime_bests import regime_bests
from forex_pipeline.dagster_defs.jobs import grid_batch, grid_batch_celery, submit_grid_job
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.sensors import queue_failure_sensor_for, queue_outcome_sensor_for, training_queue_sensor_for

defs = dg.Definitions(
    assets=[raw_bars, bars, features, trained_model_and_backtests, regime_bests],
    jobs=[grid_batch, grid_batch_celery, submit_grid_job],
    sensors=[training_queue_sensor_for(grid_batch), queue_outcome_sensor_for(grid_batch), queue_failure_sensor_for(grid_batch)],
    resources={"storage": ForexStorage()},
)
