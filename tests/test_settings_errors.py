"""settings() refuses a VGG_BOOK_DEVICE that is not a device, without importing torch (issue 16)."""
import subprocess
import sys
from pathlib import Path

import pytest

from vgg_helpers.settings import settings

SETTINGS_PY = Path(__file__).resolve().parents[1] / "vgg_helpers" / "settings.py"


@pytest.mark.parametrize("value,hint", [("gpu", " (for an NVIDIA GPU use cuda)"), ("cuda0", ""), ("tpu", ""),
                                        ("cuda:x", "")])
def test_device_that_torch_does_not_know_is_named(value, hint):
    with pytest.raises(ValueError) as e:
        settings({"VGG_BOOK_DEVICE": value})
    assert str(e.value) == (f"VGG_BOOK_DEVICE must be cpu, cuda, cuda:N (N = 0, 1, ...) or mps; got {value!r}{hint}. "
                            f"Unset it to use the best device available.")


@pytest.mark.parametrize("value,device", [("cpu", "cpu"), (" CUDA ", "cuda"), ("cuda:1", "cuda:1"), ("MPS", "mps"),
                                          ("", None)])
def test_devices_are_accepted_lower_cased(value, device):
    assert settings({"VGG_BOOK_DEVICE": value}).device == device


def test_environ_must_be_a_mapping():
    with pytest.raises(TypeError, match=r"^environ must be a mapping of variable names to values"):
        settings("VGG_BOOK_BUDGET=smoke")


def test_settings_module_does_not_import_torch():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('settings', {str(SETTINGS_PY)!r})\n"
            "module = sys.modules['settings'] = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "module.settings({'VGG_BOOK_DEVICE': 'cuda'})\n"
            "assert 'torch' not in sys.modules, 'settings.py imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
