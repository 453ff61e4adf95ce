"""queue/lifecycle.py: what a worker process keeps of its queue's grid."""

from __future__ import annotations

import copy
import gc

from forex_pipeline.queue import lifecycle
from tests.support import TINY_GRID


def test_a_grid_expansion_is_kept_and_frozen_out_of_the_collector(monkeypatch) -> None:
    """A worker holds its grid's expansion for its whole life: kept once per grid, and frozen (gc.freeze)
    so the cyclic collector's full passes no longer walk it (60 to 90 ms each at 49,000 configurations)."""
    monkeypatch.setattr(lifecycle, "_expanded", type(lifecycle._expanded)())
    grid = copy.deepcopy(TINY_GRID)
    grid["name"] = "frozen"
    gc.unfreeze()
    try:
        first = lifecycle.configurations_of(grid)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert [c.model_config_hash for c in lifecycle.configurations_of(grid)] == [c.model_config_hash for c in first]
        assert all(a is b for a, b in zip(lifecycle.configurations_of(grid), first))   # the same objects, not a new expansion
    finally:
        gc.unfreeze()
