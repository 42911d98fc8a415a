"""Atomic replacement of a file (omasgan.atomic_write): a hidden temporary beside the target, moved
over it; on failure the old content stays and no temporary is left."""

import os

import pytest

from omasgan.atomic_write import hidden_temporary, replace_via_temporary, write_file_atomic


def test_temporary_is_hidden_unique_and_next_to_the_target():
    first, second = hidden_temporary("/a/b/rows.parquet"), hidden_temporary("/a/b/rows.parquet")
    assert first.startswith("/a/b/.rows.parquet.") and first.endswith(".tmp") and first != second
    assert hidden_temporary("rows.parquet").startswith(".rows.parquet.")  # a bare name stays in the folder


def test_write_file_atomic_creates_folders_and_replaces_the_file(tmp_path):
    target = tmp_path / "deep" / "er" / "model.json"
    write_file_atomic(target, lambda handle: handle.write(b"old"))
    write_file_atomic(str(target), lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new" and os.listdir(target.parent) == ["model.json"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.json"
    write_file_atomic(target, lambda handle: handle.write(b"old"))

    def half_then_fail(handle):
        handle.write(b"ne")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.json"]


def test_replace_via_temporary_moves_the_written_temporary_or_deletes_it(tmp_path):
    files, calls = {}, []

    def write(temporary):
        calls.append(("write", os.path.dirname(temporary)))
        files[temporary] = b"x"

    def move(source, target):
        calls.append(("move", target))
        files[target] = files.pop(source)

    replace_via_temporary(f"{tmp_path}/t.bin", write, move, files.pop)
    assert files == {f"{tmp_path}/t.bin": b"x"} and calls == [("write", str(tmp_path)), ("move", f"{tmp_path}/t.bin")]

    def failing_move(source, target):
        raise OSError("no room")

    with pytest.raises(OSError, match="no room"):
        replace_via_temporary(f"{tmp_path}/u.bin", write, failing_move, files.pop)
    assert files == {f"{tmp_path}/t.bin": b"x"}  # the temporary was deleted
