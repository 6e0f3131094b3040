"""The atomic writer and JSON on top of it."""
import json
import os

import pytest

from vgg_helpers.files import atomic_write, write_json


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "h.json"
    atomic_write(path, lambda f: f.write("old"), mode="w")

    def crash(f):
        f.write("half of the new con")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash, mode="w")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["h.json"]       # no temporary file left behind


def test_write_json_creates_folders(tmp_path):
    path = write_json(tmp_path / "a" / "b.json", {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]}


# Issue 16, case 4: files got mode 0600 whatever the umask, and a killed save left its *.tmp file forever.
def test_written_files_get_the_permissions_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "cache.npz", lambda f: f.write(b"x"))
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o002)
        assert write_json(tmp_path / "h.json", {}).stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_leftovers_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)                                      # a process that has exited
    leftover = tmp_path / f".run.pt.{dead_pid}.abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    in_progress = tmp_path / f".run.pt.{os.getppid()}.def456.tmp"  # a live process may still be writing it
    in_progress.write_bytes(b"being written")
    other = tmp_path / f".other.pt.{dead_pid}.ghi789.tmp"           # belongs to another file: not ours to judge
    other.write_bytes(b"x")
    atomic_write(tmp_path / "run.pt", lambda f: f.write(b"new"))
    assert not leftover.exists() and in_progress.exists() and other.exists()
    assert (tmp_path / "run.pt").read_bytes() == b"new"


def test_json_is_always_valid_and_bad_values_are_named(tmp_path):
    import numpy as np
    from pathlib import Path

    path = write_json(tmp_path / "r.json", {"acc": np.float32(0.5), "loss": float("nan"), "dir": Path("a")})
    assert json.loads(path.read_text()) == {"acc": 0.5, "loss": None, "dir": "a"}
    with pytest.raises(TypeError, match=r"\['model'\] is a Linear.*cannot be stored as JSON"):
        import torch
        write_json(tmp_path / "r.json", {"model": torch.nn.Linear(1, 1)})
    assert json.loads(path.read_text())["acc"] == 0.5                  # the old file is intact


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write(tmp_path, lambda f: f.write(b"x"))
