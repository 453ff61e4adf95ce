"""`diffusion-ddpm` and `diffusion-ddim`: a small conditional denoising diffusion forecaster of the return path.

What is generated: the future return path of row t, r[t+1 .. t+h], summarised as P = min(h, path_points)
chunks (one bar each when h <= path_points, near-equal groups of bars for longer horizons; see
neural.data), each scaled to unit variance. Condition: the context window of the last `context_length`
rows (features + 1-bar returns), never anything after t.

Network (CSDI-like, small): the context window is encoded once by the shared WindowMLP; the noisy path
is a 1-channel sequence of P points lifted to `channels` channels with a learnt position embedding,
then `layers` DiffWave/CSDI residual blocks (dilated convolution over the path, diffusion-step
embedding added, context embedding added, gated tanh x sigmoid, residual + skip outputs). CSDI's
temporal transformer is replaced by dilated convolutions to keep CPU cost low; the conditioning is the
encoded window instead of CSDI's masked-observation side channel. It predicts the velocity
v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (v-prediction), from which noise and clean path follow.

Training: one network per model (not per member), v-MSE at a uniformly drawn step of a cosine
noise schedule with `diffusion_steps` steps, early stopping on a fixed-noise validation loss, within the
neural budget. `diffusion-ddpm` and `diffusion-ddim` train the identical network; they differ in the
sampler only:
- ddpm: ancestral sampling through all `diffusion_steps` steps (one network evaluation per step);
- ddim: deterministic DDIM (eta = 0) over `ddim_steps` evenly spaced steps of the same schedule.

Members: K = `samples` sampled paths per row (settings.training.neural.samples unless overridden). The
noise of row t is drawn from a generator seeded by (model seed, t // 256), so the same row always gets
the same noise whichever other rows are asked for, and a reloaded model reproduces its predictions.
Aggregations of sample k's path into the three prediction methods:
- direct: the sum of the whole sampled path (its horizon log return);
- recursive: the sampled first-step per-bar return, iterated over the horizon (h x first chunk / its
  length) - the one-step forecast rolled forward with inputs held at t;
- direct_multi: the path is cut into `training.direct_multi_steps` sub-intervals, each treated as its
  own predictor: member k sums sub-interval j of sample (k + j) mod K, so sub-intervals are
  independent draws (same mean as direct, spread of independent sub-interval predictors).
The spread of the K members feeds the backtest's confidence.

Budget: before training, one network evaluation is timed and the cost of sampling the combiners'
validation rows is reserved out of the neural time budget, so training plus validation sampling stays
within `training.neural.max_seconds`. The combiners use at most `combiner_rows` evenly spaced
validation rows, fewer (down to MIN_COMBINER_ROWS) when sampling them would not leave training
MIN_TRAINING_SHARE of the budget; the model's reports record the rows used and the reserve.
Sampling is batched over SAMPLE_BATCH_ROWS rows x K samples.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import PREDICTION_METHODS, Combiners
from forex_pipeline.models.combiners import fit_combiners
from forex_pipeline.models.hyperparameters import HyperparameterError
from forex_pipeline.models.neural import rules
from forex_pipeline.models.neural.common import WindowMLP, check_rows, combiners_from_state, combiners_to_state, gather_windows, load_payload, resolve_common, runtime_placement, save_payload, state_dict_to_cpu, to_numpy_tree
from forex_pipeline.models.torch_training import NeuralTrainingError, cpu_threads, derived_seed, deterministic, fit_network, select_device, training_budget_seconds
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

FAMILY = "diffusion"
MODEL_TYPES = ("diffusion-ddpm", "diffusion-ddim")
FILE_SUFFIX = ".pt"
NOISE_BLOCK = 256
SAMPLE_BATCH_ROWS = 1024
MIN_TRAINING_SHARE = 0.3  # the share of the budget training keeps whatever sampling is estimated to cost
MIN_COMBINER_ROWS = 32    # combiners are never fitted on fewer validation rows than this
SAMPLING_SAFETY = 1.25    # factor on the timed network evaluation when reserving sampling time

RULES = rules.DIFFUSION
check_steps = rules.check_steps
validate_hyperparameters = rules.validate_diffusion


# ---------------------------------------------------------------------------------------------------
# Noise schedule and samplers


@dataclass(frozen=True)
class Schedule:
    """Cosine noise schedule (Nichol & Dhariwal 2021) with T steps, as float64 tensors."""

    betas: torch.Tensor
    alpha_bar: torch.Tensor

    @property
    def steps(self) -> int:
        return len(self.betas)


def cosine_schedule(steps: int) -> Schedule:
    s = 0.008
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(1e-5, 0.999)
    return Schedule(betas=betas, alpha_bar=torch.cumprod(1 - betas, 0))


Denoise = Callable[[torch.Tensor, int], torch.Tensor]   # (x_t, step) -> predicted velocity v


def split_velocity(x: torch.Tensor, v: torch.Tensor, alpha_bar: float, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) implied by a v-prediction (v = sqrt(ab) eps - sqrt(1 - ab) x0), x0 clipped to +-clip.

    v-prediction (Salimans & Ho 2022) keeps x0 well-conditioned at the noisiest steps, where an
    epsilon-prediction would be divided by sqrt(alpha_bar) ~ 0; eps is recomputed from the clipped x0."""
    a, b = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    x0 = (a * x - b * v).clamp(-clip, clip)
    eps = (x - a * x0) / b
    return x0, eps


