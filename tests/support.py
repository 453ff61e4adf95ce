"""Shared test helpers: a tiny grid on the synthetic symbol and settings sized for tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from forex_pipeline.settings import DEFAULT_SETTINGS_FILE

TINY_GRID = {
    "name": "tiny",
    "feature_sets": {
        "symbols": ["SYNTH"],
        "base_timeframes": ["1h"],
        "days_history": [150],
        "as_of": "2021-01-05T00:00:00Z",
        "indicator_timeframes": [{"rsi": ["1h"], "atr": ["1h"]}],
        "additional_features": [["returns_volatility"]],
        "preprocessing": [{"warmup_bars": 100}],
    },
    "model_specs": {
        "model_types": ["ridge", "elasticnet"],
        "encoders": ["none"],
        "horizons": [1, 3, 6],
        "hyperparameters": {"ridge": [{"alpha": 1.0}], "elasticnet": [{"alpha": 0.001, "l1_ratio": 0.5}]},
    },
}


def write_test_settings(path: Path, **overrides: dict) -> Path:
    """The project's settings with small, fast values (and `overrides` per section) written to `path`."""
    raw = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    raw["training"]["members"] = 2
    raw["queue"]["models_per_run"] = 2
    raw["queue"]["min_free_disk_gb"] = 0.0
    raw["file_management"]["keep_top_n_per_regime"] = 1
    raw["regimes"]["min_trades"] = 3
    raw["recovery"]["heartbeat_seconds"] = 1
    for section, values in overrides.items():
        raw[section].update(values)
    path.write_text(yaml.safe_dump(raw))
    return path


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@contextmanager
def tiny_bests(home: Path, n_configurations: int = 3) -> Iterator[dict[str, Any]]:
    """A project database and artifacts under `home` whose regime bests come from the first
    `n_configurations` of TINY_GRID trained and scored for real (rules detector, 20 noise models), with
    FOREX_* and DAGSTER_HOME pointing at them while the block runs; yields settings, engine and env."""
    import pytest

    from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
    from forex_pipeline.pipeline.configuration import run_configuration
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import dispose_engines, get_engine, session_scope, upgrade
    from forex_pipeline.store.regime_definitions import seed_regime_definitions

    env = {
        "FOREX_DATABASE_URL": f"sqlite:///{home / 'forex_pipeline.db'}",
        "FOREX_ARTIFACTS_DIR": str(home / "artifacts"),
        "FOREX_SETTINGS": str(write_test_settings(home / "settings.yaml", regimes={"detector": "rules"}, evaluation={"noise_models": 20})),
        "DAGSTER_HOME": str(home),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = get_settings()
        upgrade(settings.database_url)
        engine = get_engine(settings.database_url)
        with session_scope(engine) as session:
            seed_regime_definitions(session, settings)
        for configuration in expand_grid(parse_grid_spec(TINY_GRID)).configurations[:n_configurations]:
            outcome = run_configuration(configuration, settings=settings, engine=engine, artifacts_dir=settings.artifacts_dir)
            assert outcome.status == "completed", outcome.error
        try:
            yield {"settings": settings, "engine": engine, "env": env, "home": home}
        finally:
            dispose_engines()


def plain_batches(engine: Any, settings: Any, **options: Any) -> Callable[[int, Any], Any]:
    """A batch executor without Dagster (the queue logic under test): `worker.process_batch` on this
    engine, settings and artefact store; `options` go to it (e.g. on_outcome)."""
    from forex_pipeline.queue import worker

    return lambda queue_id, batch: worker.process_batch(
        engine, settings, queue_id, batch, artifacts_dir=settings.artifacts_dir, sample_dir=None, **options
    )


def run_grid_in_process(engine: Any, settings: Any, grid: Any) -> tuple[int, Any]:
    """Submit `grid` and work its queue to the end in this process, without Dagster: (queue id, final state)."""
    from forex_pipeline.queue import lifecycle, worker

    queue_id = lifecycle.submit_grid(engine, grid, settings.artifacts_dir)
    return queue_id, worker.run_queue(engine, settings, queue_id, plain_batches(engine, settings), artifacts_dir=settings.artifacts_dir)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one `forex-pipeline` command line run in this process through the
    console script's entry point (`forex_pipeline.cli.main`, the one error path)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import pytest

    from forex_pipeline.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as stop:
        main(list(argv))
    code = stop.value.code
    return (0 if code is None else int(code)), out.getvalue(), err.getvalue()
