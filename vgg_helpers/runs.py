"""Stored reference runs: train a run, or show its stored history without retraining (``train_or_load``).

The histories of the committed cpu-budget runs ship inside the package (``reference_runs/<name>-<budget>.json``)
so that a chapter can show what a long run measured without making the reader wait for it; a few runs also ship
their trained weights (``<name>-<budget>.pt``, float16: about 2 bytes per parameter), so that a chapter can look
inside the trained network without training it. What happens to a run is one explicit argument, ``store``:

* ``"train"``  -- train it; nothing is written;
* ``"load"``   -- show the stored history when there is one, with its network when its weights are stored
  (else train);
* ``"record"`` -- train it and store the history as the new reference (maintainers re-running the book; never
  in the smoke budget).

Notebooks take it from ``settings().store`` (``VGG_BOOK_USE_STORED`` / ``VGG_BOOK_SAVE_REFERENCE``) or from
their chapter plan's default.
"""
from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import torch
from torch import nn

from .files import atomic_write
from .runtime import BUDGETS, environment_info
from .settings import STORE_POLICIES
from .training import History, TrainConfig, TrainingDiverged, train

__all__ = ["REFERENCE_DIR", "run_name", "reference_path", "load_reference", "stored_runs", "save_reference",
           "RunResult", "StoredRunError", "check_store", "load_run", "stored_or_check_data", "train_or_load",
           "weights_path", "save_weights", "load_weights", "with_stored_weights", "mean_sd", "Recording",
           "recording_setup"]

REFERENCE_DIR = Path(__file__).with_name("reference_runs")


class StoredRunError(RuntimeError):
    """A stored run was asked for something that only a trained network has."""


def _check_run_name(name: str) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise ValueError(f"a run name is a short file-name-safe label such as 'ch6-vgg11-bn' (letters, digits, "
                         f"'-', '_', '.'); got {name!r}")
    return name


def run_name(base: str, seed: int) -> str:
    """The stored name of ``base`` trained with ``seed``: seed 0 keeps the bare name, others get ``-s<seed>``."""
    return base if seed == 0 else f"{base}-s{seed}"


def reference_path(name: str, budget: str) -> Path:
    """Where the stored history of run ``name`` in ``budget`` lives (shipped inside the package)."""
    return REFERENCE_DIR / f"{_check_run_name(name)}-{budget}.json"


def load_reference(name: str, budget: str) -> Optional[History]:
    """The stored history of a committed run, or ``None`` when that run was not recorded.

    Args:
        name: run name, e.g. ``"ch6-vgg11-bn"``.
        budget: ``"cpu"`` or ``"gpu"``.
    """
    path = reference_path(name, budget)
    return History.load(path) if path.exists() else None


def stored_runs() -> dict[str, Path]:
    """Every stored reference run, as ``{file stem: path}`` (e.g. ``"ch6-vgg11-bn-cpu"``)."""
    return {p.stem: p for p in sorted(REFERENCE_DIR.glob("*.json"))}


def save_reference(history: History, name: str, budget: str) -> Optional[Path]:
    """Store ``history`` as the reference run ``name`` of ``budget`` (atomically); smoke runs are never stored.

    Returns:
        The path written, or ``None`` for the smoke budget.
    """
    if budget == "smoke":
        return None
    return history.save(reference_path(name, budget))


def weights_path(name: str, budget: str) -> Path:
    """Where the stored weights of run ``name`` in ``budget`` live (beside its history, ``.pt``)."""
    return REFERENCE_DIR / f"{_check_run_name(name)}-{budget}.pt"


