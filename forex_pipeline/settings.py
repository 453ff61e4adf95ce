"""Typed settings: config/training_pipeline.yaml -> pydantic models, with environment overrides.

Load order: the file named by FOREX_SETTINGS, else ./config/training_pipeline.yaml, else the copy
beside the package source; storage paths are then overridden by DAGSTER_HOME,
FOREX_DATABASE_URL and FOREX_ARTIFACTS_DIR, and queue.executor by FOREX_QUEUE_EXECUTOR.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from forex_pipeline.errors import InputError
from forex_pipeline.keys import DATABASE_URL_ENV, REGIME_SENTINELS
from forex_pipeline.yaml_input import YamlInputError, load_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_FILE = PROJECT_ROOT / "config" / "training_pipeline.yaml"
# Rule features (forex_pipeline/regimes/rules.py); "returns" and "volatility" are the specification's names.
REGIME_FEATURES = ("trend_strength", "returns", "volatility", "volatility_percentile", "return_sign")
# The values each rule feature can take (None: unbounded): a rule outside them can never match.
REGIME_FEATURE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "trend_strength": (0.0, 1.0), "returns": (None, None), "volatility": (0.0, None),
    "volatility_percentile": (0.0, 1.0), "return_sign": (-1.0, 1.0),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Strict):
    database_url: str = ""
    artifacts_dir: str = ""
    checkpoints_dir: str = ""                                # "" = DAGSTER_HOME/checkpoints
    max_checkpoint_age_days: float = Field(30.0, gt=0)       # automatic checkpoints older than this are pruned
    model_compression: int = Field(3, ge=0, le=9)


ValidationPolicy = Literal["reject", "drop"]


class ValidationSettings(_Strict):
    missing_columns: Literal["reject"] = "reject"
    timestamp: ValidationPolicy = "reject"
    duplicates: ValidationPolicy = "reject"
    order: ValidationPolicy = "reject"
    non_positive: ValidationPolicy = "reject"
    high_low: ValidationPolicy = "reject"
    nan: ValidationPolicy = "reject"
    price_range: ValidationPolicy = "reject"
    time_range: ValidationPolicy = "reject"
    # Plausible bounds (rules price_range and time_range): every FX rate lies far inside them, while
    # a misplaced decimal point, a unit slip or a corrupt field (1e308, 1e-300, the year 1900) does not.
    min_price: float = Field(1e-5, gt=0)
    max_price: float = Field(1e6, gt=0)
    earliest_year: int = Field(1971, ge=1900, le=2100)


class SymbolCosts(_Strict):
    pip_size: float = Field(0.0001, gt=0)
    spread_pips: float = Field(1.0, ge=0)
    commission_pips: float = Field(0.0, ge=0)


class DataSettings(_Strict):
    validation: ValidationSettings = ValidationSettings()
    max_gap_minutes: int = Field(4320, gt=0)
    symbols: dict[str, SymbolCosts] = {}

    def costs_for(self, symbol: str) -> SymbolCosts:
        """Costs of `symbol` (EUR/USD and EURUSD are the same); a clear error if it is not configured."""
        key = normalize_symbol(symbol)
        if key not in self.symbols:
            raise KeyError(
                f"symbol {symbol!r} has no costs in settings data.symbols "
                f"(configured: {', '.join(sorted(self.symbols))})"
            )
        return self.symbols[key]


class NeuralSettings(_Strict):
    max_epochs: int = Field(30, ge=1)
    max_seconds: float = Field(50.0, gt=0)
    batch_size: int = Field(256, ge=1)
    diffusion_steps: int = Field(100, ge=2)
    ddim_steps: int = Field(8, ge=1)     # DDIM evaluations; 100 / 8 keeps sampling >= 10x faster than DDPM
    samples: int = Field(5, ge=1)
    cpu_threads: int = Field(1, ge=0)   # torch intra-op threads on CPU; 0 = torch's default


class TrainingSettings(_Strict):
    members: int = Field(5, ge=1, le=100)
    train_fraction: float = Field(0.6, gt=0, lt=1)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    direct_multi_steps: int = Field(4, ge=1)
    ar_lags: int = Field(5, ge=1)
    max_seconds_per_model: float = Field(600, gt=0)
    device: Literal["cpu", "cuda"] = "cpu"
    neural: NeuralSettings = NeuralSettings()

    @model_validator(mode="after")
    def _fractions_leave_a_test_segment(self) -> "TrainingSettings":
        if self.train_fraction + self.validation_fraction >= 1:
            raise ValueError("training.train_fraction + training.validation_fraction must be < 1 (a test segment must remain)")
        return self


BatchExecutor = Literal["in_process", "celery"]
EXECUTOR_ENV = "FOREX_QUEUE_EXECUTOR"


class QueueSettings(_Strict):
    # where the daemon's queue sensor runs each batch: in the run process (grid_batch) or on
    # dagster-celery workers (grid_batch_celery); FOREX_QUEUE_EXECUTOR overrides it (docs/deployment.md)
    executor: BatchExecutor = "in_process"
    max_consecutive_failures: int = Field(5, ge=1)
    models_per_run: int = Field(10, ge=1)
    max_concurrent_runs: int = Field(2, ge=1)
    min_free_disk_gb: float = Field(2.0, ge=0)
    max_grid_size: int = Field(100_000, ge=1)   # model configurations one grid may hold (the spec's full grid: 49,000)
    max_parallel_queues: int = Field(4, ge=1)   # daemon mode: queues with batch runs in flight at once (by priority)


class RecoverySettings(_Strict):
    auto_resume: bool = True
    heartbeat_seconds: float = Field(30, gt=0)
    stale_after_seconds: float = Field(300, gt=0)
    checkpoint_every_models: int = Field(10, ge=1)   # an automatic checkpoint file every N finished models


class FileManagementSettings(_Strict):
    keep_top_n_per_regime: int = Field(3, ge=1)
    delete_unkept_models: bool = True
    orphan_cleanup: bool = True


class PerformanceSettings(_Strict):
    backtest_max_matrix_bytes: int = Field(2_000_000_000, gt=0)
    numba_threads: int = Field(0, ge=0)
    database_connection_pool_size: int = Field(5, ge=1)   # PostgreSQL engines' pool


class Bound(_Strict):
    """One rule: the feature lies in [min, max] (each side optional, inclusive unless said otherwise).

    With `percentile`, min and max are percentile ranks in [0, 1] of the feature among its own
    values over the last `regimes.percentile_hours` (the specification's "> 75th percentile").
    The text form ("> 0.7", "< 50th percentile", "> 0.2 and <= 0.6") parses into this model.
    """

    min: float | None = Field(None, allow_inf_nan=False)
    max: float | None = Field(None, allow_inf_nan=False)
    min_inclusive: bool = True
    max_inclusive: bool = True
    percentile: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "Bound":
        if self.min is None and self.max is None:
            raise ValueError("a rule bound needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"rule bound min {self.min} is greater than max {self.max}")
        if self.percentile and any(v is not None and not 0 <= v <= 1 for v in (self.min, self.max)):
            raise ValueError("percentile bounds are ranks in [0, 1] (75th percentile = 0.75)")
        return self

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict:
        """Leave out the flags at their defaults, so a {min, max} rule is stored as it always was."""
        data = handler(self)
        for key, default in (("min_inclusive", True), ("max_inclusive", True), ("percentile", False)):
            if data.get(key) == default:
                data.pop(key)
        return data


def _rules_from_text(rules: object) -> object:
    """Turn rule texts ("> 0.7") into bound dicts; mappings pass through for pydantic to check."""
    from forex_pipeline.rule_syntax import parse_rule_text

    if not isinstance(rules, dict):
        return rules
    return {feature: parse_rule_text(feature, rule) if isinstance(rule, str) else rule for feature, rule in rules.items()}


class RegimeDefinition(_Strict):
    description: str = ""
    rules: dict[str, Bound]

    @field_validator("rules", mode="before")
    @classmethod
    def _parse_text(cls, rules: object) -> object:
        return _rules_from_text(rules)

    @field_validator("rules")
    @classmethod
    def _known_features(cls, rules: dict[str, Bound]) -> dict[str, Bound]:
        if not rules:
            raise ValueError("a regime needs at least one rule")
        unknown = sorted(set(rules) - set(REGIME_FEATURES))
        if unknown:
            raise ValueError(f"unknown regime rule feature(s) {unknown}; known: {list(REGIME_FEATURES)}")
        for feature, bound in rules.items():
            if bound.percentile:
                continue
            low, high = REGIME_FEATURE_RANGES[feature]
            if (bound.min is not None and high is not None and (bound.min > high or (bound.min == high and not bound.min_inclusive))) or (
                bound.max is not None and low is not None and (bound.max < low or (bound.max == low and not bound.max_inclusive))
            ):
                raise ValueError(f"rule on {feature} can never match: {feature} lies in [{low}, {high}]")
        return rules


class HmmSettings(_Strict):
    """The causal Gaussian HMM detector (forex_pipeline/regimes/hmm.py)."""

    expected_regime_hours: float = Field(120.0, gt=0)      # fixed sticky transitions: switch hazard = bar / this
    min_trend_drift: float = Field(0.25, gt=0)             # |drift| per hour in hourly sigmas that makes a state a trend
    prior_hours: float = Field(120.0, ge=0)                # weight of each state's starting point (MAP-EM), in hours of bars
    max_iterations: int = Field(200, ge=1)
    min_train_hours: float = Field(240.0, gt=0)            # the training segment must cover this much trading time


# Renamed when windows became spans of time: old bar-count keys get a message saying what replaced them.
_RENAMED_REGIME_KEYS = {
    "trend_window": "trend_hours",
    "volatility_window": "volatility_hours",
    "volatility_rank_window": "percentile_hours",
}


class SignificanceSettings(_Strict):
    """Thresholds of the `significant` verdict of a regime best (regimes/significance.py): all must hold."""

    min_deflated_sharpe: float = Field(0.95, ge=0, le=1)   # DSR as published (Bailey & Lopez de Prado 2014)
    max_noise_p_value: float = Field(0.05, gt=0, le=1)     # noise-baseline p-value, best of N trials accounted
    min_holdout_sharpe: float = 0.0                        # holdout Sharpe must be strictly above this


class RegimeSettings(_Strict):
    detector: Literal["rules", "hmm"] = "hmm"
    trend_hours: float = Field(48.0, gt=0)                  # trend_strength: efficiency ratios over this and half
    trend_step_hours: float = Field(4.0, gt=0)              # ... measured in steps of this (at least one bar)
    volatility_hours: float = Field(12.0, gt=0)             # realised volatility span
    percentile_hours: float = Field(1000.0, gt=0)           # trailing history "Nth percentile" ranks against
    deseasonalize: bool = True                              # divide returns by their intraday volatility profile (needs timestamps)
    hmm: HmmSettings = HmmSettings()
    min_trades: int = Field(10, ge=0)
    definitions: dict[str, RegimeDefinition] = {}
    significance: SignificanceSettings = SignificanceSettings()

    @model_validator(mode="before")
    @classmethod
    def _bar_windows_are_gone(cls, raw: object) -> object:
        if isinstance(raw, dict):
            old = sorted(set(raw) & set(_RENAMED_REGIME_KEYS))
            if old:
                hints = ", ".join(f"{key} -> {_RENAMED_REGIME_KEYS[key]}" for key in old)
                raise ValueError(
                    f"regime windows are spans of time in hours now, not bar counts: replace {hints} "
                    "(e.g. trend_window: 40 on 1h bars is trend_hours: 40; on 15m bars it was 10 hours)"
                )
        return raw

    @field_validator("definitions")
    @classmethod
    def _names(cls, definitions: dict[str, RegimeDefinition]) -> dict[str, RegimeDefinition]:
        for name in definitions:
            if name in REGIME_SENTINELS or not name.replace("_", "").isalnum():
                raise ValueError(f"regime name {name!r} is reserved or not an identifier")
        return definitions


class InferenceGridSettings(_Strict):
    prediction_methods: list[Literal["direct", "recursive", "direct_multi"]] = ["direct", "recursive", "direct_multi"]
    ensemble_methods: list[Literal["mean", "weighted", "stacking"]] = ["mean", "weighted", "stacking"]
    confidence_thresholds: list[float] = [0.0, 0.3, 0.5, 0.7, 0.9]
    lookback_windows: list[int] = [50, 100, 200]

    @field_validator("confidence_thresholds")
    @classmethod
    def _thresholds_in_unit_interval(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not 0 <= v <= 1]
        if bad:
            raise ValueError(f"confidence thresholds must lie in [0, 1], got {bad}")
        return values

    @field_validator("lookback_windows")
    @classmethod
    def _positive_windows(cls, values: list[int]) -> list[int]:
        bad = [v for v in values if v < 2]
        if bad:
            raise ValueError(f"lookback windows must be >= 2 bars, got {bad}")
        return values

    @model_validator(mode="after")
    def _non_empty(self) -> "InferenceGridSettings":
        for name in ("prediction_methods", "ensemble_methods", "confidence_thresholds", "lookback_windows"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"inference_grid.{name} is empty")
            if len(set(values)) != len(values):
                raise ValueError(f"inference_grid.{name} has duplicates: {values}")
        return self


class EvaluationSettings(_Strict):
    """How the out-of-sample (test) segment is used (backtest/segments.py, docs/regimes.md).

    holdout: the test rows are split into a selection segment (the first `selection_fraction`) and a
    later holdout, with an embargo of `horizon` rows between them; bests are chosen on selection and
    confirmed on holdout. walk_forward: the same holdout; the selection segment is cut into `folds`
    consecutive folds, fold k backtested by a model trained on every row before it (anchored), and
    the folds' out-of-sample returns pooled into the selection figures.
    """

    mode: Literal["holdout", "walk_forward"] = "holdout"
    selection_fraction: float = Field(0.6, gt=0, lt=1)
    folds: int = Field(3, ge=1, le=20)
    noise_models: int = Field(200, ge=10)     # random-forecast models per feature set for the noise baseline
    noise_seed: int = 0


class SmtpSettings(_Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "forex-pipeline@localhost"
    recipients: list[str] = []
    use_tls: bool = False
    username: str = ""
    password_env: str = "FOREX_SMTP_PASSWORD"


class NotificationSettings(_Strict):
    log: bool = True
    on_queue_complete: bool = True
    on_queue_failure: bool = True
    on_new_regime_best: bool = True
    smtp: SmtpSettings = SmtpSettings()


class ExplorerSettings(_Strict):
    """The results explorer (`forex-pipeline ui`, forex_pipeline/explorer): where Dagster's links point."""

    url: str = "http://127.0.0.1:8050"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"explorer.url {value!r} is not an http(s) URL, e.g. http://127.0.0.1:8050")
        return value.rstrip("/")


