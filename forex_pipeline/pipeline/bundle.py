"""The deploy bundle: the regime bests as one archive that labels new bars and trades each with its regime's model.

`export_bundle` writes one zip archive holding, per scored regime, its best kept model of one
(symbol, base_timeframe) with the inference configuration it won with, the model file, the feature
set and model spec, the feature columns the model was trained on and its trust figures; plus the
regime settings (detector, windows, definitions) in force, and the sha256 and size of every file.
`load_bundle` refuses an archive whose files, names or manifest do not match those checksums, then
loads the models (their own sha256 is checked once more by `models.registry.load_model`).
`run_bundle` labels every bar with the bundle's regime settings and routes it to that regime's
model: forecast, confidence and signal exactly as the backtests computed them
(`backtest.run.config_equity`), and the position the simulator would hold.

The checksums detect a corrupted or edited archive; they are not a signature. A model file is
unpickled when it is loaded, so load bundles from sources you trust only.
"""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forex_pipeline.errors import InputError, OperationError
from forex_pipeline.io import atomic_write
from forex_pipeline.keys import split_model_config_key
from forex_pipeline.settings import RegimeSettings, Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.base import TrainedModel
    from forex_pipeline.models.spec import ModelSpec

BUNDLE_FORMAT = "forex_pipeline.bundle/1"
MANIFEST_NAME = "manifest.json"
MANIFEST_CHECKSUM_NAME = "manifest.sha256"
BUNDLE_SUFFIX = ".zip"
# the trust figures copied from regime_best_models into the manifest (store/regime_best_models.py)
TRUST_KEYS: tuple[str, ...] = (
    "score", "selection_score", "holdout_score", "holdout_trades", "trade_count", "n_trials", "deflated_sharpe",
    "null_p_value", "pbo", "baseline", "baseline_score", "improvement_over_baseline", "significant",
)
POSITION_COLUMNS: tuple[str, ...] = ("regime", "model", "forecast", "confidence", "signal", "position")


class BundleError(InputError):
    """A bundle archive is not one, or was modified or corrupted; the message names the archive and the file."""


@dataclass(frozen=True)
class BundleEntry:
    """One regime's model in a bundle: what it is, how it trades, and its file inside the archive."""

    regime: str
    partition_key: str
    model_config_hash: str
    feature_set: FeatureSetSpec
    model_spec: ModelSpec
    feature_names: tuple[str, ...]
    inference: InferenceConfig
    model_file: str              # name inside the archive
    model_sha256: str
    model_bytes: int
    trust: dict[str, Any]


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: its manifest, the regime settings, one entry and one loaded model per routed regime."""

    manifest: dict[str, Any]
    symbol: str
    base_timeframe: str
    regimes: RegimeSettings
    entries: dict[str, BundleEntry]
    models: dict[str, TrainedModel]   # regime -> its loaded model
    ar_lags: int
    train_fraction: float


# ------------------------------------------------------------------------------------------ export
def choose_entries(
    bests: pd.DataFrame, regimes: Sequence[str], symbol: str | None = None, base_timeframe: str | None = None
) -> tuple[pd.DataFrame, str, str]:
    """Per regime in `regimes`, the best-ranked kept row of `bests` (current_bests) on one (symbol,
    base_timeframe); (rows, symbol, base_timeframe). Without a filter the bests must hold one pair only,
    since a bundle trades one market: otherwise an InputError lists the pairs to choose from."""
    from forex_pipeline.settings import normalize_symbol

    candidates = bests[bests["regime"].isin(list(regimes)) & bests["kept"].astype(bool) & bests["model_path"].notna()]
    if symbol is not None:
        candidates = candidates[candidates["symbol"] == normalize_symbol(symbol)]
    if base_timeframe is not None:
        candidates = candidates[candidates["base_timeframe"] == base_timeframe]
    if candidates.empty:
        wanted = " ".join(x for x in (symbol, base_timeframe) if x) or "any market"
        raise InputError(f"no kept regime best for {wanted}: nothing to put in a bundle (scored regimes: {', '.join(regimes)})")
    pairs = candidates.groupby(["symbol", "base_timeframe"]).size()
    if len(pairs) > 1:
        listed = ", ".join(f"{s} {tf} ({n} bests)" for (s, tf), n in pairs.items())
        raise InputError(f"the regime bests trade {len(pairs)} markets ({listed}); choose one symbol and base_timeframe")
    (chosen_symbol, chosen_timeframe), = pairs.index
    order = {name: i for i, name in enumerate(regimes)}
    rows = (
        candidates.sort_values("rank").groupby("regime", sort=False).head(1)
        .assign(_order=lambda f: f["regime"].map(order)).sort_values("_order").drop(columns="_order")
    )
    return rows.reset_index(drop=True), str(chosen_symbol), str(chosen_timeframe)


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars -> Python, NaN / NA -> None."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _archive_name(partition_key: str, model_path: Path) -> str:
    """`models/<feature set key>/<model file name>`: the model store's own layout (models/files.py)."""
    feature_set_key, model_spec_key = split_model_config_key(partition_key)
    if not model_path.name.startswith(model_spec_key):
        raise OperationError(f"model file {model_path} is not named after its model spec {model_spec_key}")
    return f"models/{feature_set_key}/{model_path.name}"


