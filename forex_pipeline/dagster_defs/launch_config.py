"""The grid as a typed launchpad config: the YAML schema of `examples/grids/*.yaml`, field for field.

Closed vocabularies (model types, encoders, timeframes, indicators, additional features, scalings)
are enums, and every section is a closed `dg.Config`, so the launchpad's own schema check refuses a
misspelt field (`model_typs`) or value (`ridgee`) while the config is typed, before any launch.
What the schema cannot say (hyperparameter names and ranges, as_of, a timeframe finer than the base)
is checked by `forex_pipeline.grid` itself in `grid_problems`, the same messages as `grid plan`,
called from the jobs' config mapping: an invalid grid fails the launch and no run is created.
"""


from enum import Enum
from typing import Any

import dagster as dg
from pydantic import Field

from forex_pipeline.data.timeframes import TIMEFRAMES
from forex_pipeline.features.spec import ADDITIONAL_FEATURES
from forex_pipeline.models.spec import ENCODERS, MODEL_TYPES

SCALINGS = ("standard", "robust", "none")


def _vocabulary(name: str, values: tuple[str, ...]) -> type[Enum]:
    """An enum whose member names are the YAML values themselves (`1h`, `diffusion-ddpm`), so the
    launchpad accepts exactly what a grid file holds."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


ModelType = _vocabulary("ModelType", MODEL_TYPES)
Encoder = _vocabulary("Encoder", ENCODERS)
Timeframe = _vocabulary("Timeframe", TIMEFRAMES)
AdditionalFeature = _vocabulary("AdditionalFeature", ADDITIONAL_FEATURES)
Scaling = _vocabulary("Scaling", SCALINGS)


class IndicatorTimeframes(dg.Config):
    """One alternative of `indicator_timeframes`: the timeframes of each indicator used (others left out)."""

    rsi: list[Timeframe] | None = None  # type: ignore[valid-type]
    macd: list[Timeframe] | None = None  # type: ignore[valid-type]
    atr: list[Timeframe] | None = None  # type: ignore[valid-type]
    bbands: list[Timeframe] | None = None  # type: ignore[valid-type]
    adx: list[Timeframe] | None = None  # type: ignore[valid-type]
    stoch: list[Timeframe] | None = None  # type: ignore[valid-type]
    ema_dist: list[Timeframe] | None = None  # type: ignore[valid-type]
    sma_dist: list[Timeframe] | None = None  # type: ignore[valid-type]


class PreprocessingConfig(dg.Config):
    """One alternative of `preprocessing`; a field left out keeps its default."""

    warmup_bars: int | None = None
    rv_window: int | None = None
    min_coverage: float | None = None
    scaling: Scaling | None = None  # type: ignore[valid-type]


class FeatureSetsConfig(dg.Config):
    """`feature_sets`: values per axis; the feature sets are their product."""

    symbols: list[str]
    base_timeframes: list[Timeframe]  # type: ignore[valid-type]
    days_history: list[int]
    as_of: str = Field(description="one instant, ISO 8601, e.g. 2019-12-31T00:00:00Z")
    indicator_timeframes: list[IndicatorTimeframes] = [{}]  # type: ignore[list-item]
    additional_features: list[list[AdditionalFeature]] = [[]]  # type: ignore[valid-type]
    preprocessing: list[PreprocessingConfig] = [{}]  # type: ignore[list-item]


class ModelSpecsConfig(dg.Config):
    """`model_specs`: values per model axis; hyperparameter alternatives per model type."""

    model_types: list[ModelType]  # type: ignore[valid-type]
    encoders: list[Encoder] = ["none"]  # type: ignore[valid-type,list-item]
    encoder_dims: list[int] = [8]
    horizons: list[int]
    hyperparameters: dict[str, list[dict[str, Any]]] = {}


class GridConfig(dg.Config):
    """A grid, as in a grid YAML file: name, feature_sets, model_specs."""

    name: str
    feature_sets: FeatureSetsConfig
    model_specs: ModelSpecsConfig


def _plain(value: Any) -> Any:
    """Enums to their values, configs to dicts without unset (None) fields, recursively."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dg.Config):
        return {name: _plain(item) for name, item in value if item is not None}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def grid_dict(config: GridConfig) -> dict[str, Any]:
    """The grid spec dict (the YAML schema) of a launchpad config, for `forex_pipeline.grid`."""
    return _plain(config)


def grid_problems(grid: dict[str, Any]) -> list[str]:
    """Every problem `grid plan` would report for this grid spec ([] when it is valid)."""
    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.grid.expand import data_problems, expand_grid, parse_grid_spec
    from forex_pipeline.grid.spec import GridSpecError
    from forex_pipeline.settings import get_settings

    try:
        expanded = expand_grid(parse_grid_spec(grid, source="launchpad config"))
    except GridSpecError as exc:
        return exc.problems
    settings = get_settings()
    return data_problems(expanded, settings, settings.artifacts_dir, default_sample_dir())


class InvalidGrid(ValueError):
    """A launchpad grid that `forex_pipeline.grid` refuses; the message lists every problem as `grid plan` does."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid grid spec launchpad config: {len(problems)} problem(s)\n{listing}")


def checked_grid(config: GridConfig) -> dict[str, Any]:
    """The grid spec dict of `config`, or InvalidGrid with grid plan's messages."""
    grid = grid_dict(config)
    problems = grid_problems(grid)
    if problems:
        raise InvalidGrid(problems)
    return grid
