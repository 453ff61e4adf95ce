"""Shared machinery of the PyTorch families: device, seeds, time budget, training loop, model files.

Budget semantics: every family trains under `settings.training.neural.max_epochs` and a time budget,
the smallest of `training.neural.max_seconds`, `training.max_seconds_per_model` and the context's
`deadline_seconds`. When the clock runs out the loop stops gracefully after the current mini-batch and
keeps the best weights seen so far (the model's reports record `stopped_by="max_seconds"`); it never
hangs and never falls back to another family. Training fails with `NeuralTrainingError` when there is
too little data or the loss becomes non-finite. On CPU, torch runs on `training.neural.cpu_threads`
threads (default 1: these small networks run many times faster on one thread of a shared machine).

Model files are `torch.save` of a dict holding only tensors, strings, numbers, lists and dicts, and
are read with `torch.load(..., weights_only=True)`: a file carrying any other pickled object is refused.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forex_pipeline.models.combiners import combiners_from_state as shared_from_state
from forex_pipeline.models.combiners import combiners_to_state as shared_to_state
from forex_pipeline.models.base import Combiners
from forex_pipeline.models.torch_training import NeuralTrainingError, select_device

FILE_FORMAT = "forex_pipeline.neural/1"


class NeuralModelFileError(RuntimeError):
    """A neural model file is unreadable, holds pickled objects, or belongs to another model spec."""


def check_rows(name: str, n_train: int, n_val: int, minimum: int = 32) -> None:
    """Refuse to train on fewer than `minimum` training or validation rows."""
    if n_train < minimum or n_val < 2:
        raise NeuralTrainingError(
            f"{name}: too few rows to train (train={n_train}, validation={n_val}; "
            f"need train >= {minimum} and validation >= 2); use a longer days_history or a shorter horizon"
        )


def to_tensor_tree(value: Any) -> Any:
    """numpy arrays -> tensors, recursively, so the tree can be loaded with weights_only=True."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_tensor_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_tensor_tree(v) for v in value]
    return value


def to_numpy_tree(value: Any) -> Any:
    """Tensors -> numpy arrays, recursively (the inverse of `to_tensor_tree`)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        return {k: to_numpy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_numpy_tree(v) for v in value]
    return value


def combiners_to_state(combiners: Mapping[str, Combiners]) -> dict[str, Any]:
    """models.combiners state per method, with arrays as tensors (a weights_only torch file)."""
    return {
        method: {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in shared_to_state(c).items()}
        for method, c in combiners.items()
    }


def combiners_from_state(state: Mapping[str, Any]) -> dict[str, Combiners]:
    return {
        method: shared_from_state({k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in c.items()})
        for method, c in state.items()
    }


def save_payload(path: Path, family: str, spec_json: str, config: Mapping[str, Any],
                 tensors: Mapping[str, Any]) -> None:
    """Write exactly `path`: format tag, family, spec, JSON config and tensor tree.

    registry.save_model wraps this in models.files.write_atomic (temp file, fsync, rename, sha256)."""
    payload = {
        "format": FILE_FORMAT,
        "family": family,
        "model_spec": spec_json,
        "config": json.dumps(dict(config), sort_keys=True),
        "tensors": to_tensor_tree(dict(tensors)),
    }
    torch.save(payload, Path(path))


def load_payload(path: Path, family: str, spec_json: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a model file with weights_only=True; check its format, family and model spec."""
    path = Path(path)
    if not path.is_file():
        raise NeuralModelFileError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise NeuralModelFileError(
            f"model file {path} holds objects other than tensors and plain values; refusing to unpickle it ({exc})"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise NeuralModelFileError(f"model file {path} is not a readable torch file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise NeuralModelFileError(f"model file {path} is not a {FILE_FORMAT} file")
    if payload.get("family") != family:
        raise NeuralModelFileError(f"model file {path} holds family {payload.get('family')!r}, expected {family!r}")
    if json.loads(payload["model_spec"]) != json.loads(spec_json):
        raise NeuralModelFileError(
            f"model file {path} was trained for model_spec {payload['model_spec']}, not {spec_json}"
        )
    return json.loads(payload["config"]), payload["tensors"]


def state_dict_to_cpu(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


class WindowMLP(nn.Module):
    """Shared per-bar projection (a 1x1 convolution) of each window row, then an MLP over the flat window."""

    def __init__(self, channels: int, context_length: int, proj_dim: int, hidden: int, layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(channels, proj_dim)
        body: list[nn.Module] = []
        width = context_length * proj_dim
        for _ in range(layers):
            body += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*body)
        self.out_features = width

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.body(self.proj(window).flatten(1))


def gather_windows(padded: torch.Tensor, positions: torch.Tensor, length: int) -> torch.Tensor:
    """(B, L, C) windows ending at `positions` (indices of the window's first row in `padded`)."""
    return padded[positions[:, None] + torch.arange(length, device=padded.device)[None, :]]


def resolve_common(value: Any, fallback: Any) -> Any:
    """A hyperparameter override if given, else the settings value."""
    return fallback if value is None else value


def runtime_placement() -> tuple[str, int]:
    """Device and CPU thread count for a loaded model, from the current settings."""
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    return str(select_device(settings)), int(settings.training.neural.cpu_threads)
