"""Gather what the regime-bests dashboard shows from the database and artifacts, then render it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forex_pipeline.hashing import config_hash
from forex_pipeline.keys import split_model_config_key
from forex_pipeline.reporting import charts
from forex_pipeline.reporting.tables import Table, bests_table, model_label
from forex_pipeline.store.regime_definitions import active_regimes
from forex_pipeline.settings import RegimeSettings, Settings
from forex_pipeline.store import history, regime_best_models, training_runs
from forex_pipeline.store.db import get_engine, session_scope

logger = logging.getLogger(__name__)
# Bump when a chart's drawing changes: every chart is then drawn again once (chart_once).
CHARTS_VERSION = 1


@dataclass(frozen=True)
class Dashboard:
    """What the regime_bests asset shows: the bests as a typed table, how many models they hold, one PNG per chart."""

    table: Table
    n_models: int
    charts: dict[str, Path] = field(default_factory=dict)
    bests: pd.DataFrame = field(default_factory=pd.DataFrame)   # current_bests, trust figures included
    significant_regimes: tuple[str, ...] = ()                    # regimes whose rank-1 best is significant


def feature_set_regimes(
    feature_set_key: str, regimes: RegimeSettings, settings: Settings, artifacts_dir: Path
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray] | None:
    """(timestamps, close, regime label) of every row of a feature set's matrix with `regimes` (the
    scored ones), the HMM fitted on the training rows as the pipeline fits it; None when the matrix
    file is gone."""
    from forex_pipeline.features.build import load_feature_matrix
    from forex_pipeline.regimes.labels import label_regimes

    matrix_path = Path(artifacts_dir) / "features" / f"{feature_set_key}.parquet"
    if not matrix_path.exists():
        return None
    matrix = load_feature_matrix(matrix_path)
    labels = np.asarray(label_regimes(matrix.close, regimes, timeframe=matrix.base_timeframe, train_end=int(matrix.n_rows * settings.training.train_fraction), timestamps=matrix.timestamps))
    return matrix.timestamps, matrix.close, labels


def regime_timeline(bests: pd.DataFrame, settings: Settings, artifacts_dir: Path, path: Path) -> Path | None:
    """Regime labels over the close of the first best model's feature set (redrawn only when that feature
    set's matrix or the scored regimes changed)."""
    if bests.empty:
        return None
    fs_key, _ = split_model_config_key(str(bests.iloc[0]["partition_key"]))
    matrix_path = Path(artifacts_dir) / "features" / f"{fs_key}.parquet"
    if not matrix_path.exists():
        return None
    with session_scope(get_engine(settings.database_url)) as session:
        regimes = active_regimes(session, settings)
    inputs = {
        "chart": "regime_timeline", "feature_set": fs_key, "matrix": _file_stamp(matrix_path),
        "regimes": regimes.model_dump(mode="json"), "train_fraction": settings.training.train_fraction,
    }

    def draw(key: str) -> Path | None:
        labelled = feature_set_regimes(fs_key, regimes, settings, artifacts_dir)
        if labelled is None:
            return None
        timestamps, close, labels = labelled
        return charts.regime_timeline_chart(timestamps, close, labels, path, f"Regimes of {fs_key}", key)

    return chart_once(path, inputs, draw)


def chart_once(path: Path, inputs: object, draw: Callable[[str], Path | None]) -> Path | None:
    """The chart at `path`, drawn by `draw(key)` only when the hash `key` of its `inputs` differs from
    the one the file was saved with (charts.drawn_from): a rebuild with nothing new renders nothing."""
    key = config_hash({"version": CHARTS_VERSION, "inputs": inputs})
    if charts.drawn_from(path) == key:
        return path
    return draw(key)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file, None when it is missing: what says it changed."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def model_left_the_bests(settings: Settings, training_run_id: int) -> bool:
    """True when the run is, as of now, no longer kept or its file is recorded deleted: a model file
    that fails to load is then a stale read of the bests (parallel workers), not a damaged file."""
    with session_scope(get_engine(settings.database_url)) as session:
        run = training_runs.get_training_run(session, training_run_id)
    return run is None or not run.kept or run.file_deleted_at is not None


