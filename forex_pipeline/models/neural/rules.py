"""The hyperparameter rules of the PyTorch families, without torch: a grid is validated at plan and
submit time (grid.expand) without loading the training stack; the family modules use the same rules."""

from __future__ import annotations

from typing import Any

from forex_pipeline.models.hyperparameters import HyperparameterError, Param, resolve
from forex_pipeline.models.spec import ModelSpec

LIGHTNING: dict[str, Param] = {
    "context_length": Param(50, int, 2, 1000),
    "proj_dim": Param(8, int, 1, 256),
    "hidden": Param(64, int, 4, 4096),
    "layers": Param(2, int, 1, 8),
    "dropout": Param(0.1, float, 0.0, 0.9),
    "learning_rate": Param(1e-3, float, 0.0, 1.0, low_inclusive=False),
    "weight_decay": Param(1e-4, float, 0.0, 1.0),
    "patience": Param(5, int, 1, 1000),
    "path_points": Param(24, int, 1, 500),
    "members": Param(None, int, 1, 100, allow_none=True),
    "max_epochs": Param(None, int, 1, 100000, allow_none=True),
    "batch_size": Param(None, int, 1, 1 << 20, allow_none=True),
}

DIFFUSION: dict[str, Param] = {
    "context_length": Param(50, int, 2, 1000),
    "proj_dim": Param(8, int, 1, 256),
    "hidden": Param(64, int, 4, 4096),
    "channels": Param(32, int, 4, 1024),
    "layers": Param(3, int, 1, 16),
    "dropout": Param(0.1, float, 0.0, 0.9),
    "learning_rate": Param(1e-3, float, 0.0, 1.0, low_inclusive=False),
    "weight_decay": Param(0.0, float, 0.0, 1.0),
    "patience": Param(5, int, 1, 1000),
    "path_points": Param(16, int, 1, 500),
    "clip": Param(6.0, float, 0.0, 1000.0, low_inclusive=False),
    "combiner_rows": Param(512, int, 16, 1_000_000),
    "diffusion_steps": Param(None, int, 2, 10000, allow_none=True),
    "ddim_steps": Param(None, int, 1, 10000, allow_none=True),
    "samples": Param(None, int, 1, 1000, allow_none=True),
    "max_epochs": Param(None, int, 1, 100000, allow_none=True),
    "batch_size": Param(None, int, 1, 1 << 20, allow_none=True),
}

SSSD: dict[str, Param] = {
    "context_length": Param(32, int, 2, 1000),
    "channels": Param(32, int, 4, 1024),
    "layers": Param(2, int, 1, 64),
    "state_dim": Param(32, int, 2, 512),
    "dropout": Param(0.0, float, 0.0, 0.9),
    "learning_rate": Param(2e-3, float, 0.0, 1.0, low_inclusive=False),
    "weight_decay": Param(0.0, float, 0.0, 1.0),
    "patience": Param(5, int, 1, 1000),
    "path_points": Param(16, int, 1, 500),
    "clip": Param(6.0, float, 0.0, 1000.0, low_inclusive=False),
    "combiner_rows": Param(256, int, 16, 1_000_000),
    "sampler": Param("ddim", str, choices=("ddpm", "ddim")),
    "diffusion_steps": Param(50, int, 2, 10000, allow_none=True),
    "ddim_steps": Param(None, int, 1, 10000, allow_none=True),
    "samples": Param(None, int, 1, 1000, allow_none=True),
    "max_epochs": Param(None, int, 1, 100000, allow_none=True),
    "batch_size": Param(None, int, 1, 1 << 20, allow_none=True),
}


def check_steps(hp: dict[str, Any]) -> None:
    """Refuse DDIM sampling steps above the diffusion steps they subsample."""
    steps, ddim = hp.get("diffusion_steps"), hp.get("ddim_steps")
    if steps is not None and ddim is not None and ddim > steps:
        raise HyperparameterError(
            f"hyperparameters.ddim_steps ({ddim}) must not exceed hyperparameters.diffusion_steps ({steps})"
        )


def validate_lightning(spec: ModelSpec) -> dict[str, Any]:
    """Hyperparameters with defaults filled; unknown or out-of-range keys raise HyperparameterError."""
    return resolve(spec, LIGHTNING)


def validate_diffusion(spec: ModelSpec) -> dict[str, Any]:
    """Hyperparameters with defaults filled (None = the settings value at training time)."""
    return resolve(spec, DIFFUSION, check_steps)


def validate_sssd(spec: ModelSpec) -> dict[str, Any]:
    """Hyperparameters with defaults filled (None = the settings value at training time)."""
    return resolve(spec, SSSD, check_steps)


VALIDATORS = {
    "lightning": validate_lightning,
    "diffusion-ddpm": validate_diffusion,
    "diffusion-ddim": validate_diffusion,
    "sssd": validate_sssd,
}


def validate_hyperparameters(spec: ModelSpec) -> dict[str, Any]:
    """The rules of spec.model_type's family (the registry's rules module for every PyTorch family)."""
    return VALIDATORS[spec.model_type](spec)
