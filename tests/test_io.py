"""The one atomic write: readers see the old file or the whole new one; a failure leaves nothing."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from forex_pipeline.io import atomic_write, atomic_write_text, is_temp_path, temp_path


def test_text_write_replaces_the_target_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, failure: BaseException) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def half_write(temp: Path) -> None:
        temp.write_bytes(b"par")
        raise failure

    with pytest.raises(type(failure)):
        atomic_write(target, half_write, durable=True)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_a_writer_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="produced no file"):
        atomic_write(tmp_path / "x", lambda temp: None)
    assert list(tmp_path.iterdir()) == []


def test_temporary_names_are_hidden_unique_and_recognisable(tmp_path: Path) -> None:
    target = tmp_path / "EURUSD.parquet"
    first, second = temp_path(target), temp_path(target)
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(".EURUSD.parquet") and is_temp_path(first)
    assert not is_temp_path(target)
