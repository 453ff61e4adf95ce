"""The specification's settings file (`training_pipeline:` document, its section 7.1) mapped onto the
project's settings sections.

Every key of the specification either takes effect, written to one project setting (its `target`,
with a conversion where the unit differs), or is accepted but inert, with the reason. Keys are found
by name within the specification's sections (storage, queue, recovery, file_management, performance,
regimes, inference_grid, notifications); a key this table does not know is refused, so a typo is never
silently ignored. `forex-pipeline settings check FILE` prints the table for a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPEC_ROOT = "training_pipeline"
SPEC_SECTIONS = (
    "storage", "queue", "recovery", "file_management", "performance", "regimes", "inference_grid", "notifications",
)


@dataclass(frozen=True)
class SpecKey:
    """One key of the specification: the project setting it sets (dotted path), or why it is inert."""

    name: str
    target: str | None
    convert: Callable[[Any], Any] | None = None
    inert_reason: str | None = None
    note: str = ""


def _minutes_to_seconds(value: Any) -> Any:
    return value * 60 if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _compression(value: Any) -> Any:
    """compress_old_models: true keeps joblib compression level 3 on every model file; false writes them raw."""
    return 3 if value is True else 0 if value is False else value


SPEC_KEYS: dict[str, SpecKey] = {k.name: k for k in (
    SpecKey("database_url", "storage.database_url"),
    SpecKey("artifacts_dir", "storage.artifacts_dir"),
    SpecKey("checkpoints_dir", "storage.checkpoints_dir"),
    SpecKey("max_checkpoint_age_days", "storage.max_checkpoint_age_days"),
    SpecKey("max_parallel_queues", "queue.max_parallel_queues"),
    SpecKey("auto_checkpoint_interval", "recovery.checkpoint_every_models", note="models between automatic checkpoints"),
    SpecKey("max_inference_workers", "performance.numba_threads", note="threads of the backtest kernel (one kernel runs every inference configuration)"),
    SpecKey("auto_resume_on_crash", "recovery.auto_resume"),
    SpecKey("detect_crash_after_minutes", "recovery.stale_after_seconds", _minutes_to_seconds, note="minutes x 60"),
    SpecKey("delete_non_best_models", "file_management.delete_unkept_models"),
    SpecKey("keep_top_n_per_regime", "file_management.keep_top_n_per_regime"),
    SpecKey("compress_old_models", "storage.model_compression", _compression,
            note="every model file is compressed when written (true: joblib level 3, false: 0)"),
    SpecKey("model_cache_size_mb", None, inert_reason=(
        "no model cache exists to size: each model is trained, backtested on every inference configuration "
        "in memory and recorded once; kept models are loaded only for the dashboard's equity curves")),
    SpecKey("database_connection_pool_size", "performance.database_connection_pool_size",
            note="SQLAlchemy pool size of PostgreSQL engines (SQLite has one writer)"),
    SpecKey("prediction_methods", "inference_grid.prediction_methods"),
    SpecKey("ensemble_methods", "inference_grid.ensemble_methods"),
    SpecKey("confidence_thresholds", "inference_grid.confidence_thresholds"),
    SpecKey("lookback_windows", "inference_grid.lookback_windows"),
    SpecKey("on_new_regime_best", "notifications.on_new_regime_best"),
    SpecKey("on_queue_complete", "notifications.on_queue_complete"),
    SpecKey("on_queue_failure", "notifications.on_queue_failure"),
    SpecKey("email_on_new_best", "notifications.on_new_regime_best"),
    SpecKey("email_on_completion", "notifications.on_queue_complete"),
    SpecKey("email_on_failure", "notifications.on_queue_failure"),
    SpecKey("email_recipients", "notifications.smtp.recipients", note="SMTP is enabled when recipients are given"),
    SpecKey("email", "notifications.smtp.recipients", lambda v: [v] if isinstance(v, str) else v,
            note="SMTP is enabled when a recipient is given"),
    SpecKey("smtp_host", "notifications.smtp.host"),
    SpecKey("smtp_port", "notifications.smtp.port"),
)}


@dataclass(frozen=True)
class KeyEffect:
    """What one key of a specification file did: `path` in the file, the setting it set (or None) and why."""

    path: str
    value: Any
    target: str | None
    note: str


class SpecSettingsError(ValueError):
    """A `training_pipeline:` document this table cannot map; the message names the key."""


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value


def _regimes(value: Any, path: str) -> tuple[dict[str, Any], list[KeyEffect]]:
    """The specification's regimes ({name: {feature: "rule text"}}) as regimes.definitions; a regime
    written in the project's form ({description, rules}) passes as it is."""
    if not isinstance(value, dict):
        raise SpecSettingsError(f"{path}: expected a mapping of regime names to rules, got {type(value).__name__}")
    definitions: dict[str, Any] = {}
    effects = []
    for name, body in value.items():
        if not isinstance(body, dict):
            raise SpecSettingsError(f"{path}.{name}: expected a mapping of feature to rule text, got {type(body).__name__}")
        if "rules" in body:
            definitions[name] = body
        else:
            rules = {k: v for k, v in body.items() if k != "description"}
            definitions[name] = {"description": body.get("description", ""), "rules": rules}
        effects.append(KeyEffect(f"{path}.{name}", body, f"regimes.definitions.{name}", "rule texts parsed by rule_syntax"))
    return definitions, effects


def translate(document: Any, source: str = "settings file") -> tuple[dict[str, Any], list[KeyEffect]]:
    """(project settings sections, effect of every key) of the value under `training_pipeline:`."""
    if not isinstance(document, dict):
        raise SpecSettingsError(f"{source}: {SPEC_ROOT} must be a mapping of sections, got {type(document).__name__}")
    raw: dict[str, Any] = {}
    effects: list[KeyEffect] = []
    for section, body in document.items():
        path = f"{SPEC_ROOT}.{section}"
        if section not in SPEC_SECTIONS:
            raise SpecSettingsError(f"{source}: {path}: unknown section; the specification's sections are {', '.join(SPEC_SECTIONS)}")
        if section == "regimes":
            definitions, regime_effects = _regimes(body, path)
            _set(raw, "regimes.definitions", definitions)
            effects.extend(regime_effects)
            continue
        if not isinstance(body, dict):
            raise SpecSettingsError(f"{source}: {path}: expected a mapping, got {type(body).__name__}")
        for key, value in body.items():
            spec_key = SPEC_KEYS.get(key)
            if spec_key is None:
                raise SpecSettingsError(f"{source}: {path}.{key}: not a key of the specification's settings file (known: {', '.join(sorted(SPEC_KEYS))})")
            if spec_key.target is None:
                effects.append(KeyEffect(f"{path}.{key}", value, None, spec_key.inert_reason or ""))
                continue
            _set(raw, spec_key.target, spec_key.convert(value) if spec_key.convert else value)
            if spec_key.target == "notifications.smtp.recipients" and value:
                _set(raw, "notifications.smtp.enabled", True)
            effects.append(KeyEffect(f"{path}.{key}", value, spec_key.target, spec_key.note))
    return raw, effects


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override`'s values laid over it, mapping by mapping (the project's own sections win)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
