"""The Dagster UI's partition query at the specification's grid size: 49,000 model configurations.

On a scratch DAGSTER_HOME (SQLite, as `dagster dev` makes it): expands the 49,000-configuration grid
(8 model types x 5 encoders x 7 symbols x 7 timeframes x 5 day ranges x 5 horizons), registers its
partitions as a submit does, records outcomes as a grid_batch run does (a materialization per model
for `--materialized` configurations, `--failed` of them failed), then times the GraphQL query the
asset page's partition bar sends (`PartitionHealthQuery`, copied from the webserver's bundle) through
the webserver's own GraphQL schema, against the code location served as in `dagster dev`:

- cold: the asset status cache is invalid, as after each grid submission (a new key changes the
  dynamic partitions' id): every materialized partition is read back from the event log;
- after a submission: a new key, then the status cache rebuilt as `register_partitions` does when it
  adds keys (`refresh_partition_status`): the page a user opens after submitting a grid;
- warm: the cache is current (the same page loaded again).

With --batch N it first runs N ridge configurations on SYNTH through a real foreground grid_batch run
and counts the event-log entries it wrote per model (all of them, and the asset events).

Prints name=value lines: registration seconds, ms per recorded event, events per model, then
`ui_partition_health_cold_s`, `ui_partition_health_after_submit_s` and `ui_partition_health_warm_s`
(p50) with their p95s, `partition_status_refresh_s`, and `ui_partition_targets_met=N/3` (each < 1 s). With --baseline it also times the
former scheme (feature_set x model_spec multi-partitions) in the same process and prints the ratio.

    python benchmarks/bench_ui_partitions.py [--materialized 49000] [--failed 50] [--repeats 7] [--baseline] [--batch 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_GRID = {  # the specification's grid: 8 x 5 x 7 x 7 x 5 x 5 = 49,000 configurations
    "name": "spec-49000",
    "feature_sets": {
        "symbols": ["AUDJPY", "AUDUSD", "EURGBP", "EURUSD", "GBPAUD", "GBPNZD", "GBPUSD"],
        "base_timeframes": ["1m", "5m", "15m", "30m", "1h", "4h", "1d"],
        "days_history": [30, 90, 180, 365, 730],
        "as_of": "2020-01-01T00:00:00Z",
    },
    "model_specs": {
        "model_types": ["ridge", "lasso", "elasticnet", "rf", "lightgbm", "lightning", "diffusion-ddpm", "sssd"],
        "encoders": ["none", "pca", "autoencoder", "vae", "latents"],
        "horizons": [1, 2, 4, 8, 16],
    },
}
PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
}
"""
FORMER_DEFS = '''
import dagster as dg
fs = dg.DynamicPartitionsDefinition(name="feature_set")
ms = dg.DynamicPartitionsDefinition(name="model_spec")
@dg.asset(partitions_def=dg.MultiPartitionsDefinition({"feature_set": fs, "model_spec": ms}))
def trained_model():
    ...
defs = dg.Definitions(assets=[trained_model])
'''


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (q in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


@contextmanager
def scratch_home() -> Iterator[Path]:
    """A fresh DAGSTER_HOME (SQLite storage, telemetry off) for the life of the block."""
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        home = Path(tmp)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        previous = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = str(home)
        try:
            yield home
        finally:
            if previous is None:
                os.environ.pop("DAGSTER_HOME", None)
            else:
                os.environ["DAGSTER_HOME"] = previous


def record_outcomes(instance, keys: list[str], failed: list[str], metadata: Callable[[str], dict], key_of: Callable) -> tuple[float, int]:  # noqa: ANN001
    """Write what grid_batch writes for these outcomes: one materialization per successful model (its
    trained_model partition), a planned event in a failed run per failed one. Returns (seconds, events)."""
    import dagster as dg
    from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

    started = time.perf_counter()
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=key_of(key), metadata=metadata(key)))
    if failed:
        run = instance.create_run_for_job(dg.GraphDefinition("failed_batch").to_job())
        for key in failed:
            planned = AssetMaterializationPlannedData(dg.AssetKey("trained_model"), partition=key_of(key))
            instance.report_dagster_event(DagsterEvent.build_asset_materialization_planned_event(run.job_name, "run_grid_batch", planned), run_id=run.run_id)
        instance.report_run_failed(run, message="configurations failed")
    return time.perf_counter() - started, len(keys) + len(failed)


