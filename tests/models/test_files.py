"""The model file store: safe names, atomic writes, sha256 verification and orphan clean-up."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from forex_pipeline.models.files import (
    ModelFileError,
    delete_model_file,
    find_orphans,
    model_file_path,
    remove_orphans,
    sha256_file,
    verify,
    write_atomic,
)


def _writer(content: bytes):
    def write(path: Path) -> None:
        path.write_bytes(content)
    return write


def test_path_is_derived_from_partition_keys(tmp_path):
    path = model_file_path(tmp_path, "EURUSD-1h-d365-9f68a3f0", "rf-pca-h5-b2520f5b", ".joblib")
    assert path == tmp_path / "models" / "EURUSD-1h-d365-9f68a3f0" / "rf-pca-h5-b2520f5b.joblib"


@pytest.mark.parametrize(
    ("feature_set_key", "model_key", "field"),
    [
        ("EUR/USD-1h", "rf-none-h5", "feature_set_key"),
        ("..", "rf-none-h5", "feature_set_key"),
        (".hidden", "rf-none-h5", "feature_set_key"),
        ("EURUSD-1h", "../../etc/passwd", "model_key"),
        ("EURUSD-1h", "rf none", "model_key"),
        ("EURUSD-1h", "", "model_key"),
        ("EURUSD|1h", "rf", "feature_set_key"),
        ("EURUSD-1h", "rf\\x", "model_key"),
    ],
)
def test_unsafe_keys_never_become_paths(tmp_path, feature_set_key, model_key, field):
    with pytest.raises(ModelFileError, match=field):
        model_file_path(tmp_path, feature_set_key, model_key, ".joblib")


def test_unsafe_suffix_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match="suffix"):
        model_file_path(tmp_path, "a", "b", "/x")


def test_write_atomic_records_sha256_and_size_and_leaves_no_temp(tmp_path):
    content = os.urandom(5000)
    path = tmp_path / "models" / "fs" / "m.joblib"
    info = write_atomic(path, _writer(content))
    assert info.sha256 == hashlib.sha256(content).hexdigest() == sha256_file(path)
    assert info.bytes == 5000 and info.path == path
    assert list(path.parent.iterdir()) == [path]
    verify(path, info.sha256, info.bytes)


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    path = tmp_path / "m.joblib"
    old = write_atomic(path, _writer(b"old model"))

    def broken(temp: Path) -> None:
        temp.write_bytes(b"half a mod")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, broken)
    assert path.read_bytes() == b"old model"
    assert list(tmp_path.iterdir()) == [path]
    verify(path, old.sha256)


def test_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(ModelFileError, match="no file"):
        write_atomic(tmp_path / "m.joblib", lambda temp: None)
    assert not (tmp_path / "m.joblib").exists()


def test_verify_refuses_missing_truncated_and_tampered_files(tmp_path):
    path = tmp_path / "m.joblib"
    info = write_atomic(path, _writer(b"0123456789" * 100))
    path.write_bytes(b"0123456789" * 50)
    with pytest.raises(ModelFileError, match=r"truncated or altered: 500 bytes on disk, 1000 recorded"):
        verify(path, info.sha256, info.bytes)
    with pytest.raises(ModelFileError, match="corrupt or was modified"):
        verify(path, info.sha256)
    path.write_bytes(b"0123456789" * 99 + b"0123456780")
    with pytest.raises(ModelFileError, match=f"{path}.*sha256"):
        verify(path, info.sha256, info.bytes)
    path.unlink()
    with pytest.raises(ModelFileError, match=f"model file {path} is missing"):
        verify(path, info.sha256)


def test_delete_model_file(tmp_path):
    path = tmp_path / "m.joblib"
    path.write_bytes(b"x")
    assert delete_model_file(path) is True
    assert delete_model_file(path) is False


def test_orphans_are_found_and_removed(tmp_path):
    kept = write_atomic(model_file_path(tmp_path, "fs1", "kept", ".joblib"), _writer(b"k")).path
    lost = write_atomic(model_file_path(tmp_path, "fs1", "lost", ".joblib"), _writer(b"l")).path
    alone = write_atomic(model_file_path(tmp_path, "fs2", "alone", ".pt"), _writer(b"a")).path
    stale_temp = kept.parent / ".kept.joblib.tmp-deadbeef"
    stale_temp.write_bytes(b"partial")
    outside = tmp_path / "features.parquet"
    outside.write_bytes(b"not a model")
    assert set(find_orphans(tmp_path, [kept])) == {lost, alone, stale_temp}
    removed = remove_orphans(tmp_path, [kept])
    assert set(removed) == {lost, alone, stale_temp}
    assert kept.is_file() and outside.is_file()
    assert not alone.parent.exists(), "an emptied feature-set folder is removed"
    assert find_orphans(tmp_path, [kept]) == []


def test_recent_files_are_not_orphans_within_min_age(tmp_path):
    fresh = model_file_path(tmp_path, "fs", "m", ".joblib").with_name(".m.joblib.tmp-0123")
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"still being written")
    assert find_orphans(tmp_path, [], min_age_seconds=3600) == []
    old = time.time() - 7200
    os.utime(fresh, (old, old))
    assert find_orphans(tmp_path, [], min_age_seconds=3600) == [fresh]


def test_no_model_store_yet_means_no_orphans(tmp_path):
    assert find_orphans(tmp_path / "empty", []) == []
    assert remove_orphans(tmp_path / "empty", []) == []
