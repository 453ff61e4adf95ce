"""The one atomic file write: fill a temporary file beside the target, then rename it into place.

A reader never sees a half-written file and a failed write leaves nothing behind: the temporary
file is removed on any error (including KeyboardInterrupt and ENOSPC). Temporary names carry
TEMP_MARKER so a crash's leftovers can be recognised and swept (`pipeline.keep_or_delete.cleanup_files`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

TEMP_MARKER = ".tmp-"


def temp_path(path: Path) -> Path:
    """A unique hidden temporary name beside `path`, e.g. `.EURUSD.parquet.tmp-<uuid>`."""
    return path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex}")


def is_temp_path(path: Path) -> bool:
    """True for a name made by temp_path (a leftover of an interrupted write)."""
    return path.name.startswith(".") and TEMP_MARKER in path.name


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path | str, write: Callable[[Path], None], *, durable: bool = False) -> Path:
    """Let `write` fill a temporary file beside `path`, then rename it over `path`.

    `durable` also fsyncs the file and its directory (model files: the database records their
    checksum, so they must survive a power cut once the transaction commits).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    try:
        write(temp)
        if not temp.is_file():
            raise OSError(f"writing {path}: the writer produced no file at {temp}")
        if durable:
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write `text` (UTF-8) atomically to `path`."""
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8", newline=""))