BATCH_GRID = {  # fast models on the synthetic symbol: what a batch writes per model, not training, is measured
    "name": "bench-batch-events",
    "feature_sets": {"symbols": ["SYNTH"], "base_timeframes": ["1h"], "days_history": [150], "as_of": "2021-01-05T00:00:00Z",
                     "indicator_timeframes": [{"rsi": ["1h"]}], "preprocessing": [{"warmup_bars": 100}]},
    "model_specs": {"model_types": ["ridge"], "horizons": [1, 2, 3, 4, 5, 6, 7, 8], "hyperparameters": {"ridge": [{"alpha": 1.0}]}},
}


def batch_events_per_model(n_models: int) -> dict[str, float]:
    """Run `n_models` configurations as grid_batch runs in this process (as `grid submit` does) on a
    scratch home and count what the runs wrote to the event log, per model."""
    import dagster as dg

    from forex_pipeline.dagster_defs.jobs import execute_batch
    from forex_pipeline.dagster_defs.partitions import register_partitions
    from forex_pipeline.queue import lifecycle, worker
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import dispose_engines, get_engine, upgrade

    grid = {**BATCH_GRID, "model_specs": {**BATCH_GRID["model_specs"], "horizons": list(range(1, n_models + 1))}}
    with scratch_home() as home:
        os.environ.update(FOREX_DATABASE_URL=f"sqlite:///{home / 'forex.db'}", FOREX_ARTIFACTS_DIR=str(home / "artifacts"))
        settings = get_settings()
        upgrade(settings.database_url)
        engine = get_engine(settings.database_url)
        queue_id = lifecycle.submit_grid(engine, grid, settings.artifacts_dir)
        instance = dg.DagsterInstance.get()
        register_partitions(instance, lifecycle.configurations_of(grid))
        started = time.perf_counter()
        final = worker.run_queue(engine, settings, queue_id, lambda q, b: execute_batch(instance, q, b), artifacts_dir=settings.artifacts_dir)
        seconds = time.perf_counter() - started
        runs = instance.get_runs(dg.RunsFilter(job_name="grid_batch"))
        entries = [entry for run in runs for entry in instance.all_logs(run.run_id)]
        asset_events = [e for e in entries if e.dagster_event is not None and e.dagster_event.asset_key is not None]
        dispose_engines()
        for name in ("FOREX_DATABASE_URL", "FOREX_ARTIFACTS_DIR"):
            os.environ.pop(name, None)
    done = final.completed_models
    return {"models": done, "batches": len(runs), "seconds": seconds,
            "events_per_model": len(entries) / max(done, 1), "asset_events_per_model": len(asset_events) / max(done, 1)}


def time_query(context_factory, asset_key: list[str], invalidate: Callable[[], None] | None, repeats: int) -> tuple[list[float], dict]:  # noqa: ANN001
    """Seconds of each PartitionHealthQuery (after `invalidate()` each time when given) and the last answer."""
    from dagster_graphql.test.utils import execute_dagster_graphql

    seconds, data = [], {}
    for _ in range(repeats):
        if invalidate is not None:
            invalidate()
        context = context_factory()  # a request context per page load, as the webserver makes one per request
        started = time.perf_counter()
        result = execute_dagster_graphql(context, PARTITION_HEALTH_QUERY, {"assetKey": {"path": asset_key}})
        seconds.append(time.perf_counter() - started)
        if result.errors:
            raise SystemExit(f"PartitionHealthQuery failed: {result.errors}")
        data = result.data["assetNodeOrError"]
    return seconds, data


