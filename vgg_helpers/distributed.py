"""Training on several processes, as the paper did on four GPUs: data parallelism with torch.distributed.

The paper split every batch across four GPUs and averaged their gradients (sec. 3.3). PyTorch's own engine for
that is ``DistributedDataParallel`` (DDP), started by ``torchrun``: one process per GPU (or per CPU share), each
with a replica of the network and its own share of every batch; ``loss.backward()`` averages the gradients over
all processes (an all-reduce), so every replica takes the same step.

* ``setup`` joins the process group (``gloo`` on CPUs, ``nccl`` on GPUs) from the variables torchrun sets;
* ``prepare_model`` makes batch norm compute its statistics over the whole batch (``SyncBatchNorm``) and wraps
  the network in DDP;
* ``run`` trains one run in this process with the book's own engine (``build_vgg``, ``make_loaders``, ``train``, its
  history and atomic checkpoints): every process builds the same network and walks the same batches, taking its
  own share of each;
* ``main`` (``python -m vgg_helpers.distributed``) is ``run`` as a command, under torchrun or alone. Every setting
  is a flag; by default it trains the batch-norm VGG-11 at half width (``models.CIFAR_BN_MODEL``) with its recipe
  (``training.BATCH_NORM_RECIPE``) on every training image but a 5,000-image hold-out, for 2 epochs of batch 128.

Launch on one machine with two processes, then on two machines with four GPUs each::

    torchrun --standalone --nproc-per-node=2 -m vgg_helpers.distributed --out runs/ddp
    torchrun --nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 --rdzv-id=vgg \\
        -m vgg_helpers.distributed --out runs/ddp --train-size 10240

``--max-restarts=N`` lets torchrun restart every process after one dies; they resume from the last checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, NoReturn, Optional, Sequence

import torch
from torch import nn

from .checks import choice, describe, flag, real_number, whole_number
from .configs import VGGConfig
from .data import RunBudget, load_cifar10, make_loaders
from .files import atomic_write, write_json
from .models import CIFAR_BN_MODEL, build_vgg
from .runtime import environment_info, pick_device, process_world, set_threads, unwrap
from .settings import Launch, Settings, child_environment, settings
from .training import BATCH_NORM_RECIPE, CheckpointError, TrainConfig, evaluate, read_checkpoint, train

__all__ = ["Process", "process_device", "setup", "cleanup", "CPUSyncBatchNorm", "convert_sync_batchnorm", "prepare_model",
           "weight_spread", "throughput", "allreduce_seconds", "ring_allreduce_seconds", "expected_speedup",
           "Launched", "launch_command", "launch", "weight_difference", "DEFAULT_RUN", "DEFAULT_MODEL", "run", "command_args",
           "parse_command", "main"]

CHECKPOINT, HISTORY, SUMMARY, WEIGHTS = "checkpoint.pt", "history.json", "summary.json", "weights.pt"


@dataclass(frozen=True)
class Process:
    """Where this process stands among the processes training together."""

    rank: int               # 0 ... world_size - 1; rank 0 prints and writes the files
    local_rank: int         # its number on this machine: the index of its GPU
    world_size: int         # processes training together (1: a plain single-process run)
    device: torch.device    # where it computes
    backend: Optional[str]  # "gloo" (CPU) or "nccl" (GPU); None when no process group was started

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0


def _folder(name: str, value: Any) -> Path:
    """``value`` as the path of a run's folder: a ``str`` or ``Path`` that is not an existing file."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a run's folder, a str or Path such as 'runs/ddp'; got {describe(value)}.")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(value)!r} is a file, not a folder: a run keeps checkpoint.pt, history.json, "
                         "weights.pt and summary.json in a folder. Pass a folder's path (the file is left as it is).")
    return path


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. build_vgg(...)); got {describe(model)}.")
    return model


def _check_process(process: Any) -> Process:
    if not isinstance(process, Process):
        raise TypeError(f"process must be a Process, what setup() returns; got {describe(process)}.")
    return process


def _check_budget(run: Any) -> RunBudget:
    if not isinstance(run, RunBudget):
        raise TypeError(f"run must be a RunBudget (data sizes, epochs, batch size; e.g. DEFAULT_RUN or a plan's "
                        f".run); got {describe(run)}. Build one: RunBudget(train_size=None, val_size=5000, epochs=2, "
                        "batch_size=128).")
    return run


