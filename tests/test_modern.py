"""The modern VGG: its layer lists, the network they build, the whitening layer, its recipe and training loop,
and the data path, evaluation and test-time augmentation it shares with the classic loop."""
import math

import pytest
import torch
from torch import nn

from tests.helpers import tiny_cifar
from vgg_helpers import build_vgg
from vgg_helpers.data import RunBudget, make_loaders, normalize_images
from vgg_helpers.modern import (MODERN_CONFIGS, ModernConfig, ModernRecipe, ModernVGG, Muon, as_trained,
                                build_modern_vgg, describe_modern, evaluate_modern, orthogonalize, train_modern,
                                init_whitening, update_average)

def _loaders(data, batch_size: int = 128):
    """All of ``data``'s images, through the book's one data path (``make_loaders``)."""
    return make_loaders(data, RunBudget(train_size=None, val_size=0, epochs=1, batch_size=batch_size),
                        eval_batch_size=2000)


@pytest.mark.parametrize("arch", list(MODERN_CONFIGS))
def test_every_config_builds_a_plain_stack_of_3x3_convs(arch):
    torch.manual_seed(0)
    model = build_modern_vgg(arch)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    widths = [v for v in MODERN_CONFIGS[arch] if isinstance(v, int)]
    assert [c.out_channels for c in convs[1:]] == widths
    assert all(c.kernel_size == (3, 3) and c.bias is None for c in convs[1:])
    assert convs[0].kernel_size == (2, 2) and not convs[0].weight.requires_grad
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == MODERN_CONFIGS[arch].count("M")


def test_pool_comes_right_after_the_first_conv_of_a_block():
    model = build_modern_vgg("modern-128")
    kinds = [type(m).__name__ for m in model.features[2:6]]
    assert kinds == ["Conv2d", "MaxPool2d", "_BatchNorm", "GELU"]


def test_convs_start_as_the_identity_on_their_first_channels():
    torch.manual_seed(0)
    model = build_modern_vgg("modern-128")
    conv = model.features[6]                           # 64 -> 64
    w = conv.weight
    for i in range(conv.out_channels):
        expected = torch.zeros(conv.in_channels, 3, 3)
        expected[i, 1, 1] = 1
        assert torch.equal(w[i], expected)
    wider = model.features[9]                          # 64 -> 128: the first 64 filters are the identity
    assert wider.weight[0, 0, 1, 1] == 1 and wider.weight[64:].abs().sum() > 0


def test_batch_norm_learns_only_its_shift():
    model = build_modern_vgg("modern-128")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not b.weight.requires_grad and b.bias.requires_grad for b in bns)


def test_whitening_decorrelates_patches():
    torch.manual_seed(0)
    mixing = torch.randn(12, 12)
    patches = (torch.randn(4000, 12) @ mixing)         # correlated 2x2x3 patches
    images = patches.view(4000, 2, 2, 3).permute(0, 3, 1, 2).contiguous()   # one patch per 2x2 image
    model = build_modern_vgg("modern-128")
    eigenvalues = init_whitening(model, images, eps=0.0)
    assert torch.all(eigenvalues[:-1] >= eigenvalues[1:])
    out = model.whiten(images).flatten(1)[:, :12] - model.whiten.bias[:12]   # (4000, 12): one position
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)
    w = model.whiten.weight
    assert torch.equal(w[12:], -w[:12])


def test_describe_reads_like_table_1():
    assert describe_modern("modern-256") == [
        "whiten2 (filters from the data, not trained)", "conv3-64, maxpool", "conv3-64", "conv3-256, maxpool", "conv3-256",
        "conv3-256, maxpool", "conv3-256", "global maxpool"]


