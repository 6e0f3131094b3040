"""The book's environment variables, read in one place.

Every ``VGG_*`` variable is read by ``settings()`` and nowhere else in ``vgg_helpers``. Notebooks and command
lines call it once, at the top, and pass what they need on as ordinary arguments; no helper looks at the
environment behind the caller's back.

* ``VGG_BOOK_BUDGET``: ``smoke`` / ``cpu`` / ``gpu``, how much every training cell does (unset: ``cpu``);
* ``VGG_BOOK_DEVICE``: force a device (``cpu``, ``cuda``, ``cuda:N``, ``mps``); default: the best available;
* ``VGG_DATA_DIR``: the folder holding CIFAR-10 (python batches or ``train/<class>/`` images);
* ``VGG_CACHE_DIR``: downloads and decoded-image caches (default ``~/.cache/vgg-from-scratch``);
* ``VGG_BOOK_USE_STORED``: ``1`` shows the stored reference runs instead of training, ``0`` trains;
* ``VGG_BOOK_SAVE_REFERENCE``: ``1`` trains and stores each run as the new reference (maintainers);
* ``VGG_BOOK_PROGRESS``: ``1`` / ``0`` forces progress bars on or off.

It also reads the variables ``torchrun`` gives each process it starts (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``, ``TORCHELASTIC_RESTART_COUNT``, ``TORCHELASTIC_USE_AGENT_STORE``), so that
``vgg_helpers.distributed`` knows which process it is, which GPU is its own and where the others are.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

__all__ = ["Settings", "Launch", "settings", "child_environment", "STORE_POLICIES", "DEFAULT_CACHE_DIR", "DEVICES"]

# What train_or_load does with a run (see vgg_helpers.runs): train it; show its stored history when there is
# one; or train it and store the history as the new reference (maintainers re-running the book).
STORE_POLICIES = ("train", "load", "record")
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "vgg-from-scratch"
# The devices VGG_BOOK_DEVICE may name (checked without importing torch; runtime.pick_device checks that the
# device is there).
DEVICES = "cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


@dataclass(frozen=True)
class Settings:
    """What the environment asks for; ``None`` means "not set: use the default"."""

    budget: Optional[str]      # VGG_BOOK_BUDGET, lower-cased
    device: Optional[str]      # VGG_BOOK_DEVICE, lower-cased: cpu, cuda, cuda:N or mps
    data_dir: Optional[str]    # VGG_DATA_DIR
    cache_dir: Path            # VGG_CACHE_DIR, else ~/.cache/vgg-from-scratch
    store: Optional[str]       # "load" / "train" (VGG_BOOK_USE_STORED=1/0) or "record" (VGG_BOOK_SAVE_REFERENCE=1)
    progress: Optional[bool]   # VGG_BOOK_PROGRESS=1/0
    launch: Optional["Launch"] = None   # what torchrun told this process; None when torchrun did not start it

    @property
    def launched_by_torchrun(self) -> bool:
        """Whether torchrun (or another launcher setting ``WORLD_SIZE``) started this process."""
        return self.launch is not None


@dataclass(frozen=True)
class Launch:
    """The variables torchrun sets in every process it starts."""

    rank: int             # RANK: this process's number among all processes, 0 ... world_size - 1
    local_rank: int       # LOCAL_RANK: its number on this machine (= the index of its GPU)
    world_size: int       # WORLD_SIZE: how many processes train together
    master_addr: str      # MASTER_ADDR / MASTER_PORT: where the shared key-value store of the processes is
    master_port: int
    restart_count: int    # TORCHELASTIC_RESTART_COUNT: how often torchrun restarted the processes (--max-restarts)
    agent_store: bool     # TORCHELASTIC_USE_AGENT_STORE: the store is torchrun's own, kept across restarts
    local_world_size: int = 1   # LOCAL_WORLD_SIZE: how many processes run on this machine


def _device(env: Mapping[str, str]) -> Optional[str]:
    value = env.get("VGG_BOOK_DEVICE", "").strip()
    if value == "":
        return None
    if not _DEVICE.fullmatch(value.lower()):
        hint = " (for an NVIDIA GPU use cuda)" if value.lower() in ("gpu", "nvidia") else ""
        raise ValueError(f"VGG_BOOK_DEVICE must be {DEVICES}; got {value!r}{hint}. Unset it to use the best "
                         f"device available.")
    return value.lower()


def _flag(env: Mapping[str, str], name: str) -> Optional[bool]:
    value = env.get(name, "").strip()
    if value == "":
        return None
    if value not in ("0", "1"):
        raise ValueError(f"{name} must be 0 or 1; got {value!r}. Unset it for the default.")
    return value == "1"


def _whole(env: Mapping[str, str], name: str, minimum: int) -> Optional[int]:
    value = env.get(name, "").strip()
    if value == "":
        return None
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum} (torchrun sets it for each process it starts); "
                         f"got {value!r}. Unset it when you are not launching with torchrun.")
    return int(value)


def _launch(env: Mapping[str, str]) -> Optional[Launch]:
    """torchrun's variables when WORLD_SIZE is set (torchrun sets them all); else None."""
    world_size = _whole(env, "WORLD_SIZE", 1)
    if world_size is None:      # not launched by torchrun: a stray RANK (other tools use it) is ignored
        return None
    rank = _whole(env, "RANK", 0) or 0
    if rank >= world_size:
        raise ValueError(f"RANK={rank} but WORLD_SIZE={world_size}: the rank must be below the world size. "
                         "Launch with torchrun, which sets both.")
    return Launch(rank=rank, local_rank=_whole(env, "LOCAL_RANK", 0) or 0, world_size=world_size,
                  master_addr=env.get("MASTER_ADDR", "").strip() or "127.0.0.1",
                  master_port=_whole(env, "MASTER_PORT", 1) or 29500,
                  restart_count=_whole(env, "TORCHELASTIC_RESTART_COUNT", 0) or 0,
                  agent_store=env.get("TORCHELASTIC_USE_AGENT_STORE", "").strip() == "True",
                  local_world_size=_whole(env, "LOCAL_WORLD_SIZE", 1) or world_size)


