"""The specification's settings file (a `training_pipeline:` document) loads verbatim; each key takes effect."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from forex_pipeline.settings import SettingsError, load_settings, spec_document
from forex_pipeline.settings_spec import SPEC_KEYS

SPEC_FILE = Path(__file__).resolve().parents[1] / "examples" / "specification_training_pipeline.yaml"


def test_the_specification_file_loads_verbatim_and_every_key_takes_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FOREX_DATABASE_URL", "FOREX_ARTIFACTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(SPEC_FILE)
    assert settings.storage.database_url == "postgresql://forex:forex@localhost:5432/forex_training"
    assert settings.database_url == "postgresql://forex:forex@localhost:5432/forex_training"
    assert settings.artifacts_dir == Path("/data/forex/models")
    assert settings.checkpoints_dir == Path("/data/forex/checkpoints")
    assert settings.storage.max_checkpoint_age_days == 30
    assert settings.queue.max_parallel_queues == 2
    assert settings.recovery.checkpoint_every_models == 10
    assert settings.performance.numba_threads == 8
    assert settings.recovery.auto_resume is True
    assert settings.recovery.stale_after_seconds == 30 * 60
    assert settings.file_management.delete_unkept_models is True
    assert settings.file_management.keep_top_n_per_regime == 3
    assert settings.storage.model_compression == 3
    assert settings.performance.database_connection_pool_size == 10
    assert list(settings.regimes.definitions) == ["bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"]
    bull = settings.regimes.definitions["bull_trending"].rules
    assert bull["trend_strength"].min == 0.7 and not bull["trend_strength"].min_inclusive
    assert bull["returns"].min == 0
    volatile = settings.regimes.definitions["volatile_ranging"].rules["volatility"]
    assert volatile.percentile and volatile.min == 0.75
    assert settings.inference_grid.confidence_thresholds == [0.0, 0.3, 0.5, 0.7, 0.9]
    assert settings.inference_grid.lookback_windows == [50, 100, 200]
    assert settings.inference_grid.prediction_methods == ["direct", "recursive", "direct_multi"]
    assert settings.inference_grid.ensemble_methods == ["mean", "weighted", "stacking"]
    assert settings.notifications.on_new_regime_best and settings.notifications.on_queue_complete and settings.notifications.on_queue_failure
    assert settings.notifications.smtp.enabled and settings.notifications.smtp.recipients == ["researcher@example.com"]
    # what the specification does not set comes from the packaged defaults (symbol costs, training, ...)
    assert "EURUSD" in settings.data.symbols and settings.training.members == 5


def test_every_key_of_the_file_is_reported_with_its_effect_or_why_it_is_inert() -> None:
    raw = yaml.safe_load(SPEC_FILE.read_text())
    _, effects = spec_document(raw, str(SPEC_FILE))
    spec_keys = {f"training_pipeline.{section}.{key}" for section, body in raw["training_pipeline"].items() for key in body}
    assert {e.path for e in effects} == spec_keys
    inert = {e.path.rsplit(".", 1)[1]: e.note for e in effects if e.target is None}
    assert set(inert) == {"model_cache_size_mb"} and "no model cache" in inert["model_cache_size_mb"]
    assert all(SPEC_KEYS[e.path.rsplit(".", 1)[1]].target == e.target for e in effects if ".regimes." not in e.path)


def test_false_and_other_values_change_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "training_pipeline:\n  file_management: {compress_old_models: false, delete_non_best_models: false}\n"
        "  recovery: {auto_resume_on_crash: false, detect_crash_after_minutes: 2}\n"
        "queue:\n  models_per_run: 7\n"   # the project's own sections stand beside it
    )
    settings = load_settings(path)
    assert settings.storage.model_compression == 0 and settings.file_management.delete_unkept_models is False
    assert settings.recovery.auto_resume is False and settings.recovery.stale_after_seconds == 120
    assert settings.queue.models_per_run == 7


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("training_pipeline:\n  queue: {auto_checkpoint_intervall: 3}\n", "auto_checkpoint_intervall: not a key"),
        ("training_pipeline:\n  caching: {}\n", "caching: unknown section"),
        ("training_pipeline:\n  regimes: {bull: {trend_strength: '> seventy'}}\n", "regimes.definitions.bull.rules"),
        ("training_pipeline:\n  recovery: {detect_crash_after_minutes: -5}\n", "recovery.stale_after_seconds"),
        ("training_pipeline: [1, 2]\n", "must be a mapping of sections"),
    ],
)
def test_a_bad_specification_file_is_refused_naming_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")) as caught:
        load_settings(path)
    assert str(path) in str(caught.value)