@pytest.mark.parametrize("layers, match", [
    ([64, "M", "G"], "starts with 'W'"),
    (["W", "M", 64, "G"], "must follow a number"),
    (["W", 64, 0, "G"], "whole numbers >= 1"),
    (["W", "G"], "at least one convolution"),
])
def test_bad_layer_lists_say_what_was_expected(layers, match):
    with pytest.raises(ValueError, match=match):
        ModernVGG(ModernConfig(layers=layers))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="arch must be one of modern-128"):
        build_modern_vgg("vgg11")
    with pytest.raises(ValueError, match="activation must be 'gelu' or 'relu'"):
        build_modern_vgg(activation="tanh")
    assert isinstance(build_modern_vgg(activation="relu").features[1], nn.ReLU)


def test_ladder_switches_turn_one_ingredient_off_each():
    torch.manual_seed(0)
    vgg_order = build_modern_vgg("modern-128", pool_first=False)
    kinds = [type(m).__name__ for m in vgg_order.features[2:6]]
    assert kinds == ["Conv2d", "_BatchNorm", "GELU", "MaxPool2d"]
    x = torch.randn(2, 3, 32, 32)
    assert vgg_order(x).shape == build_modern_vgg("modern-128")(x).shape == (2, 10)
    plain_init = build_modern_vgg("modern-128", identity_init=False)
    assert plain_init.features[6].weight[0, 0, 1, 1] != 1
    learned = build_modern_vgg("modern-128", whiten=False)
    assert learned.whiten.weight.requires_grad


# ---- the recipe ----


