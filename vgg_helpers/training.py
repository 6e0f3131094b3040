"""Training engine: device choice, loop, history, checkpoints, budgets."""
from __future__ import annotations

import os
import platform
import sys

import torch

__all__ = ["pick_device", "describe_runtime"]


def pick_device(prefer: str | None = None) -> torch.device:
    """Choose where to train: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device ("cpu", "cuda", "mps"); default: the environment variable ``VGG_BOOK_DEVICE``
            or the best one available.
    Returns:
        A ``torch.device``.
    """
    prefer = prefer or os.environ.get("VGG_BOOK_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_runtime() -> torch.device:
    """Print the Python / torch versions and the device this notebook will use, and return the device.

    In Colab without a GPU it also says how to switch the runtime to one.
    """
    device = pick_device()
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        where = f"cpu ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"
    else:
        where = device.type
    print(f"Python {platform.python_version()} | torch {torch.__version__} | device: {where}")
    if device.type == "cpu" and "google.colab" in sys.modules:
        print("No GPU in this Colab runtime: Runtime > Change runtime type > T4 GPU, then run this cell again.")
    return device
