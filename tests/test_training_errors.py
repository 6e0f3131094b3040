"""Issue 16: the training engine refuses bad input early and clearly, and never throws away a user's work."""
import json
import pathlib
import warnings

import numpy as np
import pytest
import torch

from tests.helpers import tiny_model, toy_loaders
from vgg_helpers import build_vgg
from vgg_helpers.data import TensorLoader
from vgg_helpers.training import CheckpointError, History, TrainConfig, load_checkpoint, train


class Foreign:
    """Some object of the user's own, which torch will not unpickle with weights_only=True."""


def _train(ckpt, **kwargs):
    train_loader, _ = toy_loaders()
    return train(tiny_model(), train_loader, None, device="cpu", checkpoint=ckpt, progress=False, **kwargs)


# 1. A checkpoint whose meta held a numpy scalar or a Path could not be resumed, and the message said to delete it.
def test_resume_works_when_meta_holds_numpy_scalars_and_paths(tmp_path):
    ckpt = tmp_path / "ck.pt"
    meta = {"acc": np.float64(0.5), "n": np.int64(3), "where": pathlib.Path("runs") / "a", "shape": (32, 32)}
    first = _train(ckpt, config=TrainConfig(epochs=1), meta=meta)
    assert first.meta["acc"] == 0.5 and first.meta["where"] == "runs/a" and first.meta["shape"] == [32, 32]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = _train(ckpt, config=TrainConfig(epochs=2), meta=meta)
    assert resumed.epoch == [1, 2]
    json.dumps(resumed.to_dict(), allow_nan=False)                  # the history is plain, valid JSON


def test_an_older_checkpoint_with_numpy_meta_still_loads(tmp_path):
    """A checkpoint written before the fix (numpy scalars inside history.meta) loads with weights_only=True."""
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 1,
             "history": {"epoch": [1], "meta": {"acc": np.float64(0.5), "dir": pathlib.Path("x")}},
             "train_config": {}, "rng_cpu": torch.get_rng_state()}
    torch.save(state, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt", tiny_model(seed=5))
    assert loaded["epoch"] == 1 and float(loaded["history"]["meta"]["acc"]) == 0.5


def test_an_unreadable_checkpoint_is_kept_and_the_message_does_not_say_delete(tmp_path):
    ckpt = tmp_path / "bad.pt"
    ckpt.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged or not a PyTorch file") as err:
        _train(ckpt, config=TrainConfig(epochs=1))
    assert "Delete" not in str(err.value) and "left as it is" in str(err.value)
    assert ckpt.read_bytes() == b"garbage"                          # never overwritten

    torch.save({"model": {}, "epoch": 1, "extra": Foreign()}, ckpt)
    with pytest.raises(CheckpointError, match=r"not plain data \(.*Foreign\).*weights_only=False"):
        load_checkpoint(ckpt, tiny_model())


# 3. Resuming with a changed config was silent and the history kept the checkpoint's settings.
def test_resuming_with_other_settings_is_refused_and_names_them(tmp_path):
    ckpt = tmp_path / "ck.pt"
    _train(ckpt, config=TrainConfig(epochs=2, lr=0.05, max_steps=3))
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match=r"lr: 0\.05 in the checkpoint, 0\.1 now.*schedule: 'onecycle'"):
        _train(ckpt, config=TrainConfig(epochs=2, lr=0.1, schedule="cosine", max_steps=3))
    assert ckpt.read_bytes() == before


def test_resuming_for_more_epochs_records_the_new_settings_and_warns(tmp_path):
    ckpt = tmp_path / "ck.pt"
    _train(ckpt, config=TrainConfig(epochs=1))
    with pytest.warns(UserWarning, match=r"epochs 1 -> 2"):
        h = _train(ckpt, config=TrainConfig(epochs=2))
    assert h.epoch == [1, 2] and h.meta["train_config"]["epochs"] == 2
    assert h.meta["resumed_with_changes"] == [{"after_epoch": 1, "epochs": {"was": 1, "now": 2}}]


# 5. TrainConfig and TensorLoader checked too little.
@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 1.5}, TypeError, r"epochs must be a whole number >= 1; got 1\.5 \(float\)\.$"),
    ({"epochs": 2.0}, TypeError, r"Write epochs=2\.$"),
    ({"epochs": "3"}, TypeError, r"epochs must be a whole number >= 1; got '3' \(str\)"),
    ({"epochs": True}, TypeError, r"epochs must be a whole number"),
    ({"lr": "0.1"}, TypeError, r"lr must be a number in \(0, inf\); got '0\.1' \(str\)\. Write lr=0\.1"),
    ({"lr": float("nan")}, ValueError, r"lr must be a number in \(0, inf\); got nan"),
    ({"warmup": 1.5}, ValueError, r"warmup must be a number in \[0, 1\]; got 1\.5"),
    ({"warmup": -0.5}, ValueError, r"warmup must be a number in \[0, 1\]"),
    ({"weight_decay": -1}, ValueError, r"weight_decay must be a number in \[0, inf\); got -1"),
    ({"momentum": 1.0}, ValueError, r"momentum must be a number in \[0, 1\)"),
    ({"label_smoothing": 1}, ValueError, r"label_smoothing must be a number in \[0, 1\)"),
    ({"max_steps": 0}, ValueError, r"max_steps must be a whole number >= 1 \(or None for every epoch's steps\); got 0"),
    ({"seed": -1}, ValueError, r"seed must be a whole number >= 0"),
    ({"patience": 0}, ValueError, r"patience must be a whole number >= 1 \(epochs, e\.g\. 2\); got 0"),
    ({"schedule": "step"}, ValueError, r"schedule must be one of 'constant', 'onecycle', 'cosine', 'plateau'"),
    ({"nesterov": "yes"}, TypeError, r"nesterov must be True or False; got 'yes' \(str\)"),
])
def test_train_config_refuses_bad_values_when_built(kwargs, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**kwargs)


