"""Grid spec -> feature-set specs x model specs: validation, expansion, partition keys, plan and time estimate.

A grid spec (a YAML file, or the same dict from a Dagster launchpad) lists values per axis:

    name: demo
    feature_sets:
      symbols: [EURUSD]                  # normalised: EUR/USD = EURUSD
      base_timeframes: [1h]
      days_history: [365]
      as_of: "2019-12-31T00:00:00Z"      # one instant, frozen into every feature set
      indicator_timeframes: [{rsi: [1h, 4h], macd: [1h]}]    # alternatives (default [{}])
      additional_features: [[returns_volatility]]             # alternatives (default [[]])
      preprocessing: [{warmup_bars: 200}]                     # alternatives (default [{}])
    model_specs:
      model_types: [ridge, rf]
      encoders: [none, pca]              # default [none]
      encoder_dims: [8]                  # only for encoders other than none (default [8])
      horizons: [1, 5]
      hyperparameters: {rf: [{n_estimators: 50}]}   # per model type, alternatives (default [{}])

The grid is the product of the feature-set axes (-> `FeatureSetSpec`) times the product of the model
axes (-> `ModelSpec`); each pair is one model configuration, deduplicated by `model_config_hash`.
Every problem of an invalid spec is reported at once, each with its field path (GridSpecError).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forex_pipeline.data.timeframes import TIMEFRAME_MINUTES, TRADING_DAYS_PER_YEAR
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import config_hash
from forex_pipeline.models.spec import MODEL_TYPES, ModelSpec, model_config_hash

FEATURE_SET_DIMENSION = "feature_set"
MODEL_SPEC_DIMENSION = "model_spec"
MULTI_PARTITION_DELIMITER = "|"
# Dagster stores dynamic partitions with one SQL statement per call; SQLite fails past ~36k variables.
DYNAMIC_PARTITION_CHUNK = 10_000

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

T = TypeVar("T")


class GridSpecError(ValueError):
    """The grid spec is invalid; `problems` lists every problem found, each naming its field path."""

    def __init__(self, problems: Sequence[str], source: str = "<dict>") -> None:
        self.problems = list(problems)
        self.source = source
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid grid spec {source}: {len(self.problems)} problem(s)\n{listing}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSetAxes(_Strict):
    """Values per feature-set axis; the feature sets are their product."""

    symbols: list[str] = Field(min_length=1)
    base_timeframes: list[str] = Field(min_length=1)
    days_history: list[int] = Field(min_length=1)
    as_of: datetime
    indicator_timeframes: list[dict[str, list[str]]] = Field(default_factory=lambda: [{}], min_length=1)
    additional_features: list[list[str]] = Field(default_factory=lambda: [[]], min_length=1)
    preprocessing: list[dict[str, Any]] = Field(default_factory=lambda: [{}], min_length=1)


class ModelAxes(_Strict):
    """Values per model axis; hyperparameter alternatives apply only to their own model type."""

    model_types: list[str] = Field(min_length=1)
    encoders: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    encoder_dims: list[int] = Field(default_factory=lambda: [8], min_length=1)
    horizons: list[int] = Field(min_length=1)
    hyperparameters: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)

    @field_validator("hyperparameters")
    @classmethod
    def _non_empty_alternatives(cls, value: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        empty = sorted(name for name, alternatives in value.items() if not alternatives)
        if empty:
            raise ValueError(f"empty list of alternatives for {empty}; use [{{}}] for the defaults")
        return value


class GridSpec(_Strict):
    """A named grid: feature-set axes and model axes."""

    name: str = Field(min_length=1, max_length=255)
    feature_sets: FeatureSetAxes
    model_specs: ModelAxes

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class ModelConfiguration:
    """One feature set paired with one model spec, with its partition keys and hash."""

    feature_set: FeatureSetSpec
    model_spec: ModelSpec
    feature_set_key: str
    model_spec_key: str
    feature_set_hash: str
    model_spec_hash: str
    model_config_hash: str

    @property
    def partition_key(self) -> str:
        """The Dagster multi-partition key string, e.g. EURUSD-1h-d365-a1b2c3d4|rf-pca-h5-d4e5f6a7."""
        return multi_partition_key_string(self.feature_set_key, self.model_spec_key)

    @property
    def partition_keys(self) -> dict[str, str]:
        return multi_partition_key(self.feature_set_key, self.model_spec_key)


@dataclass(frozen=True)
class Grid:
    """The expanded grid: unique feature sets, unique model specs and their unique pairs, in spec order."""

    spec: GridSpec
    feature_sets: list[FeatureSetSpec]
    model_specs: list[ModelSpec]
    configurations: list[ModelConfiguration]

    @property
    def size(self) -> int:
        return len(self.configurations)


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


# ---------------------------------------------------------------- loading and validation


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid YAML file; every problem is reported at once with the file name."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise GridSpecError([f"file {path} does not exist or is not a file"], source)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GridSpecError([f"file {path} cannot be read: {exc}"], source) from exc
    except yaml.YAMLError as exc:
        raise GridSpecError([f"file {path} is not valid YAML: {exc}"], source) from exc
    return parse_grid_spec(raw, source=source)


def parse_grid_spec(raw: Any, source: str = "<dict>") -> GridSpec:
    """Validate a grid spec dict (YAML or Dagster launchpad config) and check every spec it expands to."""
    if not isinstance(raw, Mapping):
        raise GridSpecError([f"a grid spec must be a mapping with name, feature_sets, model_specs; got {type(raw).__name__}"], source)
    problems: list[str] = []
    grid: GridSpec | None = None
    try:
        grid = GridSpec.model_validate(dict(raw))
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc))
    fs_axes = grid.feature_sets if grid else _section_or_none(FeatureSetAxes, raw.get("feature_sets"))
    ms_axes = grid.model_specs if grid else _section_or_none(ModelAxes, raw.get("model_specs"))
    if fs_axes is not None:
        problems.extend(_build_feature_sets(fs_axes)[1])
    if ms_axes is not None:
        problems.extend(_build_model_specs(ms_axes)[1])
    if problems or grid is None:
        raise GridSpecError(_unique(problems) or ["grid spec is invalid"], source)
    return grid


def _section_or_none(model: type[BaseModel], raw: Any) -> Any:
    """The section validated on its own (its errors are already reported by the whole-spec validation)."""
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _suffix(loc: Iterable[Any]) -> str:
    """A pydantic location tail as a path suffix, e.g. ['rsi', 0] -> '.rsi[0]'."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _pydantic_problems(exc: ValidationError) -> list[str]:
    """One 'field.path: message' line per pydantic error of the whole grid spec."""
    problems = []
    for error in exc.errors():
        path = _suffix(error["loc"]).removeprefix(".") or "<grid>"
        problems.append(f"{path}: {_message(error)}")
    return problems