def process_device(launch: Launch, device: str | None = None) -> torch.device:
    """The device of one of torchrun's processes.

    Args:
        launch: what torchrun told the process (``settings().launch``).
        device: ``"cpu"`` or ``"cuda"``; ``None``: CUDA when this machine has a GPU for each of its processes
            (``LOCAL_WORLD_SIZE``), else the CPU -- two processes on Colab's one GPU train on the CPU, with a note.
    Returns:
        ``cuda:LOCAL_RANK`` or ``cpu``.
    Raises:
        TypeError: ``launch`` is not a ``Launch`` (``None`` outside torchrun), or ``device`` not a string.
        ValueError: a device that is not ``cpu``/``cuda``, or ``cuda`` asked for with fewer GPUs than processes.
    """
    if not isinstance(launch, Launch):
        raise TypeError(f"launch must be what torchrun told this process (settings().launch); got {describe(launch)}"
                        ". Outside torchrun there is none: use setup(), or runtime.pick_device() for one process.")
    if isinstance(device, torch.device):
        device = str(device)
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be 'cpu', 'cuda' or None; got {describe(device)}.")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device is None:
        device = "cuda" if count >= launch.local_world_size else "cpu"
        if 0 < count < launch.local_world_size and launch.local_rank == 0:
            print(f"{launch.local_world_size} processes but {count} GPU(s) on this machine: the processes train on "
                  f"the CPU (gloo). For GPUs, start at most {count} (torchrun --nproc-per-node={count}).", flush=True)
    wanted = device.split(":")[0]
    choice("device", wanted, ("cpu", "cuda"))
    if wanted == "cpu":
        return torch.device("cpu")
    if count == 0:
        raise ValueError(f"device={device!r} but PyTorch sees no GPU on this machine: train on the CPU "
                         "(--device cpu, or leave the device out).")
    if launch.local_rank >= count:
        raise ValueError(f"this process has LOCAL_RANK={launch.local_rank} but the machine has {count} GPU(s): "
                         f"start at most {count} processes per machine (torchrun --nproc-per-node={count}), or "
                         "train on the CPU (--device cpu).")
    return torch.device("cuda", launch.local_rank)


