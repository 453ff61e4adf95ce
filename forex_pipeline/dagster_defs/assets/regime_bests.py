"""`regime_bests`: the best models per regime as a typed table, and one metadata entry per chart."""

import dagster as dg

from forex_pipeline.dagster_defs.metadata import chart_metadata, explorer_link, table_metadata
from forex_pipeline.dagster_defs.resources import ForexStorage


FRESH_CHECK = "reflects_latest_outcomes"


@dg.asset(
    group_name="model_grid",
    deps=["inference_backtests"],
    check_specs=[
        dg.AssetCheckSpec(
            FRESH_CHECK, asset="regime_bests",
            description="no model outcome recorded since this table was built (a WARN means stale: a refresh is on its way)",
        )
    ],
    description="Best (model, inference configuration) per regime, improvement, deflated Sharpe, the trust "
    "figures and the `significant` verdict (docs/regimes.md), charts.",
)
def regime_bests(context: dg.AssetExecutionContext, storage: ForexStorage) -> dg.MaterializeResult:
    from forex_pipeline.reporting.dashboard import build_dashboard

    dashboard = build_dashboard(storage.db_url, storage.settings, storage.artifacts)
    regimes_with_bests = sorted({str(r["regime"]) for r in dashboard.table.records})
    metadata: dict[str, dg.MetadataValue] = {
        "bests": table_metadata(dashboard.table),
        "models_in_bests": dg.MetadataValue.int(dashboard.n_models),
        # the regime analysis view of the results explorer (`forex-pipeline ui`)
        "explorer": dg.MetadataValue.url(explorer_link(storage.settings.explorer.url, "regimes")),
        "regimes_with_bests": dg.MetadataValue.text(", ".join(regimes_with_bests) or "none yet"),
        # the `significant` verdict of each regime's rank-1 best (docs/regimes.md)
        "significant_regimes": dg.MetadataValue.text(", ".join(dashboard.significant_regimes) or "none"),
    }
    for name, path in dashboard.charts.items():
        metadata.update(chart_metadata(name, path))
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(check_name=FRESH_CHECK, passed=True, metadata={"models_in_bests": dashboard.n_models})],
    )


regime_bests_job = dg.define_asset_job(
    "refresh_regime_bests", selection=[regime_bests.key], description="Rebuild regime_bests (launched by regime_bests_refresh_sensor)."
)
