"""What a grid costs before it runs: its size, what is already trained, and a time estimate."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forex_pipeline.data.timeframes import TRADING_DAYS_PER_YEAR, rows_per_day
from forex_pipeline.hashing import canonical_json
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.grid.expand import Grid, expand_grid, grid_hash
from forex_pipeline.models.spec import ModelConfiguration
from forex_pipeline.grid.spec import GridSpec
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

# The work a configuration shares or adds outside its model (prior, calibrated by `shared_rate`):
# claim, spec files, the keep-or-delete transaction, queue counts and the batch's Dagster events per
# configuration (recorded runs of the fast_50 grid: 2-4 s of claim-to-record time beyond training and
# backtests on the shared machine under load ~20, so about 0.4 s at the load of the table above), and
# the bars and features of each feature set on the reference size (once per feature set).
RECORD_SECONDS = 0.4
FEATURES_SECONDS = 8.0
# Work of a queue outside any configuration: per Dagster run of queue.models_per_run models (run
# creation, resources, op events) and once per queue (process start, the regime_bests materialization
# at its end). The demo on the shared machine under load ~25 spent 444 s from its start to its end
# outside every claim-to-record time (shared rate 18.5 there): about 20 s at the table's load.
BATCH_SECONDS = 1.5
QUEUE_SECONDS = 17.0

# How many recent completed runs per (model type, base timeframe) calibrate the time estimate.
HISTORY_RUNS = 200

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from forex_pipeline.grid.probe import MachineProbe
    from forex_pipeline.settings import Settings
    from forex_pipeline.store.training_runs import RunDuration


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
    calibration: Calibration = field(default_factory=lambda: Calibration())

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
    from forex_pipeline.models.registry import family_rules

    module = family_rules(model_spec.model_type)
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


def prior_work_seconds(configuration: ModelConfiguration, settings: Settings) -> float:
    """Training and backtests of one configuration by the reference table, scaled to its rows."""
    return model_seconds(configuration.model_spec, settings) * reference_scale(configuration.feature_set)


def prior_shared_seconds(configurations: Sequence[ModelConfiguration], settings: Settings) -> float:
    """What the configurations add outside their models by the reference table: recording per
    configuration, bars and features per feature set, the evaluation's noise references and
    walk-forward backtests (evaluation_cost)."""
    feature_sets = {c.feature_set_hash: c.feature_set for c in configurations}
    features = sum(FEATURES_SECONDS * reference_scale(fs) for fs in feature_sets.values())
    return RECORD_SECONDS * len(configurations) + features + evaluation_cost(configurations, settings).extra_seconds


def queue_overhead_seconds(configurations: int, settings: Settings) -> float:
    """The queue's own work by the reference table: its Dagster runs and its start and end (0 for nothing to do)."""
    if configurations <= 0:
        return 0.0
    return QUEUE_SECONDS + BATCH_SECONDS * math.ceil(configurations / settings.queue.models_per_run)


