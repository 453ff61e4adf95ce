"""`features` (per feature set) and `trained_model` + `inference_backtests` (per model configuration).

`trained_model` and `inference_backtests` are one multi-asset: training and the internal loop run
in one step, so a configuration costs one step of orchestration, not two, and the model never has
to be reloaded from disk between them (DESIGN.md section 4: orchestration cost is the first risk).

Lineage to the feature set: the graph edge features -> trained_model is declared, and each
configuration's events name its `features` partition in their metadata (`feature_set`). Dagster
1.13 has no built-in partition mapping from one dynamic partition set to another by a function of
the key (Static needs static sets; custom mappings are deprecated and never reach the UI), so the
edge maps to no upstream partition: with All (the only other choice) a new feature set would mark
every older model "Unsynced".
"""


import dagster as dg

from forex_pipeline.dagster_defs.batch_events import outcome_metadata
from forex_pipeline.dagster_defs.partitions import feature_set_partitions, model_config_partitions
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.keys import FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION, RunStatus, split_model_config_key
from forex_pipeline.store.db import get_engine
from forex_pipeline.store.spec_files import read_spec


def feature_metadata(matrix, path) -> dict:  # noqa: ANN001 - FeatureMatrix, Path
    coverage = matrix.metadata.get("coverage", {})
    return {
        "rows": matrix.n_rows,
        "features": len(matrix.feature_names),
        "first_row": matrix.timestamps[0].isoformat() if matrix.n_rows else "-",
        "last_row": matrix.timestamps[-1].isoformat() if matrix.n_rows else "-",
        "min_coverage": float(min(coverage.values())) if coverage else 1.0,
        "dropped_features": dg.MetadataValue.json(matrix.metadata.get("dropped_features", {})),
        "path": dg.MetadataValue.path(str(path)),
    }


@dg.asset(
    partitions_def=feature_set_partitions,
    group_name="model_grid",
    deps=[dg.AssetDep("bars", partition_mapping=dg.SpecificPartitionsPartitionMapping([]))],
    description="Feature matrix + close prices of one feature set, computed once however many models use it.",
)
def features(context: dg.AssetExecutionContext, storage: ForexStorage) -> dg.MaterializeResult:
    from forex_pipeline.pipeline.artifacts import ensure_feature_matrix, feature_matrix_path

    spec = read_spec(storage.artifacts, FEATURE_SET_DIMENSION, context.partition_key)
    matrix, built = ensure_feature_matrix(spec, storage.settings, storage.artifacts, storage.sample_dir)
    metadata = feature_metadata(matrix, feature_matrix_path(storage.artifacts, spec))
    metadata["computed_now"] = built
    return dg.MaterializeResult(metadata=metadata)


@dg.multi_asset(
    partitions_def=model_config_partitions,
    group_name="model_grid",
    specs=[
        dg.AssetSpec(
            "trained_model",
            # lineage per partition rides in the metadata (`feature_set`); see the module docstring
            deps=[dg.AssetDep("features", partition_mapping=dg.SpecificPartitionsPartitionMapping([]))],
            description="One trained model configuration: model file (sha256 in the DB) and training metrics.",
        ),
        dg.AssetSpec(
            "inference_backtests",
            deps=["trained_model"],
            description="Every inference configuration of the model backtested out of sample, per regime; keep/delete.",
        ),
    ],
)
def trained_model_and_backtests(context: dg.AssetExecutionContext, storage: ForexStorage):
    from forex_pipeline.models.spec import ModelConfiguration
    from forex_pipeline.pipeline.configuration import run_configuration

    feature_set_key, model_spec_key = split_model_config_key(context.partition_key)
    configuration = ModelConfiguration.of(
        read_spec(storage.artifacts, FEATURE_SET_DIMENSION, feature_set_key), read_spec(storage.artifacts, MODEL_SPEC_DIMENSION, model_spec_key)
    )
    outcome = run_configuration(
        configuration,
        settings=storage.settings,
        engine=get_engine(storage.db_url),
        artifacts_dir=storage.artifacts,
        sample_dir=storage.sample_dir,
        dagster_run_id=context.run_id,
    )
    if outcome.status == RunStatus.FAILED:
        raise dg.Failure(description=f"{outcome.partition_key}: {outcome.error}")
    metadata = outcome_metadata(outcome, configuration, storage.settings.explorer.url)
    yield dg.MaterializeResult(asset_key="trained_model", metadata=metadata)
    yield dg.MaterializeResult(asset_key="inference_backtests", metadata=metadata)