def test_schedule_is_a_triangle():
    r = ModernRecipe()
    assert r.lr_multiplier(0, 100) == pytest.approx(r.lr_start)
    assert r.lr_multiplier(23, 100) == pytest.approx(1.0)
    assert r.lr_multiplier(100, 100) == pytest.approx(r.lr_end)
    values = [r.lr_multiplier(s, 100) for s in range(101)]
    assert max(values) == pytest.approx(1.0) and values.index(max(values)) == 23


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
    loaders = _loaders(data)
    h = train_modern(model, loaders, recipe, measure_on="test", device="cpu", eval_every_epoch=True,
                     on_epoch=seen.append)
    assert h.epoch == [1, 2, 3] and len(seen) == 3
    assert h.meta["steps"] == 3 * (1024 // 128)
    assert h.meta["final_acc"] > 0.5                     # brightness bands: easy to learn
    assert all(math.isfinite(t) for t in h.time) and h.meta["train_seconds"] > 0
    assert evaluate_modern(model, loaders.test, level=2) == pytest.approx(h.meta["final_acc"])
    with pytest.raises(ValueError, match="measure_on='val' but the loaders have no val set"):
        train_modern(model, loaders, recipe, measure_on="val")


def test_a_classic_vgg_trains_with_the_modern_recipe():
    """The bridge between the two networks: a VGG from build_vgg takes the modern recipe (its batch-norm shifts in
    their own fast group, no whitening layer) and learns."""
    data = tiny_cifar(1024, 256)
    torch.manual_seed(0)
    model = build_vgg("vgg11", head="cifar", input_size=32, batch_norm=True, num_classes=10, width=0.125)
    recipe = ModernRecipe(epochs=3, batch_size=128, ema_from_epoch=1, whiten_images=512)
    h = train_modern(model, _loaders(data), recipe, measure_on="test", device="cpu")
    assert h.meta["steps"] == 3 * (1024 // 128)
    assert h.train_loss[-1] < h.train_loss[0] - 0.3 and 0 <= h.meta["final_acc"] <= 1     # it learns
    assert h.meta["model"]["arch"] == "vgg11" and h.meta["model"]["batch_norm"] is True


def test_fast_shifts_are_one_change_their_lr_only(monkeypatch):
    """The ladder's rung "5-fast-shifts" changes one setting: the batch-norm shifts' learning rate. Their weight
    decay is divided by the same factor, so the decay each step applies (lr x weight_decay) stays the others'."""
    groups = {}
    real_sgd = torch.optim.SGD

    def spy(params, **kwargs):
        opt = real_sgd(params, **kwargs)
        groups[len(groups)] = [(g["lr"], g["weight_decay"]) for g in opt.param_groups]
        return opt

    monkeypatch.setattr(torch.optim, "SGD", spy)
    for scaler in (1.0, 64.0):
        torch.manual_seed(0)
        train_modern(build_modern_vgg("modern-128"), _loaders(tiny_cifar(128, 64)),
                     ModernRecipe(epochs=1, batch_size=128, whiten_images=64, bias_scaler=scaler), measure_on=None)
    (shift1, rest1), (shift64, rest64) = groups[0], groups[1]
    assert rest1 == rest64 and shift1 == pytest.approx(rest1)              # bias_scaler 1: one learning rate
    assert shift64[0] == pytest.approx(64 * rest64[0])
    assert shift64[0] * shift64[1] == pytest.approx(rest64[0] * rest64[1])    # the same decay per step


def test_the_same_seed_repeats_the_run():
    data = tiny_cifar(256, 64)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_modern_vgg("modern-128")
        h = train_modern(model, _loaders(data, 64), ModernRecipe(epochs=1, batch_size=64, whiten_images=128),
                         measure_on=None, device="cpu")
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
    h = train_modern(model, _loaders(data), recipe, measure_on="test", device="cpu")
    assert h.meta["final_acc"] > 0.5 and h.train_loss[-1] < h.train_loss[0]


def test_bad_optimizer_is_refused():
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'muon'"):
        ModernRecipe(optimizer="adam")


# ---- the book's two training loops share the data path, the evaluation and the test-time augmentation ----


def test_both_training_paths_see_the_same_batch_the_same_way():
    """``training.train`` (via its loaders) and ``modern.train_modern`` normalise a batch with the same function,
    and their evaluations run the same test-time augmentation: one implementation each, not two."""
    import vgg_helpers.modern as modern_module
    import vgg_helpers.training as training_module
    from vgg_helpers.data import TensorLoader
    from vgg_helpers.training import evaluate, predict, tta_logits

    data = tiny_cifar(256, 64)
    loader = TensorLoader(data.test_images, data.test_labels, batch_size=64)
    batch, labels = next(iter(loader))                           # what train() and evaluate() are fed
    assert torch.equal(batch, normalize_images(data.test_images))  # what train_modern normalises its images with
    assert modern_module.normalize_images is normalize_images
    assert modern_module.evaluate is training_module.evaluate and modern_module.predict is training_module.predict
    torch.manual_seed(0)
    net = build_modern_vgg("modern-128").eval()
    for level in (0, 1, 2):
        with torch.no_grad():
            logits = tta_logits(as_trained(net), batch, level)
        acc = (logits.argmax(1) == labels).float().mean().item()
        assert evaluate_modern(net, loader, level) == pytest.approx(acc)
        assert evaluate(as_trained(net), loader, tta=level)[1] == pytest.approx(acc)
        assert torch.equal(predict(as_trained(net), loader, tta=level)[0], logits.argmax(1))


def test_update_average_moves_the_average_and_copies_it_into_the_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    net(torch.randn(4, 3, 5, 5))                        # running statistics away from 0 and 1
    before = {k: v.clone() for k, v in net.state_dict().items()}
    average = {k: torch.zeros_like(v) for k, v in before.items() if v.is_floating_point()}
    update_average(average, net, decay=0.75)
    for k, v in net.state_dict().items():
        if k in average:                                # weights, biases, running mean and variance
            assert torch.allclose(average[k], 0.25 * before[k]) and torch.equal(v, average[k])
        else:                                           # the integer step counter is left alone
            assert k.endswith("num_batches_tracked") and torch.equal(v, before[k])
    update_average(average, net, decay=1.0)             # decay 1: the average stays, the network takes it
    assert all(torch.allclose(average[k], 0.25 * before[k]) for k in average)
