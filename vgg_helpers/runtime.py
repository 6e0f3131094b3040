"""Where the code runs: the device, the training budget it affords, threads, bfloat16, seeds, the process's
place among several training processes, and the facts (hardware, versions) recorded beside every result."""
from __future__ import annotations

import os
import platform
import random
import sys
from typing import Optional

import numpy as np
import torch

from .checks import whole_number
from .settings import DEVICES

__all__ = ["BUDGETS", "pick_device", "current_budget", "describe_runtime", "environment_info", "seed_everything",
           "set_threads", "usable_cores", "bf16_supported", "autocast_dtype", "process_world", "sum_across_processes",
           "unwrap"]

BUDGETS = ("smoke", "cpu", "gpu")
# Budgets whose chapters have been run top to bottom on a GPU. Until "gpu" is here, a GPU runtime (Colab) that
# sets no budget uses the cpu budget, which every chapter's committed outputs were measured with.
RUN_ON_A_GPU: frozenset = frozenset()


def _as_device(device: torch.device | str, asked: str) -> torch.device:
    """``device`` as a ``torch.device``; a clear ValueError for a value torch does not know as a device."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        try:
            return torch.device(device.strip().lower())
        except RuntimeError:
            pass
    hint = " (for an NVIDIA GPU use cuda)" if isinstance(device, str) and device.strip().lower() == "gpu" else ""
    unset = ", or unset it for the best device available" if asked.startswith("VGG_BOOK_DEVICE") else ""
    raise ValueError(f"{asked} is not a device{hint}: use {DEVICES}{unset}.")


def _check_available(device: torch.device, asked: str) -> torch.device:
    """``device`` when this machine has it; else a ValueError that says so and what to use instead."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{asked} asks for CUDA but torch.cuda.is_available() is False on this machine; "
                             f"unset it or use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            have = "only cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise ValueError(f"{asked} asks for CUDA device {device.index} but this machine has {count} ({have}); "
                             f"unset it or use cuda:0")
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(f"{asked} asks for Apple's MPS but torch.backends.mps.is_available() is False on this "
                             f"machine; unset it or use cpu")
    elif device.type != "cpu":
        raise ValueError(f"{asked} is not a device the book trains on: use {DEVICES}, or unset it for the best "
                         f"device available.")
    return device