@dataclass(frozen=True)
class Calibration:
    """This machine's recorded runs against the reference table.

    `model_rates`: per (model type, base timeframe), the median over recent completed runs of measured
    training + backtest seconds / the table's seconds for the same configuration (so a run of 730 days
    calibrates a plan of 365 days: the table carries the scaling by rows, intervals, trees, members).
    `family_rates`: the same per model type over all its timeframes, for a timeframe not yet recorded.
    `machine_rate`: the median over every recorded run, for a family not yet recorded (the table's
    ranking of families, at the speed this machine shows now).
    `shared_rate`: claim-to-record seconds beyond the model work of those runs, summed, / the table's
    shared work of the same runs (recording, their feature sets, their noise references).
    A rate of 1 is the table itself; with no recorded run every rate is the table's, or the rate of
    `probe` (grid/probe.py: a short run of a small unit of real work on this machine) when there is one.
    """

    model_rates: Mapping[tuple[str, str], float] = field(default_factory=dict)
    family_rates: Mapping[str, float] = field(default_factory=dict)
    machine_rate: float = 1.0
    shared_rate: float | None = None
    runs: int = 0
    probe: MachineProbe | None = None

    def model_rate(self, model_type: str, base_timeframe: str) -> float:
        """The rate of (model type, timeframe), else of the model type, else of the machine (1 when
        nothing is recorded: the table)."""
        return self.model_rates.get((model_type, base_timeframe), self.family_rates.get(model_type, self.machine_rate))

    def describe(self) -> str:
        if not self.runs and self.probe is not None:
            return f"time estimate {self.probe.describe()}; no completed run recorded yet"
        if not self.runs:
            return "time estimate from the reference table, not scaled to this machine (no completed run recorded yet)"
        rates = ", ".join(f"{t} {tf} x{r:.2f}" for (t, tf), r in sorted(self.model_rates.items()))
        shared = f"; shared work x{self.shared_rate:.2f}" if self.shared_rate is not None else ""
        return f"time estimate calibrated on {self.runs} recorded runs: {rates}; other families x{self.machine_rate:.2f}{shared}"


def probed_calibration(probe: MachineProbe) -> Calibration:
    """The reference table scaled by this machine's probe: every family and the shared work at its rate."""
    return Calibration(machine_rate=probe.rate, shared_rate=probe.rate, probe=probe)


def calibrate(durations: Iterable[RunDuration], settings: Settings) -> Calibration:
    """Rates of measured against reference seconds from recorded runs (see Calibration); a run whose
    stored specs no longer validate, or that measured nothing, is left out."""
    from pydantic import ValidationError

    from forex_pipeline.models.spec import model_config_hash

    ratios: dict[tuple[str, str], list[float]] = {}
    measured_shared, shared_configurations = 0.0, []
    specs: dict[tuple[str, str], tuple[Any, str, str]] = {}
    seconds: dict[str, float] = {}
    for run in durations:
        try:
            fs, fs_key, fs_hash = _recorded_spec(specs, FeatureSetSpec, run.feature_set)
            ms, ms_key, ms_hash = _recorded_spec(specs, ModelSpec, run.model_spec)
            configuration = ModelConfiguration(fs, ms, fs_key, ms_key, fs_hash, ms_hash, model_config_hash(fs_hash, ms_hash))
            if ms_hash not in seconds:
                seconds[ms_hash] = model_seconds(ms, settings)
            prior = seconds[ms_hash] * reference_scale(fs)
        except (ValidationError, ValueError, KeyError):
            continue
        work = run.training_seconds + (run.backtest_seconds or 0.0)
        if prior <= 0 or work <= 0:
            continue
        ratios.setdefault((run.model_type, run.base_timeframe), []).append(work / prior)
        if run.wall_seconds is not None and run.wall_seconds >= work:
            measured_shared += run.wall_seconds - work
            shared_configurations.append(configuration)
    by_family: dict[str, list[float]] = {}
    for (model_type, _), values in ratios.items():
        by_family.setdefault(model_type, []).extend(values)
    prior_shared = prior_shared_seconds(shared_configurations, settings) if shared_configurations else 0.0
    return Calibration(
        model_rates={key: statistics.median(values) for key, values in ratios.items()},
        family_rates={key: statistics.median(values) for key, values in by_family.items()},
        machine_rate=statistics.median([r for values in ratios.values() for r in values]) if ratios else 1.0,
        shared_rate=measured_shared / prior_shared if prior_shared > 0 else None,
        runs=sum(len(values) for values in ratios.values()),
    )


def _recorded_spec(specs: dict[tuple[str, str], tuple[Any, str, str]], kind: type[FeatureSetSpec] | type[ModelSpec],
                   stored: dict[str, Any]) -> tuple[Any, str, str]:
    """A recorded run's stored spec validated, with its partition key and hash: once per distinct spec
    (thousands of recorded runs share a few hundred specs)."""
    key = (kind.__name__, canonical_json(stored))
    if key not in specs:
        spec = kind.model_validate(stored)
        specs[key] = (spec, spec.partition_key, spec.hash)
    return specs[key]


