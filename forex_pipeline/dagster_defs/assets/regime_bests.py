"""`regime_bests`: the best models per regime as Markdown tables and charts in the Dagster UI."""


import base64
from pathlib import Path

import dagster as dg

from forex_pipeline.dagster_defs.resources import ForexStorage


def _image(path: Path) -> dg.MetadataValue:
    encoded = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{path.stem}](data:image/png;base64,{encoded})")


@dg.asset(
    group_name="model_grid",
    deps=["inference_backtests"],
    description="Best (model, inference configuration) per regime, improvement, deflated Sharpe, the trust "
    "figures and the `significant` verdict (docs/regimes.md), charts.",
)
def regime_bests(context: dg.AssetExecutionContext, storage: ForexStorage) -> dg.MaterializeResult:
    from forex_pipeline.reporting.dashboard import build_dashboard

    dashboard = build_dashboard(storage.db_url, storage.settings, storage.artifacts)
    metadata: dict[str, dg.MetadataValue] = {
        "bests": dg.MetadataValue.md(dashboard.markdown),
        "models_in_bests": dg.MetadataValue.int(dashboard.n_models),
        # the `significant` verdict of each regime's rank-1 best (docs/regimes.md)
        "significant_regimes": dg.MetadataValue.text(", ".join(dashboard.significant_regimes) or "none"),
    }
    for name, path in dashboard.charts.items():
        metadata[name] = _image(path)
        metadata[f"{name}_path"] = dg.MetadataValue.path(str(path))
    return dg.MaterializeResult(metadata=metadata)
