"""Grid spec: expansion, deduplication, stable keys, every problem at once, plan and time estimate."""

from __future__ import annotations

import copy
import json
import os
import statistics
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


def test_pytorch_families_are_checked_by_their_rules() -> None:
    raw = _raw(model_specs__model_types=["lightning", "diffusion-ddim", "sssd"], model_specs__hyperparameters={
        "lightning": [{"hiden": 3}], "diffusion-ddim": [{"diffusion_steps": 5, "ddim_steps": 8}], "sssd": [{"sampler": "euler"}]})
    with pytest.raises(GridSpecError) as info:
        parse_grid_spec(raw)
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("model_specs.hyperparameters.lightning[0]:") and "'hiden'" in problems[0]
    assert problems[1] == ("model_specs.hyperparameters.diffusion-ddim[0]: hyperparameters.ddim_steps (8) must not exceed "
                           "hyperparameters.diffusion_steps (5)")
    assert problems[2].startswith("model_specs.hyperparameters.sssd[0]:") and "'euler'" in problems[2]


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


def _duration(configuration, seconds: float, wall: float | None = None, backtest: float = 0.0):  # noqa: ANN001, ANN202
    from datetime import datetime, timedelta, timezone

    from forex_pipeline.store.training_runs import RunDuration

    started = datetime(2026, 12, 1, tzinfo=timezone.utc)
    return RunDuration(
        configuration.model_spec.model_type, configuration.feature_set.base_timeframe, configuration.feature_set.canonical(),
        configuration.model_spec.canonical(), seconds - backtest, backtest, started,
        None if wall is None else started + timedelta(seconds=wall),
    )


def test_the_estimate_uses_recorded_durations_per_family_and_timeframe() -> None:
    from forex_pipeline.grid.estimate import calibrate, model_work_seconds, prior_work_seconds
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    ridge_1h, ridge_4h, rf = (_single("ridge", 365).configurations[0], _single("ridge", 365, "4h").configurations[0],
                              _single("rf", 365).configurations[0])
    prior = prior_work_seconds(ridge_1h, settings)
    # ridge on 1h measured at 3x the table (median of 1x, 3x, 50x), on 730 days: the rate carries to 365 days
    ridge_730 = _single("ridge", 730).configurations[0]
    prior_730 = prior_work_seconds(ridge_730, settings)
    runs = [_duration(ridge_730, f * prior_730, backtest=0.1 * prior_730) for f in (1.0, 3.0, 50.0)]
    runs.append(_duration(ridge_4h, 10.0 * prior_work_seconds(ridge_4h, settings)))
    calibration = calibrate(runs, settings)
    assert calibration.model_rate("ridge", "1h") == pytest.approx(3.0)
    assert calibration.model_rate("ridge", "4h") == pytest.approx(10.0)
    assert calibration.model_rate("ridge", "15m") == pytest.approx(statistics.median([1.0, 3.0, 50.0, 10.0]))
    # rf has no record: the table's rf at the speed this machine shows over every recorded run
    assert calibration.model_rate("rf", "1h") == pytest.approx(statistics.median([1.0, 3.0, 50.0, 10.0]))
    assert model_work_seconds([ridge_1h] * 4, calibration, settings) == pytest.approx(4 * 3.0 * prior)
    assert model_work_seconds([rf], calibration, settings) == pytest.approx(
        statistics.median([1.0, 3.0, 50.0, 10.0]) * model_work_seconds([rf], None, settings))
    assert calibrate([], settings).model_rate("rf", "1h") == 1.0  # nothing recorded at all: the table
    assert calibration.runs == 4 and "ridge 1h x3.00" in calibration.describe()


def test_the_shared_work_is_calibrated_from_claim_to_record_times() -> None:
    from forex_pipeline.grid.estimate import (
        calibrate,
        estimate_seconds,
        model_work_seconds,
        prior_shared_seconds,
        queue_overhead_seconds,
    )
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    configurations = _model("ridge", 5, alpha=1.0).configurations + _model("ridge", 5, alpha=9.0).configurations
    shared = prior_shared_seconds(configurations, settings)
    # each run took 2 s of model work and (2 x shared / 2) s more from claim to record: twice the table's shared work
    runs = [_duration(c, 2.0, wall=2.0 + shared) for c in configurations]
    calibration = calibrate(runs, settings)
    assert calibration.shared_rate == pytest.approx(2.0)
    queue = queue_overhead_seconds(len(configurations), settings)
    assert queue > 0 and queue_overhead_seconds(0, settings) == 0.0
    assert estimate_seconds(configurations, calibration, settings) == pytest.approx(
        model_work_seconds(configurations, calibration, settings) + 2.0 * (shared + queue))
    assert calibrate([_duration(c, 2.0) for c in configurations], settings).shared_rate is None  # no wall time recorded