def export_bundle(
    engine: Engine,
    settings: Settings,
    path: Path | str,
    *,
    symbol: str | None = None,
    base_timeframe: str | None = None,
    artifacts_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the bundle of the current regime bests to `path` (one zip archive, written atomically);
    returns its manifest. Every model file is checked against its recorded sha256 before it is copied."""
    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.files import ModelFileError, resolve_model_path, sha256_file, verify
    from forex_pipeline.models.spec import ModelSpec
    from forex_pipeline.pipeline.artifacts import ensure_feature_matrix
    from forex_pipeline.store import training_runs
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_best_models import current_bests
    from forex_pipeline.store.regime_definitions import active_regimes

    artifacts_dir = Path(artifacts_dir or settings.artifacts_dir)
    with session_scope(engine) as session:
        regimes = active_regimes(session, settings)
        rows, chosen_symbol, chosen_timeframe = choose_entries(current_bests(session), list(regimes.definitions), symbol, base_timeframe)
        runs = {int(r): training_runs.get_training_run(session, int(r)) for r in rows["training_run_id"]}
    entries, sources = [], {}
    for row in rows.to_dict("records"):
        run = runs[int(row["training_run_id"])]
        model_path = resolve_model_path(str(row["model_path"]), artifacts_dir)
        try:
            verify(model_path, str(run.model_sha256), run.model_bytes)
        except ModelFileError as exc:
            raise OperationError(f"regime {row['regime']}: {exc}; the bundle was not written") from exc
        feature_set = FeatureSetSpec.model_validate(run.feature_set)
        model_spec = ModelSpec.model_validate(run.model_spec)
        matrix, _ = ensure_feature_matrix(feature_set, settings, artifacts_dir, default_sample_dir())
        name = _archive_name(str(row["partition_key"]), model_path)
        sources[name] = model_path
        inference = InferenceConfig(
            str(row["prediction_method"]), str(row["ensemble_method"]), float(row["confidence_threshold"]), int(row["lookback_window"])
        )
        entries.append(
            {
                "regime": str(row["regime"]),
                "rank": int(row["rank"]),
                "partition_key": str(row["partition_key"]),
                "model_config_hash": str(row["model_config_hash"]),
                "feature_set": feature_set.canonical(),
                "model_spec": model_spec.canonical(),
                "feature_names": list(matrix.feature_names),
                "inference_config": {**inference.canonical(), "hash": inference.hash},
                "model_file": name,
                "trust": {key: _plain(row.get(key)) for key in TRUST_KEYS},
            }
        )
    files = {name: {"sha256": sha256_file(source), "bytes": source.stat().st_size} for name, source in sources.items()}
    for entry in entries:
        entry["model_sha256"] = files[entry["model_file"]]["sha256"]
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "symbol": chosen_symbol,
        "base_timeframe": chosen_timeframe,
        "regimes": regimes.model_dump(mode="json"),
        "regime_order": list(regimes.definitions),
        "ar_lags": settings.training.ar_lags,
        "train_fraction": settings.training.train_fraction,
        "entries": entries,
        "files": files,
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()

    def write(temp: Path) -> None:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST_NAME, manifest_bytes)
            archive.writestr(MANIFEST_CHECKSUM_NAME, _sha256(manifest_bytes) + "\n")
            for name, source in sources.items():
                archive.write(source, name)

    atomic_write(Path(path), write)
    return manifest


def bundle_file_name(manifest: Mapping[str, Any]) -> str:
    """`bundle-EURUSD-1h-20260105T0800Z.zip`: the name the explorer offers for a download."""
    stamp = datetime.fromisoformat(str(manifest["created_at"])).strftime("%Y%m%dT%H%MZ")
    return f"bundle-{manifest['symbol']}-{manifest['base_timeframe']}-{stamp}{BUNDLE_SUFFIX}"


# -------------------------------------------------------------------------------------------- load
def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _safe_member(name: str, where: str) -> str:
    """A member name that can only land inside the extraction folder."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or not name or name.endswith("/"):
        raise BundleError(f"{where}: member name {name!r} is not a plain relative file name")
    return name


def read_manifest(archive: zipfile.ZipFile, where: str) -> dict[str, Any]:
    """The manifest, checked against manifest.sha256 and for the fields load_bundle needs."""
    names = set(archive.namelist())
    for needed in (MANIFEST_NAME, MANIFEST_CHECKSUM_NAME):
        if needed not in names:
            raise BundleError(f"{where}: no {needed}; this is not a forex_pipeline bundle")
    raw = archive.read(MANIFEST_NAME)
    recorded = archive.read(MANIFEST_CHECKSUM_NAME).decode("ascii", "replace").strip()
    if _sha256(raw) != recorded:
        raise BundleError(f"{where}: {MANIFEST_NAME} does not match {MANIFEST_CHECKSUM_NAME}: the archive was modified or corrupted")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise BundleError(f"{where}: {MANIFEST_NAME} is not JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"{where}: format {found!r} is not {BUNDLE_FORMAT!r}")
    missing = [k for k in ("symbol", "base_timeframe", "regimes", "entries", "files", "ar_lags", "train_fraction") if k not in manifest]
    if missing:
        raise BundleError(f"{where}: {MANIFEST_NAME} lacks {', '.join(missing)}")
    return manifest


def _verified_files(archive: zipfile.ZipFile, manifest: Mapping[str, Any], where: str) -> dict[str, bytes]:
    """Every file the manifest lists, read and checked (size, sha256); extra or missing members are refused."""
    listed = manifest["files"]
    members = set(archive.namelist()) - {MANIFEST_NAME, MANIFEST_CHECKSUM_NAME}
    extra, absent = sorted(members - set(listed)), sorted(set(listed) - members)
    if extra or absent:
        raise BundleError(f"{where}: files not in the manifest {extra}, files of the manifest missing {absent}: the archive was modified")
    contents = {}
    for name, recorded in listed.items():
        _safe_member(name, where)
        info = archive.getinfo(name)
        if info.file_size != int(recorded["bytes"]):
            raise BundleError(f"{where}: {name} holds {info.file_size} bytes, the manifest records {recorded['bytes']}: modified or truncated")
        data = archive.read(name)
        if _sha256(data) != recorded["sha256"]:
            raise BundleError(f"{where}: {name} has sha256 {_sha256(data)[:16]}..., the manifest records {str(recorded['sha256'])[:16]}...: modified or corrupted")
        contents[name] = data
    return contents


def _entry(raw: Mapping[str, Any], files: Mapping[str, Any], where: str) -> BundleEntry:
    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.spec import ModelSpec

    try:
        config = {k: v for k, v in raw["inference_config"].items() if k != "hash"}
        entry = BundleEntry(
            regime=str(raw["regime"]),
            partition_key=str(raw["partition_key"]),
            model_config_hash=str(raw["model_config_hash"]),
            feature_set=FeatureSetSpec.model_validate(raw["feature_set"]),
            model_spec=ModelSpec.model_validate(raw["model_spec"]),
            feature_names=tuple(str(n) for n in raw["feature_names"]),
            inference=InferenceConfig(**config),
            model_file=str(raw["model_file"]),
            model_sha256=str(files[raw["model_file"]]["sha256"]),
            model_bytes=int(files[raw["model_file"]]["bytes"]),
            trust=dict(raw.get("trust") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: entry of regime {raw.get('regime')!r} is invalid: {exc}") from exc
    if entry.inference.hash != raw["inference_config"].get("hash"):
        raise BundleError(f"{where}: entry of regime {entry.regime!r}: its inference configuration does not match its hash")
    return entry


def load_bundle(path: Path | str) -> Bundle:
    """Open a bundle written by export_bundle: verify every checksum, then load each regime's model.

    A missing, extra, resized or altered file, or an edited manifest, is a BundleError naming it.
    """
    from forex_pipeline.models.registry import load_model

    path = Path(path)
    where = f"bundle {path}"
    if not path.is_file():
        raise BundleError(f"{where} does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{where} is not a zip archive ({exc})") from exc
    with archive:
        manifest = read_manifest(archive, where)
        contents = _verified_files(archive, manifest, where)
    try:
        regimes = RegimeSettings.model_validate(manifest["regimes"])
    except ValueError as exc:
        raise BundleError(f"{where}: its regime settings are invalid: {' '.join(str(exc).split())[:300]}") from exc
    entries = {}
    for raw in manifest["entries"]:
        entry = _entry(raw, manifest["files"], where)
        entries[entry.regime] = entry
    models = {}
    with tempfile.TemporaryDirectory(prefix="forex-bundle-") as folder:
        for regime, entry in entries.items():
            target = Path(folder, *PurePosixPath(entry.model_file).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(contents[entry.model_file])
            models[regime] = load_model(target, entry.model_spec, entry.model_sha256, entry.model_bytes)
    return Bundle(
        manifest=manifest,
        symbol=str(manifest["symbol"]),
        base_timeframe=str(manifest["base_timeframe"]),
        regimes=regimes,
        entries=entries,
        models=models,
        ar_lags=int(manifest["ar_lags"]),
        train_fraction=float(manifest["train_fraction"]),
    )


# --------------------------------------------------------------------------------------------- run
def route_positions(signals: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """Positions from per-bar signals (-1, 0, 1) and the horizon of the model that gave each bar's signal.

    The simulator's rule (backtest/simulator.py) without its end-of-data close: a signal opens, flips or
    extends a one-unit position held `horizon` bars since that signal (the signalling model's horizon),
    then flat until the next signal.
    """
    signals = np.asarray(signals, dtype=np.int64)
    horizons = np.asarray(horizons, dtype=np.int64)
    if signals.shape != horizons.shape or signals.ndim != 1:
        raise ValueError(f"signals {signals.shape} and horizons {horizons.shape} must be equal 1-d shapes")
    positions = np.zeros(signals.size, dtype=np.int64)
    position, held, hold = 0, 0, 0
    for t, (signal, horizon) in enumerate(zip(signals.tolist(), horizons.tolist())):
        if signal != 0:
            position, held, hold = signal, 1, horizon
        elif position != 0 and held < hold:
            held += 1
        else:
            position, held = 0, 0
        positions[t] = position
    return positions


def _start_row(index: pd.DatetimeIndex, start: Any, train_fraction: float) -> int:
    if start is None:
        return max(1, int(np.floor(len(index) * train_fraction)))
    when = pd.Timestamp(start)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    row = int(index.searchsorted(when, side="left"))
    if row >= len(index):
        raise InputError(f"start {when} is after the last bar ({index[-1]})")
    return row


def model_series(bundle: Bundle, regime: str, bars: pd.DataFrame, start_row: int) -> tuple[np.ndarray, np.ndarray]:
    """(forecast, confidence) per bar of `bars` for the model of `regime`; NaN where it has no forecast
    (before `start_row` less its lookback, or a bar whose features are not all defined)."""
    from forex_pipeline.backtest.confidence import rolling_size_rank
    from forex_pipeline.backtest.ensembles import combine, member_agreement
    from forex_pipeline.features.build import compute_raw_features
    from forex_pipeline.features.matrix import FeatureMatrix

    entry, model = bundle.entries[regime], bundle.models[regime]
    raw = compute_raw_features(entry.feature_set, bars, bundle.ar_lags).frame
    missing = [name for name in entry.feature_names if name not in raw.columns]
    if missing:
        raise InputError(f"regime {regime}: the new bars give no feature column {missing[:5]}; the model needs them")
    values = raw.loc[:, list(entry.feature_names)].to_numpy(dtype=np.float64)
    complete = np.isfinite(values).all(axis=1)
    complete[: entry.feature_set.preprocessing.warmup_bars] = False
    lookback = entry.inference.lookback_window
    positions = np.flatnonzero(complete)
    positions = positions[positions >= max(0, start_row - lookback)]
    forecast = np.full(len(bars), np.nan)
    confidence = np.full(len(bars), np.nan)
    if positions.size == 0:
        return forecast, confidence
    close = bars["close"].to_numpy(dtype=np.float64)
    matrix = FeatureMatrix(
        feature_set_hash=entry.feature_set.hash, timestamps=bars.index[positions], X=np.ascontiguousarray(values[positions]),
        feature_names=entry.feature_names, close=close[positions], base_timeframe=bundle.base_timeframe, symbol=bundle.symbol,
    )
    config = entry.inference
    members = model.predict_members(matrix, np.arange(positions.size), config.prediction_method)
    series = combine(members, model.combiners[config.prediction_method], config.ensemble_method)
    ranks = rolling_size_rank(series[None, :], np.asarray([lookback], dtype=np.int64))[0, 0]
    forecast[positions] = series
    confidence[positions] = ranks * member_agreement(members, series)
    return forecast, confidence


def run_bundle(bundle: Bundle, bars: pd.DataFrame, *, start: Any = None) -> pd.DataFrame:
    """Positions on `bars` (a bar frame at the bundle's base timeframe, of the bundle's symbol), from `start` on.

    Bars before `start` are history: the HMM detector is fitted on them, indicators and confidence
    windows warm up on them (default start: the first bar after `train_fraction` of the bars, as
    `regimes label` fits). Each bar from `start` gets its regime label (causal: from bars up to it),
    and the model of that regime gives its forecast, confidence and signal; a bar whose regime has no
    model (or `unclassified`) gives no signal, so an open position only runs out its horizon.
    Returns POSITION_COLUMNS indexed by the bars' timestamps.
    """
    from forex_pipeline.data.schema import assert_bar_frame
    from forex_pipeline.regimes.labels import label_regimes

    try:
        assert_bar_frame(bars)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    start_row = _start_row(bars.index, start, bundle.train_fraction)
    try:
        labels = np.asarray(label_regimes(
            bars["close"].to_numpy(dtype=np.float64), bundle.regimes, timeframe=bundle.base_timeframe,
            train_end=start_row, timestamps=bars.index,
        ), dtype=object)
        series = {regime: model_series(bundle, regime, bars, start_row) for regime in bundle.entries}
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"bars for bundle {bundle.symbol} {bundle.base_timeframe}: {exc}") from exc
    n = len(bars) - start_row
    forecast, confidence = np.full(n, np.nan), np.full(n, np.nan)
    signals, horizons = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    model = np.full(n, None, dtype=object)
    for regime, entry in bundle.entries.items():
        mask = labels[start_row:] == regime
        f, c = (values[start_row:] for values in series[regime])
        forecast[mask], confidence[mask], model[mask] = f[mask], c[mask], entry.partition_key
        fires = mask & np.isfinite(f) & (c >= entry.inference.confidence_threshold)
        signals[fires] = np.sign(f[fires]).astype(np.int64)
        horizons[mask] = entry.model_spec.horizon
    return pd.DataFrame(
        {
            "regime": labels[start_row:],
            "model": model,
            "forecast": forecast,
            "confidence": confidence,
            "signal": signals,
            "position": route_positions(signals, horizons),
        },
        index=bars.index[start_row:],
        columns=list(POSITION_COLUMNS),
    )


def describe(bundle: Bundle) -> pd.DataFrame:
    """One row per routed regime: model, inference configuration and trust figures (for a quick look)."""
    rows = []
    for regime in bundle.manifest.get("regime_order", list(bundle.entries)):
        entry = bundle.entries.get(regime)
        if entry is None:
            continue
        rows.append({"regime": regime, "model": entry.partition_key, **entry.inference.canonical(), **entry.trust})
    return pd.DataFrame(rows)


__all__ = [
    "BUNDLE_FORMAT", "Bundle", "BundleEntry", "BundleError", "POSITION_COLUMNS",
    "bundle_file_name", "choose_entries", "describe", "export_bundle", "load_bundle",
    "route_positions", "run_bundle",
]
