"""The modern VGG's recipe: the schedule, the augmentations, test-time augmentation and one short run."""
import math

import pytest
import torch

from tests.helpers import tiny_cifar
from vgg_helpers.modern import build_modern_vgg
from vgg_helpers.recipes import ModernRecipe, evaluate_modern, normalize_images, train_modern, translate_batch, tta_logits


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