def test_default_estimate_scales_with_rows_and_ranks_model_families() -> None:
    from forex_pipeline.grid.estimate import model_work_seconds

    one_year = model_work_seconds(_single("rf", 365).configurations)
    assert model_work_seconds(_single("rf", 730).configurations) == pytest.approx(2 * one_year)
    assert model_work_seconds(_single("rf", 730, "4h").configurations) == pytest.approx(one_year / 2)
    ridge = estimate_seconds(_single("ridge", 365).configurations)
    neural = estimate_seconds(_single("lightning", 365).configurations)
    assert ridge < estimate_seconds(_single("rf", 365).configurations) < neural


def _model(model_type: str, horizon: int, **hyperparameters: Any) -> Grid:
    raw = _raw(
        feature_sets__symbols=["EURUSD"], feature_sets__base_timeframes=["1h"], feature_sets__days_history=[365],
        feature_sets__additional_features=[[]], model_specs__model_types=[model_type], model_specs__encoders=["none"],
        model_specs__horizons=[horizon], model_specs__hyperparameters={model_type: [hyperparameters]},
    )
    return expand_grid(parse_grid_spec(raw))


def test_default_estimate_grows_with_horizon_intervals_trees_and_members() -> None:
    from forex_pipeline.grid.estimate import model_work_seconds as estimate_seconds
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
    # both completed runs are ridge at 1000 s each: the pending ridge configurations are estimated at the
    # rate 1000 s makes of the table for those two runs, the other families by the table
    from forex_pipeline.grid.estimate import calibrate, prior_work_seconds
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    done = grid.configurations[:2]
    assert {c.model_spec.model_type for c in done} == {"ridge"}
    rates = sorted(1000.0 / prior_work_seconds(c, settings) for c in done)
    assert grid_plan.calibration.runs == 2 and grid_plan.calibration.model_rate("ridge", "1h") == pytest.approx(sum(rates) / 2)
    ridge = [c for c in grid_plan.pending if c.model_spec.model_type == "ridge"]
    assert len(ridge) == 6 * 16 - 2
    assert grid_plan.estimated_seconds > 10 * estimate_seconds(grid_plan.pending)  # recorded 1000 s, far above the table
    assert grid_plan.estimated_seconds == pytest.approx(estimate_seconds(grid_plan.pending, calibrate(
        [_duration(c, 1000.0) for c in done], settings), settings))
    assert "calibrated on 2 recorded runs" in result.stdout


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


# ---------------------------------------------------------------- windows the bars do not cover, encoders wider than the features