def setup(config: Settings | None = None, device: str | None = None,
          timeout: timedelta = timedelta(minutes=10)) -> Process:
    """Join the process group when torchrun started this process; otherwise describe a single process.

    Args:
        config: the environment (``settings()``: torchrun's ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` ...).
        device: ``"cpu"`` or ``"cuda"``; default ``VGG_BOOK_DEVICE``, else ``process_device``'s choice (CUDA when
            there is a GPU for each process on this machine).
        timeout: how long a collective call waits for the other processes before it fails.
    Returns:
        A ``Process``. Under torchrun on GPUs, process ``local_rank`` computes on GPU ``local_rank``.
    Raises:
        ValueError: a device that is not ``cpu``/``cuda``, or fewer GPUs on this machine than processes.
    """
    config = config or settings()
    launch = config.launch
    if launch is None:
        return Process(0, 0, 1, pick_device(device or config.device), None)
    dev = process_device(launch, device or config.device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        backend = "nccl"        # NVIDIA's collective library: all-reduce over NVLink / PCIe / InfiniBand
    else:
        backend = "gloo"        # collectives over TCP (shared memory on one machine)
    dist = torch.distributed
    if launch.agent_store:
        # The processes meet in torchrun's key-value store at MASTER_ADDR:MASTER_PORT. That store outlives a
        # restart (--max-restarts), and the addresses the killed processes left in it made the restarted ones
        # connect to dead ports (3 of 5 restarts failed here, torch 2.14): each attempt gets its own key prefix.
        store = dist.TCPStore(launch.master_addr, launch.master_port, launch.world_size, is_master=False,
                              timeout=timeout)
        store = dist.PrefixStore(f"vgg-attempt-{launch.restart_count}/", store)
        dist.init_process_group(backend, store=store, rank=launch.rank, world_size=launch.world_size,
                                timeout=timeout)
    else:   # init_method "env://": rank 0 serves the store at MASTER_ADDR:MASTER_PORT
        dist.init_process_group(backend, rank=launch.rank, world_size=launch.world_size, timeout=timeout)
    return Process(launch.rank, launch.local_rank, launch.world_size, dev, backend)


def cleanup() -> None:
    """Leave the process group (if this process joined one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class _SumAcrossProcesses(torch.autograd.Function):
    """All-reduce (sum) that autograd can differentiate: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        torch.distributed.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """Batch norm whose batch mean and variance are taken over every process's share of the batch.

    ``torch.nn.SyncBatchNorm`` runs on GPUs (and a few other accelerators) only, with one all-gather per layer in
    the forward pass and one all-reduce in the backward pass. This version gives the same statistics with
    all-reduces only, so that the book's CPU runs (``gloo``) can sync: two in the forward pass (each channel's sum
    and count, then the centred squares) and, through autograd, two more in the backward pass. Four exchanges per
    layer and step instead of PyTorch's two: what the book measures as the cost of syncing is this version's.
    In eval mode, or in a single process, it is an ordinary ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or process_world()[1] == 1:
            return super().forward(x)
        dims = (0, 2, 3)                                              # all but the channel: (N, C, H, W) -> (C,)
        n = torch.tensor([x.numel() / x.size(1)], dtype=x.dtype, device=x.device)
        sums = _SumAcrossProcesses.apply(torch.cat([x.sum(dims), n]))
        count = sums[-1].detach()                                     # images x pixels in the whole batch
        mean = sums[:-1] / count
        centred = x - mean.view(1, -1, 1, 1)
        var = _SumAcrossProcesses.apply((centred * centred).sum(dims)) / count   # biased, as batch norm uses
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / max(count.item() - 1, 1), m)   # unbiased
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1) if self.affine else y


def convert_sync_batchnorm(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Replace every ``BatchNorm2d`` by its synchronised version, keeping its weights and statistics.

    Args:
        model: the network.
        device: ``cuda`` uses ``torch.nn.SyncBatchNorm``; ``cpu`` uses ``CPUSyncBatchNorm``.
    Returns:
        The same network object, changed in place (and returned, as torch's converter does).
    """
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            setattr(model, name, sync.to(next(child.buffers(), torch.empty(0)).device))
        else:
            convert_sync_batchnorm(child, device)
    return model


def prepare_model(model: nn.Module, process: Process, sync_batchnorm: bool = True) -> nn.Module:
    """Move the network to the process's device; with several processes, sync batch norm and wrap it in DDP.

    Args:
        model: the network, built with the same seed in every process (DDP also copies rank 0's weights to all).
        process: from ``setup``.
        sync_batchnorm: ``False`` leaves batch norm per process (its statistics over the process's share only):
            the chapter's demonstration of why batch norm needs syncing.
    Returns:
        ``DistributedDataParallel(model)``, or the model itself in a single process. ``runtime.unwrap`` gives
        back the network.
    Raises:
        TypeError: ``model`` is not a network, ``process`` not a ``Process``, ``sync_batchnorm`` not a bool.
    """
    _check_model(model)
    process, sync_batchnorm = _check_process(process), flag("sync_batchnorm", sync_batchnorm)
    if process.backend is None:
        return model.to(process.device)
    if sync_batchnorm:
        model = convert_sync_batchnorm(model, process.device)
    model = model.to(process.device)
    ids = [process.device.index] if process.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def weight_spread(model: nn.Module, device: torch.device | str = "cpu") -> float:
    """The largest difference between processes of any weight or statistic (0.0: every replica is identical).

    Every process must call it (it all-reduces the element-wise maximum and minimum over the processes).
    """
    _check_model(model)
    if process_world()[1] == 1:
        return 0.0
    tensors = [t.detach().float().flatten() for t in unwrap(model).state_dict().values() if t.is_floating_point()]
    flat = torch.cat(tensors).to(device)
    high, low = flat.clone(), flat.clone()
    torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
    return float((high - low).max())


def throughput(step_times: Sequence[float], batch_size: int) -> Optional[float]:
    """Training images per second from the times at which successive steps reached the same point.

    The median step time is used: it ignores the first steps (warm-up) and the pauses for evaluation between
    epochs. ``None`` with fewer than three steps.

    Raises:
        TypeError: ``step_times`` is not a list of numbers, or ``batch_size`` not a whole number.
        ValueError: the times do not increase, or ``batch_size`` < 1.
    """
    if isinstance(step_times, (str, bytes)) or not isinstance(step_times, Sequence):
        raise TypeError(f"step_times must be a list of times in seconds (time.perf_counter() after each step); got "
                        f"{describe(step_times)}.")
    times = [real_number(f"step_times[{i}]", t) for i, t in enumerate(step_times)]
    batch_size = whole_number("batch_size", batch_size, 1, "the global batch, e.g. 128")
    if any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError("step_times must increase (the time at which each step ended, in order); got "
                         f"{describe(step_times)}.")
    gaps = [b - a for a, b in zip(times, times[1:])][1:]   # the first gap includes warm-up
    return batch_size / statistics.median(gaps) if gaps else None


def allreduce_seconds(numel: int, device: torch.device | str = "cpu", repeats: int = 5) -> Optional[float]:
    """The median time of one all-reduce (sum) of ``numel`` float32 numbers over the process group.

    Every process must call it. ``None`` in a single process (there is nothing to exchange).
    """
    numel = whole_number("numel", numel, 1, "the parameters to exchange")
    repeats = whole_number("repeats", repeats, 1)
    if process_world()[1] == 1:
        return None
    x = torch.ones(numel, device=device)
    times = []
    for _ in range(repeats + 1):                         # the first call sets up the connections: not counted
        torch.distributed.barrier()
        start = time.perf_counter()
        torch.distributed.all_reduce(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def ring_allreduce_seconds(nbytes: float, processes: int, bandwidth: float) -> float:
    """Time of a ring all-reduce: each process sends (and receives) ``2 (N - 1) / N`` times the data.

    Args:
        nbytes: size of the gradients in bytes (4 bytes per float32 parameter).
        processes: N, the processes (GPUs) taking part.
        bandwidth: bytes per second each process can send (and receive at the same time).
    Returns:
        Seconds, ignoring latency (right for large gradients).

    >>> round(ring_allreduce_seconds(552e6, 4, 10e9), 4)      # VGG-16's gradients, 4 GPUs, 10 GB/s
    0.0828
    """
    nbytes = real_number("nbytes", nbytes, 0, expected="a size in bytes >= 0 (4 per float32 parameter)")
    processes = whole_number("processes", processes, 1, "GPUs taking part")
    bandwidth = real_number("bandwidth", bandwidth, 0, low_ok=False, expected="bytes per second > 0, e.g. 10e9")
    return 2 * (processes - 1) / processes * nbytes / bandwidth


def expected_speedup(processes: int, step_seconds: float, exchange_seconds: float) -> float:
    """Speed-up of ``processes`` data-parallel workers over one, when the exchange does not overlap compute.

    Each worker computes its ``1/N`` share of the batch (``step_seconds / N``: one worker needs ``step_seconds``
    for the whole batch), then waits ``exchange_seconds`` for the all-reduce. DDP overlaps the all-reduce with
    the backward pass, so a real run can do better; anything else that synchronises (batch norm, stragglers)
    makes it worse.

    >>> round(expected_speedup(4, 1.0, 0.0), 2), round(expected_speedup(4, 1.0, 0.0167), 2)
    (4.0, 3.75)
    """
    processes = whole_number("processes", processes, 1, "data-parallel workers")
    step_seconds = real_number("step_seconds", step_seconds, 0, low_ok=False, expected="seconds > 0")
    exchange_seconds = real_number("exchange_seconds", exchange_seconds, 0, expected="seconds >= 0")
    return step_seconds / (step_seconds / processes + exchange_seconds)


@dataclass(frozen=True)
class Launched:
    """What one launch of the training script left behind."""

    summary: dict           # its summary.json
    log: str                # what it printed (stdout and stderr in order, torchrun's messages included)
    seconds: float          # wall time of the launch, start-up and data loading included


def launch_command(out: str | os.PathLike, processes: Optional[int], *args: str, max_restarts: int = 0,
                   threads: Optional[int] = None) -> list[str]:
    """The command ``launch`` runs: ``python -m vgg_helpers.distributed --out OUT ARGS``, alone or under torchrun
    (its arguments are ``launch``'s, checked the same way; nothing is started).

    >>> launch_command("two", 2, "--epochs", "1")[2:6]
    ['torch.distributed.run', '--standalone', '--nproc-per-node=2', '--max-restarts=0']
    >>> launch_command("one", None, threads=1)[1:]
    ['-m', 'vgg_helpers.distributed', '--out', 'one', '--threads', '1']
    """
    out = _folder("out", out)
    processes = whole_number("processes", processes, 1, none_means="no torchrun, one process")
    for i, arg in enumerate(args):
        if not isinstance(arg, (str, os.PathLike)):
            unpack = (f" To pass a list of options, unpack it: launch(out, {processes}, *options)."
                      if isinstance(arg, (list, tuple)) else "")
            raise TypeError(f"launch's options must be separate strings, e.g. launch(out, {processes}, '--epochs', "
                            f"'3'); option {i + 1} is {describe(arg)}.{unpack}")
    max_restarts = whole_number("max_restarts", max_restarts, 0, "restarts after a failure, e.g. 1")
    if max_restarts and processes is None:
        raise ValueError(f"max_restarts={max_restarts} needs torchrun, which restarts the processes: give a number "
                         "of processes (launch(out, 1, ...)), or leave max_restarts at 0.")
    threads = whole_number("threads", threads, 1, none_means="the default")
    script = ["-m", "vgg_helpers.distributed", "--out", str(out), *map(os.fspath, args)]
    script += ["--threads", str(threads)] if threads is not None else []
    if processes is None:
        return [sys.executable, *script]
    # --log-dir: torchrun's own files go in the run's folder, not in a new temporary folder per launch
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            f"--max-restarts={max_restarts}", f"--log-dir={out / 'torchrun'}", *script]


def launch(out: str | os.PathLike, processes: Optional[int], *args: str, max_restarts: int = 0,
           threads: Optional[int] = None, timeout: float = 3600) -> Launched:
    """Run ``python -m vgg_helpers.distributed --out OUT ARGS`` in a new process: alone, or under torchrun
    (``launch_command``).

    Args:
        out: the run's folder.
        processes: how many processes torchrun starts on this machine; ``None``: no torchrun, one process.
        args: more options for the script, each a separate string (``"--lr", "0.05"``; a path may be a ``Path``);
            a list of options is unpacked with ``*``: ``launch(out, 2, *command_args(...))``.
        max_restarts: torchrun's ``--max-restarts``: how often it restarts all processes after one fails.
        threads: torch threads per process (default: torchrun's 1 per process, or torch's own for one process).
        timeout: seconds before the launch is stopped.
    Returns:
        A ``Launched`` with the summary the run wrote.
    Raises:
        TypeError, ValueError: a bad argument, before anything is started.
        RuntimeError: the launch failed; the message ends with what it printed last.
    """
    cmd = launch_command(out, processes, *args, max_restarts=max_restarts, threads=threads)
    out = Path(out)
    timeout = real_number("timeout", timeout, 0, low_ok=False, expected="seconds > 0, e.g. 3600")
    start = time.perf_counter()
    # one stream, unbuffered: the log keeps the order in which the processes and torchrun wrote
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env={**child_environment(), "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - start
    log = proc.stdout
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}); it printed last:\n{log[-4000:]}")
    return Launched(summary=json.loads((out / SUMMARY).read_text()), log=log, seconds=seconds)


