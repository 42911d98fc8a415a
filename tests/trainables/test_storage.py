"""The shared file-system helpers: local paths and URIs, and atomic replacement."""

import os

import pyarrow.fs as pafs
import pytest

from omasgan.trainables.storage.filesystems import open_filesystem, write_atomic


def test_local_root_becomes_an_absolute_path_on_the_local_filesystem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fs, base = open_filesystem("runs/study")
    assert isinstance(fs, pafs.LocalFileSystem)
    assert base == os.path.join(str(tmp_path), "runs", "study")


def test_uri_root_is_resolved_by_pyarrow(tmp_path):
    fs, base = open_filesystem(f"file://{tmp_path}/store")
    assert isinstance(fs, pafs.LocalFileSystem) and base == f"{tmp_path}/store"


def test_write_atomic_creates_folders_and_replaces_the_file(tmp_path):
    fs, base = open_filesystem(str(tmp_path))
    target = f"{base}/deep/er/record.json"
    write_atomic(fs, target, b"old")
    write_atomic(fs, target, b"new")
    assert (tmp_path / "deep" / "er" / "record.json").read_bytes() == b"new"
    assert os.listdir(tmp_path / "deep" / "er") == ["record.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    fs, base = open_filesystem(str(tmp_path))
    write_atomic(fs, f"{base}/record.json", b"old")
    with pytest.raises(TypeError):
        write_atomic(fs, f"{base}/record.json", "not bytes")  # the stream refuses str mid-write
    assert (tmp_path / "record.json").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["record.json"]
