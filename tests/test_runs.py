"""Stored reference runs: the store policies of train_or_load, RunResult, and every stored file."""
import math

import pytest
import torch

from tests.helpers import tiny_model, toy_loaders
from vgg_helpers import runs
from vgg_helpers.runs import RunResult, StoredRunError, load_run, run_name, stored_runs, train_or_load
from vgg_helpers.training import History, TrainConfig


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "REFERENCE_DIR", tmp_path)
    return tmp_path


def _run(store: str, budget: str = "cpu", **kwargs) -> RunResult:
    train_loader, val_loader = toy_loaders()
    return train_or_load("toy", tiny_model, train_loader, val_loader, TrainConfig(epochs=1), budget=budget,
                         store=store, device="cpu", progress=False, meta={"seed": 0}, **kwargs)


def test_run_name_keeps_seed_zero_bare():
    assert run_name("ch5-ablation-paper", 0) == "ch5-ablation-paper"
    assert run_name("ch5-ablation-paper", 2) == "ch5-ablation-paper-s2"


def test_record_then_load(store_dir, capsys):
    trained = _run("record")
    assert trained.trained and trained.source == "trained here" and (store_dir / "toy-cpu.json").exists()
    assert trained.history.meta["run"] == "toy" and trained.history.meta["budget"] == "cpu"
    assert isinstance(trained.model, torch.nn.Module)
    loaded = _run("load")
    assert not loaded.trained and loaded.source == "stored run"
    assert loaded.history.val_acc == trained.history.val_acc
    assert "Loaded the stored cpu-budget run 'toy'" in capsys.readouterr().out
    with pytest.raises(StoredRunError, match="holds no weights.*store='train'"):
        loaded.model


def test_train_never_writes_and_load_falls_back_to_training(store_dir):
    assert _run("train").trained and not list(store_dir.iterdir())
    assert _run("load").trained                       # nothing stored: it trains
    assert not list(store_dir.iterdir())


def test_smoke_runs_are_never_stored(store_dir):
    _run("record", budget="smoke")
    assert not (store_dir / "toy-smoke.json").exists()


def test_finish_adds_measurements_before_storing(store_dir):
    _run("record", finish=lambda model, h: h.meta.update(test_acc=0.5))
    assert History.load(store_dir / "toy-cpu.json").meta["test_acc"] == 0.5


def test_divergence_is_a_result_only_when_allowed(store_dir):
    def exploding() -> torch.nn.Module:
        model = tiny_model()
        with torch.no_grad():
            model.classifier[0].weight.fill_(float("nan"))
        return model

    train_loader, _ = toy_loaders()
    with pytest.raises(runs.TrainingDiverged):
        train_or_load("nan", exploding, train_loader, budget="cpu", store="train", progress=False)
    result = train_or_load("nan", exploding, train_loader, budget="cpu", store="train", progress=False,
                           allow_divergence=True)
    assert "became nan" in result.history.meta["diverged"] and result.model is None


def test_unknown_store_policy_is_named():
    with pytest.raises(ValueError, match="train, load, record"):
        _run("save")


def test_every_stored_run_loads():
    found = stored_runs()
    assert len(found) >= 19
    for stem, path in found.items():
        name, budget = stem.rsplit("-", 1)
        result = load_run(name, budget, quiet=True)
        h = result.history
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


def test_train_or_load_refuses_a_model_where_a_builder_belongs_and_bad_names():
    train_loader, _ = toy_loaders()
    with pytest.raises(TypeError, match="build_model must be a function.*got VGG"):
        train_or_load("r", tiny_model(), train_loader, budget="smoke")
    with pytest.raises(ValueError, match="file-name-safe label.*got '../x'"):
        train_or_load("../x", tiny_model, train_loader, budget="smoke")
    with pytest.raises(ValueError, match="budget must be one of smoke, cpu, gpu; got 'CPU '"):
        train_or_load("r", tiny_model, train_loader, budget="CPU ")


def test_a_damaged_stored_run_names_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "REFERENCE_DIR", tmp_path)
    (tmp_path / "r-cpu.json").write_text('{"epoch": [1')
    with pytest.raises(ValueError, match=r"r-cpu\.json is not valid JSON"):
        runs.load_run("r", "cpu")


def test_recording_setup_parses_the_record_command(monkeypatch, capsys):
    """The shared command line of the maintainers' record commands (failure_runs, paper_runs, fast)."""
    import vgg_helpers.data as data_module
    from tests.helpers import tiny_cifar
    from vgg_helpers.runs import recording_setup

    monkeypatch.setattr(data_module, "load_cifar10", lambda *a, **k: tiny_cifar())
    rec = recording_setup("prog", "test's", ["a", "b"], ["record", "--only", "b", "--match", "z"], threads=False,
                          match=True)
    assert rec.args.only == ["b"] and rec.args.match == "z" and rec.budget == "cpu" and len(rec.data.train_labels)
    assert "recording test's cpu-budget runs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        recording_setup("prog", "test's", ["a"], ["record", "--only", "c"])
    with pytest.raises(SystemExit):                 # --threads only where offered
        recording_setup("prog", "test's", ["a"], ["record", "--threads", "1"], threads=False)


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
    assert runs.save_weights(tiny_model(), "toy", "smoke") is None


def test_stored_weights_of_another_network_are_refused(store_dir):
    runs.save_weights(tiny_model(), "toy", "cpu")
    other = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="do not fit this network"):
        runs.load_weights(other, "toy", "cpu")
    assert runs.load_weights(tiny_model(), "toy", "cpu") is True
    assert runs.load_weights(tiny_model(), "missing", "cpu") is False


def test_stored_or_check_data(store_dir):
    with pytest.raises(TypeError, match="needs the data set to train 'toy'.*load_cifar10"):
        runs.stored_or_check_data("toy", None, "cpu", "load", True, "some_runs")
    assert runs.stored_or_check_data("toy", object(), "cpu", "load", True, "some_runs") is None
    _run("record")
    assert runs.stored_or_check_data("toy", None, "cpu", "load", True, "some_runs").name == "toy"
    assert runs.stored_or_check_data("toy", object(), "cpu", "train", True, "some_runs") is None


def test_mean_sd_leaves_out_missing_values():
    assert runs.mean_sd([0.1, None, 0.14], scale=100) == "12.0 +- 2.8"
    assert runs.mean_sd([None]) == "n/a"
    assert runs.mean_sd([0.5], digits=3) == "0.500 +- 0.000"
