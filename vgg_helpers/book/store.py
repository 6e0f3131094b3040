"""The book's stored runs: train a run, or show its stored history without retraining (``train_or_load``).

The histories of the committed cpu-budget runs ship inside the package (``stored_runs/<name>-<budget>.json``) so
that a chapter can show what a long run measured without making the reader wait for it; a few runs also ship their
trained weights (``<name>-<budget>.pt``, float16: about 2 bytes per parameter), so that a chapter can look inside
the trained network without training it. What happens to a run is one explicit argument, ``store``:

* ``"train"``  -- train it; nothing is written;
* ``"load"``   -- show the stored history when there is one, with its network when its weights are stored
  (else train);
* ``"record"`` -- train it and store the history as the new reference (maintainers re-running the book; never
  in the smoke budget).

A recording can take hours; inside ``resumable(folder)`` (what the record command uses) every run that finishes
is also kept in ``folder`` with its network, so that the same command, run again after a kill, takes the finished
runs from there instead of training them again; only the run that was cut short starts again.

``train_or_load`` is the one way to a stored run: it takes the training as a function, called only when the run
is trained, so a caller builds its data inside that function and never checks for a stored run first.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import torch
from torch import nn

from ..data import CIFAR10
from ..files import atomic_write
from ..runtime import BUDGETS, environment_info
from ..settings import STORE_POLICIES, settings
from ..training import History, TrainConfig, TrainingDiverged, train

__all__ = ["STORED_DIR", "Data", "stored_path", "stored_history", "stored_runs", "save_history", "weights_path",
           "save_weights", "load_weights", "RunResult", "StoredRunError", "check_store", "store_policy", "need_data",
           "fit", "train_or_load", "resumable"]

STORED_DIR = Path(__file__).with_name("stored_runs")

Trained = tuple[Optional[nn.Module], History]   # what a run's training returns (no network if it diverged)
# What a driver takes as its data: CIFAR-10 in memory, a function that loads it (called only when a run is trained:
# a chapter that mostly shows stored runs loads no image for them), or None (every run must be stored).
Data = Optional[Union[CIFAR10, Callable[[], CIFAR10]]]


class StoredRunError(RuntimeError):
    """A stored run was asked for something that only a trained network has."""


def _check_run_name(name: str) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise ValueError(f"a run name is a short file-name-safe label such as 'batch-norm' (letters, digits, "
                         f"'-', '_', '.'); got {name!r}")
    return name


def _check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        hint = f" Write budget={budget.strip().lower()!r}." if isinstance(budget, str) and \
            budget.strip().lower() in BUDGETS else ""
        raise ValueError(f"budget must be one of {', '.join(map(repr, BUDGETS))}; got {budget!r}.{hint}")
    return budget


def stored_path(name: str, budget: str) -> Path:
    """Where the stored history of run ``name`` in ``budget`` lives (shipped inside the package)."""
    return STORED_DIR / f"{_check_run_name(name)}-{_check_budget(budget)}.json"


def stored_history(name: str, budget: str) -> Optional[History]:
    """The stored history of a committed run, or ``None`` when that run was not recorded.

    Args:
        name: run name, e.g. ``"batch-norm"`` (``Plan.run_name``).
        budget: ``"cpu"`` or ``"gpu"``.
    """
    path = stored_path(name, budget)
    return History.load(path) if path.exists() else None


def stored_runs() -> dict[str, Path]:
    """Every stored run, as ``{file stem: path}`` (e.g. ``"batch-norm-cpu"``)."""
    return {p.stem: p for p in sorted(STORED_DIR.glob("*.json"))}


def save_history(history: History, name: str, budget: str) -> Optional[Path]:
    """Store ``history`` as the run ``name`` of ``budget`` (atomically); smoke runs are never stored.

    Returns:
        The path written, or ``None`` for the smoke budget.
    """
    if budget == "smoke":
        return None
    return history.save(stored_path(name, budget))


def weights_path(name: str, budget: str) -> Path:
    """Where the stored weights of run ``name`` in ``budget`` live (beside its history, ``.pt``)."""
    return STORED_DIR / f"{_check_run_name(name)}-{_check_budget(budget)}.pt"


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
        TypeError: ``model`` is not a network.
        ValueError: a budget that does not exist (``'CPU'``), a file that is damaged or not stored weights (the
            message names it; it is left as it is), or weights that do not fit ``model`` (another architecture).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a network built like the run's (an nn.Module); got {type(model).__name__}.")
    path = weights_path(name, budget)
    if not path.exists():
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot read the stored weights of '{name}' ({budget}) in {path.name}: the file is "
                         f"damaged or not a PyTorch file ({type(e).__name__}). It was left as it is; restore it "
                         f"with git (git checkout -- {path.name}) or record the run again.") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} does not hold stored weights (a dict of tensors, as save_weights writes); "
                         f"it holds a {type(state).__name__}. It was left as it is; record the run again.")
    own = model.state_dict()
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise ValueError(f"the stored weights of '{name}' ({budget}) do not fit this network: build it with the "
                         "run's settings (its history.meta['model'])")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return True


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


def store_policy(plan_store: str, store: Optional[str] = None) -> str:
    """What to do with a plan's runs: ``store`` when given; else what the environment asks
    (``settings().store``: ``VGG_BOOK_USE_STORED``, ``VGG_BOOK_SAVE_REFERENCE``); else the plan's own
    (``Plan.store``: the stored runs in the cpu budget). The chapters pass nothing, so no switch is on the page."""
    return check_store(store or settings().store or plan_store)


def check_store(store: str) -> str:
    """``store`` if it is one of ``STORE_POLICIES``, else a ``ValueError`` that lists them."""
    if store not in STORE_POLICIES:
        raise ValueError(f"store must be one of {', '.join(STORE_POLICIES)}; got {store!r}")
    return store


def need_data(data: Data, name: str, budget: str) -> CIFAR10:
    """The data set run ``name`` is trained on: ``data``, or what ``data()`` returns when it is a function that
    loads it; a ``TypeError`` when there is none (``None``) or it is something else."""
    if data is None:
        raise TypeError(f"'{name}' must be trained (no stored {budget}-budget run is used) and needs the data set: "
                        "pass data=load_cifar10(...), or a function that loads it.")
    loaded = data() if callable(data) else data
    if not isinstance(loaded, CIFAR10):
        got = f"a function that returned {type(loaded).__name__}" if callable(data) else type(data).__name__
        raise TypeError(f"'{name}' needs the data set as load_cifar10 returns it; got {got}.")
    return loaded


def fit(build_model: Callable[[], nn.Module], train_loader: Iterable, val_loader: Iterable | None = None,
        config: TrainConfig | None = None, *, allow_divergence: bool = False,
        finish: Callable[[Optional[nn.Module], History], None] | None = None, **train_kwargs: Any) -> Trained:
    """Build a fresh network and ``train`` it: the training of one classic run, for ``train_or_load``.

    Args:
        build_model: makes a fresh, seeded network.
        train_loader, val_loader, config: passed to ``train``, as is every other keyword argument (``device``,
            ``progress``, ``on_step``, ``meta``, ``test_loader``, ``tta``, ...).
        allow_divergence: a loss that becomes NaN is a result (recorded in ``history.meta["diverged"]``, the
            network is ``None``) instead of an error.
        finish: called as ``finish(model, history)`` after training: measure what belongs beside the run (test
            accuracy, step losses) into ``history.meta``.
    Returns:
        ``(model, history)``.
    """
    if isinstance(build_model, nn.Module) or not callable(build_model):
        raise TypeError(f"build_model must be a function that builds a fresh, seeded network (e.g. "
                        f"lambda: build_vgg('vgg11', ...)); got {type(build_model).__name__}.")
    model = build_model()
    try:
        history = train(model, train_loader, val_loader, config, **train_kwargs)
    except TrainingDiverged as e:
        if not allow_divergence:
            raise
        device = train_kwargs.get("device") or next(model.parameters()).device
        history = History(meta={**environment_info(device), **train_kwargs.get("meta", {}), "diverged": str(e)})
        model = None
    if finish is not None:
        finish(model, history)
    return model, history


_RESUME: Optional[Path] = None        # the folder of the recording in progress (``resumable``), if any


@contextlib.contextmanager
def resumable(folder: str | os.PathLike) -> Iterator[list[str]]:
    """Record runs so that a killed recording can resume: inside the block, every run recorded by
    ``train_or_load(store="record")`` is also kept in ``folder`` (its history, then its network), and a run
    already kept there is returned from it instead of being trained again.

    Args:
        folder: where the finished runs are kept; the same command must use the same folder.
    Yields:
        The names of the runs kept from an earlier, interrupted attempt (empty on a fresh start).
    """
    global _RESUME
    if _RESUME is not None:
        raise RuntimeError(f"a resumable recording is already in progress (in {_RESUME}); they do not nest")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _RESUME = folder
    try:
        yield sorted(p.name[:-len(".json")] for p in folder.glob("*.json"))
    finally:
        _RESUME = None


def _resumed(name: str, budget: str) -> Optional[RunResult]:
    """The run kept by an interrupted recording (``resumable``), or ``None``."""
    if _RESUME is None or not (_RESUME / f"{name}-{budget}.json").exists():
        return None
    model = torch.load(_RESUME / f"{name}-{budget}.pt", weights_only=False)   # written by this package itself
    return RunResult(name, History.load(_RESUME / f"{name}-{budget}.json"), trained=True, _model=model)


def _keep(result: RunResult, budget: str) -> None:
    """Keep a finished run in the resumable recording's folder: the network first, the history last (the mark
    that the run is complete)."""
    if _RESUME is None:
        return
    stem = f"{result.name}-{budget}"
    atomic_write(_RESUME / f"{stem}.pt", lambda f: torch.save(result._model, f))
    result.history.save(_RESUME / f"{stem}.json")


def _loaded(name: str, budget: str, quiet: bool) -> Optional[RunResult]:
    stored = stored_history(name, budget)
    if stored is None:
        return None
    if not quiet:
        print(f"Loaded the stored {budget}-budget run '{name}' "
              f"(measured on {stored.meta.get('device')}, torch {stored.meta.get('torch')})")
    return RunResult(name, stored, trained=False)


def _no_stored_run(name: str, budget: str) -> None:
    """Before training a run that ``store="load"`` found no stored history for: refuse a misspelled name (a
    long run spent by a typo), and say so when the budget has stored runs but not this one."""
    suffix = f"-{budget}"
    names = [stem[:-len(suffix)] for stem in stored_runs() if stem.endswith(suffix)]
    if not names:
        return                                   # nothing is stored for this budget (smoke, gpu): train, as asked
    def base(run: str) -> str:                   # a run's name without its seed ("batch-norm-s2" -> "batch-norm")
        return re.sub(r"-s\d+$", "", run)

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.8)
    close = [c for c in close if base(c) == c] or close           # name the first seed of a stored run
    if close and base(name) not in {base(n) for n in names}:     # another seed of a stored run is no typo
        raise ValueError(f"no stored {budget}-budget run is called '{name}'; did you mean "
                         f"{' or '.join(map(repr, close))}? To train '{name}' on purpose, pass store='train'.")
    warnings.warn(f"no stored {budget}-budget run is called '{name}' ({len(names)} are stored): training it "
                  "instead, which may take long.", stacklevel=3)


def train_or_load(name: str, train_run: Callable[[], Trained], *, budget: str, store: str = "train",
                  build_model: Callable[[], nn.Module] | None = None, keep_weights: bool = False,
                  quiet: bool = True) -> RunResult:
    """Train a run, or show its stored history without retraining: the one way to a stored run.

    Args:
        name: run name; the stored history is ``stored_path(name, budget)``.
        train_run: trains the run and returns ``(model, history)`` (``fit`` for the classic loop); only called
            when the run is trained, so it builds its own data (``need_data``).
        budget: the budget the run belongs to; runs are stored per budget.
        store: ``"train"``, ``"load"`` or ``"record"`` (see the module docstring).
        build_model: makes a network of the run's architecture: a loaded run whose weights are stored comes with
            it, the weights loaded.
        keep_weights: with ``store="record"``, also store the trained weights (``save_weights``).
        quiet: do not print the lines that say a run was loaded rather than trained.
    Returns:
        A ``RunResult``; a trained one's ``history.meta`` holds ``run`` and ``budget``.
    """
    check_store(store)
    _check_run_name(name)
    _check_budget(budget)
    if not callable(train_run) or isinstance(train_run, nn.Module):
        raise TypeError(f"train_run must be a function that trains the run and returns (model, history); got "
                        f"{type(train_run).__name__}. It is only called when the run is trained, not loaded.")
    if store == "load":
        stored = _loaded(name, budget, quiet)
        if stored is None:
            _no_stored_run(name, budget)
        if stored is not None:
            if build_model is not None and weights_path(name, budget).exists():
                model = build_model()
                load_weights(model, name, budget)
                stored._model = model.eval()
            return stored
    if store == "record":
        resumed = _resumed(name, budget)
        if resumed is not None:
            return resumed
    model, history = train_run()
    history.meta = {"run": name, "budget": budget, **history.meta}
    if store == "record":       # when it was recorded (the benchmark report lists the recordings by date)
        history.meta["recorded"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = RunResult(name, history, trained=True, _model=model)
    if store == "record":
        if keep_weights and model is not None:
            save_weights(model, name, budget)
        save_history(history, name, budget)
        _keep(result, budget)
    return result