def _message(error: Mapping[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- expansion


def _feature_set_inputs(axes: FeatureSetAxes) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Every combination of feature-set axis values, with the grid path of each value used."""
    indexed = itertools.product(
        enumerate(axes.symbols),
        enumerate(axes.base_timeframes),
        enumerate(axes.days_history),
        enumerate(axes.indicator_timeframes),
        enumerate(axes.additional_features),
        enumerate(axes.preprocessing),
    )
    for (i_s, symbol), (i_t, timeframe), (i_d, days), (i_i, indicators), (i_a, additional), (i_p, prep) in indexed:
        values = {
            "symbol": symbol,
            "base_timeframe": timeframe,
            "days_history": days,
            "as_of": axes.as_of,
            "indicator_timeframes": indicators,
            "additional_features": additional,
            "preprocessing": prep,
        }
        paths = {
            "symbol": f"feature_sets.symbols[{i_s}]",
            "base_timeframe": f"feature_sets.base_timeframes[{i_t}]",
            "days_history": f"feature_sets.days_history[{i_d}]",
            "as_of": "feature_sets.as_of",
            "indicator_timeframes": f"feature_sets.indicator_timeframes[{i_i}]",
            "additional_features": f"feature_sets.additional_features[{i_a}]",
            "preprocessing": f"feature_sets.preprocessing[{i_p}]",
        }
        yield values, paths


def _build_feature_sets(axes: FeatureSetAxes) -> tuple[list[FeatureSetSpec], list[str]]:
    """The unique feature sets of the axes' product (in spec order) and every problem met building them."""
    specs: dict[str, FeatureSetSpec] = {}
    problems: list[str] = []
    for values, paths in _feature_set_inputs(axes):
        try:
            spec = FeatureSetSpec(**values)
        except (ValidationError, ValueError) as exc:
            problems.extend(_spec_problems(exc, paths))
            continue
        specs.setdefault(spec.hash, spec)
    return list(specs.values()), _unique(problems)


def _spec_problems(exc: Exception, paths: Mapping[str, str]) -> list[str]:
    """Problems of one spec construction, each pointing at the grid axis value that caused it."""
    if not isinstance(exc, ValidationError):
        return [f"{_combination(paths, str(exc))}: {exc}"]
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc and str(loc[0]) in paths:
            path = paths[str(loc[0])] + _suffix(loc[1:])
        else:
            path = _combination(paths, _message(error))
        problems.append(f"{path}: {_message(error)}")
    return problems


def _combination(paths: Mapping[str, str], message: str) -> str:
    """The axis paths of the fields a cross-field problem names (all of the combination's if it names none)."""
    named = [path for name, path in paths.items() if re.search(rf"\b{re.escape(name)}\b", message)]
    return " with ".join(named or paths.values())


def _model_spec_inputs(axes: ModelAxes) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Every combination of model axis values; encoder_dims only for encoders other than none."""
    for (i_m, model_type), (i_e, encoder), (i_h, horizon) in itertools.product(
        enumerate(axes.model_types), enumerate(axes.encoders), enumerate(axes.horizons)
    ):
        dims = [(None, None)] if encoder == "none" else list(enumerate(axes.encoder_dims))
        alternatives = list(enumerate(axes.hyperparameters.get(model_type, [{}])))
        for (i_d, dim), (i_p, params) in itertools.product(dims, alternatives):
            values: dict[str, Any] = {"model_type": model_type, "encoder": encoder, "horizon": horizon, "hyperparameters": params}
            paths = {
                "model_type": f"model_specs.model_types[{i_m}]",
                "encoder": f"model_specs.encoders[{i_e}]",
                "horizon": f"model_specs.horizons[{i_h}]",
                "hyperparameters": (
                    f"model_specs.hyperparameters.{model_type}[{i_p}]"
                    if model_type in axes.hyperparameters
                    else "model_specs.hyperparameters"
                ),
            }
            if dim is not None:
                values["encoder_dim"] = dim
                paths["encoder_dim"] = f"model_specs.encoder_dims[{i_d}]"
            yield values, paths


def _build_model_specs(axes: ModelAxes) -> tuple[list[ModelSpec], list[str]]:
    """The unique model specs of the axes' product (in spec order) and every problem met building them."""
    problems = [
        f"model_specs.hyperparameters.{name}: "
        + (
            f"unknown model type; known: {', '.join(MODEL_TYPES)}"
            if name not in MODEL_TYPES
            else "model type is not in model_specs.model_types, so these alternatives would never be used"
        )
        for name in axes.hyperparameters
        if name not in axes.model_types
    ]
    specs: dict[str, ModelSpec] = {}
    for values, paths in _model_spec_inputs(axes):
        try:
            spec = ModelSpec(**values)
        except (ValidationError, ValueError) as exc:
            problems.extend(_spec_problems(exc, paths))
            continue
        if spec.hash in specs:
            continue
        family_problems = _family_problems(spec, paths)
        problems.extend(family_problems)
        if not family_problems:
            specs[spec.hash] = spec
    return list(specs.values()), _unique(problems)


def _family_problems(spec: ModelSpec, paths: Mapping[str, str]) -> list[str]:
    """Problems the model registry finds before any training: missing family or encoder, bad hyperparameters."""
    from forex_pipeline.models.encoders import encoder_module
    from forex_pipeline.models.registry import family_module

    problems = []
    try:
        module = family_module(spec.model_type)
    except ValueError as exc:
        return [f"{paths['model_type']}: {exc}"]
    validate = getattr(module, "validate_hyperparameters", None)
    if validate is None:
        problems.append(f"{paths['model_type']}: family module {module.__name__} has no validate_hyperparameters")
    else:
        try:
            validate(spec)
        except ValueError as exc:
            problems.append(f"{paths['hyperparameters']}: {exc}")
    try:
        encoder_module(spec.encoder)
    except ValueError as exc:
        problems.append(f"{paths['encoder']}: {exc}")
    return problems


def expand_grid(grid: GridSpec | Mapping[str, Any]) -> Grid:
    """Feature sets x model specs of a grid, deduplicated by hash, in the order the spec lists values."""
    spec = grid if isinstance(grid, GridSpec) else parse_grid_spec(grid)
    feature_sets, fs_problems = _build_feature_sets(spec.feature_sets)
    model_specs, ms_problems = _build_model_specs(spec.model_specs)
    if fs_problems or ms_problems:
        raise GridSpecError(fs_problems + ms_problems, spec.name)
    fs_rows = [(fs, fs.partition_key, fs.hash) for fs in feature_sets]
    ms_rows = [(ms, ms.partition_key, ms.hash) for ms in model_specs]
    configurations: dict[str, ModelConfiguration] = {}
    for (fs, fs_key, fs_hash), (ms, ms_key, ms_hash) in itertools.product(fs_rows, ms_rows):
        mc_hash = model_config_hash(fs_hash, ms_hash)
        if mc_hash not in configurations:
            configurations[mc_hash] = ModelConfiguration(fs, ms, fs_key, ms_key, fs_hash, ms_hash, mc_hash)
    return Grid(spec, feature_sets, model_specs, list(configurations.values()))


def grid_hash(grid: GridSpec | Grid) -> str:
    """Hash of the set of model configurations: two specs that expand to the same work hash alike."""
    expanded = grid if isinstance(grid, Grid) else expand_grid(grid)
    return config_hash(sorted(c.model_config_hash for c in expanded.configurations))


# ---------------------------------------------------------------- partition keys


def multi_partition_key(feature_set_key: str, model_spec_key: str) -> dict[str, str]:
    """Keys by dimension for dagster.MultiPartitionKey (dimensions `feature_set` and `model_spec`)."""
    return {FEATURE_SET_DIMENSION: feature_set_key, MODEL_SPEC_DIMENSION: model_spec_key}


def multi_partition_key_string(feature_set_key: str, model_spec_key: str) -> str:
    """The string Dagster gives a MultiPartitionKey: keys joined by '|' in dimension-name order."""
    keys = multi_partition_key(feature_set_key, model_spec_key)
    return MULTI_PARTITION_DELIMITER.join(keys[name] for name in sorted(keys))


def split_multi_partition_key(key: str) -> tuple[str, str]:
    """(feature_set key, model_spec key) of a multi-partition key string; refuses anything else."""
    parts = key.split(MULTI_PARTITION_DELIMITER)
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"partition key {key!r} is not '<feature_set>{MULTI_PARTITION_DELIMITER}<model_spec>'")
    by_dimension = dict(zip(sorted((FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION)), parts))
    return by_dimension[FEATURE_SET_DIMENSION], by_dimension[MODEL_SPEC_DIMENSION]


def chunks(seq: Sequence[T], size: int = DYNAMIC_PARTITION_CHUNK) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items (dynamic partitions are added in bounded batches)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])


# ---------------------------------------------------------------- time estimate and plan


def rows_per_day(timeframe: str) -> float:
    """Base bars per calendar day of an FX market open ~260 of 365 days, around the clock."""
    return 1440 / TIMEFRAME_MINUTES[timeframe] * TRADING_DAYS_PER_YEAR / 365


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
        from forex_pipeline.store.repository import find_completed_hashes

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
    from forex_pipeline.store.repository import HistoryFilter, query_history

    history: dict[str, list[float]] = {}
    for model_type in model_types:
        filters = HistoryFilter(status="completed", model_type=model_type, sort="-completed_at", page_size=recent)
        rows = query_history(session, filters).rows
        rows = rows[rows["training_seconds"].notna()]
        seconds = rows["training_seconds"] + rows["backtest_seconds"].fillna(0.0)
        valid = [float(s) for s in seconds if s > 0]
        if valid:
            history[model_type] = valid
    return history
