"""Custom regimes are data: added from the CLI, they are labelled, backtested and ranked without code.
Labels can be printed for audit, and tested per timeframe on synthetic and real symbols."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from forex_pipeline.cli import app
from forex_pipeline.settings import get_settings
from forex_pipeline.store import inference_backtests, regime_best_models, training_runs
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID, run_grid_in_process

runner = CliRunner()


def test_rules_are_parsed_and_refused_with_the_field_named(grid_env):
    assert runner.invoke(app, ["regimes", "add", "q", "--rule", "volatility_percentile:x:"]).exit_code != 0
    bad = runner.invoke(app, ["regimes", "add", "q", "--rule", "moon_phase:0:1"])
    assert bad.exit_code == 2 and "moon_phase" in bad.output
    assert runner.invoke(app, ["regimes", "disable", "no_such_regime"]).exit_code == 2


def test_a_custom_regime_is_scored_and_ranked(grid_env):
    # replace calm_ranging by an equivalent custom regime: the same bars must land in it
    assert runner.invoke(app, ["regimes", "disable", "calm_ranging"]).exit_code == 0
    added = runner.invoke(
        app,
        ["regimes", "add", "quiet_range", "--rule", "trend_strength::0.25", "--rule", "volatility_percentile::0.4",
         "--description", "calm, directionless"],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["regimes", "list"], env={"COLUMNS": "250"})
    assert "quiet_range" in listed.output and "custom" in listed.output
    tested = runner.invoke(app, ["regimes", "test", "SYNTH", "--timeframe", "1h"], env={"COLUMNS": "200"})
    assert tested.exit_code == 0, tested.output
    assert "quiet_range" in tested.output and "accuracy against the generator's regimes (1h)" in tested.output
    labelled = runner.invoke(app, ["regimes", "label", "SYNTH", "--format", "json"])
    regimes_seen = {row["regime"] for row in json.loads(labelled.stdout)}
    assert "quiet_range" in regimes_seen and "calm_ranging" not in regimes_seen

    settings = get_settings()
    engine = get_engine(settings.database_url)
    grid = {
        **TINY_GRID,
        "model_specs": {"model_types": ["ridge"], "encoders": ["none"], "horizons": [1], "hyperparameters": {"ridge": [{"alpha": 1.0}]}},
    }
    queue_id, final = run_grid_in_process(engine, settings, grid)
    assert final.status == "completed"
    with session_scope(engine) as session:
        run = training_runs.runs_of_queue(session, queue_id)[0]
        regimes = set(inference_backtests.get_backtests(session, run.id)["regime"])
        bests = regime_best_models.current_bests(session)
    assert "quiet_range" in regimes and "calm_ranging" not in regimes
    assert "calm_ranging" not in set(bests["regime"])
    assert set(bests["regime"]) <= {"bull_trending", "bear_trending", "volatile_ranging", "quiet_range"}


def test_the_specification_rule_syntax_is_accepted_and_bad_rules_are_named(grid_env):
    added = runner.invoke(
        app, ["regimes", "add", "strong_up", "--rule", "trend_strength: > 0.7", "--rule", "returns > 0",
              "--rule", "volatility: < 50th percentile"],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["regimes", "list"], env={"COLUMNS": "250"})
    assert "trend_strength > 0.7, returns > 0, volatility < 50th percentile" in listed.output
    assert "detector: hmm" in listed.output
    bad = runner.invoke(app, ["regimes", "add", "wild", "--rule", "volatility: > 75th percentil"], env={"COLUMNS": "250"})
    assert bad.exit_code == 2
    assert "regime 'wild'" in bad.output and "rule volatility: '> 75th percentil'" in bad.output
    assert "is not a comparison" in bad.output
    assert runner.invoke(app, ["regimes", "add", "odd", "--rule", "no operator here"]).exit_code != 0


def test_label_prints_a_label_for_every_bar(grid_env):
    from forex_pipeline.data.resample import resample_bars
    from forex_pipeline.data.sources import synthetic_bars
    from forex_pipeline.regimes.labels import label_regimes

    result = runner.invoke(app, ["regimes", "label", "SYNTH", "--timeframe", "4h"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    bars = resample_bars(synthetic_bars().bars, "4h")
    assert lines[0] == "timestamp,regime" and len(lines) == len(bars) + 1
    assert lines[1].startswith(bars.index[0].strftime("%Y-%m-%dT%H:%M:%SZ") + ",")
    settings = get_settings()
    expected = label_regimes(bars["close"].to_numpy(), settings.regimes, timeframe="4h",
                             train_end=int(len(bars) * settings.training.train_fraction), timestamps=bars.index)
    assert [line.split(",")[1] for line in lines[1:]] == list(expected)
    window = runner.invoke(
        app, ["regimes", "label", "SYNTH", "--timeframe", "4h", "--from", "2020-03-02", "--to", "2020-03-03", "--format", "json",
              "--detector", "rules"],
    )
    rows = json.loads(window.stdout)
    assert [row["timestamp"] for row in rows] == [f"2020-03-02T{h:02d}:00:00Z" for h in range(0, 24, 4)] + ["2020-03-03T00:00:00Z"]
    assert "detector rules" in window.stderr
    assert runner.invoke(app, ["regimes", "label", "SYNTH", "--format", "xml"]).exit_code != 0
    assert runner.invoke(app, ["regimes", "label", "SYNTH", "--timeframe", "2h"]).exit_code == 2


def test_regimes_test_scores_every_timeframe_on_the_markov_generator(grid_env):
    result = runner.invoke(app, ["regimes", "test", "MARKOV"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    accuracies = [float(line.rsplit(" ", 1)[1].rstrip("%")) for line in result.output.splitlines()
                  if line.startswith("accuracy against the generator's regimes")]
    assert len(accuracies) == 3 and min(accuracies) > 70
    assert result.output.count("true \\ predicted") == 3
    assert "of 1h bars carry the majority label of their 15m bars" in result.output
    assert "of 4h bars carry the majority label of their 1h bars" in result.output


def test_regimes_test_on_real_bars_shows_shares_and_timeline_charts(grid_env, fx_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FOREX_SAMPLE_DATA", str(fx_dir))
    result = runner.invoke(
        app, ["regimes", "test", "GBPNZD", "--timeframe", "4h", "--timeframe", "1h", "--chart-dir", str(tmp_path)],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "GBPNZD_M15" in result.output and "accuracy" not in result.output
    charts = sorted(p.name for p in tmp_path.glob("*.png"))
    assert charts == ["GBPNZD_1h_hmm.png", "GBPNZD_4h_hmm.png"]
    assert all((tmp_path / name).stat().st_size > 10_000 for name in charts)
    assert "of 4h bars carry the majority label of their 1h bars" in result.output


def _custom_rows() -> list[str]:
    from forex_pipeline.store import regime_definitions

    with session_scope(get_engine(get_settings().database_url)) as session:
        return [r.name for r in regime_definitions.list_regime_definitions(session) if not r.is_builtin]


def test_a_rule_that_is_not_finite_repeated_or_satisfiable_is_refused_and_nothing_stored(grid_env):
    for rule in ("trend_strength:nan:", "trend_strength:inf:", "trend_strength:1e309:", "return_sign:2:", "trend_strength: > 1"):
        result = runner.invoke(app, ["regimes", "add", "r7", "--rule", rule])
        assert result.exit_code == 2, (rule, result.output)
        assert "finite" in result.output or "never match" in result.output, (rule, result.output)
    twice = runner.invoke(app, ["regimes", "add", "r8", "--rule", "trend_strength:0.1:", "--rule", "trend_strength:0.2:"])
    assert twice.exit_code == 2 and "more than one --rule on trend_strength" in twice.output
    assert _custom_rows() == []


def test_a_stored_invalid_rule_disables_its_regime_instead_of_failing_every_model(grid_env, caplog):
    from sqlalchemy import insert

    from forex_pipeline.store.regime_definitions import active_regimes
    from forex_pipeline.store.tables import RegimeDefinitionRow, utcnow

    assert runner.invoke(app, ["regimes", "list"]).exit_code == 0  # seeds the built-ins
    engine = get_engine(get_settings().database_url)
    with session_scope(engine) as session:
        session.execute(insert(RegimeDefinitionRow).values(
            name="broken", description="", rules={"trend_strength": {"min": None}}, enabled=True, is_builtin=False,
            created_at=utcnow(), updated_at=utcnow(),
        ))
    with session_scope(engine) as session:
        scored = active_regimes(session, get_settings()).definitions
    assert "broken" not in scored and "calm_ranging" in scored
    assert "custom regime 'broken' is not scored" in caplog.text
    listed = runner.invoke(app, ["regimes", "list"])
    assert listed.exit_code == 0 and "broken" in listed.output
