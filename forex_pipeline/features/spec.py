"""The `feature_set` spec: a frozen, validated value with a canonical hash and a readable partition key."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forex_pipeline.data.timeframes import TIMEFRAME_MINUTES, TIMEFRAMES
from forex_pipeline.hashing import config_hash, short_hash
from forex_pipeline.settings import normalize_symbol

INDICATORS: tuple[str, ...] = ("rsi", "macd", "atr", "bbands", "adx", "stoch", "ema_dist", "sma_dist")
ADDITIONAL_FEATURES: tuple[str, ...] = (
    "returns_volatility",
    "trading_sessions",
    "candlestick_patterns",
    "volume_profile",
    "vsa_analysis",
)


class Preprocessing(BaseModel):
    """Row and column hygiene applied after the features are computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_bars: int = Field(200, ge=0, description="leading rows dropped while indicators warm up")
    rv_window: int = Field(20, ge=2, description="window of the realised-volatility features")
    min_coverage: float = Field(0.9, ge=0, le=1, description="drop a feature with a smaller non-NaN share")
    scaling: str = Field("standard", description="standard, robust or none; fitted on the training segment only")

    @field_validator("scaling")
    @classmethod
    def _known_scaling(cls, value: str) -> str:
        if value not in ("standard", "robust", "none"):
            raise ValueError(f"preprocessing.scaling {value!r} is not one of standard, robust, none")
        return value


class FeatureSetSpec(BaseModel):
    """Symbol, base timeframe, the window of `days_history` days ending at `as_of`, and what to compute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str
    base_timeframe: str
    days_history: int = Field(ge=1, le=3650)
    as_of: datetime
    indicator_timeframes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    additional_features: tuple[str, ...] = ()
    preprocessing: Preprocessing = Preprocessing()

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return normalize_symbol(value)

    @field_validator("base_timeframe")
    @classmethod
    def _base_timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_MINUTES:
            raise ValueError(f"base_timeframe {value!r} is not a timeframe; known: {', '.join(TIMEFRAMES)}")
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    @field_validator("indicator_timeframes")
    @classmethod
    def _indicators(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(value) - set(INDICATORS))
        if unknown:
            raise ValueError(f"indicator_timeframes: unknown indicator(s) {unknown}; known: {list(INDICATORS)}")
        cleaned: dict[str, tuple[str, ...]] = {}
        for name, timeframes in value.items():
            bad = [tf for tf in timeframes if tf not in TIMEFRAME_MINUTES]
            if bad:
                raise ValueError(f"indicator_timeframes.{name}: unknown timeframe(s) {bad}; known: {list(TIMEFRAMES)}")
            if not timeframes:
                raise ValueError(f"indicator_timeframes.{name}: empty list of timeframes")
            cleaned[name] = tuple(sorted(set(timeframes), key=TIMEFRAME_MINUTES.__getitem__))
        return dict(sorted(cleaned.items()))

    @field_validator("additional_features")
    @classmethod
    def _additional(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(ADDITIONAL_FEATURES))
        if unknown:
            raise ValueError(f"additional_features: unknown feature(s) {unknown}; known: {list(ADDITIONAL_FEATURES)}")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _timeframes_not_below_base(self) -> "FeatureSetSpec":
        base = TIMEFRAME_MINUTES[self.base_timeframe]
        for name, timeframes in self.indicator_timeframes.items():
            finer = [tf for tf in timeframes if TIMEFRAME_MINUTES[tf] < base]
            if finer:
                raise ValueError(
                    f"indicator_timeframes.{name}: timeframe(s) {finer} are finer than base_timeframe {self.base_timeframe}"
                )
        return self

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def hash(self) -> str:
        return config_hash(self.canonical())

    @property
    def partition_key(self) -> str:
        """Readable plus a short hash, e.g. EURUSD-1h-d365-a1b2c3d4."""
        return f"{self.symbol}-{self.base_timeframe}-d{self.days_history}-{short_hash(self.canonical())}"

    @property
    def label(self) -> str:
        """What a person reads, without a hash: `EURUSD 1h 365d`, plus the indicators and extras when there are any."""
        parts = [self.symbol, self.base_timeframe, f"{self.days_history}d"]
        parts.extend(f"{name}:{','.join(timeframes)}" for name, timeframes in self.indicator_timeframes.items())
        parts.extend(self.additional_features)
        return " ".join(parts)
