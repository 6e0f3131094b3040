"""settings(): the one reader of the VGG_* environment variables."""
import re
from pathlib import Path

import pytest

from vgg_helpers.settings import DEFAULT_CACHE_DIR, Launch, settings


def test_unset_means_defaults():
    s = settings({})
    assert (s.budget, s.device, s.data_dir, s.store, s.progress) == (None, None, None, None, None)
    assert s.cache_dir == DEFAULT_CACHE_DIR


def test_every_variable_is_read():
    s = settings({"VGG_BOOK_BUDGET": " CPU ", "VGG_BOOK_DEVICE": "cpu", "VGG_DATA_DIR": "/data/cifar",
                  "VGG_CACHE_DIR": "/tmp/c", "VGG_BOOK_USE_STORED": "1", "VGG_BOOK_PROGRESS": "0"})
    assert (s.budget, s.device, s.data_dir, s.store, s.progress) == ("cpu", "cpu", "/data/cifar", "load", False)
    assert s.cache_dir == Path("/tmp/c")
    assert settings({"VGG_BOOK_USE_STORED": "0"}).store == "train"
    assert settings({"VGG_BOOK_SAVE_REFERENCE": "1"}).store == "record"


@pytest.mark.parametrize("env, match", [
    ({"VGG_BOOK_BUDGET": "huge"}, "VGG_BOOK_BUDGET must be one of smoke, cpu, gpu"),
    ({"VGG_BOOK_PROGRESS": "yes"}, "VGG_BOOK_PROGRESS must be 0 or 1"),
    ({"VGG_BOOK_USE_STORED": "1", "VGG_BOOK_SAVE_REFERENCE": "1"}, "contradict"),
    # torchrun's variables
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 but WORLD_SIZE=2"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be a whole number >= 1"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE must be a whole number >= 1"),
    ({"WORLD_SIZE": "2", "LOCAL_RANK": "-1"}, "LOCAL_RANK must be a whole number >= 0"),
])
def test_bad_values_are_named(env, match):
    with pytest.raises(ValueError, match=match):
        settings(env)


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("VGG_BOOK_BUDGET", "gpu")
    assert settings().budget == "gpu"


def test_no_other_module_reads_the_environment():
    # the one place: settings.py (the notebooks' setup cell reads two install variables before the package exists)
    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"os\.environ|getenv|putenv")
    files = [*(root / "vgg_helpers").glob("*.py"), *(root / "bench").glob("*.py")]
    readers = sorted(p.name for p in files if pattern.search(p.read_text()) and p.name != "settings.py")
    assert readers == [], f"only vgg_helpers/settings.py may read os.environ; also found in {readers}"


def test_torchrun_variables_describe_the_launch():
    s = settings({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29400",
                  "TORCHELASTIC_RESTART_COUNT": "2", "TORCHELASTIC_USE_AGENT_STORE": "True", "LOCAL_WORLD_SIZE": "2"})
    assert s.launched_by_torchrun
    assert s.launch == Launch(rank=3, local_rank=1, world_size=4, master_addr="node0", master_port=29400,
                              restart_count=2, agent_store=True, local_world_size=2)
    # without WORLD_SIZE there is no launch: a RANK other tools set is ignored
    assert settings({"RANK": "5"}).launch is None and not settings({}).launched_by_torchrun