def save_weights(model: nn.Module, name: str, budget: str) -> Optional[Path]:
    """Store a trained network's weights beside its history (atomically); smoke runs are never stored.

    Floating-point tensors are stored as float16 (half the size; the accuracy of the restored network is checked
    against the stored run's in the tests), integer buffers as they are.

    Returns:
        The path written, or ``None`` for the smoke budget.
    """
    if budget == "smoke":
        return None
    state = {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    return atomic_write(weights_path(name, budget), lambda f: torch.save(state, f))


def load_weights(model: nn.Module, name: str, budget: str) -> bool:
    """Load the stored weights of run ``name`` into ``model`` (built like the run's), if they are stored.

    Args:
        model: a network of the run's architecture, on any device.
        name, budget: which run.
    Returns:
        ``True`` when weights were loaded, ``False`` when the run stores none.
    Raises:
        ValueError: the stored weights do not fit ``model`` (another architecture or width).
    """
    path = weights_path(name, budget)
    if not path.exists():
        return False
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise ValueError(f"the stored weights of '{name}' ({budget}) do not fit this network: build it with the "
                         "run's settings (its history.meta['model'])")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return True


def with_stored_weights(result: "RunResult", build_model: Callable[[], nn.Module], budget: str) -> "RunResult":
    """``result`` (a loaded run) with its network, when the run's weights are stored; else unchanged.

    Args:
        result: from ``load_run``.
        build_model: makes a network of the run's architecture (only called when weights are stored).
        budget: the run's budget.
    """
    if not result.trained and result._model is None and weights_path(result.name, budget).exists():
        model = build_model()
        load_weights(model, result.name, budget)
        result._model = model.eval()
    return result


@dataclass
class RunResult:
    """A run that was trained here or loaded from its stored history; notebooks read it the same way.

    Attributes:
        name: the run's name.
        history: the per-epoch record (``history.meta`` holds test accuracy and timings where measured).
        trained: ``True`` when trained in this session, ``False`` when loaded (with its network when its weights
            are stored).
    """

    name: str
    history: History
    trained: bool
    _model: Optional[nn.Module] = None

    @property
    def model(self) -> nn.Module:
        """The trained network (``None`` if the run diverged); a stored run without stored weights raises."""
        if not self.trained and self._model is None:
            raise StoredRunError(f"'{self.name}' was loaded from its stored history, which holds no weights. Train "
                                 "it to get the network: store='train' (or VGG_BOOK_USE_STORED=0).")
        return self._model  # type: ignore[return-value]

    @property
    def source(self) -> str:
        """``"trained here"`` or ``"stored run"``: say which, beside a number."""
        return "trained here" if self.trained else "stored run"


def check_store(store: str) -> str:
    """``store`` if it is one of ``STORE_POLICIES``, else a ``ValueError`` that lists them."""
    if store not in STORE_POLICIES:
        raise ValueError(f"store must be one of {', '.join(STORE_POLICIES)}; got {store!r}")
    return store


def load_run(name: str, budget: str, quiet: bool = False) -> Optional[RunResult]:
    """The stored run ``name`` of ``budget`` as a ``RunResult`` (saying where it came from), or ``None``.

    Args:
        name, budget: which run.
        quiet: do not print the lines that say the run was loaded, not trained.
    """
    stored = load_reference(name, budget)
    if stored is None:
        return None
    if not quiet:
        print(f"Loaded the stored {budget}-budget run '{name}'\n"   # two lines: fits the page
              f"  measured on {stored.meta.get('device')}, torch {stored.meta.get('torch')}; "
              f"set VGG_BOOK_USE_STORED=0 to train it yourself")
    return RunResult(name, stored, trained=False)


def stored_or_check_data(name: str, data: Any, budget: str, store: str, quiet: bool,
                         who: str) -> Optional[RunResult]:
    """The stored run ``name`` when ``store="load"`` finds it; otherwise ``None``, after checking there is data.

    Args:
        name, budget: which run.
        data: the data set the run would train on (``None`` is an error when the run must be trained).
        store: ``"train"``, ``"load"`` or ``"record"``.
        quiet: passed to ``load_run``.
        who: the caller's name, for the error message.
    """
    if check_store(store) == "load":
        stored = load_run(name, budget, quiet=quiet)
        if stored is not None:
            return stored
    if data is None:
        raise TypeError(f"{who} needs the data set to train '{name}' (no stored {budget}-budget run was found). "
                        "Pass data=load_cifar10(...).")
    return None


def mean_sd(xs: Sequence[Optional[float]], scale: float = 1.0, digits: int = 1) -> str:
    """``"mean +- sd"`` of ``xs`` times ``scale``, e.g. accuracies over seeds in percent (``None`` values, runs
    that measured nothing, are left out; ``"n/a"`` if none is left).

    >>> mean_sd([0.1, 0.12, 0.14], scale=100)
    '12.0 +- 2.0'
    >>> mean_sd([-4.2e5, -3.3e5])      # far from the usual size: two significant digits
    '-3.8e+05 +- 6.4e+04'
    >>> mean_sd([-0.0001, 0.0], digits=3)
    '0.000 +- 0.000'
    """
    values = [x * scale for x in xs if x is not None]
    if not values:
        return "n/a"
    m, s = statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
    if math.isfinite(m) and abs(m) >= 1000:
        return f"{m:.1e} +- {s:.1e}"
    m = m if round(m, digits) != 0 else 0.0       # no "-0.000"
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def train_or_load(name: str, build_model: Callable[[], nn.Module], train_loader: Iterable,
                  val_loader: Iterable | None = None, config: TrainConfig | None = None, *, budget: str,
                  store: str = "train", finish: Callable[[nn.Module, History], None] | None = None,
                  allow_divergence: bool = False, keep_weights: bool = False, **train_kwargs) -> RunResult:
    """Train a run, or show its stored history without retraining.

    Args:
        name: run name; the stored history is ``reference_path(name, budget)``.
        build_model: makes a fresh, seeded model (only called when training).
        train_loader: passed to ``train``, as are ``val_loader``, ``config`` and every other keyword argument
            (``device``, ``progress``, ``on_step``, ``meta``, ...).
        budget: the budget the run belongs to; histories are stored per budget.
        store: ``"train"``, ``"load"`` or ``"record"`` (see the module docstring).
        finish: called as ``finish(model, history)`` after training, before the history is stored: measure
            what belongs beside the run (test accuracy, step losses) into ``history.meta``.
        allow_divergence: a loss that becomes NaN is a result (recorded in ``history.meta["diverged"]``, the
            model is ``None``) instead of an error.
        keep_weights: with ``store="record"``, also store the trained weights (``save_weights``). A loaded run
            whose weights are stored comes with its network (``build_model()`` with the weights loaded).
    Returns:
        A ``RunResult``.
    """
    check_store(store)
    _check_run_name(name)
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    if isinstance(build_model, nn.Module) or not callable(build_model):
        raise TypeError(f"build_model must be a function that builds a fresh, seeded network (e.g. "
                        f"lambda: build_vgg('vgg11', ...)); got {type(build_model).__name__}. It is only called when "
                        "the run is trained, not loaded.")
    if store == "load":
        stored = load_run(name, budget)
        if stored is not None:
            return with_stored_weights(stored, build_model, budget)
    model = build_model()
    meta = {"run": name, "budget": budget, **train_kwargs.pop("meta", {})}
    try:
        history = train(model, train_loader, val_loader, config, meta=meta, **train_kwargs)
    except TrainingDiverged as e:
        if not allow_divergence:
            raise
        device = train_kwargs.get("device") or next(model.parameters()).device
        history = History(meta={**environment_info(device), **meta, "diverged": str(e)})
        model = None
    if finish is not None:
        finish(model, history)
    if store == "record":
        if keep_weights and model is not None:
            save_weights(model, name, budget)
        save_reference(history, name, budget)
    return RunResult(name, history, trained=True, _model=model)


@dataclass
class Recording:
    """What a maintainers' ``record`` command needs: its arguments, the settings, the data, device and budget."""

    args: argparse.Namespace
    settings: Any          # settings.Settings
    data: Any              # data.CIFAR10
    device: torch.device
    budget: str


def recording_setup(prog: str, chapter: str, parts: Sequence[str], argv: Optional[list[str]] = None,
                    threads: bool = True, match: bool = False) -> Recording:
    """Parse a ``python -m vgg_helpers.<module> record`` command line and load what every recording needs.

    Args:
        prog: the command, e.g. ``"python -m vgg_helpers.paper_runs"``.
        chapter: says whose runs, e.g. ``"chapter 7's"`` (help text and the first printed line).
        parts: the choices of ``--only`` (all of them by default).
        argv: the command-line arguments (default ``sys.argv``).
        threads: offer ``--threads`` (torch threads; 1 when two recordings share the machine) and apply it.
        match: offer ``--match TEXT`` (only the runs whose stored name contains it).
    Returns:
        A ``Recording``; it has printed one line saying what is recorded, where and on which data.
    """
    from .data import load_cifar10
    from .runtime import current_budget, pick_device, set_threads
    from .settings import settings

    env = settings()
    ap = argparse.ArgumentParser(prog=prog, description=f"Record {chapter} stored runs (maintainers).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help=f"train {chapter} runs and store them in vgg_helpers/reference_runs/")
    r.add_argument("--budget", default="cpu", choices=["cpu", "gpu"])
    r.add_argument("--only", nargs="+", choices=list(parts), default=list(parts))
    if threads:
        r.add_argument("--threads", type=int, default=None,
                       help="torch threads (default one per core; 1 when two recordings share the machine)")
    if match:
        r.add_argument("--match", default="", help="only the runs whose stored name contains this text")
    args = ap.parse_args(argv)
    data = load_cifar10(env.data_dir, cache_dir=env.cache_dir)
    device = pick_device(env.device)
    if threads:
        set_threads(args.threads)
    budget = current_budget(args.budget)
    print(f"recording {chapter} {budget}-budget runs on {device} ({data.source})", flush=True)
    return Recording(args, env, data, device, budget)