class Settings(_Strict):
    storage: StorageSettings = StorageSettings()
    data: DataSettings = DataSettings()
    training: TrainingSettings = TrainingSettings()
    queue: QueueSettings = QueueSettings()
    recovery: RecoverySettings = RecoverySettings()
    file_management: FileManagementSettings = FileManagementSettings()
    performance: PerformanceSettings = PerformanceSettings()
    regimes: RegimeSettings = RegimeSettings()
    inference_grid: InferenceGridSettings = InferenceGridSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    notifications: NotificationSettings = NotificationSettings()
    explorer: ExplorerSettings = ExplorerSettings()

    @property
    def dagster_home(self) -> Path:
        return dagster_home()

    @property
    def database_url(self) -> str:
        """FOREX_DATABASE_URL, else storage.database_url, else a SQLite file under DAGSTER_HOME."""
        url = os.environ.get(DATABASE_URL_ENV) or self.storage.database_url
        return url or f"sqlite:///{dagster_home() / 'forex_pipeline.db'}"

    @property
    def artifacts_dir(self) -> Path:
        """FOREX_ARTIFACTS_DIR, else storage.artifacts_dir, else DAGSTER_HOME/artifacts."""
        path = os.environ.get("FOREX_ARTIFACTS_DIR") or self.storage.artifacts_dir
        return Path(path).resolve() if path else dagster_home() / "artifacts"

    @property
    def checkpoints_dir(self) -> Path:
        """storage.checkpoints_dir, else DAGSTER_HOME/checkpoints: automatic queue checkpoints."""
        path = self.storage.checkpoints_dir
        return Path(path).resolve() if path else dagster_home() / "checkpoints"