def weight_difference(a: str | os.PathLike, b: str | os.PathLike) -> float:
    """The largest absolute difference between the weights two runs saved (their ``weights.pt``).

    Args:
        a, b: the two runs' folders.
    Raises:
        FileNotFoundError: a folder has no ``weights.pt`` (its run has not finished).
        CheckpointError: a ``weights.pt`` is damaged or holds no weights (it is left as it is).
        ValueError: the two runs trained different networks.
    """
    wa, wb = _saved_weights("a", a), _saved_weights("b", b)
    if wa.keys() != wb.keys() or any(wa[k].shape != wb[k].shape for k in wa):
        raise ValueError(f"{a} and {b} hold different networks: compare runs of the same --arch and --width.")
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa if wa[k].numel())


def _saved_weights(name: str, run_folder: Any) -> dict[str, torch.Tensor]:
    """The ``state_dict`` a finished run saved in ``run_folder/weights.pt``."""
    path = _folder(name, run_folder) / WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"No {WEIGHTS} in {name}={str(run_folder)!r}: a run writes it when it finishes. "
                                "Pass the folder of a finished run (launch's out).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"Cannot read {path}: it is damaged or not a PyTorch file ({type(e).__name__}). The "
                              "file was left as it is.") from e
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not the weights a run saves (a state_dict). "
                              "The file was left as it is.")
    return state


