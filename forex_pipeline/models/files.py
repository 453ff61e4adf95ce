"""The model file store: safe paths from partition keys, atomic sha256-recorded writes, verification.

Layout: ``<artifacts_dir>/models/<feature_set_key>/<model_key><suffix>``. Both keys are partition keys
(letters, digits, ``.``, ``_``, ``-``, not starting with ``.``, which marks temporary files); anything else, ``EUR/USD`` included, is refused, so a user
string can never become a path. A file is written to a hidden temporary name in its final folder,
fsynced, then renamed over the target, so readers see either the old file or the whole new one.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forex_pipeline.io import atomic_write

MODELS_SUBDIR = "models"
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
_SUFFIX_PATTERN = re.compile(r"^(\.[A-Za-z0-9]+)+$")
_CHUNK = 1 << 20


class ModelFileError(RuntimeError):
    """A model file is missing, truncated, modified, or its name is unsafe; the message names the file."""


@dataclass(frozen=True)
class ModelFileInfo:
    """Where a model file lies, its sha256 hex digest and its size in bytes."""

    path: Path
    sha256: str
    bytes: int


def safe_key(value: str, field: str) -> str:
    """Return `value` if it is a partition key usable as one path component, else raise naming `field`."""
    if not isinstance(value, str) or not _KEY_PATTERN.match(value) or value.startswith("."):
        raise ModelFileError(
            f"{field} {value!r} is not a safe file name: only letters, digits, '.', '_' and '-' are allowed, "
            "and it may not start with '.'"
        )
    return value


def model_file_path(artifacts_dir: Path, feature_set_key: str, model_key: str, suffix: str) -> Path:
    """The path of one model configuration's file, derived from its two partition keys."""
    safe_key(feature_set_key, "feature_set_key")
    safe_key(model_key, "model_key")
    if not _SUFFIX_PATTERN.match(suffix):
        raise ModelFileError(f"suffix {suffix!r} is not a file suffix like '.joblib'")
    return Path(artifacts_dir) / MODELS_SUBDIR / feature_set_key / f"{model_key}{suffix}"


def stored_model_path(path: Path, artifacts_dir: Path) -> str:
    """The path recorded in the database: relative to the artefact store when the file lies under it
    (so moving DAGSTER_HOME or mounting the store elsewhere on a worker keeps it valid), else absolute."""
    path, root = Path(path).absolute(), Path(artifacts_dir).absolute()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def resolve_model_path(stored: str | Path, artifacts_dir: Path) -> Path:
    """Where a recorded model path lies on this machine: relative paths hang under `artifacts_dir`."""
    stored = Path(stored)
    return stored if stored.is_absolute() else Path(artifacts_dir) / stored


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, write: Callable[[Path], None]) -> ModelFileInfo:
    """Let `write` fill a temporary file beside `path`, fsync it, rename it over `path`; return its info."""
    path = Path(path)
    recorded: dict[str, Any] = {}

    def fill(temp: Path) -> None:
        write(temp)
        if not temp.is_file():
            raise ModelFileError(f"writing {path}: the writer produced no file at {temp}")
        recorded.update(sha256=sha256_file(temp), bytes=temp.stat().st_size)

    atomic_write(path, fill, durable=True)
    return ModelFileInfo(path=path, sha256=recorded["sha256"], bytes=recorded["bytes"])


def verify(path: Path, expected_sha256: str, expected_bytes: int | None = None) -> None:
    """Raise ModelFileError unless `path` exists with exactly the recorded size and sha256."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing")
    size = path.stat().st_size
    if expected_bytes is not None and size != expected_bytes:
        raise ModelFileError(
            f"model file {path} is truncated or altered: {size} bytes on disk, {expected_bytes} recorded"
        )
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelFileError(
            f"model file {path} is corrupt or was modified: sha256 {actual} does not match the recorded "
            f"{expected_sha256} ({size} bytes on disk)"
        )


QUARANTINE_SUBDIR = "quarantine"


def quarantine(path: Path, artifacts_dir: Path) -> Path | None:
    """Move a model file that failed its checksum aside (artifacts/quarantine/<relative path>), so it is
    never loaded again but stays for inspection; returns the new place (None when it was missing)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        relative = path.resolve().relative_to(Path(artifacts_dir).resolve() / MODELS_SUBDIR)
    except ValueError:
        relative = Path(path.name)
    target = Path(artifacts_dir) / QUARANTINE_SUBDIR / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target


def delete_model_file(path: Path) -> bool:
    """Delete a model file; True if it existed. Empty parent folders are left for orphan clean-up."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def find_orphans(artifacts_dir: Path, known_paths: Iterable[Path], *, min_age_seconds: float = 0.0) -> list[Path]:
    """Files under the model store that no known model references (stale temp files included).

    Files modified less than `min_age_seconds` ago are skipped, so a write still in progress in
    another process is never reported.
    """
    root = Path(artifacts_dir) / MODELS_SUBDIR
    if not root.is_dir():
        return []
    known = {Path(p).resolve() for p in known_paths}
    cutoff = time.time() - min_age_seconds
    orphans = [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.resolve() not in known and path.stat().st_mtime <= cutoff
    ]
    return orphans


def remove_orphans(artifacts_dir: Path, known_paths: Iterable[Path], *, min_age_seconds: float = 0.0) -> list[Path]:
    """Delete the files `find_orphans` reports and any folders left empty; return the deleted files."""
    removed = [path for path in find_orphans(artifacts_dir, known_paths, min_age_seconds=min_age_seconds)
               if delete_model_file(path)]
    root = Path(artifacts_dir) / MODELS_SUBDIR
    if root.is_dir():
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
    return removed
