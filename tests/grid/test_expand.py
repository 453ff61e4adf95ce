"""Grid spec: expansion, deduplication, stable keys, every problem at once, plan and time estimate."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from forex_pipeline.grid.estimate import estimate_seconds, plan
from forex_pipeline.grid.expand import Grid, expand_grid, grid_hash, load_grid_spec, parse_grid_spec
from forex_pipeline.grid.spec import GridSpecError

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "grids"
CLASSICAL = {"ridge", "lasso", "elasticnet", "rf", "lightgbm"}


def _raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "t",
        "feature_sets": {
            "symbols": ["EURUSD", "GBPUSD"],
            "base_timeframes": ["1h", "4h"],
            "days_history": [365, 730],
            "as_of": "2019-12-31T00:00:00Z",
            "indicator_timeframes": [{"rsi": ["4h"], "atr": ["1d"]}],
            "additional_features": [["returns_volatility"], ["returns_volatility", "trading_sessions"]],
            "preprocessing": [{"warmup_bars": 100}],
        },
        "model_specs": {
            "model_types": ["ridge", "rf"],
            "encoders": ["none", "pca"],
            "encoder_dims": [4, 8],
            "horizons": [1, 5],
            "hyperparameters": {"rf": [{"n_estimators": 20}, {"n_estimators": 50}]},
        },
    }
    for path, value in overrides.items():
        section, key = path.split("__")
        raw[section][key] = value
    return raw


def test_expansion_counts_are_the_product_of_the_axes() -> None:
    grid = expand_grid(parse_grid_spec(_raw()))
    assert len(grid.feature_sets) == 2 * 2 * 2 * 1 * 2 * 1
    # ridge: (none + pca x 2 dims) x 2 horizons; rf: the same x 2 hyperparameter alternatives
    assert len(grid.model_specs) == (1 + 2) * 2 + (1 + 2) * 2 * 2
    assert grid.size == 16 * 18
    assert len({c.model_config_hash for c in grid.configurations}) == grid.size
    assert len({c.partition_key for c in grid.configurations}) == grid.size


def test_configurations_group_by_feature_set_in_spec_order() -> None:
    grid = expand_grid(parse_grid_spec(_raw()))
    first = grid.configurations[: len(grid.model_specs)]
    assert {c.feature_set_key for c in first} == {grid.feature_sets[0].partition_key}
    assert [c.model_spec for c in first] == grid.model_specs
    assert grid.feature_sets[0].symbol == "EURUSD" and grid.feature_sets[-1].symbol == "GBPUSD"


def test_duplicates_collapse_by_hash() -> None:
    raw = _raw(
        feature_sets__symbols=["EURUSD", "EUR/USD", "eur_usd"],
        feature_sets__base_timeframes=["1h"],
        feature_sets__days_history=[365, 365],
        feature_sets__additional_features=[["trading_sessions", "returns_volatility"], ["returns_volatility", "trading_sessions"]],
        model_specs__encoders=["none"],
        model_specs__encoder_dims=[4, 8, 16],
        model_specs__horizons=[5, 5],
        model_specs__hyperparameters={"rf": [{"n_estimators": 20, "max_depth": 3}, {"max_depth": 3, "n_estimators": 20}]},
    )
    grid = expand_grid(parse_grid_spec(raw))
    assert [fs.symbol for fs in grid.feature_sets] == ["EURUSD"]
    assert sorted(ms.model_type for ms in grid.model_specs) == ["rf", "ridge"]
    assert grid.size == 2


def test_hyperparameter_alternatives_apply_only_to_their_model_type() -> None:
    grid = expand_grid(parse_grid_spec(_raw()))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for spec in grid.model_specs:
        by_type.setdefault(spec.model_type, []).append(spec.hyperparameters)
    assert all(params == {} for params in by_type["ridge"])
    assert sorted(p["n_estimators"] for p in by_type["rf"]) == [20] * 6 + [50] * 6


def test_encoder_dims_apply_only_to_real_encoders() -> None:
    grid = expand_grid(parse_grid_spec(_raw()))
    none_specs = [ms for ms in grid.model_specs if ms.encoder == "none"]
    pca_dims = sorted({ms.encoder_dim for ms in grid.model_specs if ms.encoder == "pca"})
    assert len(none_specs) == 2 + 2 * 2
    assert pca_dims == [4, 8]


def test_launchpad_dict_and_yaml_file_give_the_same_grid(tmp_path: Path) -> None:
    raw = _raw()
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    reordered = copy.deepcopy(raw)
    reordered["model_specs"]["hyperparameters"]["rf"][0] = {"n_estimators": 20}
    reordered["feature_sets"]["indicator_timeframes"] = [{"atr": ["1d"], "rsi": ["4h"]}]
    assert grid_hash(load_grid_spec(path)) == grid_hash(parse_grid_spec(reordered))


def test_stored_spec_round_trips_to_the_same_grid() -> None:
    spec = parse_grid_spec(_raw())
    stored = json.loads(json.dumps(spec.model_dump(mode="json")))
    again = parse_grid_spec(stored)
    assert again == spec
    assert grid_hash(again) == grid_hash(spec)


def test_same_spec_gives_the_same_keys_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(_raw()))
    here = [c.partition_key for c in expand_grid(load_grid_spec(path)).configurations]
    code = (
        "import json, sys; from forex_pipeline.grid.expand import expand_grid, load_grid_spec; "
        "print(json.dumps([c.partition_key for c in expand_grid(load_grid_spec(sys.argv[1])).configurations]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == here


def test_every_problem_is_listed_at_once() -> None:
    raw = _raw(
        feature_sets__base_timeframes=["1h", "2h"],
        feature_sets__days_history=[365, 0, 4000],
        feature_sets__indicator_timeframes=[{"rsi": ["4h"], "foo": ["1h"]}],
        model_specs__model_types=["rf", "xgboost"],
        model_specs__horizons=[1, 501],
    )
    raw["unexpected"] = True
    with pytest.raises(GridSpecError) as info:
        parse_grid_spec(raw)
    problems = info.value.problems
    text = str(info.value)
    for expected in (
        "unexpected: Extra inputs",
        "feature_sets.base_timeframes[1]: base_timeframe '2h'",
        "feature_sets.days_history[1]:",
        "feature_sets.days_history[2]:",
        "feature_sets.indicator_timeframes[0]: indicator_timeframes: unknown indicator(s) ['foo']",
        "model_specs.model_types[1]: model_type 'xgboost' is unknown",
        "model_specs.horizons[1]:",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
        assert expected in text
    assert len(problems) == len(set(problems)) == 7


def test_cross_field_problem_names_both_axes() -> None:
    raw = _raw(feature_sets__base_timeframes=["1h", "4h"], feature_sets__indicator_timeframes=[{"rsi": ["1h"]}])
    with pytest.raises(GridSpecError) as info:
        parse_grid_spec(raw)
    [problem] = info.value.problems
    assert problem.startswith("feature_sets.base_timeframes[1] with feature_sets.indicator_timeframes[0]:")
    assert "finer than base_timeframe 4h" in problem


def test_hyperparameters_are_checked_by_the_model_family() -> None:
    raw = _raw(model_specs__hyperparameters={"rf": [{"n_estimators": 20}, {"n_estimator": 50}, {"max_depth": 0}]})
    with pytest.raises(GridSpecError) as info:
        parse_grid_spec(raw)
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("model_specs.hyperparameters.rf[1]:") and "n_estimator" in problems[0]
    assert problems[1].startswith("model_specs.hyperparameters.rf[2]:") and "max_depth" in problems[1]


def test_missing_sections_and_unused_hyperparameters_are_refused() -> None:
    raw = _raw(model_specs__hyperparameters={"lightgbm": [{}], "catboost": [{}]})
    del raw["feature_sets"]["as_of"]
    with pytest.raises(GridSpecError) as info:
        parse_grid_spec(raw)
    problems = info.value.problems
    assert "feature_sets.as_of: Field required" in problems
    assert any(p.startswith("model_specs.hyperparameters.lightgbm: model type is not in model_specs.model_types") for p in problems)
    assert any(p.startswith("model_specs.hyperparameters.catboost: unknown model type") for p in problems)


def test_load_grid_spec_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(GridSpecError, match="does not exist"):
        load_grid_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(GridSpecError, match=f"{bad}.*not valid YAML"):
        load_grid_spec(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(GridSpecError, match="must be a mapping"):
        load_grid_spec(listy)


def test_plan_counts_already_trained_and_estimates_only_the_rest() -> None:
    grid = expand_grid(parse_grid_spec(_raw()))
    done = {c.model_config_hash for c in grid.configurations[:10]} | {"0" * 64}
    full = plan(grid)
    partial = plan(grid, completed_hashes=done)
    assert (full.size, full.already_trained, full.to_train) == (288, 0, 288)
    assert (partial.size, partial.already_trained, partial.to_train) == (288, 10, 278)
    assert (partial.n_feature_sets, partial.n_model_specs) == (16, 18)
    assert [c.model_config_hash for c in partial.pending] == [c.model_config_hash for c in grid.configurations[10:]]
    assert partial.estimated_seconds == pytest.approx(estimate_seconds(grid.configurations[10:]))
    assert 0 < partial.estimated_seconds < full.estimated_seconds
    assert partial.grid_hash == full.grid_hash == grid_hash(grid)


def _single(model_type: str, days: int, timeframe: str = "1h") -> Grid:
    raw = _raw(
        feature_sets__symbols=["EURUSD"],
        feature_sets__base_timeframes=[timeframe],
        feature_sets__days_history=[days],
        feature_sets__indicator_timeframes=[{}],
        feature_sets__additional_features=[[]],
        model_specs__model_types=[model_type],
        model_specs__encoders=["none"],
        model_specs__horizons=[1],
        model_specs__hyperparameters={},
    )
    return expand_grid(parse_grid_spec(raw))


def test_estimate_uses_the_median_of_past_runs_of_the_same_type() -> None:
    ridge, rf = _single("ridge", 365).configurations, _single("rf", 365).configurations
    history = {"ridge": [1.0, 3.0, 100.0], "lasso": [7.0]}
    assert estimate_seconds(ridge * 4, history) == pytest.approx(4 * 3.0)
    assert estimate_seconds(rf, history) == pytest.approx(estimate_seconds(rf))
    assert estimate_seconds(ridge, {"ridge": []}) == pytest.approx(estimate_seconds(ridge))


def test_default_estimate_scales_with_rows_and_ranks_model_families() -> None:
    one_year = estimate_seconds(_single("rf", 365).configurations)
    assert estimate_seconds(_single("rf", 730).configurations) == pytest.approx(2 * one_year)
    assert estimate_seconds(_single("rf", 730, "4h").configurations) == pytest.approx(one_year / 2)
    ridge = estimate_seconds(_single("ridge", 365).configurations)
    neural = estimate_seconds(_single("lightning", 365).configurations)
    assert ridge < one_year < neural


def _model(model_type: str, horizon: int, **hyperparameters: Any) -> Grid:
    raw = _raw(
        feature_sets__symbols=["EURUSD"], feature_sets__base_timeframes=["1h"], feature_sets__days_history=[365],
        feature_sets__additional_features=[[]], model_specs__model_types=[model_type], model_specs__encoders=["none"],
        model_specs__horizons=[horizon], model_specs__hyperparameters={model_type: [hyperparameters]},
    )
    return expand_grid(parse_grid_spec(raw))


def test_default_estimate_grows_with_horizon_intervals_trees_and_members() -> None:
    from forex_pipeline.settings import parse_settings

    h1 = estimate_seconds(_model("rf", 1).configurations)
    h5 = estimate_seconds(_model("rf", 5).configurations)
    assert h5 > 3 * h1  # horizon 5 fits 5 target intervals per member, horizon 1 only one
    few = estimate_seconds(_model("rf", 5, n_estimators=25).configurations)
    many = estimate_seconds(_model("rf", 5, n_estimators=400).configurations)
    assert few < h5 < many
    assert (many - h5) / (h5 - few) == pytest.approx((400 - 100) / (100 - 25))  # linear in n_estimators
    ten_members = parse_settings({"training": {"members": 10}})
    assert estimate_seconds(_model("rf", 5).configurations, settings=ten_members) > h5


# The demo needs more configurations than the 4 regimes x top 3 that can be kept, so that it shows
# keep-or-delete deleting files; classical_100 is the storage benchmark grid.
@pytest.mark.parametrize(
    ("name", "low", "high"), [("demo.yaml", 13, 24), ("classical_24.yaml", 20, 48), ("classical_100.yaml", 100, 100)]
)
def test_example_grids_are_valid_and_classical(name: str, low: int, high: int) -> None:
    grid = expand_grid(load_grid_spec(EXAMPLES / name))
    assert low <= grid.size <= high
    assert {ms.model_type for ms in grid.model_specs} <= CLASSICAL
    assert all(fs.days_history == 365 and fs.base_timeframe == "1h" for fs in grid.feature_sets)


# ---------------------------------------------------------------- `forex-pipeline grid plan`


def _plan_cli(*args: str):  # noqa: ANN202 - click Result
    from typer.testing import CliRunner

    from forex_pipeline.cli.grid import app

    return CliRunner().invoke(app, ["plan", *args])


@pytest.fixture()
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def _summary_value(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if label in line)
    return line.split("│")[-2].strip()


def test_plan_command_prints_size_tables_and_truncates(tmp_path: Path, isolated_storage: Path, wide_terminal: None) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(_raw()))
    result = _plan_cli(str(path), "--max-rows", "3")
    assert result.exit_code == 0, result.output
    assert _summary_value(result.stdout, "model configurations") == "288"
    assert _summary_value(result.stdout, "feature sets") == "16"
    assert _summary_value(result.stdout, "model specs") == "18"
    assert _summary_value(result.stdout, "already trained") == "0"
    assert "... and 13 more" in result.stdout and "... and 15 more" in result.stdout
    assert "no project database" in result.stdout


def test_plan_command_counts_trained_configurations_from_the_database(
    tmp_path: Path, isolated_storage: Path, wide_terminal: None
) -> None:
    from forex_pipeline.store import db
    from forex_pipeline.store import training_runs
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(_raw()))
    grid = expand_grid(load_grid_spec(path))
    url = f"sqlite:///{isolated_storage / 'forex_pipeline.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        for config, status in zip(grid.configurations[:3], ("completed", "completed", "failed")):
            run = training_runs.insert_training_run(session, training_runs.training_run_fields(config))
            training_runs.mark_run_status(session, run.model_config_hash, status, training_seconds=1000.0, backtest_seconds=0.0)
    engine.dispose()
    result = _plan_cli(str(path))
    assert result.exit_code == 0, result.output
    assert _summary_value(result.stdout, "already trained") == "2"
    assert _summary_value(result.stdout, "to train") == "286"
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        grid_plan = plan(grid, session)
    engine.dispose()
    # both completed runs are ridge at 1000 s each: every pending ridge configuration is estimated at 1000 s
    ridge = [c for c in grid_plan.pending if c.model_spec.model_type == "ridge"]
    others = [c for c in grid_plan.pending if c.model_spec.model_type != "ridge"]
    assert len(ridge) == 6 * 16 - 2
    assert grid_plan.estimated_seconds == pytest.approx(1000.0 * len(ridge) + estimate_seconds(others))


def test_plan_command_lists_every_problem_and_fails(tmp_path: Path) -> None:
    raw = _raw(feature_sets__days_history=[0], model_specs__model_types=["rf", "svm"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = _plan_cli(str(path), "--no-db")
    assert result.exit_code == 2
    assert "2 problem(s)" in result.stderr
    assert "feature_sets.days_history[0]" in result.stderr and "model_specs.model_types[1]" in result.stderr


def test_format_duration_reads_like_a_person_would_say_it() -> None:
    from forex_pipeline.cli.grid import format_duration

    assert [format_duration(s) for s in (0, 45, 600, 3 * 3600 + 5 * 60, 50 * 3600)] == [
        "0 s", "45 s", "10 min", "3 h 05 min", "2 d 2 h",
    ]


def test_plan_refuses_windows_the_data_cannot_fill(isolated_storage, tmp_path: Path, wide_terminal) -> None:
    """A horizon longer than the window allows, or a warm-up that eats every row, is refused at plan time."""
    from tests.support import TINY_GRID

    grid = json.loads(json.dumps(TINY_GRID))
    grid["feature_sets"]["days_history"] = [30]
    grid["model_specs"]["horizons"] = [1, 150]
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(grid))
    result = _plan_cli(str(path), "--no-db")
    assert result.exit_code == 2
    assert "horizons 150" in result.output and "embargo of 150 rows" in result.output
    assert "horizons 1:" not in result.output  # the short horizon fits
    grid["model_specs"]["horizons"] = [1]
    grid["feature_sets"]["preprocessing"] = [{"warmup_bars": 5000}]
    path.write_text(yaml.safe_dump(grid))
    result = _plan_cli(str(path), "--no-db")
    assert result.exit_code == 2 and "warm-up of 5000 bars" in result.output
