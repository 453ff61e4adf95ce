"""`lightning`: a PyTorch forecaster over a context window, K members = K seeds.

Network: each bar of the window (the last `context_length` rows, see neural.data) is projected by a
shared linear layer (a 1x1 convolution, `proj_dim` channels), the window is flattened and an MLP
(`layers` x `hidden`, GELU, dropout) maps it to a multi-output head. An MLP over the flat window was
chosen over a temporal conv network because the window is short (50 bars), training rows are few
(thousands), and the CPU budget is tight: weight sharing over time buys little at this size, while
the MLP is cheaper per epoch and still sees every lag directly.

One network serves the three prediction methods; its head outputs, all in unit-scale units:
- direct: the forward `horizon` log return;
- recursive: the future path of 1-bar returns, one output per step (`horizon <= path_points`) or per
  near-equal chunk of steps (longer horizons, capped at `path_points` outputs). A sequence model
  cannot iterate its own inputs (all features of the future bars would be needed), so `recursive` is
  realised as the sum of per-step one-bar forecasts, each made from the window at t;
- direct_multi: the returns of the `training.direct_multi_steps` sub-intervals (groups of path
  chunks); the forecast is their sum.
The loss is the mean of the three groups' mean squared errors.

Context length: the network is trained with `context_length` rows (default 50), the longest context
it will ever see. The inference grid's `lookback_window` is not an input of `predict_members` (the
TrainedModel contract) and never changes the network's input, which would need retraining; it only
sets the window over which the backtest scores confidence, so one trained model serves every
lookback window.

Training: Adam, early stopping on validation loss (`patience` epochs), at most
`training.neural.max_epochs` epochs and the neural time budget shared across members (each member gets
an equal share of what is left); each member is seeded (torch.manual_seed + deterministic algorithms).
Members default to `training.members`; hyperparameter `members` overrides it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import PREDICTION_METHODS, Combiners
from forex_pipeline.models.combiners import fit_combiners
from forex_pipeline.models.neural import rules
from forex_pipeline.models.neural.common import WindowMLP, check_rows, combiners_from_state, combiners_to_state, gather_windows, load_payload, resolve_common, runtime_placement, save_payload, state_dict_to_cpu, to_numpy_tree
from forex_pipeline.models.torch_training import FitReport, NeuralTrainingError, cpu_threads, derived_seed, deterministic, fit_network, select_device, training_budget_seconds
from forex_pipeline.models.neural.data import (
    InputPipeline,
    chunk_bounds,
    chunk_returns,
    fit_pipeline,
    horizon_target,
    model_segments,
    pipeline_from_state,
    sub_interval_groups,
)
from forex_pipeline.models.spec import ModelSpec

FAMILY = "lightning"
FILE_SUFFIX = ".pt"
PREDICT_BATCH = 4096

RULES = rules.LIGHTNING
validate_hyperparameters = rules.validate_lightning


class LightningNet(nn.Module):
    """WindowMLP body with a linear head of 1 + P + M outputs (direct, path chunks, sub-intervals)."""

    def __init__(self, channels: int, context_length: int, proj_dim: int, hidden: int, layers: int,
                 dropout: float, n_outputs: int) -> None:
        super().__init__()
        self.body = WindowMLP(channels, context_length, proj_dim, hidden, layers, dropout)
        self.head = nn.Linear(self.body.out_features, n_outputs)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(window))


@dataclass(frozen=True)
class HeadLayout:
    """Which head outputs belong to which method, and their scale back to log returns."""

    horizon: int
    bounds: np.ndarray        # path chunk boundaries (in bars)
    groups: np.ndarray        # direct_multi sub-intervals as chunk-index boundaries

    @property
    def n_path(self) -> int:
        return len(self.bounds) - 1

    @property
    def n_multi(self) -> int:
        return len(self.groups) - 1

    @property
    def n_outputs(self) -> int:
        return 1 + self.n_path + self.n_multi

    def scales(self, sigma: float) -> np.ndarray:
        """Per-output factor turning unit-scale outputs into log returns (sigma * sqrt(bars))."""
        path_len = np.diff(self.bounds)
        multi_len = np.diff(self.bounds[self.groups])
        lengths = np.concatenate([[self.horizon], path_len, multi_len]).astype(np.float64)
        return sigma * np.sqrt(lengths)

    def targets(self, log_close: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(n, n_outputs) log-return targets: horizon, path chunks, sub-intervals."""
        chunks = chunk_returns(log_close, rows, self.bounds)
        multi = np.stack([chunks[:, a:b].sum(axis=1) for a, b in zip(self.groups[:-1], self.groups[1:])], axis=1)
        return np.column_stack([chunks.sum(axis=1), chunks, multi])

    def aggregate(self, outputs: np.ndarray, method: str) -> np.ndarray:
        """(K, n) forecasts of `method` from (K, n, n_outputs) log-return outputs."""
        if method == "direct":
            return outputs[..., 0]
        if method == "recursive":
            return outputs[..., 1:1 + self.n_path].sum(axis=-1)
        if method == "direct_multi":
            return outputs[..., 1 + self.n_path:].sum(axis=-1)
        raise ValueError(f"prediction method {method!r} is unknown; known: {', '.join(PREDICTION_METHODS)}")