# What the command trains unless its flags say otherwise.
DEFAULT_RUN = RunBudget(train_size=None, val_size=5000, epochs=2, batch_size=128)
DEFAULT_MODEL = {**CIFAR_BN_MODEL, "arch": "vgg11", "width": 0.5}
# build_vgg arguments the command takes as flags (with their types)
_MODEL_FLAGS = {"arch": str, "width": float, "head": str, "init": str, "input_size": int, "num_classes": int,
                "batch_norm": bool}


def run(out: str | os.PathLike, process: Process, run: RunBudget = DEFAULT_RUN,
        model: Optional[Mapping[str, Any]] = None, config: Optional[TrainConfig] = None, *, split_seed: int = 0,
        augment: bool = True, data_dir: str | None = None, cache_dir: str | os.PathLike | None = None,
        crash: Optional[tuple[int, int]] = None, sync_batchnorm: bool = True) -> dict:
    """Train one run in this process (one of ``process.world_size``), resuming from ``out``'s checkpoint.

    Args:
        out: folder for ``checkpoint.pt`` (every epoch), and at the end ``history.json``, ``weights.pt``
            and ``summary.json`` (rank 0 writes them, atomically).
        process: from ``setup``.
        run: data sizes and epochs; ``run.batch_size`` is the global batch, split evenly over the processes.
        model: ``build_vgg`` arguments (default ``DEFAULT_MODEL``).
        config: the recipe (default ``TrainConfig(**BATCH_NORM_RECIPE)``); its ``epochs`` are ``run.epochs``.
        split_seed: seed of the validation split and the random subsets (the same in every process).
        augment: random crop and flip of the training images.
        data_dir, cache_dir: where CIFAR-10 is (``load_cifar10``).
        crash: ``(rank, step)``: that process kills itself (SIGKILL) at that step, once per ``out`` folder:
            a fault to recover from (tests and the chapter's demonstration).
        sync_batchnorm: ``False``: batch norm per process (see ``prepare_model``).
    Returns:
        The summary (also in ``summary.json``).
    """
    out, process, run = _folder("out", out), _check_process(process), _check_budget(run)
    out.mkdir(parents=True, exist_ok=True)
    model_kwargs = dict(DEFAULT_MODEL if model is None else model)
    config = TrainConfig(**{**asdict(config or TrainConfig(**BATCH_NORM_RECIPE)), "epochs": run.epochs})
    checkpoint = out / CHECKPOINT
    resumed_after = read_checkpoint(checkpoint)["epoch"] if checkpoint.exists() else 0
    data = load_cifar10(data_dir, cache_dir=cache_dir)
    # the same split, order and augmentation in every process; each takes its own share of every batch
    loaders = make_loaders(data, run, seed=split_seed, augment=augment, device=process.device,
                           rank=process.rank, world_size=process.world_size)
    torch.manual_seed(config.seed)                      # the same initial weights in every process
    net = prepare_model(build_vgg(**model_kwargs), process, sync_batchnorm)
    step_times: list[float] = []
    marker = out / ".crashed-once"

    def on_step(_model: nn.Module, step: int, _loss: float) -> None:
        step_times.append(time.perf_counter())
        if crash is not None and (process.rank, step) == tuple(crash) and not marker.exists():
            marker.write_text(f"rank {process.rank} killed itself at step {step}\n")
            os.kill(os.getpid(), signal.SIGKILL)      # a hard crash: no cleanup, no exception handler

    if resumed_after and process.is_main:
        print(f"resuming from the checkpoint written after epoch {resumed_after}", flush=True)
    meta = dict(data=data.source, processes=process.world_size, backend=process.backend)
    history = train(net, loaders.train, loaders.val, config, device=process.device, checkpoint=checkpoint,
                    on_step=on_step, meta=meta)
    test_loss, test_acc = evaluate(net, loaders.test, process.device)
    spread = weight_spread(net, process.device)
    exchange = allreduce_seconds(sum(p.numel() for p in net.parameters()), process.device)
    recipe = {k: v for k, v in asdict(config).items() if k != "epochs"}
    summary = dict(processes=process.world_size, backend=process.backend, device=str(process.device.type),
                   data=data.source, global_batch=run.batch_size,
                   batch_per_process=run.batch_size // process.world_size, epochs=run.epochs,
                   steps_this_launch=len(step_times), resumed_after_epoch=resumed_after,
                   images_per_s=throughput(step_times, run.batch_size), train_loss=history.train_loss[-1],
                   test_loss=test_loss, test_acc=test_acc, test_images=loaders.test.dataset_size,
                   weight_spread=spread, sync_batchnorm=sync_batchnorm, allreduce_s=exchange, model=model_kwargs,
                   recipe=recipe, run=asdict(run), split_seed=split_seed, augment=augment,
                   environment=environment_info(process.device))
    if process.is_main:
        history.save(out / HISTORY)
        atomic_write(out / WEIGHTS, lambda f: torch.save(unwrap(net).state_dict(), f))
        write_json(out / SUMMARY, summary)
    return summary


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vgg_helpers.distributed",
        description="Train a VGG on several processes (launch with torchrun) or one; every setting is a flag "
                    "(default: the batch-norm VGG-11 at half width and its recipe).")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt, history.json, weights.pt, summary.json")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: VGG_BOOK_DEVICE, else cuda if present")
    p.add_argument("--data-dir", help="CIFAR-10 folder (default: VGG_DATA_DIR, else download)")
    p.add_argument("--cache-dir", help="decoded-image cache (default: VGG_CACHE_DIR)")
    p.add_argument("--threads", type=int, help="torch threads per process (default: torch's; torchrun sets 1 "
                                               "per process when it starts several)")
    sizes = p.add_argument_group("data sizes (RunBudget)")
    for f in fields(RunBudget):
        kind = "'none' or a whole number" if f.name in ("train_size", "test_size") else "a whole number"
        sizes.add_argument(_flag(f.name), type=_size if f.name in ("train_size", "test_size") else int,
                           default=getattr(DEFAULT_RUN, f.name), help=f"{kind} (default {getattr(DEFAULT_RUN, f.name)})")
    sizes.add_argument("--split-seed", type=int, default=0, help="seed of the validation split and subsets")
    sizes.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                       help="random crop and flip of the training images")
    net = p.add_argument_group("network (build_vgg)")
    for name, kind in _MODEL_FLAGS.items():
        default = DEFAULT_MODEL.get(name)
        if kind is bool:
            net.add_argument(_flag(name), action=argparse.BooleanOptionalAction, default=default)
        else:
            net.add_argument(_flag(name), type=kind, default=default, help=f"default {default}")
    recipe = p.add_argument_group("recipe (TrainConfig)")
    defaults = TrainConfig(**BATCH_NORM_RECIPE)
    for f in fields(TrainConfig):
        if f.name == "epochs":                           # the data sizes' epochs
            continue
        default = getattr(defaults, f.name)
        if f.type in (bool, "bool"):
            recipe.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=default)
        else:
            kind = int if f.name in ("seed", "patience", "max_steps") else str if f.name == "schedule" else float
            recipe.add_argument(_flag(f.name), type=kind, default=default, help=f"default {default}")
    p.add_argument("--no-sync-bn", action="store_true",
                   help="batch norm per process (statistics of its share only): not the same training as one process")
    p.add_argument("--crash", type=int, nargs=2, metavar=("RANK", "STEP"),
                   help="fault injection: process RANK kills itself at STEP (once per --out folder)")
    return p


