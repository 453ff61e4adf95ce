"""A grid spec expanded into model configurations: validation by expansion, deduplication by hash.

The grid is the product of the feature-set axes (-> `FeatureSetSpec`) times the product of the model
axes (-> `ModelSpec`); each pair is one `ModelConfiguration`, which carries its keys and hashes so no
caller recomputes them. Every problem of an invalid spec is reported at once (GridSpecError).
"""

from __future__ import annotations

import itertools
import re
from hashlib import sha256
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.grid.spec import (
    configuration_count,
    FeatureSetAxes,
    GridSpec,
    GridSpecError,
    ModelAxes,
    error_message,
    pydantic_problems,
    field_path,
    unique,
)
from forex_pipeline.hashing import config_hash
from forex_pipeline.yaml_input import YamlInputError, load_yaml

if TYPE_CHECKING:
    from forex_pipeline.data.sources import BarSpan
    from forex_pipeline.settings import Settings
from forex_pipeline.models.spec import MODEL_TYPES, ModelConfiguration, ModelSpec, model_config_prefix, model_config_suffix


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


# ---------------------------------------------------------------- loading and validation


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid YAML file; every problem is reported at once with the file name."""
    path = Path(path)
    source = str(path)
    try:
        raw = load_yaml(path, what="grid file")
    except YamlInputError as exc:
        raise GridSpecError([str(exc)], source) from None
    return parse_grid_spec(raw, source=source)


def parse_grid_spec(raw: Any, source: str = "<dict>", *, max_size: int | None = None) -> GridSpec:
    """Validate a grid spec dict (YAML or Dagster launchpad config) and check every spec it expands to.

    The size is checked from the axes before anything is expanded, so a grid of 10^8 configurations
    is refused at once (limit: `max_size`, default settings.queue.max_grid_size).
    """
    if not isinstance(raw, Mapping):
        raise GridSpecError([f"a grid spec must be a mapping with name, feature_sets, model_specs; got {type(raw).__name__}"], source)
    problems: list[str] = []
    grid: GridSpec | None = None
    try:
        grid = GridSpec.model_validate(dict(raw))
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc))
    fs_axes = grid.feature_sets if grid else _section_or_none(FeatureSetAxes, raw.get("feature_sets"))
    ms_axes = grid.model_specs if grid else _section_or_none(ModelAxes, raw.get("model_specs"))
    if fs_axes is not None and ms_axes is not None:
        size, limit = configuration_count(fs_axes, ms_axes), _max_grid_size(max_size)
        if size > limit:
            raise GridSpecError(
                [f"<grid>: {size:,} model configurations, more than queue.max_grid_size = {limit:,}; split the grid "
                 "or raise the limit in settings"],
                source,
            )
    feature_sets, model_specs = [], []
    if fs_axes is not None:
        feature_sets, fs_problems = _build_feature_sets(fs_axes)
        problems.extend(fs_problems)
    if ms_axes is not None:
        model_specs, ms_problems = _build_model_specs(ms_axes)
        problems.extend(ms_problems)
    if problems or grid is None:
        raise GridSpecError(unique(problems) or ["grid spec is invalid"], source)
    _LAST_PARSED[:] = [(grid, feature_sets, model_specs)]
    return grid


# The feature sets and model specs the last parse_grid_spec built to check its spec: expand_grid of that
# same spec object takes them instead of building them again (a submit parses, then expands, its grid).
_LAST_PARSED: list[tuple[GridSpec, list[FeatureSetSpec], list[ModelSpec]]] = []


def _built_parts(spec: GridSpec) -> tuple[list[FeatureSetSpec], list[ModelSpec]]:
    """The unique feature sets and model specs of a valid spec (GridSpecError listing every problem otherwise)."""
    for parsed, feature_sets, model_specs in _LAST_PARSED:
        if parsed is spec:
            return list(feature_sets), list(model_specs)
    feature_sets, fs_problems = _build_feature_sets(spec.feature_sets)
    model_specs, ms_problems = _build_model_specs(spec.model_specs)
    if fs_problems or ms_problems:
        raise GridSpecError(fs_problems + ms_problems, spec.name)
    return feature_sets, model_specs


def _max_grid_size(explicit: int | None) -> int:
    if explicit is not None:
        return explicit
    from forex_pipeline.settings import get_settings

    return get_settings().queue.max_grid_size


MIN_SEGMENT_ROWS = 30


def window_problems(grid: Grid, settings: Settings) -> list[str]:
    """Feature-set windows too short for a horizon or eaten by the warm-up, found from the spec alone.

    The bar count is an upper bound (days_history x bars per trading day, minus warm-up), so a
    refusal here is certain; a window that passes can still meet fewer bars in the data.
    """
    from forex_pipeline.data.timeframes import rows_per_day
    from forex_pipeline.features.splits import split_bounds

    training = settings.training
    problems = []
    horizons = sorted({ms.horizon for ms in grid.model_specs})
    for fs in grid.feature_sets:
        rows = int(fs.days_history * rows_per_day(fs.base_timeframe)) - fs.preprocessing.warmup_bars
        where = f"feature set {fs.symbol} {fs.base_timeframe} days_history={fs.days_history}"
        if rows < 3 * MIN_SEGMENT_ROWS:
            problems.append(f"{where}: the warm-up of {fs.preprocessing.warmup_bars} bars leaves at most {max(rows, 0)} rows")
            continue
        for horizon in horizons:
            try:
                split_bounds(rows, horizon, training.train_fraction, training.validation_fraction, min_rows=MIN_SEGMENT_ROWS)
            except ValueError:
                problems.append(
                    f"{where} with model_specs.horizons {horizon}: at most {rows} rows cannot hold train, validation "
                    f"and test segments of {MIN_SEGMENT_ROWS}+ rows with an embargo of {horizon} rows each"
                )
    return problems


# A window may start or end this far beyond the bars without being refused: the FX market closes from
# Friday 22:00 to Sunday 22:00 UTC and on 25 December and 1 January, so a window edge can fall up to
# 4 days before the next bar (a long weekend) while the data covers it in every trading sense.
DATA_EDGE_DAYS = 4


def data_problems(grid: Grid, settings: Settings, artifacts_dir: Path, sample_dir: Path | None) -> list[str]:
    """What the data and settings cannot give the grid, found at plan time rather than at training time:
    a symbol without costs in settings (data.symbols) or without any source of bars, a window
    (days_history ending at as_of) the symbol's bars do not cover, an encoder dimension above the
    feature count."""
    from forex_pipeline.data.loaders import BarFileError
    from forex_pipeline.data.sources import resolve_source, source_span

    problems = window_problems(grid, settings)
    for i, symbol in enumerate(grid.spec.feature_sets.symbols):
        key = symbol
        try:
            settings.data.costs_for(key)
        except (KeyError, ValueError) as exc:
            problems.append(f"feature_sets.symbols[{i}]: {exc.args[0] if exc.args else exc}")
            continue
        try:
            span = source_span(resolve_source(key, artifacts_dir, sample_dir))
        except (FileNotFoundError, ValueError, BarFileError) as exc:
            problems.append(f"feature_sets.symbols[{i}]: {exc}")
            continue
        problems.extend(history_problems(grid.spec.feature_sets, i, span))
    problems.extend(encoder_problems(grid, settings, artifacts_dir))
    return problems


def history_problems(axes: FeatureSetAxes, symbol_index: int, span: BarSpan) -> list[str]:
    """Windows of `days_history` days ending at `as_of` that the symbol's bars do not cover (within
    DATA_EDGE_DAYS at each end); the span comes from the source's metadata, so no bar is loaded.

    A hole inside the data is not seen here: the training-time window check (features.build) refuses
    a window whose bars span less than half of it.
    """
    import pandas as pd

    as_of = pd.Timestamp(axes.as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    edge, day = pd.Timedelta(days=DATA_EDGE_DAYS), pd.Timedelta(days=1)
    where = f"feature_sets.symbols[{symbol_index}] {span.source.symbol}"
    if as_of < span.first + edge:
        return [f"feature_sets.as_of {as_of:%Y-%m-%d %H:%M} with {where}: {span.describe()}, so a window ending at as_of "
                "holds none of them; choose an as_of within the data"]
    problems = []
    if span.last < as_of - edge:
        problems.append(
            f"feature_sets.as_of {as_of:%Y-%m-%d %H:%M} with {where}: {span.describe()}, so every window ending at "
            f"as_of misses its last {(as_of - span.last) / day:.0f} days; choose an as_of within the data"
        )
    covered = int((min(as_of, span.last) - span.first) / day)
    longer = [(i, days) for i, days in enumerate(axes.days_history) if span.first > as_of - pd.Timedelta(days=days) + edge]
    if longer:
        shown = ", ".join(f"[{i}] = {days}" for i, days in longer[:3])
        more = f" and {len(longer) - 3} more" if len(longer) > 3 else ""
        start = as_of - pd.Timedelta(days=min(days for _, days in longer))
        starts = "the window starts" if len(longer) == 1 else "the windows start on or before"
        problems.append(
            f"feature_sets.days_history{shown}{more} with {where} and feature_sets.as_of {as_of:%Y-%m-%d %H:%M}: "
            f"{starts} {start:%Y-%m-%d %H:%M}, but {span.describe()}; they cover days_history <= {covered}"
        )
    return problems


def encoder_problems(grid: Grid, settings: Settings, artifacts_dir: Path) -> list[str]:
    """Encoder dimensions above the feature count of a feature set they would encode.

    The count is exact when the feature set's matrix is cached (its Parquet header, decided under the
    current train_fraction); otherwise it is the columns the spec computes (features.build.
    spec_feature_names, run on stand-in bars), an upper bound since min_coverage may drop some on
    the real bars. Either way a refusal is certain.
    """
    dims = sorted({ms.encoder_dim for ms in grid.model_specs if ms.encoder != "none" and ms.encoder_dim is not None})
    if not dims:
        return []
    axes = grid.spec.model_specs
    problems: dict[tuple[int, int], list[str]] = {}
    for fs in grid.feature_sets:
        count, basis = feature_count(fs, settings, artifacts_dir)
        for dim in dims:
            if dim > count:
                problems.setdefault((dim, count), []).append(f"{fs.label} ({basis})")
    messages = []
    for (dim, count), feature_sets in problems.items():
        encoders = sorted({ms.encoder for ms in grid.model_specs if ms.encoder_dim == dim and ms.encoder != "none"})
        more = f" and {len(feature_sets) - 1} more feature set(s) with the same columns" if len(feature_sets) > 1 else ""
        messages.append(
            f"model_specs.encoder_dims[{axes.encoder_dims.index(dim)}] = {dim} with model_specs.encoders "
            f"{', '.join(encoders)}: more than the {count} features of feature set {feature_sets[0]}{more}; "
            f"an encoder dimension must be at most the feature count"
        )
    return messages


def feature_count(feature_set: FeatureSetSpec, settings: Settings, artifacts_dir: Path) -> tuple[int, str]:
    """(feature count, how it was found): the cached matrix's header when it is current, else the
    columns the spec computes before min_coverage (an upper bound)."""
    from forex_pipeline.features.build import columns_decided_with, feature_matrix_path, read_feature_header

    header = read_feature_header(feature_matrix_path(artifacts_dir, feature_set))
    if header is not None and columns_decided_with(header.get("metadata"), settings.training.train_fraction):
        return len(header["feature_names"]), "its cached feature matrix"
    return len(_spec_feature_names(feature_set, settings.training.ar_lags)), "at most, counted from its spec"


def _spec_feature_names(feature_set: FeatureSetSpec, ar_lags: int) -> tuple[str, ...]:
    """spec_feature_names, once per distinct column-defining part of a spec (symbol and window do not
    change the names)."""
    from forex_pipeline.features.build import spec_feature_names

    key = (feature_set.base_timeframe, tuple(feature_set.indicator_timeframes.items()), feature_set.additional_features,
           feature_set.preprocessing, ar_lags)
    if key not in _FEATURE_NAMES:
        _FEATURE_NAMES[key] = spec_feature_names(feature_set, ar_lags)
    return _FEATURE_NAMES[key]


_FEATURE_NAMES: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _section_or_none(model: type[BaseModel], raw: Any) -> Any:
    """The section validated on its own (its errors are already reported by the whole-spec validation)."""
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


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
    return list(specs.values()), unique(problems)


def _spec_problems(exc: Exception, paths: Mapping[str, str]) -> list[str]:
    """Problems of one spec construction, each pointing at the grid axis value that caused it."""
    if not isinstance(exc, ValidationError):
        return [f"{_combination(paths, str(exc))}: {exc}"]
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc and str(loc[0]) in paths:
            path = paths[str(loc[0])] + field_path(loc[1:])
        else:
            path = _combination(paths, error_message(error))
        problems.append(f"{path}: {error_message(error)}")
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
    return list(specs.values()), unique(problems)


def _family_problems(spec: ModelSpec, paths: Mapping[str, str]) -> list[str]:
    """Problems the model registry finds before any training: missing family or encoder, bad hyperparameters."""
    from forex_pipeline.models.encoders import ENCODER_MODULES, EncoderError
    from forex_pipeline.models.lazy_import import find_listed
    from forex_pipeline.models.registry import family_rules

    problems = []
    try:
        module = family_rules(spec.model_type)
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
        find_listed(ENCODER_MODULES, spec.encoder, "encoder", EncoderError)
    except ValueError as exc:
        problems.append(f"{paths['encoder']}: {exc}")
    return problems


def expand_grid(grid: GridSpec | Mapping[str, Any]) -> Grid:
    """Feature sets x model specs of a grid, deduplicated by hash, in the order the spec lists values."""
    spec = grid if isinstance(grid, GridSpec) else parse_grid_spec(grid)
    feature_sets, model_specs = _built_parts(spec)
    fs_rows = [(fs, fs.partition_key, fs.hash, model_config_prefix(fs.hash)) for fs in feature_sets]
    ms_rows = [(ms, ms.partition_key, ms.hash, model_config_suffix(ms.hash)) for ms in model_specs]
    configurations: dict[str, ModelConfiguration] = {}
    for (fs, fs_key, fs_hash, prefix), (ms, ms_key, ms_hash, suffix) in itertools.product(fs_rows, ms_rows):
        mc_hash = sha256((prefix + suffix).encode()).hexdigest()
        if mc_hash not in configurations:
            configurations[mc_hash] = ModelConfiguration(fs, ms, fs_key, ms_key, fs_hash, ms_hash, mc_hash)
    return Grid(spec, feature_sets, model_specs, list(configurations.values()))


def grid_hash(grid: GridSpec | Grid) -> str:
    """Hash of the set of model configurations: two specs that expand to the same work hash alike."""
    expanded = grid if isinstance(grid, Grid) else expand_grid(grid)
    return config_hash(sorted(c.model_config_hash for c in expanded.configurations))
