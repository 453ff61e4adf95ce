"""Database fixtures: a SQLite file per test, and a PostgreSQL database per test (created, then dropped)."""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError

from forex_pipeline.backtest.columns import EVALUATION_COLUMNS
from forex_pipeline.hashing import config_hash
from forex_pipeline.store import db

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """FOREX_TEST_POSTGRES_URL, else the local server as user postgres."""
    return os.environ.get("FOREX_TEST_POSTGRES_URL") or POSTGRES_ADMIN_URL


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (make_engine must create it)."""
    return f"sqlite:///{tmp_path / 'not_yet' / 'forex.db'}"


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (optionally copied from `template`), yield its URL, drop it."""
    admin_url = db.parse_url(postgres_admin_url())
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"forex_test_{uuid.uuid4().hex[:16]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {admin_url.render_as_string(hide_password=True)} is not usable: {exc}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        db.dispose_engines()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database of this test's own; fails (never skips) when the server is unreachable."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session, copied by each test that needs one."""
    with postgres_database() as url:
        db.upgrade(url)
        yield db.parse_url(url).database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (checkpointed, so the file alone is complete)."""
    path = tmp_path_factory.mktemp("template") / "forex.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, at head, on each backend (a copy of the session's template)."""
    if request.param == "sqlite":
        target = tmp_path / "forex.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    with postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture()
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    engine = db.make_engine(migrated_url)
    yield engine
    engine.dispose()


def run_identity(n: int, *, symbol: str = "EURUSD", model_type: str = "ridge") -> dict:
    """The identity fields of a distinct, made-up model configuration number `n`."""
    feature_set = {"symbol": symbol, "base_timeframe": "1h", "days_history": 365 + n}
    model_spec = {"model_type": model_type, "encoder": "none", "horizon": 5}
    fs_hash, ms_hash = config_hash(feature_set), config_hash(model_spec)
    return {
        "model_config_hash": config_hash({"feature_set": fs_hash, "model_spec": ms_hash}),
        "partition_key": f"{symbol}-1h-d{365 + n}-{fs_hash[:8]}|{model_type}-none-h5-{ms_hash[:8]}",
        "feature_set_hash": fs_hash,
        "model_spec_hash": ms_hash,
        "feature_set": feature_set,
        "model_spec": model_spec,
        "symbol": symbol,
        "base_timeframe": "1h",
        "model_type": model_type,
        "encoder": "none",
        "horizon": 5,
    }


REGIMES = ("all", "bull_trending", "bear_trending", "volatile_ranging", "calm_ranging", "unclassified")


def backtest_frame(seed: int = 0, regimes: tuple[str, ...] = REGIMES, segment: str = "selection") -> pd.DataFrame:
    """135 inference configurations x `regimes` on one segment, random metrics and trust columns, with NaN
    where a Sharpe has no trades (EVALUATION_COLUMNS)."""
    rng = np.random.default_rng(seed)
    grid = list(itertools.product(["direct", "recursive", "direct_multi"], ["mean", "weighted", "stacking"],
                                  [0.0, 0.3, 0.5, 0.7, 0.9], [50, 100, 200]))
    rows = []
    for (prediction, ensemble, threshold, lookback), regime in itertools.product(grid, regimes):
        trades = int(rng.integers(0, 60))
        metric = lambda scale: float("nan") if trades == 0 else float(rng.normal(0, scale))  # noqa: E731
        rows.append({
            "prediction_method": prediction,
            "ensemble_method": ensemble,
            "confidence_threshold": threshold,
            "lookback_window": lookback,
            "inference_config_hash": config_hash([prediction, ensemble, threshold, lookback]),
            "regime": regime,
            "sharpe": metric(1.0),
            "sortino": metric(1.5),
            "max_drawdown": -abs(metric(0.1)),
            "total_return": metric(0.05),
            "win_rate": float("nan") if trades == 0 else float(rng.uniform(0, 1)),
            "profit_factor": metric(1.0),
            "trade_count": trades,
            "exposure": float(rng.uniform(0, 1)),
            "n_bars": int(rng.integers(100, 5000)),
        })
        rows[-1].update(segment=segment, **_trust(rng, trades))
    return pd.DataFrame(rows).loc[:, list(EVALUATION_COLUMNS)]


def _trust(rng: np.random.Generator, trades: int) -> dict:
    """Trust columns of one row (backtest/columns.py TRUST_COLUMNS): NaN moments without trades."""
    nan = float("nan")
    blocks = rng.normal(0, 1e-3, 16)
    return {
        "sharpe_per_bar": nan if trades == 0 else float(rng.normal(0, 0.05)),
        "skewness": nan if trades == 0 else float(rng.normal(0, 0.5)),
        "kurtosis": nan if trades == 0 else float(3 + rng.exponential(1.0)),
        "sum_ret": float(blocks.sum()),
        "sum_sq": float((blocks**2).sum()),
        "sum_cube": 0.0,
        "sum_quad": 0.0,
        "block_sum_ret": blocks.tolist(),
        "block_sum_sq": (blocks**2).tolist(),
        "block_n_bars": [float(n) for n in rng.integers(1, 50, 16)],
    }
