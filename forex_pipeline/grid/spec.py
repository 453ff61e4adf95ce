"""The grid spec: the schema of a grid file (or launchpad config) and how its problems are worded.

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

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


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


# ---------------------------------------------------------------- problem messages


def field_path(loc: Iterable[Any]) -> str:
    """A pydantic location tail as a path suffix, e.g. ['rsi', 0] -> '.rsi[0]'."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def pydantic_problems(exc: ValidationError) -> list[str]:
    """One 'field.path: message' line per pydantic error of the whole grid spec."""
    problems = []
    for error in exc.errors():
        path = field_path(error["loc"]).removeprefix(".") or "<grid>"
        problems.append(f"{path}: {error_message(error)}")
    return problems


def error_message(error: Mapping[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
