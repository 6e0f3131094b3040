"""The learner's install check: one PASS/FAIL line per item, a fix for every failure, exit status 0 only when all
pass. The download site is never contacted here: reachability is passed in."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from vgg_helpers import install_check
from vgg_helpers.data import CIFAR10_CLASSES
from vgg_helpers.install_check import (Item, check_data, check_device, check_imports, check_torch_version,
                                       check_training_step, main, run_checks)


def never(url: str, timeout: float) -> bool:
    return False


def always(url: str, timeout: float) -> bool:
    return True


def image_folders(root: Path, classes=CIFAR10_CLASSES) -> Path:
    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
    return root


def test_a_failure_names_its_fix_and_a_pass_does_not():
    assert Item("data", True, "found", "never shown").line() == "PASS  data      found"
    assert Item("data", False, "missing", "set it").line() == "FAIL  data      missing -- set it"


def test_the_packages_import_and_a_missing_one_is_named():
    assert check_imports().ok
    missing = check_imports(("torch", "no_such_package_here"))
    assert not missing.ok and "no_such_package_here" in missing.detail and "requirements.txt" in missing.fix


def test_a_package_that_fails_to_load_is_named_with_its_error(tmp_path, monkeypatch):
    """A torchvision built for another torch raises RuntimeError at import, not ImportError: a FAIL line."""
    (tmp_path / "broken_vision.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    item = check_imports(("torch", "broken_vision"))
    assert not item.ok and "broken_vision (RuntimeError: operator torchvision::nms" in item.detail
    assert "same build" in item.fix


@pytest.mark.parametrize("version, ok", [("2.14.1+cu130", True), ("2.5.1", True), ("2.10.0", True),
                                         ("2.4.1", False), ("2.2.0", False), ("1.13.1+cpu", False)])
def test_torch_must_be_at_least_the_lowest_the_book_accepts(version, ok):
    item = check_torch_version(version)
    assert item.ok is ok and version in item.detail
    assert ok or "pip install" in item.fix


def test_the_device_line_names_the_precision(monkeypatch):
    from vgg_helpers import runtime

    monkeypatch.setattr(runtime, "bf16_supported", lambda device="cpu": False)
    item = check_device("cpu")
    assert item.ok and "float32" in item.detail and "no native bfloat16" in item.detail
    missing = check_device("cuda:99")                                        # a GPU this machine lacks
    assert not missing.ok and "VGG_BOOK_DEVICE" in missing.fix


def test_data_in_an_image_folder_is_found_and_a_wrong_folder_is_refused(tmp_path):
    assert check_data(str(image_folders(tmp_path / "cifar")), tmp_path / "cache", never).ok
    empty = check_data(str(tmp_path), tmp_path / "cache", never)
    assert not empty.ok and "'train/' and 'test/'" in empty.detail and "VGG_DATA_DIR" in empty.fix
    partial = check_data(str(image_folders(tmp_path / "nine", CIFAR10_CLASSES[:9])), tmp_path / "cache", never)
    assert not partial.ok and CIFAR10_CLASSES[9] in partial.detail


def test_without_a_folder_the_download_is_found_or_reachable_or_a_failure(tmp_path):
    cache = tmp_path / "cache"
    assert not check_data(None, cache, never).ok                                 # offline, nothing here
    assert check_data(None, cache, always).ok and "170 MB" in check_data(None, cache, always).detail
    (cache / "cifar-10-batches-py").mkdir(parents=True)
    assert check_data(None, cache, never).detail == "CIFAR-10, downloaded before"


def test_one_training_step_runs_and_moves_the_weights():
    item = check_training_step("cpu")
    assert item.ok and "loss" in item.detail


def test_main_passes_on_a_ready_machine_and_fails_otherwise(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(install_check, "_reachable", never)
    monkeypatch.setenv("VGG_DATA_DIR", str(image_folders(tmp_path / "cifar")))
    monkeypatch.setenv("VGG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VGG_BOOK_DEVICE", raising=False)
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out[:-1]] == ["imports", "torch", "device", "data", "training"]
    assert all(line.startswith("PASS") for line in out) and "ready for the book" in out[-1]
    monkeypatch.setenv("VGG_DATA_DIR", str(tmp_path / "nowhere"))
    assert main([]) == 1
    out = capsys.readouterr().out
    assert "FAIL  data" in out and "not ready: fix data" in out
    assert main(["--help"]) == 2


def test_a_failed_import_stops_the_checks(monkeypatch):
    monkeypatch.setattr(install_check, "check_imports",
                        lambda packages=install_check.PACKAGES: Item("imports", False, "cannot import", "pip"))
    items = run_checks()
    assert len(items) == 1 and not items[0].ok


def test_the_lowest_torch_is_the_one_requirements_txt_names():
    text = (Path(__file__).resolve().parents[1] / "requirements.txt").read_text()
    bound = re.search(r"^torch>=([\d.]+)", text, re.M).group(1)
    assert install_check.LOWEST_TORCH == tuple(int(x) for x in bound.split("."))
