"""The two kinds of expected error every entry point reports in one clean line.

`InputError`: what the user gave is wrong (a file, a field, a row, a name); the message names it
and says what is wrong; the CLI exits 2. `OperationError`: the input was fine but the operation
could not be done in the current state (a finished queue, a failed model, a full disk); the CLI
exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class InputError(ValueError):
    """Bad input; the message names the file, field or row and what is wrong (exit code 2)."""


class OperationError(RuntimeError):
    """A valid request that cannot be carried out now; the message says why (exit code 1)."""


class DiskFullError(OperationError):
    """The artefact store or the database ran out of space; the queue pauses and nothing is lost."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_TEXT = ("database or disk is full", "no space left on device", "could not extend file", "disk quota exceeded")


def is_disk_full(exc: BaseException | None) -> bool:
    """ENOSPC/EDQUOT anywhere in the exception chain, or a database that reports a full disk
    (SQLite "database or disk is full", PostgreSQL "could not extend file")."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS):
            return True
        if any(text in str(exc).lower() for text in _DISK_FULL_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
