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

``train_or_load`` is the one way to a stored run: it takes the training as a function, called only when the run
is trained, so a caller builds its data inside that function and never checks for a stored run first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from ..data import CIFAR10
from ..files import atomic_write
from ..runtime import BUDGETS, environment_info
from ..settings import STORE_POLICIES, settings
from ..training import History, TrainConfig, TrainingDiverged, train

__all__ = ["STORED_DIR", "stored_path", "stored_history", "stored_runs", "save_history", "weights_path",
           "save_weights", "load_weights", "RunResult", "StoredRunError", "check_store", "store_policy", "need_data", "fit",
           "train_or_load"]

STORED_DIR = Path(__file__).with_name("stored_runs")

Trained = tuple[Optional[nn.Module], History]   # what a run's training returns (no network if it diverged)


class StoredRunError(RuntimeError):
    """A stored run was asked for something that only a trained network has."""


def _check_run_name(name: str) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise ValueError(f"a run name is a short file-name-safe label such as 'batch-norm' (letters, digits, "
                         f"'-', '_', '.'); got {name!r}")
    return name


def stored_path(name: str, budget: str) -> Path:
    """Where the stored history of run ``name`` in ``budget`` lives (shipped inside the package)."""
    return STORED_DIR / f"{_check_run_name(name)}-{budget}.json"


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
    return STORED_DIR / f"{_check_run_name(name)}-{budget}.pt"


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


def need_data(data: Optional[CIFAR10], name: str, budget: str) -> CIFAR10:
    """``data``, or a ``TypeError`` saying that run ``name`` must be trained and needs it."""
    if data is None:
        raise TypeError(f"'{name}' must be trained (no stored {budget}-budget run is used) and needs the data set: "
                        "pass data=load_cifar10(...).")
    if not isinstance(data, CIFAR10):
        raise TypeError(f"'{name}' needs the data set as load_cifar10 returns it; got {type(data).__name__}.")
    return data


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


def _loaded(name: str, budget: str, quiet: bool) -> Optional[RunResult]:
    stored = stored_history(name, budget)
    if stored is None:
        return None
    if not quiet:
        print(f"Loaded the stored {budget}-budget run '{name}' "
              f"(measured on {stored.meta.get('device')}, torch {stored.meta.get('torch')})")
    return RunResult(name, stored, trained=False)


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
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    if not callable(train_run) or isinstance(train_run, nn.Module):
        raise TypeError(f"train_run must be a function that trains the run and returns (model, history); got "
                        f"{type(train_run).__name__}. It is only called when the run is trained, not loaded.")
    if store == "load":
        stored = _loaded(name, budget, quiet)
        if stored is not None:
            if build_model is not None and weights_path(name, budget).exists():
                model = build_model()
                load_weights(model, name, budget)
                stored._model = model.eval()
            return stored
    model, history = train_run()
    history.meta = {"run": name, "budget": budget, **history.meta}
    if store == "record":
        if keep_weights and model is not None:
            save_weights(model, name, budget)
        save_history(history, name, budget)
    return RunResult(name, history, trained=True, _model=model)
