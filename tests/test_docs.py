"""The docs cannot drift from the product: every shell block of docs/*.md marked ```bash runnable is
executed, in order, in a scratch copy of the repository's user-facing files with a scratch DAGSTER_HOME,
SQLite project database and artefact folder; a block that fails fails the test with its text and output.

A shell block (bash, sh, shell, console) must say what it is: `runnable`, or `not-runnable: <reason>`
(it needs a running server, several hosts, a network install); an unmarked one fails the test.
Blocks of one page share their scratch folder, so a page reads as one session (plan, submit, results).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, fx_data_dir

DOCS = REPO_ROOT / "docs"
SHELLS = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# what a user has in a fresh clone and the commands read (copied, so nothing is written into the repository)
USER_FILES = ("examples", "config", "deploy", "workspace.yaml")
BLOCK_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    info: str
    code: str

    @property
    def runnable(self) -> bool:
        return self.info.split()[1:2] == ["runnable"]

    @property
    def on_postgres(self) -> bool:
        """`runnable postgres`: run against scratch PostgreSQL databases (project tables and Dagster's)."""
        return self.runnable and "postgres" in self.info.split()[2:]


def shell_blocks(path: Path) -> list[Block]:
    """The fenced shell blocks of a Markdown page, with their info strings and first lines."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        info = match.group(1).strip()
        if info.split()[:1] and info.split()[0] in SHELLS:
            blocks.append(Block(path.name, text.count("\n", 0, match.start()) + 1, info, match.group(2)))
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def runnable_pages() -> list[Path]:
    return [p for p in pages() if any(b.runnable for b in shell_blocks(p))]


def page_params() -> list:
    """One test per page with runnable blocks, marked `postgres` when some block runs on PostgreSQL."""
    return [
        pytest.param(p, id=p.name, marks=[pytest.mark.postgres] if any(b.on_postgres for b in shell_blocks(p)) else [])
        for p in runnable_pages()
    ]


def test_the_fence_parser_finds_marked_and_unmarked_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n```bash runnable\necho one\n```\ntext\n```bash not-runnable: a server\nserve\n```\n"
                    "```\nplain output\n```\n```python\nprint(1)\n```\n```sh\nls /\n```\n")
    blocks = shell_blocks(page)
    assert [(b.line, b.runnable, b.code) for b in blocks] == [(2, True, "echo one\n"), (6, False, "serve\n"), (15, False, "ls /\n")]
    assert [b.info for b in blocks][2] == "sh"


def test_every_shell_block_says_whether_it_runs() -> None:
    """`runnable`, or `not-runnable: reason`; nothing in between."""
    problems = []
    for path in pages():
        for block in shell_blocks(path):
            words = block.info.split(maxsplit=1)
            marker = words[1] if len(words) > 1 else ""
            if marker not in ("runnable", "runnable postgres") and not re.fullmatch(r"not-runnable: \S.*", marker):
                problems.append(f"{block.page}:{block.line}: ```{block.info} (mark it `runnable` or `not-runnable: <reason>`)")
    assert problems == []


def test_the_pages_a_new_team_needs_have_runnable_commands() -> None:
    assert {p.name for p in runnable_pages()} >= {"quick_start.md", "user_guide.md", "operations.md", "deployment.md"}


def scratch_env(root: Path) -> dict[str, str]:
    """A fresh DAGSTER_HOME, SQLite project database and artefact folder under `root`; the project's CLI on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREX_", "DAGSTER_"))}
    home = root / "dagster_home"
    env.update(
        DAGSTER_HOME=str(home),
        FOREX_DATABASE_URL=f"sqlite:///{home / 'forex_pipeline.db'}",
        FOREX_ARTIFACTS_DIR=str(home / "artifacts"),
        FOREX_SAMPLE_DATA=str(fx_data_dir()),
        PYTHONPATH=str(REPO_ROOT),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        COLUMNS="120",
    )
    return env


@contextmanager
def postgres_env(root: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` moved onto two scratch PostgreSQL databases: the project tables (migrated) and Dagster's
    (deploy/dagster.yaml, tables created), as on a deployment; dropped afterwards."""
    from sqlalchemy import make_url

    from tests.integration.test_dagster_postgres import pg_env, postgres_dagster_home
    from tests.store.conftest import postgres_database

    with postgres_database() as project_db, postgres_database() as dagster_db:
        home = postgres_dagster_home(root / "dagster_home_postgres")
        pg = {
            **env, **pg_env(dagster_db), "DAGSTER_HOME": str(home),
            "FOREX_DATABASE_URL": make_url(project_db).set(drivername="postgresql").render_as_string(hide_password=False),
        }
        for command in (["-m", "forex_pipeline.cli.__main__", "db", "upgrade"],
                        ["-c", "import dagster; dagster.DagsterInstance.get().get_runs(limit=1)"]):
            subprocess.run([sys.executable, *command], env=pg, check=True, capture_output=True, timeout=BLOCK_TIMEOUT_SECONDS)
        yield pg


@pytest.mark.slow
@pytest.mark.parametrize("page", page_params())
def test_runnable_commands_of_the_page_succeed(page: Path, tmp_path: Path) -> None:
    """Each runnable block, in page order, in one scratch clone: `bash -eu`, so any failing command fails it."""
    workdir = tmp_path / "clone"
    workdir.mkdir()
    for name in USER_FILES:
        source = REPO_ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, workdir / name)
    (workdir / "dagster_home").mkdir()
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", workdir / "dagster_home" / "dagster.yaml")
    blocks = [b for b in shell_blocks(page) if b.runnable]
    with ExitStack() as stack:
        env = scratch_env(workdir)
        pg = stack.enter_context(postgres_env(workdir, env)) if any(b.on_postgres for b in blocks) else env
        for block in blocks:
            out = subprocess.run(
                ["bash", "-eu", "-c", block.code], cwd=workdir, env=pg if block.on_postgres else env,
                capture_output=True, text=True, timeout=BLOCK_TIMEOUT_SECONDS,
            )
            assert out.returncode == 0, (
                f"{block.page}:{block.line} failed with exit code {out.returncode}:\n{block.code}\n"
                f"--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}"
            )