class SettingsError(InputError):
    """The settings file is missing, unreadable or invalid; the message names the file and field."""


SYMBOL_PATTERN = re.compile(r"^(?:[A-Za-z]{3}[/_-][A-Za-z]{3}|[A-Za-z]{3,12})$")


def normalize_symbol(symbol: str) -> str:
    """'EUR/USD', 'eurusd' and 'EUR_USD' all name EURUSD.

    Only ASCII letters, either a base/quote pair with one separator or 3 to 12 letters (SYNTH, XAUUSD):
    '/etc/passwd', Cyrillic or full-width look-alikes and 'EURUSß' are refused, never rewritten.
    """
    if not isinstance(symbol, str) or not symbol.isascii() or not SYMBOL_PATTERN.fullmatch(symbol):
        raise ValueError(
            f"symbol {str(symbol)[:40]!r} is not a market name: ASCII letters only, e.g. EURUSD or EUR/USD"
        )
    return symbol.replace("/", "").replace("_", "").replace("-", "").upper()


def dagster_home() -> Path:
    """DAGSTER_HOME, else ./dagster_home (created on demand)."""
    return Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / "dagster_home").resolve()


def settings_path() -> Path:
    explicit = os.environ.get("FOREX_SETTINGS")
    if explicit:
        return Path(explicit)
    local = Path.cwd() / "config" / "training_pipeline.yaml"
    return local if local.exists() else DEFAULT_SETTINGS_FILE


