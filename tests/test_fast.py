"""Training fast: FastModel's layout and autocast, and the gradient scaler of float16 training."""
import math

import pytest
import torch

from tests.helpers import tiny_cifar, tiny_model
from vgg_helpers import fast
from vgg_helpers.data import TensorLoader
from vgg_helpers.fast import FastModel, SpeedSettings
from vgg_helpers.training import evaluate, train


def test_fast_model_keeps_the_networks_function_and_sets_the_layout():
    net = tiny_model().eval()
    model = FastModel(net, channels_last=True).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5)
    assert net.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model.config is net.config                               # train() records the network's config


def test_with_settings_takes_the_layout_autocast_and_compile_switches():
    model = FastModel.with_settings(tiny_model(), SpeedSettings(threads=1, channels_last=True, amp=True))
    assert (model.channels_last, model.amp) == (True, True)


def test_the_test_time_flip_is_the_evaluations_not_the_models():
    """A FastModel evaluates like its network, with or without the flip (training.tta_logits does the flip)."""
    data = tiny_cifar(n_test=60)
    loader = TensorLoader(data.test_images, data.test_labels, 25)
    net = tiny_model()
    for tta in (0, 1):
        assert evaluate(FastModel(net), loader, tta=tta)[1] == pytest.approx(evaluate(net, loader, tta=tta)[1])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, None])
def test_fast_model_autocasts_in_the_device_precision(monkeypatch, dtype):
    monkeypatch.setattr(fast, "autocast_dtype", lambda device="cpu": dtype)
    net = tiny_model()
    seen = []
    net.features[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model = FastModel(net, amp=True)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.float32                               # the loss always sees float32 logits
    assert seen == [dtype or torch.float32] and model.amp_dtype("cpu") == dtype
    seen.clear()
    model = FastModel(net, amp=False)
    model(torch.randn(2, 3, 32, 32))
    assert seen == [torch.float32] and model.amp_dtype("cpu") is None


def test_float16_training_uses_a_gradient_scaler(monkeypatch):
    """A GPU without native bfloat16 (a T4) trains in float16 with a scaler; simulated on the CPU."""
    monkeypatch.setattr(fast, "autocast_dtype", lambda device="cpu": torch.float16)
    calls = []
    real = torch.amp.GradScaler

    class Recording(real):
        def step(self, optimizer, *args, **kwargs):
            calls.append(self.get_scale())
            return super().step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp, "GradScaler", Recording)
    data = tiny_cifar(n_train=64)
    loader = TensorLoader(data.train_images, data.train_labels, 16, shuffle=True, seed=0)
    torch.manual_seed(0)
    model = FastModel(tiny_model(), amp=True)
    history = train(model, loader, epochs=1, lr=0.01, device="cpu", progress=False)
    assert len(calls) == len(loader) and history.meta["amp_dtype"] == "float16"
    assert all(math.isfinite(v) for v in history.train_loss)
    calls.clear()
    monkeypatch.setattr(fast, "autocast_dtype", lambda device="cpu": torch.bfloat16)
    history = train(FastModel(tiny_model(), amp=True), loader, epochs=1, device="cpu", progress=False)
    assert calls == [] and history.meta["amp_dtype"] == "bfloat16"   # bfloat16 needs no scaler