def _span(first: str, last: str):  # noqa: ANN202 - BarSpan
    import pandas as pd

    from forex_pipeline.data.sources import BarSource, BarSpan

    return BarSpan(BarSource("EURUSD", "import", Path("/data/EURUSD.parquet"), None),
                   pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC"))


def _fs_axes(days: list[int], as_of: str):  # noqa: ANN202 - FeatureSetAxes
    return parse_grid_spec(_raw(feature_sets__days_history=days, feature_sets__as_of=as_of)).feature_sets


def test_a_window_longer_than_the_bars_is_refused_naming_the_axis_values() -> None:
    from forex_pipeline.grid.expand import history_problems

    span = _span("2018-01-01 22:00", "2019-12-31 21:59")
    problems = history_problems(_fs_axes([365, 730, 800], "2019-12-31T00:00:00Z"), 1, span)
    assert len(problems) == 1, problems
    assert problems[0].startswith("feature_sets.days_history[2] = 800 with feature_sets.symbols[1] EURUSD and feature_sets.as_of 2019-12-31 00:00:")
    assert "the window starts 2017-10-22 00:00" in problems[0] and "from 2018-01-01 22:00 to 2019-12-31 21:59" in problems[0]
    assert "days_history <= 728" in problems[0] and "/data/EURUSD.parquet" in problems[0]


def test_every_window_too_long_for_a_symbol_is_one_message_naming_a_few() -> None:
    from forex_pipeline.grid.expand import history_problems

    span = _span("2018-01-01 22:00", "2019-12-31 21:59")
    days = [365, 900, 800, *range(1000, 1300)]
    problems = history_problems(_fs_axes(days, "2019-12-31T00:00:00Z"), 0, span)
    assert len(problems) == 1, problems
    assert problems[0].startswith("feature_sets.days_history[1] = 900, [2] = 800, [3] = 1000 and 299 more with feature_sets.symbols[0]")
    assert "the windows start on or before 2017-10-22 00:00" in problems[0]  # 800 days before as_of


def test_a_window_edge_on_a_long_weekend_is_not_refused_but_a_week_beyond_is() -> None:
    from forex_pipeline.grid.expand import DATA_EDGE_DAYS, history_problems

    # bars from Tuesday 2019-01-01 22:00; a 31-day window ending 2019-01-31 starts on 2018-12-31 00:00
    span = _span("2019-01-01 22:00", "2019-01-31 00:00")
    assert history_problems(_fs_axes([30, 31], "2019-01-31T00:00:00Z"), 0, span) == []
    refused = history_problems(_fs_axes([30, 31 + DATA_EDGE_DAYS], "2019-01-31T00:00:00Z"), 0, span)
    assert [p.split(" with ")[0] for p in refused] == [f"feature_sets.days_history[1] = {31 + DATA_EDGE_DAYS}"]


def test_an_as_of_after_or_before_the_bars_is_refused_once_per_symbol() -> None:
    from forex_pipeline.grid.expand import history_problems

    span = _span("2018-01-01 22:00", "2019-12-31 21:59")
    after = history_problems(_fs_axes([30, 60], "2020-03-01T00:00:00Z"), 0, span)
    assert len(after) == 1 and after[0].startswith("feature_sets.as_of 2020-03-01 00:00 with feature_sets.symbols[0] EURUSD:")
    assert "misses its last 60 days" in after[0]
    before = history_problems(_fs_axes([30, 60], "2017-06-01T00:00:00Z"), 0, span)
    assert len(before) == 1 and "holds none of them" in before[0]


def _pca_grid(dims: list[int]) -> Grid:
    raw = _raw(model_specs__encoder_dims=dims, feature_sets__symbols=["EURUSD"], feature_sets__base_timeframes=["1h"],
               feature_sets__days_history=[365], feature_sets__additional_features=[["returns_volatility"]])
    raw["model_specs"]["model_types"], raw["model_specs"]["hyperparameters"] = ["ridge"], {}
    return expand_grid(parse_grid_spec(raw))


def test_an_encoder_dimension_above_the_spec_feature_count_is_refused(tmp_path: Path) -> None:
    from forex_pipeline.features.build import spec_feature_names
    from forex_pipeline.grid.expand import encoder_problems
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    grid = _pca_grid([4, 8, 60])
    count = len(spec_feature_names(grid.feature_sets[0], settings.training.ar_lags))
    assert 8 < count < 60
    problems = encoder_problems(grid, settings, tmp_path)
    assert problems == [
        f"model_specs.encoder_dims[2] = 60 with model_specs.encoders pca: more than the {count} features of feature set "
        f"EURUSD 1h 365d atr:1d rsi:4h returns_volatility (at most, counted from its spec); an encoder dimension must be "
        "at most the feature count"
    ]
    assert encoder_problems(_pca_grid([count]), settings, tmp_path) == []


def test_a_cached_feature_matrix_gives_the_exact_count_when_it_is_current(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from forex_pipeline.features.build import feature_matrix_path, save_feature_matrix
    from forex_pipeline.features.matrix import FeatureMatrix
    from forex_pipeline.grid.expand import encoder_problems
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    grid = _pca_grid([4, 8])
    fs = grid.feature_sets[0]
    stamps = pd.date_range("2019-06-03", periods=5, freq="h", tz="UTC", name="timestamp")

    def cache(train_fraction: float) -> None:
        names = ("rsi_14_4h", "atr_14_1d", "ret_lag_1", "ret_lag_2", "ret_lag_3", "ret_lag_4")
        metadata = {"column_decision": {"train_fraction": train_fraction}}
        save_feature_matrix(FeatureMatrix(fs.hash, stamps, np.zeros((5, len(names))), names, np.ones(5), "1h", "EURUSD", metadata),
                            feature_matrix_path(tmp_path, fs))

    cache(settings.training.train_fraction)
    problems = encoder_problems(grid, settings, tmp_path)
    assert len(problems) == 1 and problems[0].startswith("model_specs.encoder_dims[1] = 8 with model_specs.encoders pca: more than the 6 features")
    assert "(its cached feature matrix)" in problems[0]
    cache(settings.training.train_fraction / 2)  # columns decided otherwise: rebuilt before training, so not trusted
    assert encoder_problems(grid, settings, tmp_path) == []


def test_plan_refuses_days_history_beyond_the_bars_and_an_encoder_wider_than_the_features(
    isolated_storage, tmp_path: Path, wide_terminal
) -> None:
    from tests.support import TINY_GRID

    grid = json.loads(json.dumps(TINY_GRID))
    grid["feature_sets"]["days_history"] = [150, 800]
    grid["model_specs"].update(encoders=["none", "autoencoder"], encoder_dims=[2, 200])
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(grid))
    result = _plan_cli(str(path), "--no-db")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "feature_sets.days_history[1] = 800 with feature_sets.symbols[0] SYNTH" in result.output
    assert "model_specs.encoder_dims[1] = 200 with model_specs.encoders autoencoder" in result.output
    assert "days_history[0]" not in result.output and "encoder_dims[0]" not in result.output
