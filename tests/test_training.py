"""The training engine: history, seeds, checkpoints and resume, NaN stop, schedules, evaluation, progress."""
import json

import pytest
import torch
from torch import nn

from vgg_helpers import training as tr
from tests.helpers import tiny_model, toy_loaders
from vgg_helpers.training import History, TrainConfig, TrainingDiverged, evaluate, load_checkpoint, train


def test_history_round_trip(tmp_path):
    h = History(meta={"budget": "cpu"})
    h.append(epoch=1, train_loss=2.3, train_acc=0.1, val_loss=2.2, val_acc=0.2, lr=0.1, time=1.5)
    h.save(tmp_path / "h.json")
    assert History.load(tmp_path / "h.json") == h
    assert json.loads((tmp_path / "h.json").read_text())["meta"]["budget"] == "cpu"


def test_training_learns_and_records_everything():
    train_loader, val_loader = toy_loaders()
    h = train(tiny_model(), train_loader, val_loader, TrainConfig(epochs=4, lr=0.05), device="cpu",
              progress=False, meta={"data_source": "toy"})
    assert h.epoch == [1, 2, 3, 4] and len(h.val_acc) == 4 and h.time == sorted(h.time)
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.meta["data_source"] == "toy" and h.meta["torch"] == torch.__version__
    assert h.meta["model_config"]["arch"] == "vgg11" and h.meta["train_config"]["epochs"] == 4
    assert h.lr[-1] < h.lr[0] or h.lr[-1] == 0.0          # one-cycle decays to zero


def test_same_seed_same_history():
    runs = []
    for _ in range(2):
        train_loader, val_loader = toy_loaders()
        h = train(tiny_model(), train_loader, val_loader, TrainConfig(epochs=2, lr=0.05), device="cpu",
                  progress=False)
        runs.append((h.train_loss, h.val_loss, h.val_acc))
    assert runs[0] == runs[1]


def test_resume_gives_the_history_of_a_run_that_never_stopped(tmp_path):
    cfg = TrainConfig(epochs=3, lr=0.05)
    train_loader, val_loader = toy_loaders()
    straight = train(tiny_model(), train_loader, val_loader, cfg, device="cpu", progress=False)

    ckpt = tmp_path / "run.pt"
    steps_per_epoch = len(train_loader)

    def crash_in_epoch_3(model, step, loss):
        if step == 2 * steps_per_epoch + 1:
            raise KeyboardInterrupt("power cut")

    train_loader, val_loader = toy_loaders()
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), train_loader, val_loader, cfg, device="cpu", checkpoint=ckpt, progress=False,
              on_step=crash_in_epoch_3)
    saved = torch.load(ckpt, weights_only=True)                 # loadable with weights_only=True
    assert saved["epoch"] == 2
    train_loader, val_loader = toy_loaders()
    resumed = train(tiny_model(seed=123), train_loader, val_loader, cfg, device="cpu", checkpoint=ckpt,
                    progress=False)
    for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert getattr(resumed, key) == getattr(straight, key), key


def test_corrupt_checkpoint_is_explained(tmp_path):
    ckpt = tmp_path / "bad.pt"
    ckpt.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="damaged or not a PyTorch file.*left as it is"):
        load_checkpoint(ckpt, tiny_model())


def test_nan_loss_stops_with_step_and_lr():
    train_loader, val_loader = toy_loaders()
    model = tiny_model()
    with torch.no_grad():
        model.classifier[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"step 1 \(learning rate .*\)"):
        train(model, train_loader, val_loader, TrainConfig(epochs=1, lr=0.1, schedule="constant"), device="cpu",
              progress=False)


def test_max_steps_and_schedules():
    train_loader, _ = toy_loaders()
    h = train(tiny_model(), train_loader, None, TrainConfig(epochs=5, lr=0.1, schedule="constant", max_steps=4),
              device="cpu", progress=False)
    assert h.epoch == [1, 2] and h.val_acc == [None, None] and h.lr == [0.1, 0.1]
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
    cfg = TrainConfig(schedule="onecycle", warmup=0.25)
    assert [round(tr.lr_factor(cfg, s, 100), 2) for s in (0, 25, 100)] == [0.0, 1.0, 0.0]
    assert round(tr.lr_factor(TrainConfig(schedule="cosine"), 50, 100), 2) == 0.5


def test_evaluate_counts_right_answers():
    class Oracle(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):               # predicts class 0 for everything
            return torch.zeros(len(x), 10).index_fill_(1, torch.tensor([0]), 1.0) + self.w

    _, val_loader = toy_loaders(n=20)             # labels 0..9, twice each: class 0 is 2 of 20
    loss, acc = evaluate(Oracle(), val_loader)
    assert acc == pytest.approx(0.1)
    logits = torch.zeros(1, 10).index_fill_(1, torch.tensor([0]), 1.0)
    right = torch.nn.functional.cross_entropy(logits, torch.tensor([0])).item()
    wrong = torch.nn.functional.cross_entropy(logits, torch.tensor([1])).item()
    assert loss == pytest.approx(0.1 * right + 0.9 * wrong, rel=1e-5)


def test_progress_bars_only_where_they_can_be_drawn(capsys):
    assert tr.progress_bars_wanted(False) is False and tr.progress_bars_wanted(True) is True
    assert tr.progress_bars_wanted(None) is False      # pytest captures stderr: no terminal, no notebook
    train_loader, _ = toy_loaders()
    train(tiny_model(), train_loader, None, TrainConfig(epochs=1), device="cpu", progress=False)
    assert capsys.readouterr().out == ""
    train(tiny_model(), train_loader, None, TrainConfig(epochs=1), device="cpu")
    out = capsys.readouterr()
    assert out.out.startswith("epoch   1: train loss") and "it/s" not in out.err


def test_test_loader_is_recorded_apart_from_validation():
    train_loader, val_loader = toy_loaders()
    h = train(tiny_model(), train_loader, None, TrainConfig(epochs=2), device="cpu", progress=False,
              test_loader=val_loader)
    assert h.val_acc == [None, None] and len(h.test_acc) == 2 and all(0 <= a <= 1 for a in h.test_acc)
    plain = train(tiny_model(), train_loader, None, TrainConfig(epochs=2), device="cpu", progress=False)
    assert plain.test_acc == [] and plain.train_loss == h.train_loss      # evaluating changes no training
