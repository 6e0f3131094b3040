"""Stored runs and stored weights refuse bad input clearly (issue 34): a misspelled run name does not start a
long training, a damaged weights file is named and left alone, a budget typo is not "nothing stored"."""
import pytest
import torch

from tests.helpers import tiny_model
from vgg_helpers.book import store
from vgg_helpers.book.store import load_weights, save_history, save_weights, stored_history, train_or_load
from vgg_helpers.training import History


def _history() -> History:
    h = History(meta={"device": "cpu", "torch": torch.__version__})
    h.append(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=0.5, lr=0.1, time=1.0)
    return h


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """A scratch store holding the cpu-budget runs 'modern-final' (with weights) and 'batch-norm'."""
    monkeypatch.setattr(store, "STORED_DIR", tmp_path)
    for name in ("modern-final", "batch-norm"):
        save_history(_history(), name, "cpu")
    save_weights(tiny_model(), "modern-final", "cpu")
    return tmp_path


def _never_called():
    raise AssertionError("the run was trained")


@pytest.mark.parametrize("typo,meant", [("modern-fianl", "modern-final"), ("batch_norm", "batch-norm"),
                                        ("batchnorm", "batch-norm")])
def test_a_misspelled_run_name_is_refused_before_training(stored, typo, meant):
    with pytest.raises(ValueError, match=rf"no stored cpu-budget run is called '{typo}'; did you mean '{meant}'\? "
                                         rf"To train '{typo}' on purpose, pass store='train'"):
        train_or_load(typo, _never_called, budget="cpu", store="load")


def test_another_seed_or_an_unstored_run_trains_with_a_warning(stored):
    trained = []

    def run():
        trained.append(1)
        return None, _history()
    with pytest.warns(UserWarning, match=r"no stored cpu-budget run is called 'batch-norm-s7' \(2 are stored\): "
                                         r"training it instead"):
        assert train_or_load("batch-norm-s7", run, budget="cpu", store="load").trained
    with pytest.warns(UserWarning, match="'my-own-run'"):
        train_or_load("my-own-run", run, budget="cpu", store="load")
    assert len(trained) == 2
    train_or_load("anything", run, budget="smoke", store="load")      # nothing is stored in smoke: no warning


@pytest.mark.parametrize("budget,match", [("CPU", r"got 'CPU'\. Write budget='cpu'"), ("fast", r"got 'fast'\.$"),
                                          (None, r"got None\.$")])
def test_a_budget_typo_is_an_error_not_no_weights_stored(stored, budget, match):
    with pytest.raises(ValueError, match=r"^budget must be one of 'smoke', 'cpu', 'gpu'; " + match):
        load_weights(tiny_model(), "modern-final", budget)
    with pytest.raises(ValueError, match=r"^budget must be one of"):
        stored_history("modern-final", budget)


@pytest.mark.parametrize("content,match", [
    (b"", r"cannot read the stored weights of 'modern-final' \(cpu\) in modern-final-cpu\.pt: the file is damaged "
          r"or not a PyTorch file .*left as it is; restore it with git"),
    (b"not a torch file at all", r"in modern-final-cpu\.pt: the file is damaged or not a PyTorch file"),
])
def test_a_damaged_weights_file_is_named_and_left_alone(stored, content, match):
    path = stored / "modern-final-cpu.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_weights(tiny_model(), "modern-final", "cpu")
    assert path.read_bytes() == content


def test_weights_that_are_not_a_state_dict_are_named(stored):
    torch.save([torch.zeros(2)], stored / "modern-final-cpu.pt")
    with pytest.raises(ValueError, match=r"modern-final-cpu\.pt does not hold stored weights .*holds a list"):
        load_weights(tiny_model(), "modern-final", "cpu")


def test_load_weights_wants_a_network(stored):
    with pytest.raises(TypeError, match=r"model must be a network built like the run's .*got function"):
        load_weights(tiny_model, "modern-final", "cpu")


def test_the_stored_weights_still_load(stored):
    assert load_weights(tiny_model(1), "modern-final", "cpu") is True
    assert load_weights(tiny_model(), "batch-norm", "cpu") is False          # a run without weights
