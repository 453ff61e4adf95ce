"""The registry of model families: model_type -> module, imported only when that family is used.

Every family module exposes
    train(matrix, spec, context) -> TrainedModel
    save(model, path) -> None           (writes exactly `path`; save_model makes it atomic)
    load(path, spec) -> TrainedModel
    validate_hyperparameters(spec) -> dict   (defaults filled, unknown keys refused naming the field)
and optionally FILE_SUFFIX (default ".joblib"). A family whose module is missing is an error naming
the model_type; there is never a fallback to another family.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import TrainedModel
from forex_pipeline.models.context import ModelSpecError, TrainingContext
from forex_pipeline.models.encoders import EncoderError, encoder_module
from forex_pipeline.models.hyperparameters import HyperparameterError
from forex_pipeline.models.lazy_import import find_listed, import_listed
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.models.training import check_ar_lags, check_horizon
from forex_pipeline.settings import Settings
from forex_pipeline.models.files import ModelFileInfo, verify, write_atomic

__all__ = [
    "FAMILY_MODULES", "RULE_MODULES", "ModelSpecError", "TrainingContext", "family_module", "family_rules", "file_suffix",
    "validate_spec", "train_model", "save_model", "load_model",
]

FAMILY_MODULES: dict[str, str] = {
    "ridge": "forex_pipeline.models.linear",
    "lasso": "forex_pipeline.models.linear",
    "elasticnet": "forex_pipeline.models.linear",
    "rf": "forex_pipeline.models.forest",
    "lightgbm": "forex_pipeline.models.gbm",
    "lightning": "forex_pipeline.models.neural.lightning",
    "diffusion-ddpm": "forex_pipeline.models.neural.diffusion",
    "diffusion-ddim": "forex_pipeline.models.neural.diffusion",
    "sssd": "forex_pipeline.models.neural.sssd",
}
# The PyTorch families' validate_hyperparameters, without torch (a grid is checked at plan and submit
# time without importing it); every other family's is in its family module.
RULE_MODULES: dict[str, str] = {
    "lightning": "forex_pipeline.models.neural.rules",
    "diffusion-ddpm": "forex_pipeline.models.neural.rules",
    "diffusion-ddim": "forex_pipeline.models.neural.rules",
    "sssd": "forex_pipeline.models.neural.rules",
}
DEFAULT_FILE_SUFFIX = ".joblib"


def family_module(model_type: str) -> ModuleType:
    """Import the module of `model_type`; ModelSpecError naming model_type if unknown or missing."""
    return import_listed(FAMILY_MODULES, model_type, "model_spec.model_type", ModelSpecError)


def family_rules(model_type: str) -> ModuleType:
    """The module holding `model_type`'s validate_hyperparameters, its family module checked to exist but
    not imported; ModelSpecError naming model_type otherwise."""
    find_listed(FAMILY_MODULES, model_type, "model_spec.model_type", ModelSpecError)
    return import_listed({**FAMILY_MODULES, **RULE_MODULES}, model_type, "model_spec.model_type", ModelSpecError)


def file_suffix(model_type: str) -> str:
    """The file suffix a family's model files use (e.g. '.joblib')."""
    return str(getattr(family_module(model_type), "FILE_SUFFIX", DEFAULT_FILE_SUFFIX))


def validate_spec(spec: ModelSpec, matrix: FeatureMatrix, settings: Settings) -> dict[str, Any]:
    """Refuse, before any work, a spec that cannot be trained on `matrix`; return resolved hyperparameters.

    Checks model_type and encoder (their modules must exist), that horizon leaves training,
    validation and test rows after the embargo, that the matrix holds ret_lag_* columns, and the
    family's hyperparameters. Every error is a ModelSpecError naming the field.
    """
    module = family_module(spec.model_type)
    try:
        encoder_module(spec.encoder)
    except EncoderError as exc:
        raise ModelSpecError(f"model_spec.encoder: {exc}") from exc
    check_horizon(spec.horizon, matrix.n_rows, settings)
    check_ar_lags(matrix)
    try:
        return module.validate_hyperparameters(spec)
    except HyperparameterError as exc:
        raise ModelSpecError(str(exc)) from exc


def train_model(matrix: FeatureMatrix, spec: ModelSpec, context: TrainingContext) -> TrainedModel:
    """Validate `spec`, then train it with its family."""
    validate_spec(spec, matrix, context.settings)
    return family_module(spec.model_type).train(matrix, spec, context)


def save_model(model: TrainedModel, path: Path) -> ModelFileInfo:
    """Write `model` atomically with its family's `save`; return path, sha256 and size."""
    module = family_module(model.model_spec.model_type)
    return write_atomic(Path(path), lambda temp: module.save(model, temp))


def load_model(path: Path, spec: ModelSpec, expected_sha256: str, expected_bytes: int | None = None) -> TrainedModel:
    """Verify the file's sha256 (ModelFileError if missing, truncated or modified), then load it."""
    verify(Path(path), expected_sha256, expected_bytes)
    return family_module(spec.model_type).load(Path(path), spec)