def ddpm_sample(denoise: Denoise, schedule: Schedule, noise: torch.Tensor, clip: float) -> torch.Tensor:
    """Ancestral sampling through every step; noise[0] is x_T, noise[i] the step noise (T draws)."""
    T = schedule.steps
    x = noise[0]
    for i, t in enumerate(range(T - 1, -1, -1)):
        beta, ab = float(schedule.betas[t]), float(schedule.alpha_bar[t])
        ab_prev = float(schedule.alpha_bar[t - 1]) if t > 0 else 1.0
        x0, _ = split_velocity(x, denoise(x, t), ab, clip)
        mean = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_prev) * x) / (1 - ab)
        if t > 0:
            x = mean + math.sqrt(beta * (1 - ab_prev) / (1 - ab)) * noise[i + 1]
        else:
            x = mean
    return x


def ddim_timesteps(total: int, steps: int) -> list[int]:
    """`steps` evenly spaced steps of a `total`-step schedule, descending, ending at step 0."""
    grid = np.unique(np.round(np.linspace(0, total - 1, min(steps, total))).astype(int))
    return [int(t) for t in grid[::-1]]


def ddim_sample(denoise: Denoise, schedule: Schedule, steps: int, x_T: torch.Tensor, clip: float) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) over `steps` evaluations of the same network."""
    seq = ddim_timesteps(schedule.steps, steps)
    x = x_T
    for i, t in enumerate(seq):
        ab = float(schedule.alpha_bar[t])
        ab_prev = float(schedule.alpha_bar[seq[i + 1]]) if i + 1 < len(seq) else 1.0
        x0, eps = split_velocity(x, denoise(x, t), ab, clip)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


# ---------------------------------------------------------------------------------------------------
# The CSDI-like denoiser


class StepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step followed by a small MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half, 1))
        args = t.float()[:, None] * freqs[None, :] * 10.0
        emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
        if emb.shape[1] < self.dim:
            emb = torch.nn.functional.pad(emb, (0, self.dim - emb.shape[1]))
        return self.mlp(emb)


class ResidualBlock(nn.Module):
    """DiffWave/CSDI residual block over the path: dilated conv, step + context added, gated output."""

    def __init__(self, channels: int, cond_dim: int, dilation: int) -> None:
        super().__init__()
        self.step = nn.Linear(channels, channels)
        self.cond = nn.Linear(cond_dim, 2 * channels)
        self.conv = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x + self.step(step)[:, :, None]) + self.cond(cond)[:, :, None]
        gate, filt = y.chunk(2, dim=1)
        res, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=1)
        return (x + res) / math.sqrt(2.0), skip


class PathDenoiser(nn.Module):
    """v_theta(x_t, t, context): the CSDI-like conditional velocity predictor of a P-point path."""

    def __init__(self, channels_in: int, context_length: int, path_points: int, hp: dict[str, Any]) -> None:
        super().__init__()
        C = hp["channels"]
        self.context = WindowMLP(channels_in, context_length, hp["proj_dim"], hp["hidden"], 2, hp["dropout"])
        self.lift = nn.Conv1d(1, C, 1)
        self.position = nn.Parameter(0.02 * torch.randn(1, C, path_points))
        self.step = StepEmbedding(C)
        self.blocks = nn.ModuleList(
            ResidualBlock(C, self.context.out_features, 2 ** (i % 3)) for i in range(hp["layers"])
        )
        self.skip = nn.Conv1d(C, C, 1)
        self.final = nn.Conv1d(C, 1, 1)
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        return self.context(window)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.lift(x[:, None, :]) + self.position
        step = self.step(t)
        skips = torch.zeros_like(h)
        for block in self.blocks:
            h, skip = block(h, step, cond)
            skips = skips + skip
        out = self.final(torch.relu(self.skip(torch.relu(skips / math.sqrt(len(self.blocks))))))
        return out[:, 0, :]


def build_path_denoiser(channels_in: int, hp: dict[str, Any], path_points: int) -> nn.Module:
    return PathDenoiser(channels_in, hp["context_length"], path_points, hp)


# ---------------------------------------------------------------------------------------------------
# The trained model


@dataclass
class PathLayout:
    """Path chunks, direct_multi groups and the unit scale of each chunk."""

    horizon: int
    bounds: np.ndarray
    groups: np.ndarray

    @property
    def n_path(self) -> int:
        return len(self.bounds) - 1

    def chunk_scales(self, sigma: float) -> np.ndarray:
        return sigma * np.sqrt(np.diff(self.bounds).astype(np.float64))


def aggregate_paths(paths: np.ndarray, layout: PathLayout, method: str) -> np.ndarray:
    """(K, n) member forecasts of `method` from (K, n, P) sampled chunk log returns."""
    if method == "direct":
        return paths.sum(axis=-1)
    if method == "recursive":
        first_len = float(layout.bounds[1] - layout.bounds[0])
        return paths[..., 0] * (layout.horizon / first_len)
    if method == "direct_multi":
        K = paths.shape[0]
        sub = [paths[..., a:b].sum(axis=-1) for a, b in zip(layout.groups[:-1], layout.groups[1:])]
        return sum(np.roll(s, -j, axis=0) for j, s in enumerate(sub)) if K > 1 else sum(sub)
    raise ValueError(f"prediction method {method!r} is unknown; known: {', '.join(PREDICTION_METHODS)}")


def block_noise(seed: int, block: int, draws: int, samples: int, points: int) -> torch.Tensor:
    """(draws, NOISE_BLOCK, samples, points) standard normal noise of one block of absolute rows."""
    generator = torch.Generator().manual_seed(derived_seed(seed, "noise", block))
    return torch.randn(draws, NOISE_BLOCK, samples, points, generator=generator)


@dataclass
class DiffusionModel:
    """A trained diffusion forecaster: one denoiser, its schedule and sampler (a TrainedModel)."""

    model_spec: ModelSpec
    feature_set_hash: str
    family: str
    pipeline: InputPipeline
    layout: PathLayout
    hyperparameters: dict[str, Any]       # resolved: settings values filled in at training time
    network_state: dict[str, torch.Tensor]
    build: Callable[[int, dict[str, Any], int], nn.Module]
    sampler: str                          # "ddpm" or "ddim"
    sample_seed: int
    combiners: dict[str, Combiners] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1
    network_evaluations: int = 0
    _net: nn.Module | None = field(default=None, repr=False)
    _cache: tuple[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_members(self) -> int:
        return int(self.hyperparameters["samples"])

    @property
    def schedule(self) -> Schedule:
        return cosine_schedule(int(self.hyperparameters["diffusion_steps"]))

    def network(self) -> nn.Module:
        if self._net is None:
            net = self.build(self.pipeline.n_channels, self.hyperparameters, self.layout.n_path)
            net.load_state_dict(self.network_state)
            self._net = net.to(self.device).eval()
        return self._net

    def sample_paths(self, matrix: FeatureMatrix, rows: np.ndarray, sampler: str | None = None) -> np.ndarray:
        """(K, n, P) sampled chunk log returns after each row (seeded per row block; rows <= t only)."""
        sampler = sampler or self.sampler
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler {sampler!r} is unknown; known: ddpm, ddim")
        rows = np.asarray(rows, dtype=np.int64)
        padded, offset = self.pipeline.padded(matrix, rows)
        key = hashlib.sha1(padded.tobytes() + (rows - offset).tobytes() + sampler.encode()).hexdigest()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        with torch.no_grad(), cpu_threads(self.threads):
            unit = self._sample_unit(padded, offset, rows, sampler)
        paths = unit * self.layout.chunk_scales(self.pipeline.sigma)
        self._cache = (key, paths)
        return paths

    def _sample_unit(self, padded: np.ndarray, offset: int, rows: np.ndarray, sampler: str) -> np.ndarray:
        device = torch.device(self.device)
        net = self.network()
        schedule = self.schedule
        K, P, L = self.n_members, self.layout.n_path, self.pipeline.context_length
        clip = float(self.hyperparameters["clip"])
        block_tensor = torch.from_numpy(padded).to(device)
        out = np.empty((K, len(rows), P))
        draws = schedule.steps if sampler == "ddpm" else 1
        blocks = rows // NOISE_BLOCK
        unique_blocks = np.unique(blocks)
        per_batch = max(SAMPLE_BATCH_ROWS // NOISE_BLOCK, 1)
        for start in range(0, len(unique_blocks), per_batch):
            chosen = unique_blocks[start:start + per_batch]
            select = np.flatnonzero(np.isin(blocks, chosen))
            batch_rows = rows[select]
            noise = torch.cat([
                block_noise(self.sample_seed, int(b), draws, K, P)[:, batch_rows[blocks[select] == b] % NOISE_BLOCK]
                for b in chosen
            ], dim=1)
            order = np.concatenate([np.flatnonzero(blocks[select] == b) for b in chosen])
            positions = torch.from_numpy(batch_rows[order] - offset).to(device)
            cond = net.encode(gather_windows(block_tensor, positions, L))
            cond = cond.repeat_interleave(K, dim=0)
            noise = noise.reshape(draws, len(order) * K, P).to(device)

            denoise = self._denoiser(net, cond)
            if sampler == "ddpm":
                x0 = ddpm_sample(denoise, schedule, noise, clip)
            else:
                x0 = ddim_sample(denoise, schedule, int(self.hyperparameters["ddim_steps"]), noise[0], clip)
            values = x0.reshape(len(order), K, P).permute(1, 0, 2).double().cpu().numpy()
            out[:, select[order]] = values
        return out

    def _denoiser(self, net: nn.Module, cond: torch.Tensor) -> Denoise:
        """The network as a function of (x_t, step) for one batch's conditioning, counting evaluations."""
        def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
            self.network_evaluations += 1
            return net(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device), cond)
        return denoise

    def predict_members(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        """(K, len(rows)) forecasts: aggregations of K sampled paths per row (see module docstring)."""
        if method not in PREDICTION_METHODS:
            raise ValueError(f"prediction method {method!r} is unknown; known: {', '.join(PREDICTION_METHODS)}")
        if len(rows) == 0:
            return np.empty((self.n_members, 0))
        return aggregate_paths(self.sample_paths(matrix, rows), self.layout, method)


# ---------------------------------------------------------------------------------------------------
# Training, shared with sssd


def resolved_hyperparameters(hp: dict[str, Any], settings: Any) -> dict[str, Any]:
    """Fill the settings-backed hyperparameters (steps, samples, epochs, batch size) with their values now."""
    neural = settings.training.neural
    out = dict(hp)
    out["diffusion_steps"] = int(resolve_common(hp.get("diffusion_steps"), neural.diffusion_steps))
    out["ddim_steps"] = int(resolve_common(hp.get("ddim_steps"), neural.ddim_steps))
    out["samples"] = int(resolve_common(hp.get("samples"), neural.samples))
    out["max_epochs"] = int(resolve_common(hp.get("max_epochs"), neural.max_epochs))
    out["batch_size"] = int(resolve_common(hp.get("batch_size"), neural.batch_size))
    if out["ddim_steps"] > out["diffusion_steps"]:
        raise HyperparameterError(
            f"ddim_steps ({out['ddim_steps']}) exceeds diffusion_steps ({out['diffusion_steps']}) "
            "(settings training.neural or the model's hyperparameters)"
        )
    return out


def _velocity_loss(schedule: Schedule, windows: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    alpha_bar = schedule.alpha_bar.float()

    def loss(net: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
        positions, x0 = batch
        device = x0.device
        t = torch.randint(0, schedule.steps, (len(x0),), generator=generator).to(device)
        eps = torch.randn(x0.shape, generator=generator).to(device)
        ab = alpha_bar.to(device)[t][:, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
        return ((net(x_t, t, net.encode(windows(positions))) - v) ** 2).mean()
    return loss


def evenly_spaced(rows: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` rows spread evenly over `rows` (the validation rows the combiners are fitted on)."""
    if len(rows) <= limit:
        return rows
    return rows[np.unique(np.round(np.linspace(0, len(rows) - 1, limit)).astype(np.int64))]


def seconds_per_row_evaluation(net: nn.Module, windows: Callable[[torch.Tensor], torch.Tensor],
                               positions: np.ndarray, samples: int, points: int, device: torch.device) -> float:
    """Seconds one network evaluation costs per row (all K samples), timed on a batch of `positions`."""
    batch = max(min(len(positions), SAMPLE_BATCH_ROWS), 1)
    net.eval()
    with torch.no_grad():
        cond = net.encode(windows(torch.from_numpy(positions[:batch]).to(device))).repeat_interleave(samples, 0)
        x = torch.zeros(batch * samples, points, device=device)
        step = torch.zeros(batch * samples, dtype=torch.long, device=device)
        started = time.monotonic()
        net(x, step, cond)
        elapsed = time.monotonic() - started
    return elapsed / batch


def train_diffusion(matrix: FeatureMatrix, spec: ModelSpec, context: Any, hp: dict[str, Any], *,
                    family: str, sampler: str, build: Callable[[int, dict[str, Any], int], nn.Module]
                    ) -> DiffusionModel:
    """Fit pipeline and one denoiser within the budget, then combiners on sampled validation paths."""
    with cpu_threads(context.settings.training.neural.cpu_threads):
        return _train_diffusion(matrix, spec, context, hp, family=family, sampler=sampler, build=build)


def _train_diffusion(matrix: FeatureMatrix, spec: ModelSpec, context: Any, hp: dict[str, Any], *,
                     family: str, sampler: str, build: Callable[[int, dict[str, Any], int], nn.Module]
                     ) -> DiffusionModel:
    started = time.monotonic()
    budget = training_budget_seconds(context)
    settings = context.settings
    hp = resolved_hyperparameters(hp, settings)
    name = f"{spec.model_type} {spec.partition_key}"
    segments = model_segments(matrix, spec, settings)
    check_rows(name, len(segments.train), len(segments.validation))
    device = select_device(settings)
    with deterministic(derived_seed(context.seed, "pipeline")):
        pipeline = fit_pipeline(matrix, spec, segments.train, hp["context_length"],
                                seed=context.seed, context=context)
    bounds = chunk_bounds(spec.horizon, hp["path_points"])
    layout = PathLayout(spec.horizon, bounds, sub_interval_groups(bounds, settings.training.direct_multi_steps))
    schedule = cosine_schedule(hp["diffusion_steps"])

    fit_rows = np.concatenate([segments.train, segments.validation])
    padded, offset = pipeline.padded(matrix, fit_rows)
    block = torch.from_numpy(padded).to(device)
    log_close = np.log(matrix.close)
    scales = layout.chunk_scales(pipeline.sigma)

    def tensors(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = chunk_returns(log_close, rows, layout.bounds) / scales
        return (torch.from_numpy(rows - offset).to(device), torch.from_numpy(x0.astype(np.float32)).to(device))

    def windows(positions: torch.Tensor) -> torch.Tensor:
        return gather_windows(block, positions, pipeline.context_length)

    seed = derived_seed(context.seed, spec.model_type, "network")
    loss = _velocity_loss(schedule, windows)
    with deterministic(seed):
        net = build(pipeline.n_channels, hp, layout.n_path).to(device)
        evaluations = hp["diffusion_steps"] if sampler == "ddpm" else hp["ddim_steps"]
        probe = evenly_spaced(segments.validation, hp["combiner_rows"]) - offset
        per_row = SAMPLING_SAFETY * evaluations * seconds_per_row_evaluation(
            net, windows, probe, hp["samples"], layout.n_path, device)
        affordable = int((1 - MIN_TRAINING_SHARE) * budget / per_row) if per_row > 0 else hp["combiner_rows"]
        combiner_rows = evenly_spaced(segments.validation, max(MIN_COMBINER_ROWS, min(hp["combiner_rows"], affordable)))
        reserve = per_row * len(combiner_rows)
        deadline = started + max(budget - reserve, MIN_TRAINING_SHARE * budget)
        report = fit_network(
            net, loss, tensors(segments.train), tensors(segments.validation),
            max_epochs=hp["max_epochs"], batch_size=hp["batch_size"], learning_rate=hp["learning_rate"],
            weight_decay=hp["weight_decay"], patience=hp["patience"], deadline=deadline, seed=seed, name=name,
        )
    model = DiffusionModel(
        spec, matrix.feature_set_hash, family, pipeline, layout, hp, state_dict_to_cpu(net), build, sampler,
        sample_seed=derived_seed(context.seed, spec.model_type, "samples"),
        reports={"epochs": report.epochs, "best_val_loss": report.best_val_loss,
                 "stopped_by": report.stopped_by, "fit_seconds": report.seconds},
        device=str(device), threads=settings.training.neural.cpu_threads,
    )
    y_val = horizon_target(matrix, spec.horizon, combiner_rows)
    model.combiners = {
        method: fit_combiners(model.predict_members(matrix, combiner_rows, method), y_val)
        for method in PREDICTION_METHODS
    }
    model.reports["sampling_reserve_seconds"] = reserve
    model.reports["combiner_rows"] = len(combiner_rows)
    model.reports["train_seconds"] = time.monotonic() - started
    return model


def save_diffusion(model: DiffusionModel, path: Path) -> None:
    """Write the denoiser state dict, pipeline state, layout, combiners and resolved config to `path`."""
    config = {
        "hyperparameters": model.hyperparameters,
        "horizon": model.layout.horizon,
        "feature_set_hash": model.feature_set_hash,
        "sampler": model.sampler,
        "sample_seed": str(model.sample_seed),
        "reports": model.reports,
    }
    tensors = {
        "pipeline": model.pipeline.state(),
        "bounds": model.layout.bounds,
        "groups": model.layout.groups,
        "network": model.network_state,
        "combiners": combiners_to_state(model.combiners),
    }
    save_payload(path, model.family, model.model_spec.model_dump_json(), config, tensors)


def load_diffusion(path: Path, spec: ModelSpec, *, family: str,
                   build: Callable[[int, dict[str, Any], int], nn.Module]) -> DiffusionModel:
    """Rebuild a DiffusionModel from its file (weights_only loading)."""
    config, tensors = load_payload(path, family, spec.model_dump_json())
    device, threads = runtime_placement()
    model = DiffusionModel(
        spec, config["feature_set_hash"], family, pipeline_from_state(to_numpy_tree(tensors["pipeline"])),
        PathLayout(int(config["horizon"]), tensors["bounds"].numpy(), tensors["groups"].numpy()),
        dict(config["hyperparameters"]), dict(tensors["network"]), build, str(config["sampler"]),
        sample_seed=int(config["sample_seed"]), combiners=combiners_from_state(tensors["combiners"]),
        reports=dict(config["reports"]), device=device, threads=threads,
    )
    try:
        model.network()
    except RuntimeError as exc:
        raise NeuralTrainingError(f"model file {path}: the network state does not fit its config: {exc}") from exc
    return model


# ---------------------------------------------------------------------------------------------------
# The family interface


def _sampler_of(spec: ModelSpec) -> str:
    if spec.model_type not in MODEL_TYPES:
        raise ValueError(f"model_spec.model_type is {spec.model_type!r}; this module trains {', '.join(MODEL_TYPES)}")
    return spec.model_type.split("-", 1)[1]


def train(matrix: FeatureMatrix, spec: ModelSpec, context: Any) -> DiffusionModel:
    """Train the CSDI-like denoiser; `diffusion-ddpm` samples with DDPM, `diffusion-ddim` with DDIM."""
    sampler = _sampler_of(spec)
    return train_diffusion(matrix, spec, context, validate_hyperparameters(spec),
                           family=FAMILY, sampler=sampler, build=build_path_denoiser)


def save(model: DiffusionModel, path: Path) -> None:
    save_diffusion(model, path)


def load(path: Path, spec: ModelSpec) -> DiffusionModel:
    _sampler_of(spec)
    return load_diffusion(path, spec, family=FAMILY, build=build_path_denoiser)
