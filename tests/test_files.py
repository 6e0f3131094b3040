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
