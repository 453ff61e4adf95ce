"""What every command shares: the consoles, the one error path, the exit codes, the read session.

Expected errors (`errors.InputError`: bad input, exit 2; `errors.OperationError`: a request that
cannot be done now, exit 1; a full disk or database, exit 1) are printed as one or a few lines on
stderr, naming the file, field or row; a traceback is shown only with `--debug` (or FOREX_DEBUG=1)
or for a real bug.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from forex_pipeline.errors import EXIT_BAD_INPUT, EXIT_FAILED, InputError, OperationError, is_disk_full

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Width of tables written to a pipe or file, where no terminal says how wide to be.
PIPE_WIDTH = 200
EXIT_INTERRUPTED = 130
MAX_MESSAGE_CHARS = 4000
F = TypeVar("F", bound=Callable[..., Any])
# Set by `run(..., as_process=True)` (the console script): a `reading` command may then end the process itself.
_AS_PROCESS = {"on": False}


def console() -> Console:
    """Standard output console, sized when used; piped output is PIPE_WIDTH wide unless COLUMNS says otherwise."""
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=PIPE_WIDTH)
    return out


def errors() -> Console:
    """Standard error console."""
    return Console(stderr=True, soft_wrap=True)


def print_error(message: str) -> None:
    """`error: message` on stderr, clipped, with no markup taken from the message."""
    errors().print(f"[red]error:[/red] {escape(_clip(message))}", highlight=False)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print `error: message` on stderr and leave with `code` (2: bad input, 1: failed operation)."""
    print_error(message)
    raise typer.Exit(code=code)


class DatabaseUnavailable(OperationError):
    """The project database does not exist or has no schema yet; the message says what to run."""


@contextmanager
def read_session(url: str | None = None) -> Iterator[Session]:
    """A read session on an existing project database (never creates one); DatabaseUnavailable otherwise."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from forex_pipeline.keys import DATABASE_URL_ENV
    from forex_pipeline.store.db import describe_url, make_engine, parse_url, sqlite_path

    url = url or os.environ.get(DATABASE_URL_ENV)   # it wins over the settings: then they are not loaded
    if not url:
        from forex_pipeline.settings import get_settings

        url = get_settings().database_url
    parsed = parse_url(url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None and not path.exists():
        raise DatabaseUnavailable(f"no project database at {path}; run `forex-pipeline db upgrade` first")
    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine) as session:
            yield session
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        raise DatabaseUnavailable(
            f"cannot read the project database {describe_url(url)}: {first} (run `forex-pipeline db upgrade`?)"
        ) from exc
    finally:
        engine.dispose()


def _clip(message: str) -> str:
    message = message.strip()
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + " ..."


def exit_code_for(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, message) for an expected error; None for a bug (which keeps its traceback)."""
    if isinstance(exc, InputError):
        return EXIT_BAD_INPUT, str(exc)
    if is_disk_full(exc):
        return EXIT_FAILED, f"disk full: {' '.join(str(exc).split())[:300]}; free space, then `forex-pipeline queue resume`"
    if isinstance(exc, OperationError):
        return EXIT_FAILED, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    return None


def debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("FOREX_DEBUG", "") not in ("", "0")


def reading(command: F) -> F:
    """Mark a command that reads, prints and returns (`bests`, `history`, `queue status`).

    Run as the process's own command (`run(..., as_process=True)`), it runs without the cyclic garbage
    collector and ends with `os._exit` once its output is flushed: the collector's passes over the
    objects the imports create and the interpreter's teardown of those modules cost about 50 and
    100 ms of a 0.5 s command (benchmarks/bench_scale.py cli_*; issue 14). Such a command holds no
    file, child process or temporary directory that needs an exit handler. Called in a process that
    goes on (tests, `run` without as_process), it is the plain function.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _AS_PROCESS["on"]:
            return command(*args, **kwargs)
        gc.disable()
        try:
            command(*args, **kwargs)
        except typer.Exit as exc:
            _end_process(exc.exit_code)
        _end_process(0)

    return wrapper  # type: ignore[return-value]


def _end_process(code: int) -> NoReturn:
    """Flush what was printed and leave at once, skipping the interpreter's teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe: nothing more can be written anyway
            pass
    os._exit(code)


def run(app: typer.Typer, argv: Sequence[str] | None = None, *, as_process: bool = False) -> NoReturn:
    """Run the command line `argv` (default sys.argv[1:]) with the one error path; always exits.

    `as_process`: this is the process's whole work (the console script), so the import-heavy start runs
    without the cyclic garbage collector (it is back on before any command but a `reading` one)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != "--debug"]
    _AS_PROCESS["on"] = as_process
    if as_process:
        gc.disable()
    try:
        app(args=args, prog_name="forex-pipeline", standalone_mode=True)
    except SystemExit:
        raise
    except BaseException as exc:
        handled = exit_code_for(exc)
        if handled is None or debug:
            raise
        code, message = handled
        print_error(message)
        raise SystemExit(code) from None
    raise SystemExit(0)
