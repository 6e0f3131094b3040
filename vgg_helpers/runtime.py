"""Where the code runs: the device, the training budget it affords, threads, bfloat16, seeds, and the facts
(hardware, versions) recorded beside every result."""
from __future__ import annotations

import os
import platform
import random
import sys
from typing import Optional

import numpy as np
import torch

__all__ = ["BUDGETS", "pick_device", "current_budget", "describe_runtime", "environment_info", "seed_everything",
           "set_threads", "bf16_supported"]

BUDGETS = ("smoke", "cpu", "gpu")


def pick_device(prefer: Optional[str] = None) -> torch.device:
    """Choose where to train: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device (``"cpu"``, ``"cuda"``, ``"mps"``; e.g. ``settings().device``); default: the
            best one available.
    Returns:
        A ``torch.device``.
    """
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def current_budget(budget: Optional[str] = None) -> str:
    """The training budget every notebook obeys.

    Args:
        budget: ``"smoke"`` (seconds, a small subset: what CI runs), ``"cpu"`` (a workshop run on a 2-core
            laptop, at most ~15 minutes a notebook) or ``"gpu"`` (the full run); e.g. ``settings().budget``.
            Default: ``"gpu"`` when CUDA is available, else ``"cpu"``.
    Returns:
        The budget's name.
    """
    budget = (budget or ("gpu" if torch.cuda.is_available() else "cpu")).strip().lower()
    if budget not in BUDGETS:
        raise ValueError(f"the budget (VGG_BOOK_BUDGET) must be one of {', '.join(BUDGETS)}; got {budget!r}")
    return budget


def describe_runtime(prefer: Optional[str] = None) -> torch.device:
    """Print the Python / torch versions and the device this notebook will use, and return the device.

    Args:
        prefer: passed to ``pick_device`` (e.g. ``settings().device``).
    Returns:
        The device. In Colab without a GPU it also says how to switch the runtime to one.
    """
    device = pick_device(prefer)
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


def _cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux, where platform.processor() is often empty)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info(device: torch.device | str | None = None) -> dict:
    """Hardware and software facts recorded beside every result.

    Args:
        device: the device the result was measured on; default ``pick_device()``.
    Returns:
        torch and Python versions, device type, CPU model, logical cores, torch threads (and the GPU's name).
    """
    device = torch.device(device) if device is not None else pick_device()
    info = {"torch": str(torch.__version__), "python": platform.python_version(), "device": device.type,
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: Optional[int] = None) -> int:
    """Set torch's intra-op thread count (default: one per logical core) and return it."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch.get_num_threads()


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes in bfloat16 natively (CPU: AVX512-BF16 or AMX through oneDNN; CUDA: Ampere+).

    Args:
        device: ``"cpu"`` or a CUDA device.
    Returns:
        True when bfloat16 autocast makes convolutions faster there rather than emulating them.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):     # a build without oneDNN
            return False
    return False
