"""The modern VGG's recipe: the schedule, the augmentations, test-time augmentation and one short run."""
import math

import pytest
import torch

from tests.helpers import tiny_cifar
from vgg_helpers.modern import build_modern_vgg
from vgg_helpers.recipes import (Muon, ModernRecipe, evaluate_modern, normalize_images, orthogonalize, train_modern,
                                 translate_batch, tta_logits)


def test_schedule_is_a_triangle():
    r = ModernRecipe()
    assert r.lr_multiplier(0, 100) == pytest.approx(r.lr_start)
    assert r.lr_multiplier(23, 100) == pytest.approx(1.0)
    assert r.lr_multiplier(100, 100) == pytest.approx(r.lr_end)
    values = [r.lr_multiplier(s, 100) for s in range(101)]
    assert max(values) == pytest.approx(1.0) and values.index(max(values)) == 23


def test_translate_shifts_each_image_within_the_padding():
    g = torch.Generator().manual_seed(0)
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    out = translate_batch(padded, 4, g)
    assert out.shape == images.shape
    for i in range(2):                                   # each output is one window of its own padded image
        windows = [padded[i, :, y:y + 4, x:x + 4] for y in range(5) for x in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_tta_levels_average_the_right_views():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2)).eval()
    x = torch.randn(3, 3, 4, 4)
    with torch.no_grad():
        assert torch.allclose(tta_logits(model, x, 0), model(x))
        mirror = 0.5 * (model(x) + model(x.flip(-1)))
        assert torch.allclose(tta_logits(model, x, 1), mirror)
        level2 = tta_logits(model, x, 2)
    assert level2.shape == (3, 2) and not torch.allclose(level2, mirror)


def test_bad_recipes_are_refused():
    with pytest.raises(ValueError, match="flip must be"):
        ModernRecipe(flip="sometimes")
    with pytest.raises(ValueError, match="momentum"):
        ModernRecipe(momentum=1.0)


def test_a_short_run_learns_and_is_timed():
    data = tiny_cifar(1024, 256)
    torch.manual_seed(0)
    model = build_modern_vgg("modern-128")
    recipe = ModernRecipe(epochs=3, batch_size=128, ema_from_epoch=1, whiten_images=512)
    seen = []
    h = train_modern(model, data.train_images, data.train_labels, recipe, val_images=data.test_images,
                     val_labels=data.test_labels, device="cpu", eval_every_epoch=True, on_epoch=seen.append)
    assert h.epoch == [1, 2, 3] and len(seen) == 3
    assert h.meta["steps"] == 3 * (1024 // 128)
    assert h.meta["final_acc"] > 0.5                     # brightness bands: easy to learn
    assert all(math.isfinite(t) for t in h.time) and h.meta["train_seconds"] > 0
    acc = evaluate_modern(model, normalize_images(data.test_images), data.test_labels, level=2)
    assert acc == pytest.approx(h.meta["final_acc"])


def test_the_same_seed_repeats_the_run():
    data = tiny_cifar(256, 64)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_modern_vgg("modern-128")
        h = train_modern(model, data.train_images, data.train_labels,
                         ModernRecipe(epochs=1, batch_size=64, whiten_images=128), device="cpu")
        runs.append(h.train_loss)
    assert runs[0] == runs[1]


def test_schedule_without_warm_up_falls_straight():
    r = ModernRecipe(lr_start=1.0, lr_peak_at=0.0, lr_end=0.0)
    assert [r.lr_multiplier(s, 4) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


@pytest.mark.parametrize("shape", [(16, 72), (72, 16)])
def test_orthogonalize_pushes_singular_values_towards_one(shape):
    torch.manual_seed(0)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k))
    g = u @ torch.diag(torch.logspace(0, -1.3, k)) @ v.T          # singular values from 1 down to 0.05
    out = orthogonalize(g)
    s = torch.linalg.svdvals(out)
    assert out.shape == g.shape and s.min() > 0.5 and s.max() < 1.3
    assert torch.allclose(u @ (u.T @ out), out, atol=1e-4)         # the same column space as g


def test_muon_keeps_each_filter_bank_at_norm_sqrt_out_channels():
    w = torch.nn.Parameter(torch.randn(8, 4, 3, 3) * 5)
    opt = Muon([w], lr=0.1, momentum=0.6)
    w.grad = torch.randn_like(w)
    before = w.detach().clone()
    opt.step()
    step = w.detach() - before * (8 ** 0.5 / before.norm())
    assert torch.linalg.svdvals(step.view(8, -1)).max() == pytest.approx(0.1, rel=0.35)   # an lr-sized step
    assert not torch.equal(w.detach(), before)


def test_a_short_muon_run_learns():
    data = tiny_cifar(1024, 256)
    torch.manual_seed(0)
    model = build_modern_vgg("modern-128")
    recipe = ModernRecipe(epochs=3, batch_size=128, optimizer="muon", lr_start=1.0, lr_peak_at=0.0, lr_end=0.0,
                          ema_from_epoch=0, whiten_images=512)
    h = train_modern(model, data.train_images, data.train_labels, recipe, val_images=data.test_images,
                     val_labels=data.test_labels, device="cpu")
    assert h.meta["final_acc"] > 0.5 and h.train_loss[-1] < h.train_loss[0]


def test_bad_optimizer_is_refused():
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'muon'"):
        ModernRecipe(optimizer="adam")
