"""Is this machine ready for the book? A learner's install check, in well under a minute.

    python -m vgg_helpers.install_check        # or: make learner-check

One line per item, ``PASS`` or ``FAIL``, and for a failure what to do: the packages import; torch is a version the
book accepts; the device and the precision training will use there; CIFAR-10 is found (or can be downloaded); one
training step of a small VGG runs and changes the weights. The exit status is 0 when every item passes, else 1.
Nothing is written except what a download would write (and the check downloads nothing).
"""
from __future__ import annotations

import importlib
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

__all__ = ["Item", "LOWEST_TORCH", "PACKAGES", "check_imports", "check_torch_version", "check_device",
           "check_data", "check_training_step", "run_checks", "main"]

LOWEST_TORCH = (2, 5)        # requirements.txt: torch>=2.5 (tested: make test-oldest)
PACKAGES = ("torch", "torchvision", "torchinfo", "numpy", "matplotlib", "tqdm", "PIL")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"   # torchvision's CIFAR10.url


@dataclass(frozen=True)
class Item:
    """The result of one check: its name, whether it passed, what was found and, for a failure, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``PASS  name  detail`` or ``FAIL  name  detail -- fix``."""
        text = f"{'PASS' if self.ok else 'FAIL'}  {self.name:<9} {self.detail}"
        return text if self.ok or not self.fix else f"{text} -- {self.fix}"


def _version(module: str) -> str:
    return getattr(importlib.import_module(module), "__version__", "?")


def check_imports(packages: Sequence[str] = PACKAGES) -> Item:
    """Every package the chapters import, and vgg_helpers itself."""
    missing, broken = [], []
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
        except Exception as err:  # installed but fails to load, e.g. a torchvision built for another torch
            broken.append(f"{name} ({type(err).__name__}: {str(err).splitlines()[0][:80]})")
    if missing:
        return Item("imports", False, f"cannot import {', '.join(missing)}",
                    "pip install -r requirements.txt (in the book's folder), then run this again")
    if broken:
        return Item("imports", False, f"installed but failing to load: {', '.join(broken)}",
                    "torch and torchvision must come from the same build (both CPU, or both CUDA): "
                    "pip install --force-reinstall torch torchvision from one source, then run this again")
    return Item("imports", True, ", ".join(f"{n} {_version(n)}" for n in ("torch", "torchvision", "numpy")))