def equity_curves(bests: pd.DataFrame, settings: Settings, artifacts_dir: Path) -> dict[str, pd.Series]:
    """Equity over the test segment of each regime's rank-1 (model, inference config), from the kept file
    (the backtest and model code load only when some rank-1 has its file and feature matrix)."""
    rows = [row for row in _equity_rows(bests) if (artifacts_dir / "features" / f"{_feature_set_key(row)}.parquet").exists()]
    if not rows:
        return {}
    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.backtest.run import config_equity
    from forex_pipeline.features.build import load_feature_matrix
    from forex_pipeline.features.splits import split_rows
    from forex_pipeline.models.files import ModelFileError, quarantine, resolve_model_path
    from forex_pipeline.models.registry import load_model
    from forex_pipeline.store.spec_files import read_spec

    curves: dict[str, pd.Series] = {}
    for row in rows:
        fs_key, ms_key = split_model_config_key(str(row["partition_key"]))
        matrix_path = artifacts_dir / "features" / f"{fs_key}.parquet"
        spec = read_spec(artifacts_dir, "model_spec", ms_key)
        feature_set = read_spec(artifacts_dir, "feature_set", fs_key)
        with session_scope(get_engine(settings.database_url)) as session:
            run = training_runs.get_training_run(session, int(row["training_run_id"]))
        try:
            model = load_model(resolve_model_path(row["model_path"], artifacts_dir), spec, run.model_sha256)
        except ModelFileError as exc:
            if model_left_the_bests(settings, run.id):
                continue  # another worker's keep-or-delete removed it after the bests were read: nothing is wrong
            moved = quarantine(resolve_model_path(row["model_path"], artifacts_dir), artifacts_dir)
            message = f"{exc}; moved to {moved}" if moved else str(exc)
            with session_scope(get_engine(settings.database_url)) as session:
                training_runs.quarantine_run(session, run.id, message)
            logger.warning("model file quarantined: %s", message)
            continue
        matrix = load_feature_matrix(matrix_path)
        test = split_rows(matrix.n_rows, spec.horizon, settings.training.train_fraction, settings.training.validation_fraction).test
        config = InferenceConfig(
            row["prediction_method"], row["ensemble_method"], float(row["confidence_threshold"]), int(row["lookback_window"])
        )
        curves[f"{row['regime']}: {model_label(artifacts_dir, str(row['partition_key']))}"] = config_equity(model, matrix, test, config, settings, feature_set.symbol)
    return curves


def _equity_rows(bests: pd.DataFrame) -> list[dict]:
    """The rank-1 bests whose model is kept with a file: the rows an equity curve can be drawn for."""
    top = bests[bests["rank"] == 1]
    return [row for row in top.to_dict("records") if row["kept"] and row["model_path"]]


def _feature_set_key(row: dict) -> str:
    return split_model_config_key(str(row["partition_key"]))[0]


def equity_inputs(bests: pd.DataFrame, settings: Settings, artifacts_dir: Path) -> dict:
    """What the equity chart depends on: the rank-1 rows, their model and matrix files' stamps, the settings."""
    from forex_pipeline.models.files import resolve_model_path

    rows = _equity_rows(bests)
    return {
        "chart": "equity_of_bests",
        "rows": [
            [str(row[c]) for c in ("regime", "training_run_id", "partition_key", "model_path", "prediction_method",
                                   "ensemble_method", "confidence_threshold", "lookback_window")]
            for row in rows
        ],
        "files": [
            [_file_stamp(artifacts_dir / "features" / f"{_feature_set_key(row)}.parquet"),
             _file_stamp(resolve_model_path(row["model_path"], artifacts_dir))]
            for row in rows
        ],
        "settings": settings.model_dump(mode="json"),
    }


def model_regime_pivot(rows: pd.DataFrame, artifacts_dir: Path) -> pd.DataFrame:
    """Model x regime table of best Sharpe, models by their readable names (empty stays empty)."""
    if rows.empty:
        return rows
    labelled = rows.assign(model=[model_label(artifacts_dir, str(key)) for key in rows["model"]])
    return labelled.pivot_table(index="model", columns="regime", values="sharpe", aggfunc="max").astype(float)


def build_dashboard(db_url: str, settings: Settings, artifacts_dir: Path) -> Dashboard:
    """The bests table plus heatmap, risk/return, equity and timeline charts under artifacts/dashboard."""
    engine = get_engine(db_url)
    out = Path(artifacts_dir) / "dashboard"
    with session_scope(engine) as session:
        regimes = list(active_regimes(session, settings).definitions)
        bests = regime_best_models.current_bests(session)
        run_ids = sorted({int(r) for r in bests["training_run_id"]}) if not bests.empty else []
        heat = model_regime_pivot(history.best_sharpe_by_model_and_regime(session, run_ids, settings.regimes.min_trades), Path(artifacts_dir)) if run_ids else pd.DataFrame()
        points = history.risk_return_points(session)
    drawn: dict[str, Path | None] = {}
    heat_path, points_path, equity_path = out / "model_regime_heatmap.png", out / "risk_vs_return.png", out / "equity_of_bests.png"
    if not heat.empty:
        drawn["model_regime_heatmap"] = chart_once(
            heat_path, {"chart": "heatmap", "table": heat.to_csv()}, lambda key: charts.heatmap_chart(heat, heat_path, key)
        )
    if not points.empty:
        drawn["risk_vs_return"] = chart_once(
            points_path, {"chart": "risk_return", "points": points.to_csv()}, lambda key: charts.risk_return_chart(points, points_path, key)
        )
    if not bests.empty and _equity_rows(bests):

        def draw_equity(key: str) -> Path | None:
            curves = equity_curves(bests, settings, Path(artifacts_dir))
            return charts.equity_chart(curves, equity_path, key) if curves else None

        drawn["equity_of_bests"] = chart_once(equity_path, equity_inputs(bests, settings, Path(artifacts_dir)), draw_equity)
    drawn["regime_timeline"] = regime_timeline(bests, settings, Path(artifacts_dir), out / "regime_timeline.png")
    paths = {name: path for name, path in drawn.items() if path is not None}
    top = bests[bests["rank"] == 1] if not bests.empty else bests
    significant = tuple(sorted(str(r) for r in top.loc[top["significant"].fillna(False).astype(bool), "regime"])) if len(top) else ()
    return Dashboard(bests_table(bests, regimes, Path(artifacts_dir)), len(run_ids), paths, bests, significant)
