"""Gather what the regime-bests dashboard shows from the database and artifacts, then render it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from forex_pipeline import reports
from forex_pipeline.regime_catalog import active_regimes
from forex_pipeline.settings import Settings
from forex_pipeline.store import repository
from forex_pipeline.store.db import get_engine, session_scope
from forex_pipeline.store.tables import InferenceBacktest, TrainingRun


@dataclass(frozen=True)
class Dashboard:
    markdown: str
    n_models: int
    charts: dict[str, Path] = field(default_factory=dict)


def best_per_model_and_regime(session, run_ids: list[int], min_trades: int) -> pd.DataFrame:  # noqa: ANN001
    """Best Sharpe per (model, regime) among configurations with enough trades."""
    statement = (
        select(TrainingRun.partition_key, InferenceBacktest.regime, func.max(InferenceBacktest.sharpe))
        .join(TrainingRun, TrainingRun.id == InferenceBacktest.training_run_id)
        .where(InferenceBacktest.training_run_id.in_(run_ids), InferenceBacktest.trade_count >= min_trades)
        .group_by(TrainingRun.partition_key, InferenceBacktest.regime)
    )
    rows = pd.DataFrame([tuple(r) for r in session.execute(statement)], columns=["model", "regime", "sharpe"])
    if rows.empty:
        return rows
    return rows.pivot(index="model", columns="regime", values="sharpe").astype(float)


def risk_return_points(session) -> pd.DataFrame:  # noqa: ANN001
    """Per completed model, its best-Sharpe configuration over the whole test segment."""
    statement = (
        select(
            InferenceBacktest.training_run_id, InferenceBacktest.sharpe, InferenceBacktest.max_drawdown,
            InferenceBacktest.total_return, TrainingRun.kept,
        )
        .join(TrainingRun, TrainingRun.id == InferenceBacktest.training_run_id)
        .where(InferenceBacktest.regime == "all", InferenceBacktest.sharpe.is_not(None))
    )
    rows = pd.DataFrame([tuple(r) for r in session.execute(statement)], columns=["run", "sharpe", "max_drawdown", "total_return", "kept"])
    if rows.empty:
        return rows
    return rows.sort_values("sharpe", ascending=False).drop_duplicates("run")


def regime_timeline(bests: pd.DataFrame, settings: Settings, artifacts_dir: Path, path: Path) -> Path | None:
    """Regime labels over the close of the first best model's feature set."""
    from forex_pipeline.features.build import load_feature_matrix
    from forex_pipeline.regimes.labels import label_regimes

    if bests.empty:
        return None
    fs_key = str(bests.iloc[0]["partition_key"]).split("|")[0]
    matrix_path = artifacts_dir / "features" / f"{fs_key}.parquet"
    if not matrix_path.exists():
        return None
    matrix = load_feature_matrix(matrix_path)
    with session_scope(get_engine(settings.database_url)) as session:
        regimes = active_regimes(session, settings)
    labels = np.asarray(label_regimes(matrix.close, regimes, timeframe=matrix.base_timeframe, train_end=int(matrix.n_rows * settings.training.train_fraction), timestamps=matrix.timestamps))
    return reports.regime_timeline_chart(matrix.timestamps, matrix.close, labels, path, f"Regimes of {fs_key}")


def equity_curves(bests: pd.DataFrame, settings: Settings, artifacts_dir: Path) -> dict[str, pd.Series]:
    """Equity over the test segment of each regime's rank-1 (model, inference config), from the kept file."""
    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.backtest.run import config_equity
    from forex_pipeline.features.build import load_feature_matrix
    from forex_pipeline.features.splits import split_rows
    from forex_pipeline.models.registry import load_model
    from forex_pipeline.store.spec_files import read_spec

    curves: dict[str, pd.Series] = {}
    for _, row in bests[bests["rank"] == 1].iterrows():
        fs_key, ms_key = str(row["partition_key"]).split("|")
        matrix_path = artifacts_dir / "features" / f"{fs_key}.parquet"
        if not row["kept"] or not row["model_path"] or not matrix_path.exists():
            continue
        spec = read_spec(artifacts_dir, "model_spec", ms_key)
        feature_set = read_spec(artifacts_dir, "feature_set", fs_key)
        with session_scope(get_engine(settings.database_url)) as session:
            run = repository.get_training_run(session, int(row["training_run_id"]))
        model = load_model(Path(row["model_path"]), spec, run.model_sha256)
        matrix = load_feature_matrix(matrix_path)
        test = split_rows(matrix.n_rows, spec.horizon, settings.training.train_fraction, settings.training.validation_fraction).test
        config = InferenceConfig(
            row["prediction_method"], row["ensemble_method"], float(row["confidence_threshold"]), int(row["lookback_window"])
        )
        curves[f"{row['regime']}: {ms_key}"] = config_equity(model, matrix, test, config, settings, feature_set.symbol)
    return curves


def build_dashboard(db_url: str, settings: Settings, artifacts_dir: Path) -> Dashboard:
    """Markdown tables per regime plus heatmap, risk/return, equity and timeline charts under artifacts/dashboard."""
    engine = get_engine(db_url)
    out = Path(artifacts_dir) / "dashboard"
    with session_scope(engine) as session:
        regimes = list(active_regimes(session, settings).definitions)
        bests = repository.current_bests(session)
        run_ids = sorted({int(r) for r in bests["training_run_id"]}) if not bests.empty else []
        heat = best_per_model_and_regime(session, run_ids, settings.regimes.min_trades) if run_ids else pd.DataFrame()
        points = risk_return_points(session)
    charts: dict[str, Path] = {}
    if not heat.empty:
        charts["model_regime_heatmap"] = reports.heatmap_chart(heat, out / "model_regime_heatmap.png")
    if not points.empty:
        charts["risk_vs_return"] = reports.risk_return_chart(points, out / "risk_vs_return.png")
    curves = equity_curves(bests, settings, Path(artifacts_dir)) if not bests.empty else {}
    if curves:
        charts["equity_of_bests"] = reports.equity_chart(curves, out / "equity_of_bests.png")
    timeline = regime_timeline(bests, settings, Path(artifacts_dir), out / "regime_timeline.png")
    if timeline is not None:
        charts["regime_timeline"] = timeline
    return Dashboard(reports.bests_markdown(bests, regimes), len(run_ids), charts)