def pick_device(prefer: Optional[str] = None) -> torch.device:
    """Choose where to train: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``; e.g.
            ``settings().device``); default: the best one available.
    Returns:
        A ``torch.device``.
    Raises:
        ValueError: ``prefer`` is not a device, or names one this machine does not have (``cuda`` without a GPU,
            say); the message names ``VGG_BOOK_DEVICE``, where such a value usually comes from.
    """
    if prefer is not None and not (isinstance(prefer, str) and not prefer.strip()):
        asked = f"VGG_BOOK_DEVICE / device={str(prefer) if isinstance(prefer, torch.device) else prefer!r}"
        return _check_available(_as_device(prefer, asked), asked)
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
            Default: ``"cpu"``, also on a GPU, until the ``gpu`` budget has been run top to bottom on one
            (``RUN_ON_A_GPU``); ``describe_runtime`` says so on a GPU.
    Returns:
        The budget's name.
    Raises:
        ValueError: ``budget`` is not one of the three names.
    """
    if budget is None or budget == "":
        budget = "gpu" if torch.cuda.is_available() and "gpu" in RUN_ON_A_GPU else "cpu"
    name = budget.strip().lower() if isinstance(budget, str) else budget
    if name not in BUDGETS:
        raise ValueError(f"the budget (VGG_BOOK_BUDGET) must be one of {', '.join(BUDGETS)}; got {budget!r}")
    return name


def describe_runtime(prefer: Optional[str] = None, budget: Optional[str] = None,
                     data_dir: Optional[str] = None) -> torch.device:
    """Print one line -- torch's version, the device this notebook will use and the precision it trains in there
    (bfloat16 only where it is native), the budget, and the data source -- and return the device.

    Args:
        prefer: passed to ``pick_device`` (e.g. ``settings().device``).
        budget: the budget asked for (``settings().budget``; ``None``: not set). On a GPU with no budget set,
            a second line says that the measured ``cpu`` budget is used and how to ask for the full runs.
        data_dir: the CIFAR-10 folder asked for (``settings().data_dir``; ``None``: the official download,
            once, when a chapter first needs the images).
    Returns:
        The device. In Colab without a GPU a second line says how to switch the runtime to one.
    Raises:
        ValueError: as ``pick_device`` and ``current_budget``.
    """
    device = pick_device(prefer)
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        where = f"cpu, {torch.get_num_threads()} threads"
    else:
        where = device.type
    amp = autocast_dtype(device) if device.type in ("cpu", "cuda") else None
    precision = str(amp or torch.float32).removeprefix("torch.")    # what mixed-precision training uses here
    data = "your folder" if data_dir else "download"
    print(f"torch {torch.__version__} · device: {where}, {precision} · budget: {current_budget(budget)} · "
          f"data: {data}")
    if device.type == "cuda" and not budget and current_budget() == "cpu":
        print("GPU found: using the measured cpu budget (VGG_BOOK_BUDGET=gpu: full, unmeasured runs)")
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
        torch and Python versions, device type, CPU model, the instruction set torch's CPU kernels use
        (``get_cpu_capability``: e.g. AVX2, AVX512), whether the CPU has native bfloat16, logical cores, torch
        threads (and the GPU's name): what the measurement protocol asks beside every time.
    Raises:
        ValueError: ``device`` is not a device, or a CUDA device this machine does not have.
    """
    device = _as_device(device, f"device={device!r}") if device is not None else pick_device()
    if device.type == "cuda":
        _check_available(device, f"device={str(device)!r}")
    info = {"torch": str(torch.__version__), "python": platform.python_version(), "device": device.type,
            "cpu": _cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_bf16": bf16_supported("cpu"), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a CPU run repeats exactly.

    Args:
        seed: a whole number from 0 to 2**32 - 1 (NumPy's limit), e.g. 0.
    Raises:
        TypeError: ``seed`` is not a whole number.
        ValueError: ``seed`` is outside 0 .. 2**32 - 1.
    """
    seed = whole_number("seed", seed, 0, "NumPy's limit; e.g. 0", maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def usable_cores() -> int:
    """The logical cores this process may run on: fewer than the machine has when it is pinned to some of them
    (``taskset``, a container's CPU set, the test suite's workers); ``os.cpu_count()`` where the system cannot
    say (macOS, Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def set_threads(threads: Optional[int] = None) -> int:
    """Set torch's intra-op thread count and return it.

    Args:
        threads: a whole number >= 1; ``None``: one per logical core this process may use (``usable_cores``).
    Returns:
        The thread count torch now uses.
    Raises:
        TypeError: ``threads`` is not ``None`` or a whole number.
        ValueError: ``threads`` < 1.
    """
    if threads is not None:
        threads = whole_number("threads", threads, 1, "e.g. 2, or None for one per logical core")
    torch.set_num_threads(threads or usable_cores())
    return torch.get_num_threads()


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes in bfloat16 natively (CPU: the AVX512-BF16 or AMX instructions; CUDA: compute
    capability 8.0 or more, i.e. Ampere and later).

    Two kinder answers are not taken: ``torch.cuda.is_bf16_supported()`` can say True on older GPUs (e.g. a T4,
    7.5), and oneDNN's ``_is_mkldnn_bf16_supported()`` says True on any x86 CPU with AVX-512, where bfloat16 is
    emulated: on a 2-core Intel Xeon with AVX-512 but no AVX512-BF16, a training step of the book's networks took
    2.3 to 2.8 times as long with bfloat16 autocast as in float32 (``python -m bench.precision``). Where the
    instructions are there but oneDNN says no (it was told not to use them, e.g. ``ONEDNN_MAX_CPU_ISA=AVX2``: a step
    then took 10.8 times as long in bfloat16 on an AMD EPYC with AVX512-BF16), float32. Other CPUs (ARM) keep
    oneDNN's answer.

    Args:
        device: ``"cpu"`` or a CUDA device.
    Returns:
        True when bfloat16 autocast makes convolutions faster there rather than emulating them.
    Raises:
        ValueError: ``device`` is not a device torch knows.
    """
    device = _as_device(device, f"device={device!r}")
    if device.type == "cuda":
        return torch.cuda.is_available() and tuple(torch.cuda.get_device_capability(device)) >= (8, 0)
    if device.type == "cpu":
        found = cpu_bf16_instructions()
        native = (found["avx512_bf16"], found["amx"])
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86") and None not in native:
            return any(native) and found["onednn_says_bf16"] is not False
        return bool(found["onednn_says_bf16"])
    return False


def cpu_bf16_instructions() -> dict[str, Optional[bool]]:
    """What this CPU offers torch for bfloat16, by torch's own checks, each ``None`` where this torch cannot say:
    ``avx512``, ``avx512_bf16``, ``amx`` and ``onednn_says_bf16`` (oneDNN's answer, also True where it emulates).
    ``bf16_supported`` decides from it; ``python -m bench.precision`` records it beside its step times."""
    asks = {"avx512": "_is_avx512_supported", "avx512_bf16": "_is_avx512_bf16_supported",
            "amx": "_is_amx_tile_supported"}
    found: dict[str, Optional[bool]] = {}
    for key, name in asks.items():
        ask = getattr(torch.cpu, name, None)
        found[key] = bool(ask()) if callable(ask) else None
    try:
        found["onednn_says_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):          # a build without oneDNN
        found["onednn_says_bf16"] = None
    return found


def autocast_dtype(device: torch.device | str = "cpu") -> Optional[torch.dtype]:
    """The precision mixed-precision training uses on ``device``, or ``None`` for none.

    Args:
        device: ``"cpu"`` or a CUDA device.
    Returns:
        ``torch.bfloat16`` where it is native (``bf16_supported``); ``torch.float16`` on a CUDA GPU without
        native bfloat16 (e.g. Colab's T4: float16's small range needs a gradient scaler, which ``train`` adds);
        ``None`` elsewhere (an emulated precision would be slower than float32).
    Raises:
        ValueError: ``device`` is not a device torch knows.
    """
    device = _as_device(device, f"device={device!r}")
    if bf16_supported(device):
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.float16
    return None


# ---- several training processes (torch.distributed; vgg_helpers.distributed sets them up) ----


def process_world() -> tuple[int, int]:
    """This process's place among the training processes.

    Returns:
        ``(rank, world_size)``: ``(0, 1)`` unless ``torch.distributed`` has been initialised (under ``torchrun``,
        by ``vgg_helpers.distributed.setup``).
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sum_across_processes(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Element-wise sums of ``values`` over every training process (an all-reduce); unchanged in one process.

    Args:
        values: numbers this process counted (loss sums, correct predictions, images).
        device: where the all-reduce runs: ``cpu`` for gloo, the process's GPU for nccl.
    Returns:
        The sums, in the same order, as Python floats (every process gets the same list).
    """
    if process_world()[1] == 1:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network inside a ``DistributedDataParallel`` (or ``DataParallel``) wrapper; other models as they are.

    Its ``state_dict`` has the plain names (``features.0.weight``, not ``module.features.0.weight``), so a
    checkpoint written from it loads into the network built alone.
    """
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model