def settings(environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the book's environment variables (the module docstring lists them).

    Args:
        environ: the variables to read; default ``os.environ``.
    Returns:
        A ``Settings``.
    Raises:
        ValueError: a variable holds a value it cannot have; the message names it and the accepted values.
            (Whether a named device is actually there is checked by ``runtime.pick_device``.)
        TypeError: ``environ`` is not a mapping.
    """
    env = os.environ if environ is None else environ
    if not isinstance(env, Mapping):
        raise TypeError(f"environ must be a mapping of variable names to values, such as os.environ or "
                        f"{{'VGG_BOOK_BUDGET': 'smoke'}}; got {type(env).__name__}")
    budget = env.get("VGG_BOOK_BUDGET", "").strip().lower() or None
    if budget is not None and budget not in ("smoke", "cpu", "gpu"):
        raise ValueError(f"VGG_BOOK_BUDGET must be one of smoke, cpu, gpu; got {budget!r}")
    record, use_stored = _flag(env, "VGG_BOOK_SAVE_REFERENCE"), _flag(env, "VGG_BOOK_USE_STORED")
    if record and use_stored:
        raise ValueError("VGG_BOOK_SAVE_REFERENCE=1 (train and store) and VGG_BOOK_USE_STORED=1 (do not train) "
                         "contradict each other: unset one of them.")
    store = "record" if record else {True: "load", False: "train", None: None}[use_stored]
    return Settings(budget=budget, device=_device(env),
                    data_dir=env.get("VGG_DATA_DIR", "").strip() or None,
                    cache_dir=Path(env.get("VGG_CACHE_DIR", "").strip() or DEFAULT_CACHE_DIR).expanduser(),
                    store=store, progress=_flag(env, "VGG_BOOK_PROGRESS"), launch=_launch(env))


TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                      "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT",
                      "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE")


def child_environment(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The environment for a new launch: this process's, less torchrun's variables (a new launch sets its own).

    Args:
        environ: the variables to start from (default ``os.environ``).
    Returns:
        A new dict; the ``VGG_*`` variables are kept, so the launch sees the same data folder and budget.

    >>> child_environment({"RANK": "1", "WORLD_SIZE": "2", "VGG_DATA_DIR": "data"})
    {'VGG_DATA_DIR': 'data'}
    """
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k not in TORCHRUN_VARIABLES}
