"""The demo's closing verdict lines: one per active regime, in plain words, including regimes without a best."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from forex_pipeline.cli.demo import significance_lines
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.regime_definitions import active_regimes
from tests.support import tiny_bests


def test_every_active_regime_gets_a_verdict_or_says_why_it_has_no_best(tmp_path: Path) -> None:
    with tiny_bests(tmp_path, n_configurations=1) as seeded:
        settings, engine = seeded["settings"], seeded["engine"]
        with session_scope(engine) as session:
            regimes = list(active_regimes(session, settings).definitions)
            held = [r for (r,) in session.execute(text("SELECT DISTINCT regime FROM regime_best_models ORDER BY regime"))]
            assert held, "the seeded grid must leave at least one regime best"
            dropped = held[0]
            session.execute(text("DELETE FROM regime_best_models WHERE regime = :r"), {"r": dropped})
        lines = significance_lines(engine, settings)
    per_regime = {regime: [line for line in lines if line.startswith(f"  {regime}: ")] for regime in regimes}
    assert all(len(found) == 1 for found in per_regime.values()), per_regime
    assert "no best - no configuration made" in per_regime[dropped][0]
    for regime in set(held) - {dropped}:
        assert " - significant: " in per_regime[regime][0] or " - luck: " in per_regime[regime][0]
    assert lines[-1].startswith(("Significant:", "No best is significant"))
