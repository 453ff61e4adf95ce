"""The PyTorch training kit shared by the neural families and the learned encoders: device, seeds,
CPU threads, the time budget and one training loop with early stopping.

Budget semantics: every network trains under `settings.training.neural.max_epochs` and a time budget,
the smallest of `training.neural.max_seconds`, `training.max_seconds_per_model` and the context's
`deadline_seconds`. When the clock runs out the loop stops gracefully after the current mini-batch and
keeps the best weights seen so far (`stopped_by="max_seconds"`); it never hangs and never falls back to
another family. Training fails with `NeuralTrainingError` when the loss becomes non-finite. On CPU,
torch runs on `training.neural.cpu_threads` threads (default 1: these small networks run many times
faster on one thread of a shared machine).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from forex_pipeline.settings import Settings


class NeuralTrainingError(RuntimeError):
    """A neural family cannot train or predict; the message says which model and why."""


class ContextLike(Protocol):
    settings: Settings
    artifacts_dir: Path
    seed: int
    deadline_seconds: float | None


def select_device(settings: Settings) -> torch.device:
    """CUDA only when settings ask for it and a GPU is present; otherwise the CPU."""
    if settings.training.device == "cuda" and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        return torch.device("cuda")
    return torch.device("cpu")


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms for the block, restoring the old mode after."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Limit torch's intra-op threads for the block (0 keeps torch's default), restoring them after.

    Small networks on a shared CPU run many times faster on one thread than on oversubscribed ones."""
    previous = torch.get_num_threads()
    if count > 0:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def derived_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from several parts (so members and row blocks get independent streams)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 62) - 1)


def training_budget_seconds(context: ContextLike) -> float:
    """Seconds this model may train: the smallest of neural.max_seconds, max_seconds_per_model and the
    context's deadline_seconds (a budget measured from the start of `train`)."""
    budget = min(float(context.settings.training.neural.max_seconds),
                 float(context.settings.training.max_seconds_per_model))
    deadline = getattr(context, "deadline_seconds", None)
    if deadline is not None and 0 < float(deadline) < budget:
        budget = float(deadline)
    return budget


@dataclass(frozen=True)
class FitReport:
    """How one network's training ended."""

    epochs: int
    best_val_loss: float
    stopped_by: str          # "max_epochs", "early_stopping" or "max_seconds"
    seconds: float


LossFn = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Generator], torch.Tensor]


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(batch_size))


def _evaluate(net: nn.Module, loss_fn: LossFn, tensors: tuple[torch.Tensor, ...], batch_size: int,
              seed: int) -> float:
    """Mean validation loss with a fixed noise stream, so epochs are compared on equal terms."""
    net.eval()
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    with torch.no_grad():
        for idx in _batches(len(tensors[0]), batch_size, None):
            batch = tuple(t[idx] for t in tensors)
            total += float(loss_fn(net, batch, generator)) * len(idx)
            count += len(idx)
    return total / max(count, 1)


def fit_network(
    net: nn.Module,
    loss_fn: LossFn,
    train: tuple[torch.Tensor, ...],
    validation: tuple[torch.Tensor, ...],
    *,
    max_epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    deadline: float,
    seed: int,
    name: str,
) -> FitReport:
    """Adam with early stopping on validation loss, stopping at `deadline` (time.monotonic) at the latest."""
    start = time.monotonic()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    best_loss, best_state, stale = math.inf, None, 0
    stopped_by, epoch = "max_epochs", 0
    for epoch in range(1, max_epochs + 1):
        net.train()
        out_of_time = False
        for idx in _batches(len(train[0]), batch_size, generator):
            batch = tuple(t[idx] for t in train)
            loss = loss_fn(net, batch, generator)
            if not torch.isfinite(loss):
                raise NeuralTrainingError(f"{name}: training loss became {float(loss)} in epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            if time.monotonic() >= deadline:
                out_of_time = True
                break
        val_loss = _evaluate(net, loss_fn, validation, max(batch_size, 1024), seed + 1)
        if not math.isfinite(val_loss):
            raise NeuralTrainingError(f"{name}: validation loss became {val_loss} in epoch {epoch}")
        if val_loss < best_loss:
            best_loss, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
        if out_of_time:
            stopped_by = "max_seconds"
            break
        if stale >= patience:
            stopped_by = "early_stopping"
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return FitReport(epoch, best_loss, stopped_by, time.monotonic() - start)