def _size(text: str) -> Optional[int]:
    """A size flag's value: a whole number, or 'none' (all the images)."""
    return None if text.lower() in ("none", "all") else int(text)


def command_args(run: RunBudget, model: Mapping[str, Any], recipe: Mapping[str, Any], split_seed: int = 0,
                 augment: bool = True) -> list[str]:
    """The command-line flags that make ``python -m vgg_helpers.distributed`` train these settings.

    Args:
        run: data sizes and epochs.
        model: ``build_vgg`` arguments (those the command takes as flags: ``arch``, ``width``, ``head``, ...).
        recipe: ``TrainConfig`` fields (without ``epochs``: they are ``run.epochs``).
        split_seed, augment: as ``run``'s arguments.
    Returns:
        Flags for ``launch`` (or a torchrun command line).
    Raises:
        TypeError: ``run`` is not a ``RunBudget``, ``model`` or ``recipe`` not a dict, or a value not a plain
            string, number or bool.
        ValueError: a model setting the command has no flag for, or a recipe setting that is not a
            ``TrainConfig`` field.

    >>> command_args(DEFAULT_RUN, {"arch": "vgg11"}, {"lr": 0.05})[-4:]
    ['--arch', 'vgg11', '--lr', '0.05']
    """
    run = _check_budget(run)
    for name, given in (("model", model), ("recipe", recipe)):
        if not isinstance(given, Mapping):
            raise TypeError(f"{name} must be a dict of settings, e.g. {{'width': 0.5}} ({{}} for none); got "
                            f"{describe(given)}.")
        for key, value in given.items():
            if value is not None and not isinstance(value, (str, int, float)):
                raise TypeError(f"{name}[{key!r}] must be a string, number or bool (it becomes a flag's value); "
                                f"got {describe(value)}.")
    split_seed, augment = whole_number("split_seed", split_seed, 0), flag("augment", augment)
    unknown = sorted(set(model) - set(_MODEL_FLAGS))
    unknown += sorted(set(recipe) - {f.name for f in fields(TrainConfig)} | ({"epochs"} & set(recipe)))
    if unknown:
        raise ValueError(f"the training command has no flag for {', '.join(unknown)}; it takes the data sizes, "
                         f"{', '.join(_MODEL_FLAGS)} and the TrainConfig fields other than epochs")
    args = [a for f in fields(RunBudget) for a in (_flag(f.name), str(getattr(run, f.name)).lower())]
    args += ["--split-seed", str(split_seed), "--augment" if augment else "--no-augment"]
    for key, value in {**model, **recipe}.items():
        if isinstance(value, bool):
            args.append(_flag(key) if value else "--no-" + key.replace("_", "-"))
        elif value is not None:
            args += [_flag(key), str(value)]
    return args