def model_work_seconds(
    configurations: Iterable[ModelConfiguration], calibration: Calibration | None = None, settings: Settings | None = None
) -> float:
    """Training and backtests of `configurations`: the reference table per configuration, scaled to
    its rows, times the calibrated rate of its model type and timeframe."""
    settings = settings or _settings()
    calibration = calibration or Calibration()
    per_spec: dict[str, float] = {}
    total = 0.0
    for c in configurations:
        if c.model_spec_hash not in per_spec:
            per_spec[c.model_spec_hash] = model_seconds(c.model_spec, settings)
        rate = calibration.model_rate(c.model_spec.model_type, c.feature_set.base_timeframe)
        total += per_spec[c.model_spec_hash] * reference_scale(c.feature_set) * rate
    return float(total)


def estimate_seconds(
    configurations: Iterable[ModelConfiguration], calibration: Calibration | None = None, settings: Settings | None = None
) -> float:
    """Expected seconds to run `configurations` as one queue, one at a time: their model work
    (model_work_seconds) plus the work they share (prior_shared_seconds, queue_overhead_seconds)
    times the calibrated shared rate."""
    settings = settings or _settings()
    calibration = calibration or Calibration()
    configurations = list(configurations)
    shared = prior_shared_seconds(configurations, settings) + queue_overhead_seconds(len(configurations), settings)
    shared *= calibration.shared_rate or 1.0
    return model_work_seconds(configurations, calibration, settings) + shared


def _settings() -> Settings:
    from forex_pipeline.settings import get_settings

    return get_settings()


def plan(
    grid: GridSpec | Grid,
    session: Session | None = None,
    *,
    completed_hashes: Iterable[str] | None = None,
    calibration: Calibration | None = None,
    settings: Settings | None = None,
    probe: bool = False,
) -> GridPlan:
    """Size of the grid, how many configurations are already trained and the time the rest needs.

    With a session, completed configurations and the calibration come from the project database
    (added to `completed_hashes`; `calibration`, when given, is used instead of the database's).
    With `probe` and no recorded run to calibrate on, the table is scaled by this machine's probe
    (grid/probe.py: cached, measured in about a second when stale).
    """
    settings = settings or _settings()
    expanded = grid if isinstance(grid, Grid) else expand_grid(grid)
    done = set(completed_hashes or ())
    if session is not None:
        from forex_pipeline.store.training_runs import find_completed_hashes

        done |= find_completed_hashes(session, (c.model_config_hash for c in expanded.configurations))
        if calibration is None:
            calibration = recorded_calibration(session, sorted({ms.model_type for ms in expanded.model_specs}), settings)
    if probe and (calibration is None or not calibration.runs):
        from forex_pipeline.grid.probe import machine_probe

        calibration = probed_calibration(machine_probe(settings))
    pending = [c for c in expanded.configurations if c.model_config_hash not in done]
    return GridPlan(
        name=expanded.spec.name,
        grid_hash=grid_hash(expanded),
        size=expanded.size,
        feature_sets=expanded.feature_sets,
        model_specs=expanded.model_specs,
        already_trained=expanded.size - len(pending),
        pending=pending,
        estimated_seconds=estimate_seconds(pending, calibration, settings),
        calibration=calibration or Calibration(),
    )


def recorded_calibration(session: Session, model_types: Iterable[str], settings: Settings, recent: int = HISTORY_RUNS) -> Calibration:
    """The calibration of the `recent` latest completed runs per (model type, timeframe) of `model_types`."""
    from forex_pipeline.store.training_runs import recent_durations

    return calibrate(recent_durations(session, model_types, recent), settings)


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