def measure(name: str, workspace: Path, register: Callable, keys: list[str], failed: list[str], args, metadata, key_of: Callable = str) -> dict[str, float]:  # noqa: ANN001
    """Register, record, then time the cold and warm query for one partitioning scheme on a scratch home."""
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    figures: dict[str, float] = {}
    with scratch_home():
        instance = dg.DagsterInstance.get()
        started = time.perf_counter()
        register(instance)
        figures["register_s"] = time.perf_counter() - started
        started = time.perf_counter()
        register(instance)
        figures["register_again_s"] = time.perf_counter() - started
        seconds, events = record_outcomes(instance, keys, failed, metadata, key_of)
        figures["record_ms_per_event"] = 1000 * seconds / max(events, 1)
        extra = iter(range(10**6))

        def invalidate() -> None:  # a new grid submission: one new key changes the partitions' id
            partitions = "model_config" if name == "model_config" else "feature_set"
            instance.add_dynamic_partitions(partitions, [f"new-grid-{next(extra)}"])

        def submit() -> None:  # what a submission does now: the new key, then register_partitions' cache rebuild
            from forex_pipeline.dagster_defs.partitions import refresh_partition_status

            instance.add_dynamic_partitions("model_config", [f"new-grid-{next(extra)}"])
            started = time.perf_counter()
            refresh_partition_status(instance)
            refreshes.append(time.perf_counter() - started)

        refreshes: list[float] = []
        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as process:
            factory = process.create_request_context
            time_query(factory, ["trained_model"], None, 1)  # load the code location's snapshot once
            cold, _ = time_query(factory, ["trained_model"], invalidate, args.repeats)
            if name == "model_config":
                after, _ = time_query(factory, ["trained_model"], submit, args.repeats)
                figures.update(after_submit_p50=statistics.median(after), after_submit_p95=percentile(after, 0.95),
                               refresh_p50=statistics.median(refreshes))
            warm, data = time_query(factory, ["trained_model"], None, args.repeats)
        statuses = data["assetPartitionStatuses"]
        total = sum(len(d["partitionKeys"]) for d in data["partitionKeysByDimension"])
        if statuses.get("__typename", "") != "MultiPartitionStatuses" and "materializedPartitions" in statuses:
            figures["materialized_seen"] = len(statuses["materializedPartitions"])
            figures["failed_seen"] = len(statuses["failedPartitions"])
        figures["partition_keys_listed"] = total
        figures.update(cold_p50=statistics.median(cold), cold_p95=percentile(cold, 0.95),
                       warm_p50=statistics.median(warm), warm_p95=percentile(warm, 0.95))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--materialized", type=int, default=5000, help="configurations recorded as trained (max 49,000)")
    parser.add_argument("--failed", type=int, default=50, help="configurations recorded as failed")
    parser.add_argument("--repeats", type=int, default=7, help="queries timed per side (p50 and p95)")
    parser.add_argument("--baseline", action="store_true", help="also time the former feature_set x model_spec scheme")
    parser.add_argument("--batch", type=int, default=0, help="first count the events real grid_batch runs write for N models")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    if args.batch:
        batch = batch_events_per_model(args.batch)
        print(f"batch_models={batch['models']:.0f} batch_runs={batch['batches']:.0f} batch_seconds={batch['seconds']:.1f}")
        print(f"grid_batch_events_per_model={batch['events_per_model']:.1f} grid_batch_asset_events_per_model={batch['asset_events_per_model']:.1f}")

    from forex_pipeline.dagster_defs.batch_events import outcome_metadata
    from forex_pipeline.dagster_defs.partitions import register_partitions
    from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
    from forex_pipeline.keys import FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION
    from forex_pipeline.pipeline.configuration import ConfigurationOutcome
    from forex_pipeline.settings import get_settings

    started = time.perf_counter()
    configurations = expand_grid(parse_grid_spec(SPEC_GRID)).configurations
    print(f"grid_configurations={len(configurations)} expand_s={time.perf_counter() - started:.2f}")
    n_done = min(args.materialized, len(configurations) - args.failed)
    done = configurations[:n_done]
    failed = [c.partition_key for c in configurations[n_done : n_done + args.failed]]
    by_key = {c.partition_key: c for c in done}
    explorer_url = get_settings().explorer.url   # as the grid_batch run links each model to the explorer

    def metadata(key: str) -> dict:  # what a successful model's materialization carries
        outcome = ConfigurationOutcome(by_key[key].model_config_hash, key, "completed", 1.0, 2.0, 1000, True)
        return outcome_metadata(outcome, by_key[key], explorer_url)

    new = measure("model_config", ROOT / "workspace.yaml", lambda inst: register_partitions(inst, configurations),
                  [c.partition_key for c in done], failed, args, metadata)
    print(f"partitions_registered={len(configurations)} register_s={new['register_s']:.3f} register_again_s={new['register_again_s']:.3f}")
    print(f"recorded_models={n_done} failed_models={len(failed)} record_ms_per_event={new['record_ms_per_event']:.1f}")
    print(f"partition_keys_listed={new['partition_keys_listed']:.0f} materialized_seen={new.get('materialized_seen', 0):.0f} failed_seen={new.get('failed_seen', 0):.0f}")
    print(f"ui_partition_health_cold_s={new['cold_p50']:.3f}")
    print(f"ui_partition_health_cold_p95_s={new['cold_p95']:.3f}")
    print(f"ui_partition_health_warm_s={new['warm_p50']:.3f}")
    print(f"ui_partition_health_warm_p95_s={new['warm_p95']:.3f}")
    # The page a user opens after a submission, whose registration rebuilt the status cache
    # (dagster_defs/partitions.refresh_partition_status), and that rebuild (what the submission pays).
    print(f"ui_partition_health_after_submit_s={new['after_submit_p50']:.3f}")
    print(f"ui_partition_health_after_submit_p95_s={new['after_submit_p95']:.3f}")
    print(f"partition_status_refresh_s={new['refresh_p50']:.3f}")
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="bench-ui-former-") as tmp:
            (Path(tmp) / "former_defs.py").write_text(FORMER_DEFS)
            workspace = Path(tmp) / "workspace.yaml"
            workspace.write_text(f"load_from:\n  - python_file:\n      relative_path: {Path(tmp) / 'former_defs.py'}\n      attribute: defs\n")

            def register_former(instance) -> None:  # noqa: ANN001 - what register_partitions did before
                for name, keys in ((FEATURE_SET_DIMENSION, {c.feature_set_key for c in configurations}),
                                   (MODEL_SPEC_DIMENSION, {c.model_spec_key for c in configurations})):
                    existing = set(instance.get_dynamic_partitions(name))
                    new_keys = sorted(keys - existing)
                    for start in range(0, len(new_keys), 10_000):
                        instance.add_dynamic_partitions(name, new_keys[start : start + 10_000])

            def multi_key(key: str):  # noqa: ANN202 - the former MultiPartitionKey of a configuration
                import dagster as dg

                return dg.MultiPartitionKey(dict(zip((FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION), key.split("|"))))

            former = measure("former", workspace, register_former, [c.partition_key for c in done], failed, args, metadata, multi_key)
        print(f"former_ui_partition_health_cold_s={former['cold_p50']:.3f} former_cold_p95_s={former['cold_p95']:.3f}")
        print(f"former_ui_partition_health_warm_s={former['warm_p50']:.3f} former_warm_p95_s={former['warm_p95']:.3f}")
        print(f"ui_partition_health_cold_ratio={former['cold_p50'] / new['cold_p50']:.2f} (former / one key per configuration)")
    met = int(new["cold_p50"] < 1.0) + int(new["after_submit_p50"] < 1.0) + int(new["warm_p50"] < 1.0)
    print(f"ui_partition_targets_met={met}/3 (cold, after a submission, warm: each < 1 s)")


if __name__ == "__main__":
    main()
