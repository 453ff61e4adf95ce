"""The single Dagster Definitions of forex_pipeline: assets, checks, jobs, sensors and resources."""

from __future__ import annotations

import dagster as dg

from forex_pipeline.assets.market_data import bars, raw_bars
from forex_pipeline.assets.model_configs import features, trained_model_and_backtests
from forex_pipeline.assets.regime_bests import regime_bests
from forex_pipeline.jobs import grid_batch, grid_batch_celery, submit_grid_job
from forex_pipeline.resources import ForexStorage
from forex_pipeline.sensors import queue_failure_sensor, queue_outcome_sensor, training_queue_sensor

defs = dg.Definitions(
    assets=[raw_bars, bars, features, trained_model_and_backtests, regime_bests],
    jobs=[grid_batch, grid_batch_celery, submit_grid_job],
    sensors=[training_queue_sensor, queue_outcome_sensor, queue_failure_sensor],
    resources={"storage": ForexStorage()},
)
