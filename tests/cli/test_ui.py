"""`forex-pipeline ui`: serves the explorer on the project database; refuses a missing one in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.e2e.explorer_support import ROOT, free_port
from tests.support import wait_for


def default_signals() -> None:
    """In the child before it starts: SIGTERM and SIGINT as a shell hands them over. A pytest worker that
    ran Dagster in process may hold them otherwise (Dagster maps SIGTERM to its SIGINT handler), and an
    ignored or blocked signal stays so across exec: the server would then outlive the test's SIGTERM."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ui(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "forex_pipeline.cli", "ui", *args], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_signals)


def test_ui_refuses_a_missing_database_and_a_bad_port(isolated_storage: Path) -> None:
    missing = ui(env=dict(os.environ))
    out, err = missing.communicate(timeout=120)
    assert missing.returncode == 1 and "Traceback" not in err
    assert "no project database at" in err and "forex-pipeline db upgrade" in err
    bad_port = ui("--port", "70000", env=dict(os.environ))
    _, err = bad_port.communicate(timeout=120)
    assert bad_port.returncode == 2 and "65535" in err and "--port" in err


def test_ui_serves_the_explorer_on_the_given_port(grid_env: Path) -> None:
    port = free_port()
    server = ui("--port", str(port), env=dict(os.environ))
    try:
        def page() -> str:
            if server.poll() is not None:
                raise AssertionError(f"ui exited: {server.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    return response.read().decode()
            except OSError:
                return ""

        assert "<title>forex_pipeline explorer</title>" in wait_for("the explorer page", page, timeout=90)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=5) as response:
            layout = response.read().decode()
        assert all(f'"value": "{tab}"' in layout.replace('":"', '": "') for tab in ("history", "regimes", "definitions", "queues"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:   # generous: a process in a disk read (a saturated CI disk) ends only once the read returns
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            raise AssertionError(f"forex-pipeline ui did not stop within 120 s of SIGTERM (this process: SIGTERM "
                                 f"{signal.getsignal(signal.SIGTERM)!r}, blocked {signal.pthread_sigmask(signal.SIG_BLOCK, set())})") from None
