"""The book's stored runs: the store policies of train_or_load, RunResult, and every stored file under its name."""
import math

import pytest
import torch

from tests.helpers import tiny_cifar, tiny_model, toy_loaders
from vgg_helpers.book import store
from vgg_helpers.book.plans import TOPICS
from vgg_helpers.book.store import (RunResult, StoredRunError, fit, need_data, stored_history, stored_runs,
                                    train_or_load)
from vgg_helpers.diagnostics import mean_sd
from vgg_helpers.training import History, TrainConfig, TrainingDiverged


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "STORED_DIR", tmp_path)
    return tmp_path


def _run(policy: str, budget: str = "cpu", finish=None, **kwargs) -> RunResult:
    calls = []

    def train_run():
        calls.append(1)
        train_loader, val_loader = toy_loaders()
        return fit(tiny_model, train_loader, val_loader, TrainConfig(epochs=1), device="cpu", progress=False,
                   meta={"seed": 0}, finish=finish)

    result = train_or_load("toy", train_run, budget=budget, store=policy, build_model=tiny_model, **kwargs)
    assert len(calls) == int(result.trained), "the training function runs exactly when the run is trained"
    return result


def test_record_then_load(store_dir, capsys):
    trained = _run("record")
    assert trained.trained and trained.source == "trained here" and (store_dir / "toy-cpu.json").exists()
    assert trained.history.meta["run"] == "toy" and trained.history.meta["budget"] == "cpu"
    assert isinstance(trained.model, torch.nn.Module)
    loaded = _run("load", quiet=False)
    assert not loaded.trained and loaded.source == "stored run"
    assert loaded.history.val_acc == trained.history.val_acc
    assert "Loaded the stored cpu-budget run 'toy'" in capsys.readouterr().out
    with pytest.raises(StoredRunError, match="holds no weights.*store='train'"):
        loaded.model


def test_train_never_writes_and_load_falls_back_to_training(store_dir):
    assert _run("train").trained and not list(store_dir.iterdir())
    assert _run("load").trained                       # nothing stored: it trains
    assert not list(store_dir.iterdir())


def test_the_training_function_builds_its_data_lazily(store_dir):
    """One way to a stored run: a loaded run never needs the data; a trained one says it needs it."""
    def train_run():
        need_data(None, "toy", "cpu")

    with pytest.raises(TypeError, match="'toy' must be trained .* pass data=load_cifar10"):
        train_or_load("toy", train_run, budget="cpu", store="load")
    _run("record")
    assert not train_or_load("toy", train_run, budget="cpu", store="load").trained
    assert need_data(tiny_cifar(), "toy", "cpu").source == "synthetic test data"
    with pytest.raises(TypeError, match="as load_cifar10 returns it; got list"):
        need_data([], "toy", "cpu")


def test_a_function_that_loads_the_data_is_called_only_when_a_run_trains(store_dir):
    """A chapter that mostly shows stored runs passes a loading function: loaded runs never call it."""
    calls = []

    def cifar10():
        calls.append(1)
        return tiny_cifar()

    def train_run():
        assert need_data(cifar10, "toy", "cpu").source == "synthetic test data"
        train_loader, val_loader = toy_loaders()
        return fit(tiny_model, train_loader, val_loader, TrainConfig(epochs=1), device="cpu", progress=False)

    _run("record")
    assert not train_or_load("toy", train_run, budget="cpu", store="load").trained and calls == []
    assert train_or_load("toy", train_run, budget="cpu", store="train").trained and calls == [1]
    with pytest.raises(TypeError, match="got a function that returned list"):
        need_data(lambda: [], "toy", "cpu")


def test_smoke_runs_are_never_stored(store_dir):
    _run("record", budget="smoke")
    assert not (store_dir / "toy-smoke.json").exists()


def test_finish_adds_measurements_before_storing(store_dir):
    _run("record", finish=lambda model, h: h.meta.update(test_acc=0.5))
    assert History.load(store_dir / "toy-cpu.json").meta["test_acc"] == 0.5


def test_divergence_is_a_result_only_when_allowed():
    def exploding() -> torch.nn.Module:
        model = tiny_model()
        with torch.no_grad():
            model.classifier[0].weight.fill_(float("nan"))
        return model

    train_loader, _ = toy_loaders()
    with pytest.raises(TrainingDiverged):
        fit(exploding, train_loader, progress=False)
    model, history = fit(exploding, train_loader, progress=False, allow_divergence=True, meta={"seed": 3})
    assert "became nan" in history.meta["diverged"] and model is None and history.meta["seed"] == 3