def parse_command(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, RunBudget, dict, TrainConfig]:
    """The training command's arguments, and the run they describe.

    Args:
        argv: the command line (default ``sys.argv[1:]``).
    Returns:
        ``(args, sizes, model, config)``: every parsed flag, the data sizes, the ``build_vgg`` arguments and the
        recipe (its epochs are the sizes').
    Raises:
        SystemExit: a flag's value is refused, before any process group, data or network: argparse's usage and
            ``error: argument --FLAG: what it needs`` (exit status 2).
    """
    parser = _parser()
    args = parser.parse_args(argv)

    def refuse(error: Exception) -> NoReturn:
        name = str(error).split(" ", 1)[0].split("=")[0]  # the checks' messages start with the field's name
        parser.error(f"argument {_flag(name)}: {error}" if name in vars(args) else str(error))

    launch = settings().launch
    world = launch.world_size if launch else 1
    try:
        _folder("out", args.out)
        sizes = RunBudget(**{f.name: getattr(args, f.name) for f in fields(RunBudget)})
        model = {k: getattr(args, k) for k in _MODEL_FLAGS}
        VGGConfig(**model)                                # checks the network's flags without building it
        config = TrainConfig(epochs=sizes.epochs, **{f.name: getattr(args, f.name) for f in fields(TrainConfig)
                                                     if f.name != "epochs"})
        whole_number("threads", args.threads, 1, none_means="torch's default")
        whole_number("split_seed", args.split_seed, 0)
    except (TypeError, ValueError) as e:
        refuse(e)
    if args.crash is not None and not (0 <= args.crash[0] < world and args.crash[1] >= 0):
        parser.error(f"argument --crash: RANK must be one of the {world} process(es), 0 to {world - 1}, and STEP a "
                     f"training step, 0 or more; got RANK {args.crash[0]}, STEP {args.crash[1]}.")
    if sizes.batch_size % world:
        parser.error(f"argument --batch-size: {sizes.batch_size} images do not split evenly over {world} processes: "
                     f"use a multiple of {world}, e.g. {sizes.batch_size - sizes.batch_size % world or world}.")
    return args, sizes, model, config


def main(argv: Sequence[str] | None = None) -> dict:
    """Command line: ``torchrun --nproc-per-node=N -m vgg_helpers.distributed --out DIR [options]``."""
    args, sizes, model, config = parse_command(argv)
    env = settings()
    process = setup(env, args.device)
    try:
        if args.threads is not None:
            set_threads(args.threads)
        summary = run(args.out, process, sizes, model, config, split_seed=args.split_seed, augment=args.augment,
                      data_dir=args.data_dir or env.data_dir, cache_dir=args.cache_dir or env.cache_dir,
                      crash=args.crash, sync_batchnorm=not args.no_sync_bn)
        if process.is_main:
            print(f"{process.world_size} process(es), {process.backend or 'no process group'}: test accuracy "
                  f"{summary['test_acc']:.4f}, weight spread across processes {summary['weight_spread']:.1e}")
        return summary
    finally:
        cleanup()


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)()      # a failing process's traceback reaches torchrun's error report
