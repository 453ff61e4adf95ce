"""The machine probe: a fresh machine's time estimate is the reference table scaled by a short
measurement of this machine, cached with its host, time and load, and measured again when stale."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from forex_pipeline.grid import probe as probe_module
from forex_pipeline.grid.probe import PROBE_FILE, MachineProbe, is_fresh, machine_probe, read_probe, write_probe

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


def _probe(rate: float = 3.0, *, host: str = "here", at: datetime = NOW, load: float = 0.5) -> MachineProbe:
    return MachineProbe(seconds=rate * probe_module.PROBE_REFERENCE_SECONDS, rate=rate, host=host,
                        measured_at=at.isoformat(timespec="seconds"), load=load)


def test_a_probe_is_fresh_only_on_its_host_while_recent_and_at_a_similar_load() -> None:
    probe = _probe(load=0.5)
    assert is_fresh(probe, host="here", now=NOW + timedelta(minutes=5), load=0.9)
    assert not is_fresh(probe, host="elsewhere", now=NOW, load=0.5)
    assert not is_fresh(probe, host="here", now=NOW + timedelta(seconds=probe_module.PROBE_MAX_AGE_SECONDS + 1), load=0.5)
    assert not is_fresh(probe, host="here", now=NOW - timedelta(hours=1), load=0.5)  # clock went back: measure again
    assert not is_fresh(probe, host="here", now=NOW, load=12.0)  # the machine got much busier
    assert not is_fresh(_probe(load=12.0), host="here", now=NOW, load=0.5)  # or much quieter


def test_a_probe_round_trips_and_an_unreadable_cache_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "store" / PROBE_FILE
    assert read_probe(path) is None
    write_probe(path, _probe())
    assert read_probe(path) == _probe()
    for broken in ("{", "[]", '{"seconds": 1}', '{"seconds": "x", "rate": 1, "host": "h", "measured_at": "t", "load": 0}'):
        path.write_text(broken)
        assert read_probe(path) is None


def test_machine_probe_measures_once_then_reads_the_cache_until_it_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forex_pipeline.settings import get_settings

    measured: list[MachineProbe] = []

    def measure(_settings: object) -> MachineProbe:
        measured.append(_probe(rate=2.0 + len(measured), host=probe_module.socket.gethostname(), at=datetime.now(timezone.utc)))
        return measured[-1]

    monkeypatch.setattr(probe_module, "measure_probe", measure)
    monkeypatch.setattr(probe_module, "load_per_cpu", lambda: 0.5)
    settings = get_settings()
    first = machine_probe(settings, tmp_path)
    assert machine_probe(settings, tmp_path) == first and len(measured) == 1
    monkeypatch.setattr(probe_module, "load_per_cpu", lambda: 8.0)
    assert machine_probe(settings, tmp_path).rate == 3.0 and len(measured) == 2
    assert read_probe(tmp_path / PROBE_FILE) == measured[-1]


def test_a_plan_with_nothing_recorded_scales_the_table_by_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    from forex_pipeline.grid.estimate import plan
    from forex_pipeline.grid.expand import expand_grid, load_grid_spec
    from forex_pipeline.settings import get_settings

    monkeypatch.setattr(probe_module, "machine_probe", lambda _settings: _probe(rate=4.0))
    grid = expand_grid(load_grid_spec(Path(__file__).resolve().parents[2] / "examples" / "grids" / "demo.yaml"))
    settings = get_settings()
    table, probed = plan(grid, settings=settings), plan(grid, settings=settings, probe=True)
    assert probed.estimated_seconds == pytest.approx(4.0 * table.estimated_seconds)
    assert "not scaled to this machine" in table.calibration.describe()
    assert "uncalibrated" in probed.calibration.describe() and "x4.00" in probed.calibration.describe()


def test_the_probe_runs_real_work_and_reports_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from forex_pipeline.settings import get_settings

    monkeypatch.setattr(probe_module, "PROBE_DAYS", 60)
    monkeypatch.setattr(probe_module, "PROBE_WARMUP_DAYS", 45)
    probe = probe_module.measure_probe(get_settings())
    assert probe.seconds > 0 and probe.rate == pytest.approx(probe.seconds / probe_module.PROBE_REFERENCE_SECONDS)
    assert probe.host == probe_module.socket.gethostname()