def test_unknown_store_policy_is_named():
    with pytest.raises(ValueError, match="train, load, record"):
        _run("save")


def test_every_stored_run_loads():
    found = stored_runs()
    assert len(found) >= 149
    for stem, path in found.items():
        name, budget = stem.rsplit("-", 1)
        h = stored_history(name, budget)
        if h.meta.get("diverged"):         # a run whose loss became inf or NaN is a result without epochs
            assert not h.epoch and "became" in h.meta["diverged"], stem
            continue
        assert h.epoch == list(range(1, len(h.epoch) + 1)) and h.epoch, stem
        for key in ("train_loss", "train_acc", "val_acc", "lr", "time"):
            assert len(getattr(h, key)) == len(h.epoch), (stem, key)
        assert all(v is None or (0 <= v <= 1) for v in h.val_acc + h.test_acc), stem
        assert all(math.isfinite(v) for v in h.train_loss), stem
        assert h.meta["run"] == name and h.meta["budget"] == budget, stem
        assert h.meta.get("test_acc") is None or 0 <= h.meta["test_acc"] <= 1, stem


def _cpu_names() -> set[str]:
    """Every run the cpu plans load from the store, by its stored name."""
    names = set()
    for table in TOPICS.values():
        plan = table["cpu"]
        if plan.store != "load":
            continue
        for rung in [r.name for r in plan.rungs] or [None]:
            if rung is not None and not plan.retrains(rung):
                continue                     # re-reads its base run
            names |= {plan.run_name(rung, seed) for seed in plan.seeds}
    return names


def test_every_stored_run_is_named_by_topic_and_belongs_to_a_plan():
    """The stored files are exactly the runs the cpu plans load: none missing, none left over, none named by a
    chapter number."""
    stored = {stem.rsplit("-", 1)[0] for stem in stored_runs()}
    wanted = _cpu_names()
    assert all(not name.startswith(("ch5", "ch6", "ch7", "ch8", "ch9")) for name in stored)
    assert wanted <= stored, f"plans without a stored run: {sorted(wanted - stored)}"
    assert stored <= wanted, f"stored runs no plan names: {sorted(stored - wanted)}"


def test_train_or_load_refuses_a_model_where_a_function_belongs_and_bad_names():
    train_loader, _ = toy_loaders()
    with pytest.raises(TypeError, match="train_run must be a function.*got VGG"):
        train_or_load("r", tiny_model(), budget="smoke")
    with pytest.raises(TypeError, match="build_model must be a function.*got VGG"):
        fit(tiny_model(), train_loader)
    with pytest.raises(ValueError, match="file-name-safe label.*got '../x'"):
        train_or_load("../x", lambda: None, budget="smoke")
    with pytest.raises(ValueError, match="budget must be one of 'smoke', 'cpu', 'gpu'; got 'CPU '. Write budget='cpu'"):
        train_or_load("r", lambda: None, budget="CPU ")


def test_a_damaged_stored_run_names_its_file(store_dir):
    (store_dir / "r-cpu.json").write_text('{"epoch": [1')
    with pytest.raises(ValueError, match=r"r-cpu\.json is not valid JSON"):
        train_or_load("r", lambda: None, budget="cpu", store="load")


def test_recorded_weights_come_back_with_the_loaded_run(store_dir):
    trained = _run("record", keep_weights=True)
    assert (store_dir / "toy-cpu.pt").exists()
    loaded = _run("load")
    assert not loaded.trained and loaded.source == "stored run"
    for (name, a), b in zip(trained.model.state_dict().items(), loaded.model.state_dict().values()):
        assert a.dtype == b.dtype, name
        if a.is_floating_point():            # stored as float16: about three significant digits
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
        else:
            assert torch.equal(a, b), name
    assert not loaded.model.training             # ready to evaluate


def test_weights_are_only_kept_when_asked(store_dir):
    _run("record")
    assert not (store_dir / "toy-cpu.pt").exists()
    assert store.save_weights(tiny_model(), "toy", "smoke") is None


def test_stored_weights_of_another_network_are_refused(store_dir):
    store.save_weights(tiny_model(), "toy", "cpu")
    other = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="do not fit this network"):
        store.load_weights(other, "toy", "cpu")
    assert store.load_weights(tiny_model(), "toy", "cpu") is True
    assert store.load_weights(tiny_model(), "missing", "cpu") is False


def test_mean_sd_leaves_out_missing_values():
    assert mean_sd([0.1, None, 0.14], scale=100) == "12.0 +- 2.8"
    assert mean_sd([None]) == "n/a"
    assert mean_sd([0.5], digits=3) == "0.500 +- 0.000"
