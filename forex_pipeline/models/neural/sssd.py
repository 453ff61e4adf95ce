"""`sssd`: diffusion forecasting with a structured state-space backbone (SSSD-S4, small).

After Alcaraz & Strodthoff (2022), "Diffusion-based time series imputation and forecasting with
structured state space models" (TMLR). The series seen by the denoiser is the context window followed
by the future path: S = context_length + P positions. Context positions carry the observed scaled
1-bar return (value channel), a mask channel of ones and the window's features as conditioning
channels; future positions carry the noisy path value, a zero mask and zero conditioning. This is
SSSD's forecasting set-up (conditioning on the known part of the series, generating the masked
part); nothing after row t enters, because the future positions hold only noise.

Backbone: `layers` residual blocks of `channels` channels. Each block adds the diffusion-step
embedding, applies a bidirectional diagonal S4 layer (S4D: complex diagonal state matrix with S4D-Lin
initialisation, `state_dim` states, kernel computed by Vandermonde products; applied as a dense
Toeplitz product for sequences up to DENSE_MAX_LENGTH, which equals the FFT convolution used beyond
it and is cheaper on CPU; GELU, GLU output mix, residual, layer norm), adds the 1x1-projected
conditioning channels, applies a second S4D layer, expands to 2C, gates with tanh x sigmoid and splits
into residual and skip outputs, as in SSSD's S4-in-DiffWave residual layer (SSSD runs its S4 layers on
the expanded 2C channels; running them on C halves the CPU cost). The network predicts the velocity v (see neural.diffusion) and shares
the schedule, samplers, seeded per-row noise, members (= samples) and the aggregation of paths into
direct / recursive / direct_multi with `diffusion-ddpm` / `diffusion-ddim`.

Default (small, CPU-sized): 2 layers, 32 channels, 32 states, a 32-bar context, 50 diffusion steps,
DDIM sampling with `training.neural.ddim_steps` steps; `sampler: ddpm` gives the paper's ancestral
sampling through all 50 steps at 5x the cost (measured on 2019 EUR/USD 1h, one CPU thread of a loaded
2-core machine: about 75 s for a 1,150-row test segment with 5 samples, against about 12 s with 10 DDIM steps),
because every step runs the S4D stack over the whole context + path sequence. Combiners are fitted on
at most `combiner_rows` (256) evenly spaced validation rows for the same reason. The published configuration is 36 residual
layers, 256 residual channels, S4 state size 64, 200 diffusion steps (linear betas 1e-4..0.02),
trained for ~150k iterations on a GPU. To scale towards it set the hyperparameters
`layers: 36, channels: 256, state_dim: 64, diffusion_steps: 200`, raise
`training.neural.max_seconds` / `max_epochs` accordingly and set `training.device: cuda`; sampling
cost grows with layers x channels x steps, so keep `sampler: ddim` for large grids.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.neural import rules
from forex_pipeline.models.neural.diffusion import (
    DiffusionModel,
    StepEmbedding,
    load_diffusion,
    save_diffusion,
    train_diffusion,
)
from forex_pipeline.models.spec import ModelSpec

FAMILY = "sssd"
FILE_SUFFIX = ".pt"
DENSE_MAX_LENGTH = 256     # sequences up to this length apply S4D kernels as dense Toeplitz products

RULES = rules.SSSD
validate_hyperparameters = rules.validate_sssd


class S4DKernel(nn.Module):
    """Convolution kernel of a diagonal state-space model (S4D-Lin initialisation, ZOH discretisation)."""

    def __init__(self, channels: int, state_dim: int, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        half = max(state_dim // 2, 1)
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.C = nn.Parameter(torch.randn(channels, half, 2) * math.sqrt(0.5))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(channels, half)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(half, dtype=torch.float32).repeat(channels, 1))

    def forward(self, length: int) -> torch.Tensor:
        """(channels, length) real kernel K[l] = 2 Re(sum_n C_n (exp(dt A_n) - 1) / A_n exp(dt A_n l))."""
        dt = torch.exp(self.log_dt)[:, None]
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        C = torch.view_as_complex(self.C.contiguous())
        dtA = A * dt
        C = C * (torch.exp(dtA) - 1.0) / A
        steps = torch.arange(length, device=A.device, dtype=torch.float32)
        vandermonde = torch.exp(dtA[:, :, None] * steps[None, None, :])
        return 2 * torch.einsum("hn,hnl->hl", C, vandermonde).real


class S4DLayer(nn.Module):
    """Bidirectional S4D layer: forward and backward kernels, skip term D, GELU, 1x1 GLU output mix."""

    def __init__(self, channels: int, state_dim: int, dropout: float) -> None:
        super().__init__()
        self.forward_kernel = S4DKernel(channels, state_dim)
        self.backward_kernel = S4DKernel(channels, state_dim)
        self.D = nn.Parameter(torch.randn(channels))
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.mix = nn.Conv1d(channels, 2 * channels, 1)
        self.norm = nn.LayerNorm(channels)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """(B, H, L) -> (B, H, L), with a residual connection and layer norm over channels."""
        L = u.shape[-1]
        k_forward, k_backward = self.forward_kernel(L), self.backward_kernel(L)
        if L <= DENSE_MAX_LENGTH:
            T = bidirectional_toeplitz(k_forward, k_backward, self.D)
            y = torch.bmm(u.transpose(0, 1), T.transpose(1, 2)).transpose(0, 1)
        else:
            n = 2 * L
            y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k_forward, n=n), n=n)[..., :L]
            u_b = torch.fft.rfft(u.flip(-1), n=n)
            y = y + torch.fft.irfft(u_b * torch.fft.rfft(k_backward, n=n), n=n)[..., :L].flip(-1)
            y = y + u * self.D[:, None]
        y = self.dropout(self.activation(y))
        y = nn.functional.glu(self.mix(y), dim=1)
        return self.norm((y + u).transpose(1, 2)).transpose(1, 2)


def bidirectional_toeplitz(k_forward: torch.Tensor, k_backward: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """(H, L, L) matrices applying the causal kernel, the anti-causal kernel and the skip D at once.

    For short sequences this dense form is cheaper on CPU than the two FFT convolutions it equals."""
    H, L = k_forward.shape
    lag = torch.arange(L, device=k_forward.device)[:, None] - torch.arange(L, device=k_forward.device)[None, :]
    causal = k_forward[:, lag.clamp(min=0)] * (lag >= 0)
    anticausal = k_backward[:, (-lag).clamp(min=0)] * (lag <= 0)
    return causal + anticausal + torch.diag_embed(D[:, None].expand(H, L))


class SSSDBlock(nn.Module):
    """SSSD residual layer: step embedding, S4D, conditioning, S4D, gated activation, residual + skip."""

    def __init__(self, channels: int, cond_channels: int, state_dim: int, dropout: float) -> None:
        super().__init__()
        self.step = nn.Linear(channels, channels)
        self.s4_first = S4DLayer(channels, state_dim, dropout)
        self.cond = nn.Conv1d(cond_channels, channels, 1)
        self.s4_second = S4DLayer(channels, state_dim, dropout)
        self.expand = nn.Conv1d(channels, 2 * channels, 1)
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.s4_first(x + self.step(step)[:, :, None])
        y = self.s4_second(y + self.cond(cond))
        gate, filt = self.expand(y).chunk(2, dim=1)
        res, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=1)
        return (x + res) / math.sqrt(2.0), skip


class SSSDDenoiser(nn.Module):
    """v_theta over [context | future path]: value + mask channels in, S4D residual stack, path out."""

    def __init__(self, channels_in: int, context_length: int, path_points: int, hp: dict[str, Any]) -> None:
        super().__init__()
        C = hp["channels"]
        self.context_length = context_length
        self.path_points = path_points
        cond_channels = channels_in + 1                  # window features + 1-bar return, and the mask
        self.lift = nn.Conv1d(2, C, 1)                   # value and mask
        self.step = StepEmbedding(C)
        self.blocks = nn.ModuleList(
            SSSDBlock(C, cond_channels, hp["state_dim"], hp["dropout"]) for _ in range(hp["layers"])
        )
        self.skip = nn.Conv1d(C, C, 1)
        self.final = nn.Conv1d(C, 1, 1)
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        """(B, channels_in + 1, S) conditioning sequence: window channels + ones mask, zeros on the future."""
        B = window.shape[0]
        context = torch.cat([window.transpose(1, 2), torch.ones(B, 1, self.context_length, device=window.device)], 1)
        future = torch.zeros(B, context.shape[1], self.path_points, device=window.device)
        return torch.cat([context, future], dim=2)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        L = self.context_length
        observed = cond[:, -2, :L]                       # the window's scaled 1-bar returns
        value = torch.cat([observed, x], dim=1)[:, None, :]
        h = self.lift(torch.cat([value, cond[:, -1:, :]], dim=1))
        step = self.step(t)
        skips = torch.zeros_like(h)
        for block in self.blocks:
            h, skip = block(h, step, cond)
            skips = skips + skip
        out = self.final(torch.relu(self.skip(torch.relu(skips / math.sqrt(len(self.blocks))))))
        return out[:, 0, L:]


def build_sssd(channels_in: int, hp: dict[str, Any], path_points: int) -> nn.Module:
    return SSSDDenoiser(channels_in, hp["context_length"], path_points, hp)


def train(matrix: FeatureMatrix, spec: ModelSpec, context: Any) -> DiffusionModel:
    """Train the S4D denoiser within the neural budget; members are seeded samples."""
    if spec.model_type != FAMILY:
        raise ValueError(f"model_spec.model_type is {spec.model_type!r}; this module trains {FAMILY!r}")
    hp = validate_hyperparameters(spec)
    return train_diffusion(matrix, spec, context, hp, family=FAMILY, sampler=hp["sampler"], build=build_sssd)


def save(model: DiffusionModel, path: Path) -> None:
    save_diffusion(model, path)


def load(path: Path, spec: ModelSpec) -> DiffusionModel:
    return load_diffusion(path, spec, family=FAMILY, build=build_sssd)
