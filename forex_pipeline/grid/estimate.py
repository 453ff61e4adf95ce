"""What a grid costs before it runs: its size, what is already trained, and a time estimate."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forex_pipeline.data.timeframes import TRADING_DAYS_PER_YEAR, rows_per_day
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.grid.expand import Grid, expand_grid, grid_hash
from forex_pipeline.models.spec import ModelConfiguration
from forex_pipeline.grid.spec import GridSpec
from forex_pipeline.keys import RunStatus
from forex_pipeline.models.spec import ModelSpec

# Default time table, used for a model type with no completed run in the database yet. Reference size:
# 1 year of 1h bars (~6,240 rows, ~30 features), K=5 members, default hyperparameters. Measured
# 2026-11-26 with models.registry.train_model and backtest.run.run_inference_backtests on EURUSD 2019
# (first feature set of examples/grids/classical_24.yaml), imports and numba compilation excluded, on
# the shared 2-core development machine under load 4-6 (an idle machine is about 1.5-2x faster).
# Training at horizon 5 (5 target intervals): ridge 0.2 s, lasso 0.6 s, elasticnet 0.9 s,
# lightgbm 10-15 s, rf 61 s (rf with n_estimators=50, max_depth=4: 16-27 s); rf at horizon 1
# (1 interval): 14 s. Classical families fit one regressor per member per distinct target interval,
# so their cost is per interval; `n_estimators` (rf, lightgbm) scales it linearly.
CLASSICAL_SECONDS_PER_INTERVAL: dict[str, float] = {
    "ridge": 0.04,
    "lasso": 0.12,
    "elasticnet": 0.17,
    "rf": 12.0,
    "lightgbm": 2.5,
}
# Neural and diffusion families train one network per member, each bounded by
# training.neural.max_seconds (50 s by default): orders of magnitude, 30-60 s per model.
NEURAL_SECONDS_PER_MODEL: dict[str, float] = {
    "lightning": 45.0,
    "diffusion-ddpm": 60.0,
    "diffusion-ddim": 60.0,
    "sssd": 60.0,
}
# The internal loop of one model (135 inference configurations x regimes over the test segment):
# measured 0.1-0.3 s for linear models and rf, 1.1 s for lightgbm (its predictions dominate).
BACKTEST_SECONDS = 0.5
# Extra seconds to fit an encoder before the model: pca measured under 0.2 s; autoencoder, vae and
# latents are small torch networks bounded like the neural families (orders of magnitude, not measured).
ENCODER_SECONDS: dict[str, float] = {"none": 0.0, "pca": 0.2, "latents": 10.0, "autoencoder": 20.0, "vae": 25.0}
REFERENCE_MEMBERS = 5
REFERENCE_ROWS = 365 * 24 * TRADING_DAYS_PER_YEAR / 365

# How many recent completed runs per model type feed the time estimate.
HISTORY_RUNS = 200

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from forex_pipeline.settings import Settings


@dataclass(frozen=True)
class GridPlan:
    """What submitting a grid would do: its size, what is already trained and how long the rest takes."""

    name: str
    grid_hash: str
    size: int
    feature_sets: list[FeatureSetSpec]
    model_specs: list[ModelSpec]
    already_trained: int
    pending: list[ModelConfiguration] = field(repr=False)
    estimated_seconds: float

    @property
    def n_feature_sets(self) -> int:
        return len(self.feature_sets)

    @property
    def n_model_specs(self) -> int:
        return len(self.model_specs)

    @property
    def to_train(self) -> int:
        return len(self.pending)


def target_intervals(horizon: int, direct_multi_steps: int) -> int:
    """Distinct target intervals a classical model fits per member: direct, recursive and direct_multi ones."""
    from forex_pipeline.features.targets import direct_multi_intervals

    return len({(0, horizon), (0, 1), *direct_multi_intervals(horizon, direct_multi_steps)})


def estimator_scale(model_spec: ModelSpec) -> float:
    """n_estimators relative to the family default (1 for families without it)."""
    from forex_pipeline.models.registry import family_module

    module = family_module(model_spec.model_type)
    resolved = module.validate_hyperparameters(model_spec)
    default = module.validate_hyperparameters(ModelSpec(model_type=model_spec.model_type, horizon=model_spec.horizon))
    if "n_estimators" not in resolved:
        return 1.0
    return resolved["n_estimators"] / default["n_estimators"]


def model_seconds(model_spec: ModelSpec, settings: Settings) -> float:
    """Seconds to train and backtest `model_spec` on the reference size (see CLASSICAL_SECONDS_PER_INTERVAL)."""
    members = settings.training.members / REFERENCE_MEMBERS
    if model_spec.model_type in CLASSICAL_SECONDS_PER_INTERVAL:
        intervals = target_intervals(model_spec.horizon, settings.training.direct_multi_steps)
        model = CLASSICAL_SECONDS_PER_INTERVAL[model_spec.model_type] * intervals * estimator_scale(model_spec)
    else:
        model = NEURAL_SECONDS_PER_MODEL.get(model_spec.model_type, max(NEURAL_SECONDS_PER_MODEL.values()))
    return model * members + ENCODER_SECONDS.get(model_spec.encoder, 0.0) + BACKTEST_SECONDS


def reference_scale(feature_set: FeatureSetSpec) -> float:
    """Rows of the feature set relative to the reference 1 year of 1h bars."""
    return feature_set.days_history * rows_per_day(feature_set.base_timeframe) / REFERENCE_ROWS


def estimate_seconds(
    configurations: Iterable[ModelConfiguration],
    history: Mapping[str, Sequence[float]] | None = None,
    settings: Settings | None = None,
) -> float:
    """Expected seconds to train and backtest `configurations`.

    The median of past runs of the same model type when there are any, else the default table
    scaled linearly by rows (days_history x bars per day) relative to 1 year of 1h bars.
    """
    if settings is None:
        from forex_pipeline.settings import get_settings

        settings = get_settings()
    medians = {
        model_type: statistics.median(valid)
        for model_type, seconds in (history or {}).items()
        if (valid := [s for s in seconds if s is not None and s >= 0])
    }
    per_spec: dict[str, float] = {}
    total = 0.0
    for c in configurations:
        if c.model_spec.model_type in medians:
            total += medians[c.model_spec.model_type]
            continue
        if c.model_spec_hash not in per_spec:
            per_spec[c.model_spec_hash] = model_seconds(c.model_spec, settings)
        total += per_spec[c.model_spec_hash] * reference_scale(c.feature_set)
    return float(total)


def plan(
    grid: GridSpec | Grid,
    session: Session | None = None,
    *,
    completed_hashes: Iterable[str] | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
) -> GridPlan:
    """Size of the grid, how many configurations are already trained and the time the rest needs.

    With a session, completed configurations and past run times come from the project database
    (added to `completed_hashes`; `history`, when given, is used instead of the database's).
    """
    expanded = grid if isinstance(grid, Grid) else expand_grid(grid)
    done = set(completed_hashes or ())
    if session is not None:
        from forex_pipeline.store.training_runs import find_completed_hashes

        done |= find_completed_hashes(session, (c.model_config_hash for c in expanded.configurations))
        if history is None:
            history = past_seconds(session, sorted({ms.model_type for ms in expanded.model_specs}))
    pending = [c for c in expanded.configurations if c.model_config_hash not in done]
    return GridPlan(
        name=expanded.spec.name,
        grid_hash=grid_hash(expanded),
        size=expanded.size,
        feature_sets=expanded.feature_sets,
        model_specs=expanded.model_specs,
        already_trained=expanded.size - len(pending),
        pending=pending,
        estimated_seconds=estimate_seconds(pending, history),
    )


def past_seconds(session: Session, model_types: Iterable[str], recent: int = HISTORY_RUNS) -> dict[str, list[float]]:
    """training_seconds + backtest_seconds of the `recent` latest completed runs of each model type."""
    from forex_pipeline.store.history import HistoryFilter, query_history

    history: dict[str, list[float]] = {}
    for model_type in model_types:
        filters = HistoryFilter(status=RunStatus.COMPLETED, model_type=model_type, sort="-completed_at", page_size=recent)
        rows = query_history(session, filters).rows
        rows = rows[rows["training_seconds"].notna()]
        seconds = rows["training_seconds"] + rows["backtest_seconds"].fillna(0.0)
        valid = [float(s) for s in seconds if s > 0]
        if valid:
            history[model_type] = valid
    return history


# One random-forecast model of the noise reference through the 135 configurations on the reference
# size (no predictions): measured 0.05-0.11 s for 1,250-3,000 test rows on the shared 2-core machine
# (benchmarks/bench_trust.py reports the same loop).
NOISE_MODEL_SECONDS = 0.06


@dataclass(frozen=True)
class EvaluationCost:
    """What settings.evaluation adds to a grid (docs/regimes.md "Selection, holdout and walk-forward").

    `training_factor`: models trained per configuration (holdout: 1; walk_forward with K folds: K, one
    per fold, each on the rows before its fold, pipeline/walk_forward.py). The backtests simulate the
    same test rows in both modes (the folds tile the selection segment). `reference_runs`: (feature
    set, horizon) pairs, each with one cached noise reference of `noise_models` random-forecast models
    run through the same grid.
    """

    mode: str
    folds: int
    training_factor: int
    reference_runs: int
    noise_models: int
    extra_seconds: float

    def describe(self) -> str:
        if self.mode == "holdout":
            return "holdout: one model per configuration, selection then holdout"
        return (
            f"walk_forward, {self.folds} folds: {self.training_factor}x the training (one model per fold, each "
            "trained on the rows before its fold); backtests cover the same rows"
        )


def training_factor(mode: str, folds: int) -> int:
    """Models trained per configuration: 1 in holdout mode, one per fold in walk-forward mode."""
    return 1 if mode == "holdout" else int(folds)


def evaluation_cost(configurations: Sequence[ModelConfiguration], settings: Settings | None = None) -> EvaluationCost:
    """The K-fold (walk-forward) training on `configurations` and the one-off noise references, in
    seconds on the reference size (a later fold's model is counted at the full model's training time:
    its rows grow from the training segment's to the last fold's start)."""
    if settings is None:
        from forex_pipeline.settings import get_settings

        settings = get_settings()
    evaluation = settings.evaluation
    factor = training_factor(evaluation.mode, evaluation.folds)
    groups = {(c.feature_set_hash, c.model_spec.horizon): c.feature_set for c in configurations}
    per_spec: dict[str, float] = {}
    for c in configurations:
        if c.model_spec_hash not in per_spec:
            per_spec[c.model_spec_hash] = model_seconds(c.model_spec, settings) - BACKTEST_SECONDS
    training = sum(per_spec[c.model_spec_hash] * reference_scale(c.feature_set) for c in configurations) * (factor - 1)
    noise = sum(NOISE_MODEL_SECONDS * reference_scale(fs) for fs in groups.values()) * evaluation.noise_models
    return EvaluationCost(evaluation.mode, evaluation.folds, factor, len(groups), evaluation.noise_models, training + noise)
