"""The deploy bundle: export the regime bests of a real (tiny) grid, refuse tampered archives, and run the
bundle on bars with the very forecasts, signals and positions the backtests computed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.errors import InputError
from forex_pipeline.pipeline import bundle as deploy
from tests.support import tiny_bests


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    """Three tiny configurations of SYNTH 1h trained and scored (rules detector), their bests recorded."""
    with tiny_bests(tmp_path_factory.mktemp("bundle")) as seeded:
        yield seeded["settings"], seeded["engine"], seeded["home"]


@pytest.fixture(scope="module")
def exported(seeded):
    settings, engine, home = seeded
    path = home / "out" / "bests.zip"
    manifest = deploy.export_bundle(engine, settings, path)
    return path, manifest


def _bests(engine) -> pd.DataFrame:
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_best_models import current_bests

    with session_scope(engine) as session:
        return current_bests(session)


def test_export_holds_each_regimes_rank_one_with_its_file_checksum_and_the_regime_settings(seeded, exported) -> None:
    from forex_pipeline.models.files import resolve_model_path, sha256_file

    settings, engine, _ = seeded
    path, manifest = exported
    bests = _bests(engine)
    top = bests[bests["rank"] == 1].set_index("regime")
    assert {e["regime"] for e in manifest["entries"]} == set(top.index) and len(top) >= 2
    for entry in manifest["entries"]:
        best = top.loc[entry["regime"]]
        assert entry["partition_key"] == best["partition_key"]
        assert entry["inference_config"]["prediction_method"] == best["prediction_method"]
        assert entry["inference_config"]["confidence_threshold"] == pytest.approx(best["confidence_threshold"])
        assert entry["trust"]["score"] == pytest.approx(best["score"])
        assert manifest["files"][entry["model_file"]]["sha256"] == sha256_file(resolve_model_path(best["model_path"], settings.artifacts_dir))
    assert manifest["regimes"]["detector"] == "rules"
    assert set(manifest["regimes"]["definitions"]) == set(settings.regimes.definitions)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([deploy.MANIFEST_NAME, deploy.MANIFEST_CHECKSUM_NAME, *manifest["files"]])


def test_load_bundle_round_trips_the_manifest_and_loads_every_model(exported) -> None:
    path, manifest = exported
    loaded = deploy.load_bundle(path)
    assert loaded.symbol == "SYNTH" and loaded.base_timeframe == "1h"
    assert set(loaded.models) == {e["regime"] for e in manifest["entries"]}
    assert loaded.regimes.detector == "rules" and list(loaded.regimes.definitions) == manifest["regime_order"]
    for regime, entry in loaded.entries.items():
        assert entry.model_spec.canonical() == next(e["model_spec"] for e in manifest["entries"] if e["regime"] == regime)
        assert loaded.models[regime].model_spec.hash == entry.model_spec.hash
    summary = deploy.describe(loaded)
    assert list(summary["regime"]) == [r for r in manifest["regime_order"] if r in loaded.entries]
    assert summary.set_index("regime")["deflated_sharpe"].to_dict() == {
        e["regime"]: e["trust"]["deflated_sharpe"] for e in manifest["entries"]
    }


def _rewrite(source: Path, target: Path, change) -> Path:  # noqa: ANN001
    """Copy the archive member by member through change(name, data) -> (name, data) or None to drop it."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            kept = change(name, old.read(name))
            if kept is not None:
                new.writestr(*kept)
    return target


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("model byte", "modified or corrupted"),
        ("manifest edit", "does not match manifest.sha256"),
        ("extra file", "files not in the manifest ['models/evil.py']"),
        ("missing model", "files of the manifest missing"),
    ],
)
def test_a_tampered_archive_is_refused_naming_what_changed(exported, tmp_path: Path, case: str, message: str) -> None:
    path, manifest = exported
    model_file = manifest["entries"][0]["model_file"]

    def change(name: str, data: bytes):  # noqa: ANN202
        if case == "model byte" and name == model_file:
            return name, _flip_last_byte(data)
        if case == "manifest edit" and name == deploy.MANIFEST_NAME:
            edited = json.loads(data)
            edited["entries"][0]["inference_config"]["confidence_threshold"] = 0.0
            return name, json.dumps(edited).encode()
        if case == "missing model" and name == model_file:
            return None
        return name, data

    tampered = _rewrite(path, tmp_path / "tampered.zip", change)
    if case == "extra file":
        with zipfile.ZipFile(tampered, "a") as archive:
            archive.writestr("models/evil.py", "print('hello')")
    with pytest.raises(deploy.BundleError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        deploy.load_bundle(tampered)
    assert str(tampered) in str(caught.value)
    assert isinstance(caught.value, InputError)


def test_not_a_bundle_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(deploy.BundleError, match="is not a zip archive"):
        deploy.load_bundle(junk)
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(deploy.BundleError, match="no manifest.json"):
        deploy.load_bundle(tmp_path / "empty.zip")


def _window_bars(settings, entry) -> pd.DataFrame:  # noqa: ANN001
    from forex_pipeline.features.build import select_window
    from forex_pipeline.pipeline.artifacts import ensure_bars

    bars = ensure_bars(entry.feature_set.symbol, entry.feature_set.base_timeframe, settings, Path(settings.artifacts_dir), None)
    return select_window(bars, entry.feature_set)


def test_run_bundle_gives_each_regimes_bars_the_forecast_and_signal_of_that_regimes_model(seeded, exported) -> None:
    """On the training window's bars the bundle rebuilds the stored feature matrix exactly, so every
    routed bar must carry the forecast and confidence the backtest computed from that matrix."""
    from forex_pipeline.backtest.confidence import rolling_size_rank
    from forex_pipeline.backtest.ensembles import combine, member_agreement
    from forex_pipeline.features.build import load_feature_matrix

    settings, _, _ = seeded
    loaded = deploy.load_bundle(exported[0])
    first = next(iter(loaded.entries.values()))
    bars = _window_bars(settings, first)
    start = bars.index[len(bars) // 2]
    out = deploy.run_bundle(loaded, bars, start=start)
    assert list(out.columns) == list(deploy.POSITION_COLUMNS) and out.index[0] == start and out.index[-1] == bars.index[-1]
    assert set(np.unique(out["position"])) <= {-1, 0, 1}
    routed = 0
    for regime, entry in loaded.entries.items():
        model = loaded.models[regime]
        matrix = load_feature_matrix(Path(settings.artifacts_dir) / "features" / f"{entry.feature_set.partition_key}.parquet")
        assert matrix.feature_names == entry.feature_names
        config = entry.inference
        rows = np.flatnonzero(matrix.timestamps >= start)
        rows = np.concatenate([np.arange(rows[0] - config.lookback_window, rows[0]), rows])
        members = model.predict_members(matrix, rows, config.prediction_method)
        expected = combine(members, model.combiners[config.prediction_method], config.ensemble_method)
        conf = rolling_size_rank(expected[None, :], np.asarray([config.lookback_window]))[0, 0] * member_agreement(members, expected)
        expected = pd.Series(expected, index=matrix.timestamps[rows])
        conf = pd.Series(conf, index=matrix.timestamps[rows])
        mine = out[out["regime"] == regime]
        assert (mine["model"] == entry.partition_key).all()
        np.testing.assert_allclose(mine["forecast"], expected.loc[mine.index], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mine["confidence"], conf.loc[mine.index], rtol=1e-9, atol=1e-12)
        fires = mine["confidence"] >= config.confidence_threshold
        assert (mine.loc[fires, "signal"] == np.sign(mine.loc[fires, "forecast"]).astype(int)).all()
        assert (mine.loc[~fires, "signal"] == 0).all()
        assert ((mine["signal"] == 0) | (mine["position"] == mine["signal"])).all()
        routed += len(mine)
    others = out[~out["regime"].isin(list(loaded.entries))]
    assert routed > 0 and (others["signal"] == 0).all() and others["model"].isna().all()


def test_run_bundle_refuses_bars_that_are_not_a_bar_frame(exported) -> None:
    loaded = deploy.load_bundle(exported[0])
    bars = pd.DataFrame({"close": [1.0, 1.1]})
    with pytest.raises(InputError, match="columns must be"):
        deploy.run_bundle(loaded, bars)


def test_route_positions_hold_like_the_simulator_until_its_end_of_data_close() -> None:
    from forex_pipeline.backtest.simulator import equity_curve
    from forex_pipeline.settings import SymbolCosts

    rng = np.random.default_rng(3)
    n, horizon, threshold = 400, 5, 0.6
    forecast = rng.standard_normal(n) * (rng.random(n) < 0.3)
    confidence = rng.random(n)
    close = 1.1 * np.exp(np.cumsum(rng.standard_normal(n) * 1e-3))
    positions, _ = equity_curve(forecast, confidence, threshold, close, horizon, SymbolCosts(spread_pips=0.0, commission_pips=0.0, pip_size=1e-4))
    signals = (np.sign(forecast) * (confidence >= threshold)).astype(np.int64)
    mine = deploy.route_positions(signals, np.full(n, horizon))
    np.testing.assert_array_equal(mine[:-1], np.asarray(positions)[:-1])
    assert np.abs(mine).sum() > 0


def test_route_positions_hold_each_signal_for_its_own_models_horizon() -> None:
    signals = np.array([1, 0, 0, 0, -1, 0, 0, 0, 0])
    horizons = np.array([2, 9, 9, 9, 3, 1, 1, 1, 1])
    np.testing.assert_array_equal(deploy.route_positions(signals, horizons), [1, 1, 0, 0, -1, -1, -1, 0, 0])


def test_choose_entries_refuses_two_markets_without_a_choice_and_takes_the_best_rank_of_the_chosen_one() -> None:
    bests = pd.DataFrame(
        {
            "regime": ["calm_ranging", "calm_ranging", "calm_ranging", "bull_trending"],
            "rank": [1, 2, 3, 1],
            "symbol": ["EURUSD", "GBPUSD", "GBPUSD", "GBPUSD"],
            "base_timeframe": ["1h", "1h", "1h", "4h"],
            "kept": [True, True, True, True],
            "model_path": ["a", "b", "c", "d"],
        }
    )
    with pytest.raises(InputError, match=r"3 markets \(EURUSD 1h \(1 bests\), GBPUSD 1h \(2 bests\), GBPUSD 4h \(1 bests\)\)"):
        deploy.choose_entries(bests, ["bull_trending", "calm_ranging"])
    rows, symbol, timeframe = deploy.choose_entries(bests, ["bull_trending", "calm_ranging"], "GBP/USD", "1h")
    assert (symbol, timeframe) == ("GBPUSD", "1h")
    assert rows[["regime", "rank", "model_path"]].values.tolist() == [["calm_ranging", 2, "b"]]
    with pytest.raises(InputError, match="no kept regime best for AUDUSD"):
        deploy.choose_entries(bests, ["calm_ranging"], "AUDUSD")
