"""Notebook-style tour of forex_pipeline.api: a small grid from plan to regime bests, with a checkpoint.

Run it in a scratch place (it uses the settings and storage of the environment):

    DAGSTER_HOME=/tmp/fx_api_demo python examples/api_example.py

Each cell is what you would type in a notebook; every call is the function the CLI uses.
"""

from __future__ import annotations

from forex_pipeline import api

# %% 1. A grid: two linear models x two horizons on the synthetic symbol (30 s or so on a laptop)
grid = api.generate_config_grid({
    "name": "api-demo",
    "feature_sets": {
        "symbols": ["SYNTH"], "base_timeframes": ["1h"], "days_history": [150], "as_of": "2021-01-05T00:00:00Z",
        "indicator_timeframes": [{"rsi": ["1h"]}], "additional_features": [["returns_volatility"]],
        "preprocessing": [{"warmup_bars": 100}],
    },
    "model_specs": {
        "model_types": ["ridge", "elasticnet"], "encoders": ["none"], "horizons": [1, 3],
        "hyperparameters": {"ridge": [{"alpha": 1.0}], "elasticnet": [{"alpha": 0.001, "l1_ratio": 0.5}]},
    },
})
print(f"{len(grid)} model configurations")
first = grid.configurations[0]
assert api.compute_config_hash({"feature_set": first.feature_set_hash, "model_spec": first.model_spec_hash}) == grid.config_hashes[0]
print("already trained:", sum(api.config_exists_in_db(h) for h in grid.config_hashes))

# %% 2. Queue it with a priority, work it in this process
queue_id = api.submit_queue(grid, priority=10)
final = api.run_queue(queue_id)
print(f"queue {queue_id}: {final.status}, completed {final.completed_models}, skipped {final.skipped_count}, kept {final.kept_models}")

# %% 3. The internal loop's results of one model: one row per inference configuration (JSON per regime)
results = api.backtest_all_inference_configs(grid.config_hashes[0])
print(results[["prediction_method", "ensemble_method", "confidence_threshold", "lookback_window", "segment", "sharpe"]].head())

# %% 4. Regime bests and their improvement over the previous best
bests = api.evaluate_regime_improvements()
print(bests[["regime", "rank", "partition_key", "score", "previous_best_score", "improvement"]])

# %% 5. A checkpoint in the specification's structure, listed and resumable
path = api.save_checkpoint(queue_id)
print("checkpoint:", path, [c.problem or "valid" for c in api.list_checkpoints(queue_id)])

# %% 6. The training history under the specification's column names
print(api.training_history()[["config_hash", "model_type", "horizon", "feature_count", "is_model_kept", "best_regimes"]])
