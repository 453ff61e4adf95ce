"""Hostile input through every entry point a user feeds: bar files, grid files, settings files and
checkpoints. Each generated case must end in a clear refusal (exit code 2, one `error:` message, no
traceback) with the database and the artefact store exactly as before, or in a correct result.

The command runs in process through `forex_pipeline.cli.main` (the console script's entry point),
so an unexpected exception surfaces here as the traceback a user would have seen.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support import TINY_GRID, run_cli

pytestmark = pytest.mark.slow
CASES = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


# ---------------------------------------------------------------------------------------- harness


def storage_listing(home: Path) -> dict[str, Any]:
    """Every row of every project table and every file (with its sha256) under DAGSTER_HOME."""
    tables: dict[str, list[tuple]] = {}
    database = home / "forex_pipeline.db"
    if database.exists():
        with sqlite3.connect(database) as connection:
            names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            for name in names:
                tables[name] = sorted(map(repr, connection.execute(f'SELECT * FROM "{name}"')))
    files = {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and p.name != "forex_pipeline.db" and not p.name.endswith(("-journal", "-wal", "-shm"))
        and "settings" not in p.name and "case" not in p.name
    }
    return {"tables": tables, "files": files}


def assert_clean(code: int, stderr: str, before: dict, home: Path, accepted_codes: tuple[int, ...] = (0,)) -> None:
    """A refusal is exit 2 with one clear message and nothing changed; anything else must be accepted."""
    assert "Traceback" not in stderr, stderr
    event(f"exit code {code}")
    if code == 2:
        assert stderr.strip().startswith("error:") or "problem(s)" in stderr, stderr
        assert len(stderr.strip().splitlines()) <= 40, stderr
        assert storage_listing(home) == before, "a refused input changed the database or the artefact store"
    else:
        assert code in accepted_codes, (code, stderr)


@pytest.fixture()
def home(grid_env: Path) -> Path:
    return grid_env


# ---------------------------------------------------------------------------------------- data files

GOOD_ROWS = [
    ("2019-01-02 00:00", 1.1450, 1.1460, 1.1440, 1.1455, 10),
    ("2019-01-02 00:01", 1.1455, 1.1465, 1.1450, 1.1460, 12),
    ("2019-01-02 00:02", 1.1460, 1.1462, 1.1451, 1.1452, 9),
]
NASTY_VALUES = st.sampled_from(
    ["", "nan", "inf", "-1", "0", "1e308", "1e-300", "abc", "1.1;2", '"1.1"', "9" * 400, "1,2", "\x00", "１.１"]
)
NASTY_STAMPS = st.sampled_from(
    ["", "1900-01-01 00:00", "2100-01-01 00:00", "2300-01-01", "0000-00-00", "2019-02-30 00:00", "yesterday",
     "2019-01-02T00:00:00+25:00", "20190102 000000", "1e9", "2019-01-02 00:00"]
)
HEADERS = st.sampled_from([
    "timestamp,open,high,low,close,volume", "timestamp,open,high,low,close,close", "time,open,high,low",
    "timestamp,timestamp,open,high,low,close", "Timestamp,Open,High,Low,Close", "date;open;high;low;close", "",
    "timestamp,open,high,low,close,volume,extra", "\ufefftimestamp,open,high,low,close",
])


@st.composite
def bar_files(draw: st.DrawFn) -> bytes:
    header = draw(HEADERS)
    rows = [list(map(str, row)) for row in GOOD_ROWS]
    for _ in range(draw(st.integers(0, 4))):
        r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 5))
        rows[r][c] = draw(NASTY_STAMPS if c == 0 else NASTY_VALUES)
    if draw(st.booleans()):
        rows.append(rows[draw(st.integers(0, len(rows) - 1))])
    text = "\n".join([header, *(",".join(r) for r in rows)]) + "\n"
    data = text.encode("utf-8", errors="replace")
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))
    return data


@CASES
@given(content=bar_files())
def test_data_import_refuses_cleanly_or_imports_valid_bars(home: Path, tmp_path_factory, content: bytes) -> None:
    from forex_pipeline.data.bar_store import read_bars
    from forex_pipeline.data.validation import validate_bars

    path = tmp_path_factory.mktemp("case") / "bars.csv"
    path.write_bytes(content)
    before = storage_listing(home)
    code, _, stderr = run_cli("data", "import", str(path), "--symbol", "EURUSD")
    assert_clean(code, stderr, before, home)
    if code == 0:
        stored = read_bars(home / "artifacts" / "imports" / "EURUSD.parquet")
        validate_bars(stored.reset_index(), source="stored")  # what was accepted passes every rule


@pytest.mark.parametrize("target", ["directory", "dev_null", "missing", "truncated_gzip"])
def test_data_import_names_what_is_wrong_with_the_path(home: Path, tmp_path: Path, target: str) -> None:
    import gzip

    path = {"directory": tmp_path, "dev_null": Path("/dev/null"), "missing": tmp_path / "nope.csv"}.get(target)
    if target == "truncated_gzip":
        path = tmp_path / "bars.csv.gz"
        path.write_bytes(gzip.compress(b"timestamp,open,high,low,close\n" * 200)[:40])
    before = storage_listing(home)
    code, _, stderr = run_cli("data", "import", str(path), "--symbol", "EURUSD")
    assert code == 2 and str(path) in stderr.replace("\n", "") and "Aborted" not in stderr, stderr
    assert storage_listing(home) == before


# ---------------------------------------------------------------------------------------- grid files

GRID_PATHS = [
    ("name",), ("feature_sets", "symbols", 0), ("feature_sets", "base_timeframes", 0), ("feature_sets", "days_history", 0),
    ("feature_sets", "as_of"), ("model_specs", "model_types", 0), ("model_specs", "horizons", 0),
    ("model_specs", "encoders", 0), ("model_specs", "hyperparameters", "ridge", 0, "alpha"),
    ("feature_sets", "preprocessing", 0, "warmup_bars"), ("feature_sets", "indicator_timeframes", 0, "rsi", 0),
]
HOSTILE_VALUES = st.one_of(
    st.sampled_from([
        True, None, 0, -1, 10**40, 1e308, float("nan"), "", "x" * 10_000, "ridgee", "/etc/passwd", "ЕВРUSD", "ＥＵＲＵＳＤ",
        "EURUSß", "1900-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "1h; DROP TABLE training_runs", [], {}, [[[]]], "0x10",
    ]),
    st.integers(), st.text(max_size=30),
)


def _set(tree: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        tree = tree[step]
    tree[path[-1]] = value


@st.composite
def grid_texts(draw: st.DrawFn) -> str:
    grid = copy.deepcopy(TINY_GRID)
    for _ in range(draw(st.integers(0, 3))):
        _set(grid, draw(st.sampled_from(GRID_PATHS)), draw(HOSTILE_VALUES))
    if draw(st.booleans()):
        section = draw(st.sampled_from(["feature_sets", "model_specs"]))
        typo = draw(st.sampled_from(["model_typs", "symbol", "horizon", "days", "hyperparams"]))
        grid[section][typo] = grid[section].pop(next(iter(grid[section])))
    text = yaml.safe_dump(grid, allow_unicode=True)
    trick = draw(st.integers(0, 7))
    if trick == 0:
        text += "name: again\n"  # a duplicate top-level key
    elif trick == 1:
        text = "a: " + "[" * 200 + "]" * 200 + "\n"
    elif trick == 2:
        text = "x: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(f"y{i}: &b{i} [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" for i in range(80))
    elif trick == 3:
        text = text.replace("horizons:\n  - 1", f"horizons:\n  - {'9' * 5000}")
    elif trick == 4:
        text = text.replace("days_history:\n  - 150", "days_history: " + str(list(range(1, 3001))))
    return text


@CASES
@given(text=grid_texts())
def test_grid_submit_refuses_cleanly_or_queues_the_grid(home: Path, tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("case") / "grid.yaml"
    path.write_text(text, encoding="utf-8")
    before = storage_listing(home)
    code, out, stderr = run_cli("grid", "submit", str(path), "--no-run")
    assert_clean(code, stderr, before, home)
    if code == 0:
        assert "queue_id=" in out


def test_a_grid_too_large_is_refused_at_once_with_its_size(home: Path, tmp_path: Path) -> None:
    grid = copy.deepcopy(TINY_GRID)
    grid["feature_sets"]["days_history"] = list(range(1, 3001))
    grid["model_specs"]["horizons"] = list(range(1, 501))
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(grid))
    before = storage_listing(home)
    code, _, stderr = run_cli("grid", "plan", str(path), "--no-db")
    assert code == 2 and "3,000,000 model configurations" in stderr and "max_grid_size" in stderr, stderr
    assert storage_listing(home) == before


# ---------------------------------------------------------------------------------------- settings files


@st.composite
def settings_texts(draw: st.DrawFn) -> str:
    from forex_pipeline.settings import DEFAULT_SETTINGS_FILE

    raw = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    paths = [
        ("queue", "models_per_run"), ("queue", "max_grid_size"), ("training", "members"), ("training", "train_fraction"),
        ("data", "symbols", "EURUSD", "pip_size"), ("regimes", "min_trades"), ("data", "validation", "nan"),
        ("notifications",), ("inference_grid", "confidence_thresholds"), ("storage",), ("file_management", "keep_top_n_per_regime"),
    ]
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(paths))
        try:
            _set(raw, path, draw(HOSTILE_VALUES))
        except (KeyError, TypeError, IndexError):
            pass
    if draw(st.booleans()):
        raw[draw(st.sampled_from(["queue", "training", "bogus_section"]))] = {"unknown_key": 1}
    text = yaml.safe_dump(raw, allow_unicode=True)
    trick = draw(st.integers(0, 5))
    if trick == 0:
        text += "queue: {}\n"
    elif trick == 1:
        text = "- just\n- a list\n"
    elif trick == 2:
        text = "{{{{ not yaml"
    return text


@CASES
@given(text=settings_texts())
def test_a_settings_file_is_refused_cleanly_or_loads(home: Path, tmp_path_factory, monkeypatch, text: str) -> None:
    path = tmp_path_factory.mktemp("case") / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("FOREX_SETTINGS", str(path))
    before = storage_listing(home)
    code, _, stderr = run_cli("grid", "plan", str(Path(__file__).resolve().parents[2] / "examples" / "grids" / "demo.yaml"), "--no-db")
    assert_clean(code, stderr, before, home)
    if code == 2:
        assert str(path) in stderr.replace("\n", "") or "grid" in stderr, stderr


# ---------------------------------------------------------------------------------------- checkpoints


@pytest.fixture()
def exported(home: Path, tmp_path: Path) -> dict:
    grid = tmp_path / "tiny.yaml"
    grid.write_text(yaml.safe_dump(TINY_GRID))
    code, out, err = run_cli("grid", "submit", str(grid), "--no-run")
    assert code == 0, err
    queue_id = out.split("queue_id=")[1].split()[0]
    target = tmp_path / "checkpoint.json"
    assert run_cli("queue", "export", queue_id, "-o", str(target))[0] == 0
    assert run_cli("queue", "cancel", queue_id)[0] == 0
    return json.loads(target.read_text())


CHECKPOINT_PATHS = [("checkpoint_version",), ("queue",), ("queue", "name"), ("queue", "grid_hash"), ("config_grid",),
                    ("config_grid", "name"), ("completed_runs",), ("config_grid", "model_specs", "horizons"), ("sha256",)]


@CASES
@given(data=st.data())
def test_queue_import_refuses_cleanly_or_imports(home: Path, exported: dict, tmp_path_factory, data: st.DataObject) -> None:
    checkpoint = copy.deepcopy(exported)
    for _ in range(data.draw(st.integers(0, 2))):
        path = data.draw(st.sampled_from(CHECKPOINT_PATHS))
        try:
            _set(checkpoint, path, data.draw(HOSTILE_VALUES))
        except (KeyError, TypeError, IndexError):
            pass
    body = json.dumps(checkpoint, allow_nan=True).encode()
    trick = data.draw(st.integers(0, 6))
    if trick == 0:
        body = b"\xff\xfe" + body[:50]
    elif trick == 1:
        body = body[: len(body) // 2]
    elif trick == 2:
        body = b"[" * 5000 + b"]" * 5000
    path = tmp_path_factory.mktemp("case") / "checkpoint.json"
    path.write_bytes(body)
    before = storage_listing(home)
    code, _, stderr = run_cli("queue", "import", str(path))
    assert_clean(code, stderr, before, home)
    if code == 0:  # accepted: the queue it made is paused and holds the checkpoint's grid
        from forex_pipeline.settings import get_settings
        from forex_pipeline.store import training_queue
        from forex_pipeline.store.db import get_engine, session_scope

        with session_scope(get_engine(get_settings().database_url)) as session:
            newest = max(training_queue.list_queues(session), key=lambda q: q.id)
        assert newest.status == "paused" and newest.grid_hash == checkpoint["queue"]["grid_hash"]
        assert run_cli("queue", "cancel", str(newest.id))[0] == 0


def test_a_tampered_checkpoint_is_refused_before_the_database_is_touched(home: Path, exported: dict, tmp_path: Path) -> None:
    tampered = copy.deepcopy(exported)
    tampered["config_grid"]["model_specs"]["horizons"] = [1, 2]
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(tampered))
    before = storage_listing(home)
    code, _, stderr = run_cli("queue", "import", str(path))
    assert code == 2 and "sha256 does not match" in stderr
    assert storage_listing(home) == before
