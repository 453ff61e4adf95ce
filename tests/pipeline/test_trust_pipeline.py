"""Issue 10 through the real pipeline (features, training, the evaluation backtests, the cached noise
and baseline references, keep-or-delete): random-walk bars give no significant best, a planted edge
in one regime is flagged significant there, every standing best is re-deflated as trials are added,
and the CLI shows the trust figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
from forex_pipeline.pipeline.configuration import run_configuration
from forex_pipeline.settings import get_settings
from forex_pipeline.store.db import dispose_engines, get_engine, session_scope, upgrade
from forex_pipeline.store.regime_best_models import current_bests
from tests.pipeline.trust_market import grid, import_market, market
from tests.support import write_test_settings

TRUST_KEYS = (
    "selection_score", "holdout_score", "holdout_trades", "deflated_sharpe", "n_trials", "null_p_value", "pbo",
    "baseline_score", "improvement_over_baseline", "significant",
)


@pytest.fixture()
def trust_env(isolated_storage: Path, monkeypatch: pytest.MonkeyPatch):
    """Test settings with a small noise reference and two bests kept per regime; tables created."""
    settings_file = write_test_settings(
        isolated_storage / "settings.yaml",
        evaluation={"noise_models": 60},
        file_management={"keep_top_n_per_regime": 2},
        # rule labels need no fit, so the market can plant its edge exactly where the pipeline will look
        regimes={"detector": "rules"},
    )
    monkeypatch.setenv("FOREX_SETTINGS", str(settings_file))
    settings = get_settings()
    upgrade(settings.database_url)
    yield settings
    dispose_engines()


def _run_grid(settings, seed: int, edge: float) -> list[pd.DataFrame]:
    """Import the bars, run each configuration through `run_configuration`; the bests after each."""
    bars, _ = market(seed, settings, edge=edge)
    import_market(settings.artifacts_dir, bars)
    engine = get_engine(settings.database_url)
    after = []
    for configuration in expand_grid(parse_grid_spec(grid(f"trust{seed}"))).configurations:
        outcome = run_configuration(configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir)
        assert outcome.status == "completed", outcome.error
        with session_scope(engine) as session:
            after.append(current_bests(session))
    return after


def test_random_walk_grid_has_no_significant_best_and_standing_bests_are_re_deflated(trust_env) -> None:
    first, second = _run_grid(trust_env, seed=1, edge=0.0)
    assert len(second) and not second["significant"].any()
    assert (second["n_trials"] == 270).all() and (first["n_trials"] == 135).all()
    assert second["holdout_score"].notna().any() and second["pbo"].notna().all()
    # a best of the first model still standing after the second: same row, more trials, a new DSR
    key = ["regime", "training_run_id", "inference_config_hash"]
    standing = first.merge(second, on=key, suffixes=("_before", "_after"))
    assert len(standing) >= 4
    assert (standing["score_before"] == standing["score_after"]).all()
    changed = [not math.isclose(a, b) for a, b in zip(standing["deflated_sharpe_before"], standing["deflated_sharpe_after"])]
    assert all(changed)
    # more trials with the same V would only lower it; V changes too, so only "recomputed" is asserted
    assert (standing["null_p_value_after"] >= standing["null_p_value_before"] - 1e-12).all()
    # the noise and baseline references were computed once for the (feature set, horizon) and cached
    files = sorted((Path(trust_env.artifacts_dir) / "trust").rglob("*.parquet"))
    assert [f.name for f in files] == ["baselines.parquet", "noise.parquet"]


def test_planted_edge_in_one_regime_makes_that_regimes_best_significant(trust_env) -> None:
    bests = _run_grid(trust_env, seed=1, edge=0.3)[-1]
    top = bests[bests["rank"] == 1].set_index("regime")
    assert bool(top.loc["volatile_ranging", "significant"])
    edge = top.loc["volatile_ranging"]
    assert edge["deflated_sharpe"] >= 0.95 and edge["null_p_value"] <= 0.05 and edge["holdout_score"] > 0
    assert edge["improvement_over_baseline"] == pytest.approx(edge["selection_score"] - edge["baseline_score"])
    assert not top.drop(index="volatile_ranging")["significant"].any()

    from forex_pipeline.cli import app

    result = CliRunner().invoke(app, ["bests", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert records and all(set(TRUST_KEYS) <= set(r) for r in records)
    for key in ("regime", "rank", "score", "deflated_sharpe", "partition_key", "inference_config"):
        assert key in records[0]
    flagged = {r["regime"] for r in records if r["rank"] == 1 and r["significant"]}
    assert flagged == {"volatile_ranging"}
    table = CliRunner().invoke(app, ["bests"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "significant" in table.output and "holdout" in table.output


def test_a_cached_feature_matrix_without_the_column_decision_is_rebuilt(trust_env) -> None:
    from forex_pipeline.features.build import load_feature_matrix, save_feature_matrix
    from forex_pipeline.pipeline.artifacts import ensure_feature_matrix, feature_matrix_path

    bars, _ = market(2, trust_env)
    import_market(trust_env.artifacts_dir, bars)
    feature_set = expand_grid(parse_grid_spec(grid("m"))).feature_sets[0]
    matrix, built = ensure_feature_matrix(feature_set, trust_env, trust_env.artifacts_dir, None)
    assert built and matrix.metadata["column_decision"]["train_fraction"] == trust_env.training.train_fraction
    assert not ensure_feature_matrix(feature_set, trust_env, trust_env.artifacts_dir, None)[1]
    path = feature_matrix_path(trust_env.artifacts_dir, feature_set)
    old = load_feature_matrix(path)
    old.metadata.pop("column_decision")
    save_feature_matrix(old, path)
    rebuilt, built = ensure_feature_matrix(feature_set, trust_env, trust_env.artifacts_dir, None)
    assert built and "column_decision" in rebuilt.metadata