def _mse_by_group(n_path: int) -> Any:
    def loss(net: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
        windows, target = batch
        out = net(windows)
        err = (out - target) ** 2
        return (err[:, 0].mean() + err[:, 1:1 + n_path].mean() + err[:, 1 + n_path:].mean()) / 3.0
    return loss


class _WindowSource:
    """Batch tensors built on the fly from one padded feature block (no (n, L, C) copy in memory)."""

    def __init__(self, padded: torch.Tensor, length: int) -> None:
        self.padded = padded
        self.length = length

    def windows(self, positions: torch.Tensor) -> torch.Tensor:
        return gather_windows(self.padded, positions, self.length)


def _windowed_loss(source: _WindowSource, inner: Any) -> Any:
    def loss(net: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
        positions, target = batch
        return inner(net, (source.windows(positions), target), generator)
    return loss


@dataclass
class LightningModel:
    """K trained LightningNets plus their input pipeline (a TrainedModel)."""

    model_spec: ModelSpec
    feature_set_hash: str
    pipeline: InputPipeline
    layout: HeadLayout
    hyperparameters: dict[str, Any]
    member_states: list[dict[str, torch.Tensor]]
    combiners: dict[str, Combiners] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    threads: int = 1
    _nets: list[LightningNet] = field(default_factory=list, repr=False)
    _cache: tuple[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_members(self) -> int:
        return len(self.member_states)

    def _networks(self) -> list[LightningNet]:
        if not self._nets:
            for state in self.member_states:
                net = build_net(self.hyperparameters, self.pipeline.n_channels, self.layout.n_outputs)
                net.load_state_dict(state)
                self._nets.append(net.to(self.device).eval())
        return self._nets

    def member_outputs(self, matrix: FeatureMatrix, rows: np.ndarray) -> np.ndarray:
        """(K, n, n_outputs) head outputs in log-return units (cached for the last request)."""
        rows = np.asarray(rows, dtype=np.int64)
        padded, offset = self.pipeline.padded(matrix, rows)
        key = hashlib.sha1(padded.tobytes() + (rows - offset).tobytes()).hexdigest()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        device = torch.device(self.device)
        block = torch.from_numpy(padded).to(device)
        L = self.pipeline.context_length
        scales = self.layout.scales(self.pipeline.sigma)
        outputs = np.empty((self.n_members, len(rows), self.layout.n_outputs))
        with torch.no_grad(), cpu_threads(self.threads):
            for start in range(0, len(rows), PREDICT_BATCH):
                positions = torch.from_numpy(rows[start:start + PREDICT_BATCH] - offset).to(device)
                windows = gather_windows(block, positions, L)
                for k, net in enumerate(self._networks()):
                    outputs[k, start:start + len(positions)] = net(windows).double().cpu().numpy() * scales
        self._cache = (key, outputs)
        return outputs

    def predict_members(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        """(K, len(rows)) forecasts of the forward horizon log return; row t uses rows <= t only."""
        if method not in PREDICTION_METHODS:
            raise ValueError(f"prediction method {method!r} is unknown; known: {', '.join(PREDICTION_METHODS)}")
        if len(rows) == 0:
            return np.empty((self.n_members, 0))
        return self.layout.aggregate(self.member_outputs(matrix, rows), method)


def build_net(hp: dict[str, Any], channels: int, n_outputs: int) -> LightningNet:
    return LightningNet(channels, hp["context_length"], hp["proj_dim"], hp["hidden"], hp["layers"],
                        hp["dropout"], n_outputs)


def train(matrix: FeatureMatrix, spec: ModelSpec, context: Any) -> LightningModel:
    """Fit the input pipeline on the training rows, K seeded members, then the combiners on validation."""
    with cpu_threads(context.settings.training.neural.cpu_threads):
        return _train(matrix, spec, context)


def _train(matrix: FeatureMatrix, spec: ModelSpec, context: Any) -> LightningModel:
    if spec.model_type != FAMILY:
        raise ValueError(f"model_spec.model_type is {spec.model_type!r}; this module trains {FAMILY!r}")
    started = time.monotonic()
    deadline = started + training_budget_seconds(context)
    hp = validate_hyperparameters(spec)
    settings = context.settings
    neural = settings.training.neural
    members = int(resolve_common(hp["members"], settings.training.members))
    max_epochs = int(resolve_common(hp["max_epochs"], neural.max_epochs))
    batch_size = int(resolve_common(hp["batch_size"], neural.batch_size))
    name = f"{FAMILY} {spec.partition_key}"

    segments = model_segments(matrix, spec, settings)
    check_rows(name, len(segments.train), len(segments.validation))
    device = select_device(settings)
    with deterministic(derived_seed(context.seed, "pipeline")):
        pipeline = fit_pipeline(matrix, spec, segments.train, hp["context_length"],
                                seed=context.seed, context=context)
    bounds = chunk_bounds(spec.horizon, hp["path_points"])
    layout = HeadLayout(spec.horizon, bounds, sub_interval_groups(bounds, settings.training.direct_multi_steps))

    fit_rows = np.concatenate([segments.train, segments.validation])
    padded, offset = pipeline.padded(matrix, fit_rows)
    source = _WindowSource(torch.from_numpy(padded).to(device), pipeline.context_length)
    log_close = np.log(matrix.close)
    scales = layout.scales(pipeline.sigma)

    def tensors(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        target = layout.targets(log_close, rows) / scales
        return (torch.from_numpy(rows - offset).to(device),
                torch.from_numpy(target.astype(np.float32)).to(device))

    train_t, val_t = tensors(segments.train), tensors(segments.validation)
    loss = _windowed_loss(source, _mse_by_group(layout.n_path))
    states, reports = [], []
    for k in range(members):
        member_seed = derived_seed(context.seed, FAMILY, k)
        now = time.monotonic()
        member_deadline = now + max(deadline - now, 0.0) / (members - k)
        with deterministic(member_seed):
            net = build_net(hp, pipeline.n_channels, layout.n_outputs).to(device)
            report: FitReport = fit_network(
                net, loss, train_t, val_t, max_epochs=max_epochs, batch_size=batch_size,
                learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"], patience=hp["patience"],
                deadline=member_deadline, seed=member_seed, name=f"{name} member {k}",
            )
        states.append(state_dict_to_cpu(net))
        reports.append({"epochs": report.epochs, "best_val_loss": report.best_val_loss,
                        "stopped_by": report.stopped_by, "seconds": report.seconds, "seed": member_seed})

    model = LightningModel(spec, matrix.feature_set_hash, pipeline, layout, hp, states,
                           reports=reports, device=str(device), threads=neural.cpu_threads)
    y_val = horizon_target(matrix, spec.horizon, segments.validation)
    model.combiners = {
        method: fit_combiners(model.predict_members(matrix, segments.validation, method), y_val)
        for method in PREDICTION_METHODS
    }
    model.reports.append({"train_seconds": time.monotonic() - started})
    return model


def save(model: LightningModel, path: Path) -> None:
    """Write the member state dicts, pipeline state, head layout and combiners to exactly `path`."""
    config = {
        "hyperparameters": model.hyperparameters,
        "horizon": model.layout.horizon,
        "feature_set_hash": model.feature_set_hash,
        "reports": model.reports,
        "n_channels": model.pipeline.n_channels,
    }
    tensors = {
        "pipeline": model.pipeline.state(),
        "bounds": model.layout.bounds,
        "groups": model.layout.groups,
        "members": model.member_states,
        "combiners": combiners_to_state(model.combiners),
    }
    save_payload(path, FAMILY, model.model_spec.model_dump_json(), config, tensors)


def load(path: Path, spec: ModelSpec) -> LightningModel:
    """Rebuild a LightningModel from `save`'s file (weights_only loading; CPU unless settings say cuda)."""
    config, tensors = load_payload(path, FAMILY, spec.model_dump_json())
    device, threads = runtime_placement()
    pipeline = pipeline_from_state(to_numpy_tree(tensors["pipeline"]))
    layout = HeadLayout(int(config["horizon"]), tensors["bounds"].numpy(), tensors["groups"].numpy())
    model = LightningModel(
        spec, config["feature_set_hash"], pipeline, layout, dict(config["hyperparameters"]),
        list(tensors["members"]), combiners=combiners_from_state(tensors["combiners"]),
        reports=list(config["reports"]), device=device, threads=threads,
    )
    if model.n_members == 0:
        raise NeuralTrainingError(f"model file {path} holds no members")
    return model