def load_settings(path: Path | str | None = None) -> Settings:
    """Read and validate a settings file; every problem is reported with its file and field path."""
    path = Path(path) if path is not None else settings_path()
    try:
        raw = load_yaml(path, what="settings file")
    except YamlInputError as exc:
        raise SettingsError(str(exc)) from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of sections, got {type(raw).__name__}")
    executor = os.environ.get(EXECUTOR_ENV)
    if executor:
        queue = raw.get("queue") if isinstance(raw.get("queue"), dict) else {}
        raw = {**raw, "queue": {**queue, "executor": executor}}
        return parse_settings(raw, source=f"{path} with {EXECUTOR_ENV}={executor[:40]!r}")
    return parse_settings(raw, source=str(path))


def spec_document(raw: dict, source: str = "<dict>") -> tuple[dict, list]:
    """(project settings sections, the effect of each specification key) of a settings mapping: a
    `training_pipeline:` document (the specification's file) is translated by settings_spec and laid
    over the packaged defaults (config/training_pipeline.yaml: symbol costs, training, evaluation the
    specification does not set); the project's own sections may stand beside it and win where both
    set a value. The specification's regimes replace the default ones."""
    from forex_pipeline.settings_spec import SPEC_ROOT, SpecSettingsError, merge, translate

    if SPEC_ROOT not in raw:
        return raw, []
    rest = {k: v for k, v in raw.items() if k != SPEC_ROOT}
    try:
        translated, effects = translate(raw[SPEC_ROOT], source)
    except SpecSettingsError as exc:
        raise SettingsError(f"invalid settings in {exc}") from None
    defaults = load_yaml(DEFAULT_SETTINGS_FILE, what="settings file") if DEFAULT_SETTINGS_FILE.exists() else {}
    merged = merge(merge(defaults or {}, translated), rest)
    definitions = (rest.get("regimes") or {}).get("definitions") or (translated.get("regimes") or {}).get("definitions")
    if definitions is not None:
        merged["regimes"] = {**merged.get("regimes", {}), "definitions": definitions}
    return merged, effects


def parse_settings(raw: dict, source: str = "<dict>") -> Settings:
    raw, _effects = spec_document(raw, source)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings in {source}: {problems}") from exc


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, executor: str) -> Settings:
    return load_settings(path)  # `executor` (FOREX_QUEUE_EXECUTOR) is part of the key: load_settings reads it


def get_settings() -> Settings:
    """The current settings (cached per file and modification time)."""
    path = settings_path()
    return _cached(str(path), path.stat().st_mtime if path.exists() else 0.0, os.environ.get(EXECUTOR_ENV, ""))
