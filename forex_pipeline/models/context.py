"""What every family's `train` receives besides the data: settings, artifacts folder, seed, time budget."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from forex_pipeline.settings import Settings


class ModelSpecError(ValueError):
    """A model spec cannot be trained on this feature matrix; the message names the offending field."""


@dataclass(frozen=True)
class TrainingContext:
    """Settings, where artifacts go, the base seed, and an optional time budget in seconds.

    `deadline_seconds` is a budget measured from the start of `train`; the effective budget is the
    smaller of it and `settings.training.max_seconds_per_model`.
    """

    settings: Settings
    artifacts_dir: Path
    seed: int = 0
    deadline_seconds: float | None = None


@dataclass
class Deadline:
    """Raises TimeoutError once a training has run past its budget; `check` is called between steps."""

    what: str
    budget_seconds: float
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_context(cls, context: TrainingContext, what: str) -> "Deadline":
        budget = float(context.settings.training.max_seconds_per_model)
        if context.deadline_seconds is not None:
            budget = min(budget, float(context.deadline_seconds))
        return cls(what=what, budget_seconds=budget)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self, stage: str) -> None:
        """Raise TimeoutError naming the model and stage if the budget is spent."""
        if not math.isfinite(self.budget_seconds) or self.elapsed <= self.budget_seconds:
            return
        raise TimeoutError(
            f"training {self.what} ran {self.elapsed:.1f}s, past its budget of {self.budget_seconds:g}s "
            f"(settings training.max_seconds_per_model / deadline_seconds), while {stage}"
        )