def _parse(version: str) -> tuple[int, int]:
    major, minor = (version.split("+")[0].split(".") + ["0", "0"])[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_torch_version(version: Optional[str] = None) -> Item:
    """torch at least ``LOWEST_TORCH`` (what requirements.txt accepts)."""
    import torch

    version = version or torch.__version__
    lowest = ".".join(map(str, LOWEST_TORCH))
    if _parse(version) < LOWEST_TORCH:
        return Item("torch", False, f"{version} is older than {lowest}",
                    f"pip install 'torch>={lowest}' 'torchvision>=0.20' (in Colab: keep Colab's own torch)")
    return Item("torch", True, f"{version} (the book accepts {lowest} and later)")


def check_device(prefer: Optional[str] = None) -> Item:
    """The device the chapters will use and the precision training gets there (bfloat16 only where native)."""
    from .runtime import autocast_dtype, pick_device

    try:
        device = pick_device(prefer)
    except (ValueError, RuntimeError) as err:
        return Item("device", False, str(err), "unset VGG_BOOK_DEVICE, or name a device this machine has")
    amp = autocast_dtype(device) if device.type in ("cpu", "cuda") else None
    precision = str(amp).removeprefix("torch.") if amp else "float32"
    note = "" if amp or device.type != "cpu" else " (no native bfloat16: the fast chapters run slower here)"
    return Item("device", True, f"{device.type}, training in {precision}{note}")


def _reachable(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except OSError:
        return False


def check_data(data_dir: Optional[str], cache_dir: Path, reachable: Callable[[str, float], bool] = _reachable,
               timeout: float = 5.0) -> Item:
    """CIFAR-10 is in the folder the settings name, or was downloaded before, or can be downloaded now.

    The folder's layout is checked (no image is decoded): ``cifar-10-batches-py/`` or ``train/`` and ``test/``
    with the ten class folders each.
    """
    from .data import CIFAR10_CLASSES

    if data_dir:
        root = Path(data_dir).expanduser()
        fix = ("point VGG_DATA_DIR at the folder that holds 'train/' and 'test/' (or 'cifar-10-batches-py/'); "
               "the setup page shows how")
        if (root / "cifar-10-batches-py").is_dir() or root.name == "cifar-10-batches-py":
            return Item("data", True, "CIFAR-10 (python batches) in your folder")
        splits = [root / "train", root / "test"]
        if not all(s.is_dir() for s in splits):
            return Item("data", False, "your data folder holds no 'train/' and 'test/' folders", fix)
        missing = [f"{s.name}/{c}" for s in splits for c in CIFAR10_CLASSES if not (s / c).is_dir()]
        if missing:
            return Item("data", False, f"class folders missing: {', '.join(missing[:3])}", fix)
        return Item("data", True, "CIFAR-10 (image folders, 10 classes) in your folder")
    if (cache_dir / "cifar-10-batches-py").is_dir():
        return Item("data", True, "CIFAR-10, downloaded before")
    if reachable(CIFAR10_URL, timeout):
        return Item("data", True, "not downloaded yet: the first chapter that needs it downloads 170 MB")
    return Item("data", False, "not on this machine, and the download site cannot be reached",
                "copy the data set from your teacher and set VGG_DATA_DIR to its folder")


def check_training_step(prefer: Optional[str] = None, seed: int = 0) -> Item:
    """One SGD step of a small batch-norm VGG-11 on random images: the loss is finite and the weights move."""
    import torch

    from .models import CIFAR_BN_MODEL, build_vgg
    from .runtime import pick_device

    device = pick_device(prefer)
    torch.manual_seed(seed)
    model = build_vgg("vgg11", **{**CIFAR_BN_MODEL, "width": 0.125}).to(device)
    before = [p.detach().clone() for p in model.parameters()]
    images, labels = torch.randn(16, 3, 32, 32, device=device), torch.randint(0, 10, (16,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    moved = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    if not torch.isfinite(loss) or not moved:
        return Item("training", False, f"loss {loss.item():.3f}, weights moved: {moved}",
                    "reinstall torch (pip install --force-reinstall torch) and run this again")
    return Item("training", True, f"one step of a small VGG-11: loss {loss.item():.3f}, {seconds:.2f} s")


def run_checks(data_dir: Optional[str] = None, cache_dir: Optional[Path] = None, device: Optional[str] = None,
               reachable: Callable[[str, float], bool] = _reachable) -> list[Item]:
    """Every check, in order; a check that cannot run (its imports failed) is not attempted."""
    from .settings import settings as read_settings

    items = [check_imports()]
    if not items[0].ok:
        return items
    env = read_settings()
    data_dir = env.data_dir if data_dir is None else data_dir
    cache_dir = env.cache_dir if cache_dir is None else cache_dir
    device = env.device if device is None else device
    items += [check_torch_version(), check_device(device), check_data(data_dir, cache_dir, reachable)]
    items.append(check_training_step(device) if items[2].ok else
                 Item("training", False, "not attempted: no device", items[2].fix))
    return items


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print one line per check and a verdict; 0 when everything passed, else 1."""
    if argv:
        print("usage: python -m vgg_helpers.install_check   (settings come from VGG_DATA_DIR, VGG_BOOK_DEVICE)")
        return 2
    start = time.perf_counter()
    items = run_checks()
    for item in items:
        print(item.line(), flush=True)
    failed = [i.name for i in items if not i.ok]
    verdict = "ready for the book" if not failed else f"not ready: fix {', '.join(failed)} and run this again"
    print(f"{'PASS' if not failed else 'FAIL'}  {verdict} ({time.perf_counter() - start:.0f} s)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
