"""A full artefact store in the middle of a grid pauses the queue; nothing is marked failed for it,
no temporary file is left, and after space returns `resume` ends where a clean run ends.

The artefact store is a small tmpfs mounted by the test (root only; where mounting is not
permitted the test is skipped and says why).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from forex_pipeline.io import is_temp_path
from forex_pipeline.queue import lifecycle, worker
from forex_pipeline.settings import get_settings
from forex_pipeline.store.db import dispose_engines, get_engine, session_scope
from tests.support import TINY_GRID, plain_batches, run_grid_in_process

pytestmark = pytest.mark.slow


@pytest.fixture()
def small_filesystem(tmp_path: Path):
    mount_point = tmp_path / "store"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'permission denied'}); the disk-full test needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem is full; returns it (delete it to give space back)."""
    ballast = folder / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return ballast


def _outcome(engine) -> tuple[dict, list]:  # noqa: ANN001
    from sqlalchemy import select

    from forex_pipeline.store.tables import RegimeBestModel, TrainingRun

    with session_scope(engine) as session:
        statuses = {r.model_config_hash: (r.status, r.kept) for r in session.scalars(select(TrainingRun))}
        hashes = {r.id: r.model_config_hash for r in session.scalars(select(TrainingRun))}
        bests = sorted(
            (b.regime, b.rank, hashes[b.training_run_id], b.inference_config_hash, round(float(b.score), 9))
            for b in session.scalars(select(RegimeBestModel))
        )
    return statuses, bests


def _clean_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list]:
    home = tmp_path / "clean"
    home.mkdir()
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{home / 'forex_pipeline.db'}")
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(home / "artifacts"))
    from forex_pipeline.store.db import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    engine = get_engine(settings.database_url)
    _, final = run_grid_in_process(engine, settings, TINY_GRID)
    assert final.status == "completed" and final.failed_models == 0
    result = _outcome(engine)
    dispose_engines()
    return result


def _after_first_outcome(action):  # noqa: ANN001, ANN202
    """An on_outcome hook that runs `action` once, after the first model's outcome."""
    calls = {"n": 0}

    def on_outcome(outcome, configuration) -> None:  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 1:
            action()

    return on_outcome


def test_a_full_disk_pauses_the_queue_and_resume_finishes_like_a_clean_run(
    grid_env: Path, small_filesystem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifacts = small_filesystem / "artifacts"
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(artifacts))
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    ballast: list[Path] = []

    paused = worker.run_queue(
        engine, settings, queue_id,
        plain_batches(engine, settings, on_outcome=_after_first_outcome(lambda: ballast.append(_fill(small_filesystem)))),
        artifacts_dir=settings.artifacts_dir,
    )
    assert paused.status == "paused", paused
    assert "no space left" in (paused.error_message or "").lower(), paused.error_message
    statuses, _ = _outcome(engine)
    assert [s for s, _ in statuses.values()].count("failed") == 0  # the disk is nobody's failure
    assert "running" not in [s for s, _ in statuses.values()]  # the claim went back
    assert paused.completed_models >= 1
    leftovers = [p for p in artifacts.rglob("*") if is_temp_path(p)]
    assert leftovers == [], leftovers

    ballast[0].unlink()  # space returns
    lifecycle.resume(engine, queue_id, settings)
    final = worker.run_queue(engine, settings, queue_id, plain_batches(engine, settings), artifacts_dir=settings.artifacts_dir)
    assert final.status == "completed" and final.failed_models == 0 and final.completed_models == 6
    resumed = _outcome(engine)
    dispose_engines()

    assert resumed == _clean_run(tmp_path, monkeypatch)
    assert os.path.ismount(small_filesystem)