def test_train_config_accepts_numpy_numbers_and_stores_python_ones():
    cfg = TrainConfig(epochs=np.int64(3), lr=np.float32(0.1), seed=np.int32(2))
    assert type(cfg.epochs) is int and type(cfg.lr) is float and type(cfg.seed) is int
    json.dumps(cfg.__dict__)


def test_train_refuses_an_empty_loader_and_unknown_settings():
    x = torch.zeros(3, 3, 32, 32, dtype=torch.uint8)
    loader = TensorLoader(x, torch.zeros(3, dtype=torch.long), batch_size=2, drop_last=True)
    loader.images, loader.labels = x[:1], torch.zeros(1, dtype=torch.long)     # fewer images than one batch
    with pytest.raises(ValueError, match="yields no batches"):
        train(tiny_model(), loader, device="cpu", progress=False)
    train_loader, _ = toy_loaders()
    with pytest.raises(TypeError, match="unknown argument.*lr_max.*TrainConfig fields"):
        train(tiny_model(), train_loader, device="cpu", progress=False, lr_max=0.1)
    with pytest.raises(TypeError, match=r"write TrainConfig\(\*\*config\)"):
        train(tiny_model(), train_loader, config={"epochs": 1}, device="cpu", progress=False)


# 6. History.load / save.
@pytest.mark.parametrize("text, message", [
    ("{not json", r"h\.json is not valid JSON"),
    ("[1, 2, 3]", r"h\.json is not a training history.*got list"),
    ('{"name": "results", "value": 3}', r"not a training history.*keys name, value"),
    ('{"epoch": [1, 2], "train_loss": [2.3]}', r"damaged: 'train_loss' has 1 values for 2 epochs"),
])
def test_history_load_names_the_file_and_refuses_what_is_not_a_history(tmp_path, text, message):
    bad = tmp_path / "h.json"
    bad.write_text(text)
    with pytest.raises(ValueError, match=message):
        History.load(bad)
    assert bad.read_text() == text                                   # left as it was


@pytest.mark.parametrize("history,match", [
    (History(epoch=[1], train_loss=[]), r"this history \(not saved\) is damaged: 'train_loss' has 0 values for 1 "
                                        r"epochs"),
    (History(meta=["not", "a", "dict"]), r"this history \(not saved\): 'meta' must be an object; got list"),
    (History(epoch=[], lr=0.1), r"'lr' must be a list; got float"),
])
def test_history_save_refuses_what_load_would_reject_and_writes_nothing(tmp_path, history, match):
    path = tmp_path / "h.json"
    path.write_text("the earlier file")
    with pytest.raises(ValueError, match=match):
        history.save(path)
    assert path.read_text() == "the earlier file"                  # not replaced by an unreadable history


def test_history_save_writes_valid_json_even_for_nan(tmp_path):
    h = History()
    h.append(epoch=1, train_loss=float("nan"), train_acc=0.1, val_loss=float("inf"), val_acc=None, lr=0.1,
             time=1.0)
    text = h.save(tmp_path / "h.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert History.load(tmp_path / "h.json").train_loss == [None]
    with pytest.raises(ValueError, match="History has no column 'accuracy'"):
        h.append(accuracy=0.5)


# 7. load_checkpoint on a plain torch.save(model.state_dict()) file.
def test_a_bare_state_dict_is_explained_not_a_key_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(tiny_model().state_dict(), path)
    with pytest.raises(CheckpointError, match=r"bare state_dict.*model\.load_state_dict"):
        load_checkpoint(path, tiny_model())
    with pytest.raises(CheckpointError, match="bare state_dict"):
        _train(path, config=TrainConfig(epochs=1))
    assert torch.load(path, weights_only=True).keys() == tiny_model().state_dict().keys()   # untouched


def test_a_checkpoint_of_another_network_names_the_difference(tmp_path):
    ckpt = tmp_path / "ck.pt"
    _train(ckpt, config=TrainConfig(epochs=1))
    with pytest.raises(CheckpointError, match=r"different network.*width: 0\.125 there, 0\.25 here"):
        load_checkpoint(ckpt, build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, batch_norm=True,
                                        width=0.25))
