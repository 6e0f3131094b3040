"""The modern VGG's training recipe (chapter 8): plain data, and one explicit training loop.

The recipe follows the fastest known CIFAR-10 trainers (Keller Jordan's airbench, arXiv 2404.00498, itself built
on tysam-code's hlb-CIFAR10 and David Page's "How to train your ResNet"), re-measured on a 2-core CPU:

* large batches with *decoupled* hyperparameters: ``lr`` and ``weight_decay`` are given per 1,024 images and
  independent of the momentum, so each can be tuned alone;
* batch-norm shifts learn ``bias_scaler`` times faster than the other weights (their scale is frozen at 1);
* the whitening layer's bias trains for the first ``whiten_bias_epochs`` epochs only;
* a triangular learning-rate schedule; label smoothing;
* weight averaging (an exponential moving average of the weights, copied back every few steps, "lookahead")
  in the second part of training;
* alternating flips (every image is mirrored in every other epoch, instead of at random) and random translation
  by up to ``translate`` pixels;
* test-time augmentation: the mirror image and one-pixel shifts are averaged in.

``train_modern`` times the training from its first step to the final accuracy; decoding the images and moving
them to memory (``load_cifar10``) is one-time work outside it.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .checks import real_number, whole_number
from .data import CIFAR10_MEAN, CIFAR10_STD
from .modern import ModernVGG, init_whitening
from .runtime import autocast_dtype, environment_info, pick_device
from .training import History

__all__ = ["ModernRecipe", "normalize_images", "translate_batch", "tta_logits", "predict_modern", "evaluate_modern",
           "orthogonalize", "Muon", "train_modern"]


@dataclass(frozen=True)
class ModernRecipe:
    """How a modern VGG is trained (every field has its unit; the defaults are airbench94's, to be tuned)."""

    epochs: float = 10.0             # passes over the training images (a fraction is allowed)
    batch_size: int = 1024           # images per step
    lr: float = 11.5                 # learning rate per 1,024 images, decoupled from the momentum
    momentum: float = 0.85           # Nesterov momentum
    weight_decay: float = 0.0153     # per 1,024 images, decoupled from the learning rate
    bias_scaler: float = 64.0        # batch-norm shifts learn this many times faster (no extra decay)
    label_smoothing: float = 0.2     # fraction of the target spread over all classes
    whiten_bias_epochs: int = 3      # epochs during which the whitening layer's bias trains
    whiten_images: int = 5000        # training images whose patches set the whitening layer
    translate: int = 2               # pixels: random shift of every training image (reflect padding)
    flip: str = "alternate"          # "alternate" (every other epoch), "random" or "none"
    ema_from_epoch: int = 3          # weight averaging starts after this many epochs (0: never averages)
    ema_every: int = 5               # steps between two updates of the average
    ema_decay: float = 0.95 ** 5     # decay of the average per update at the end (warmed up as progress^3)
    lr_start: float = 0.2            # the schedule's multiplier of lr at step 0 ...
    lr_peak_at: float = 0.23         # ... rises linearly to 1 at this fraction of the steps ...
    lr_end: float = 0.07             # ... and falls linearly to this at the end
    tta_level: int = 2               # test-time augmentation: 0 none, 1 mirror, 2 mirror + 1-pixel shifts
    seed: int = 0                    # initial weights, batch order, flips and shifts
    optimizer: str = "sgd"           # "sgd" (all weights) or "muon" (orthogonalised steps for the conv filters)
    muon_lr: float = 0.24            # muon: step per update of a filter bank kept at norm sqrt(out channels)
    muon_momentum: float = 0.6       # muon: Nesterov momentum of the filters' steps
    head_lr: float = 0.67            # muon: SGD lr of the linear layer, for logits divided by the width
    bias_lr: float = 0.053           # muon: SGD lr of the batch-norm shifts and the whitening bias
    decay_per_image: float = 2e-6    # muon: weight decay of the SGD weights per image in a step

    def __post_init__(self) -> None:
        real_number("epochs", self.epochs, 0.0, low_ok=False)
        whole_number("batch_size", self.batch_size, 1)
        for name in ("lr", "weight_decay", "bias_scaler", "ema_decay", "lr_start", "lr_end"):
            real_number(name, getattr(self, name), 0.0)
        real_number("momentum", self.momentum, 0.0, 1.0, high_ok=False)
        real_number("label_smoothing", self.label_smoothing, 0.0, 1.0, high_ok=False)
        real_number("lr_peak_at", self.lr_peak_at, 0.0, 1.0)
        for name in ("muon_lr", "head_lr", "bias_lr", "decay_per_image"):
            real_number(name, getattr(self, name), 0.0)
        real_number("muon_momentum", self.muon_momentum, 0.0, 1.0, high_ok=False)
        for name in ("whiten_bias_epochs", "translate", "ema_from_epoch", "seed"):
            whole_number(name, getattr(self, name), 0)
        whole_number("whiten_images", self.whiten_images, 1)
        whole_number("ema_every", self.ema_every, 1)
        whole_number("tta_level", self.tta_level, 0, maximum=2)
        if self.flip not in ("alternate", "random", "none"):
            raise ValueError(f"flip must be 'alternate', 'random' or 'none'; got {self.flip!r}")
        if self.optimizer not in ("sgd", "muon"):
            raise ValueError(f"optimizer must be 'sgd' or 'muon'; got {self.optimizer!r}")

    def lr_multiplier(self, step: int, total: int) -> float:
        """The triangular schedule: the multiplier of the learning rate at ``step`` of ``total``."""
        x, peak = step / max(1, total), self.lr_peak_at
        if x < peak:                     # (peak 0: no warm-up, a straight fall from lr_start to lr_end)
            return self.lr_start + (1 - self.lr_start) * x / peak
        top = self.lr_start if peak == 0 else 1.0
        return top + (self.lr_end - top) * (x - peak) / (1 - peak) if peak < 1 else 1.0


def normalize_images(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images ``(N, 3, 32, 32)`` as normalised float32 on ``device`` (CIFAR-10's channel mean and std)."""
    x = images.to(device).float().div_(255)
    mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def translate_batch(padded: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` window of every image of ``padded`` (one shift per image).

    Args:
        padded: images padded by ``r`` pixels on every side, ``(N, C, size + 2r, size + 2r)``.
        size: the side of the output images.
        generator: the random shifts' generator (on the CPU).
    Returns:
        ``(N, C, size, size)``.
    """
    r2 = padded.shape[-1] - size                    # 2r + 1 possible positions per axis
    n = len(padded)
    dy = torch.randint(0, r2 + 1, (n,), generator=generator).to(padded.device)
    dx = torch.randint(0, r2 + 1, (n,), generator=generator).to(padded.device)
    out = torch.empty(padded.shape[:2] + (size, size), dtype=padded.dtype, device=padded.device)
    for y in range(r2 + 1):                         # (2r+1)^2 slices: each image is copied once
        for x in range(r2 + 1):
            idx = torch.nonzero((dy == y) & (dx == x)).flatten()
            if len(idx):
                out[idx] = padded[idx, :, y:y + size, x:x + size]
    return out


def tta_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """Logits of a batch with test-time augmentation.

    Args:
        model: the network, in eval mode.
        x: normalised images ``(N, 3, H, W)``.
        level: 0 the images alone; 1 averaged with their mirror images; 2 also with the mirrored pair shifted by
            one pixel up-left and down-right (6 views; the unshifted pair weighs half).
    Returns:
        ``(N, num_classes)`` float32 logits.
    """
    def mirror(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model(v).float() + model(v.flip(-1)).float())

    if level == 0:
        return model(x).float()
    logits = mirror(x)
    if level == 1:
        return logits
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    shifted = 0.5 * (mirror(padded[..., :h, :w]) + mirror(padded[..., 2:, 2:]))
    return 0.5 * logits + 0.5 * shifted


@torch.no_grad()
def predict_modern(model: nn.Module, images: torch.Tensor, level: int = 2, batch_size: int = 2000) -> torch.Tensor:
    """The predicted class of every normalised image, with test-time augmentation ``level`` (``tta_logits``),
    in the precision training used (bfloat16 autocast where native).

    Args:
        model: the trained network (put in eval mode here).
        images: normalised ``(N, 3, H, W)`` on the model's device.
        level: 0, 1 or 2 (see ``tta_logits``).
        batch_size: images per forward pass.
    Returns:
        ``(N,)`` class indices on the images' device.
    """
    model.eval()
    device = images.device
    dtype = autocast_dtype(device)
    preds = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            preds.append(tta_logits(model, x, level).argmax(1))
    return torch.cat(preds)


def evaluate_modern(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, level: int = 2,
                    batch_size: int = 2000) -> float:
    """Accuracy of ``model`` on normalised ``images`` with test-time augmentation ``level`` (``predict_modern``)."""
    return (predict_modern(model, images, level, batch_size) == labels).sum().item() / len(images)


def orthogonalize(g: torch.Tensor, steps: int = 3) -> torch.Tensor:
    """An approximately orthogonal matrix with the row and column spaces of ``g`` (its singular values pushed
    towards 1), by a quintic Newton-Schulz iteration (Keller Jordan's Muon, 2024; its published coefficients).

    Args:
        g: a 2-D tensor, e.g. a conv filter bank's gradient as ``(out_channels, in_channels * k * k)``.
        steps: iterations (3 leave the singular values between about 0.5 and 1.5, which trains as well as 1).
    Returns:
        A float32 tensor of ``g``'s shape.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float() / (g.norm() + 1e-7)            # every singular value <= 1
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T                           # (rows, rows): the smaller side
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


class Muon(torch.optim.Optimizer):
    """Muon for conv filters: Nesterov momentum, then the step orthogonalised (``orthogonalize``); each filter bank
    is rescaled to norm sqrt(out_channels) before its step, so the step size ``lr`` is relative to the weights.

    Args:
        params: 4-D conv weights.
        lr: the step size; momentum: the Nesterov momentum.
    """

    def __init__(self, params, lr: float, momentum: float) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: D102 (torch.optim.Optimizer.step)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                buf = state.setdefault("momentum", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"])            # Nesterov
                p.mul_(len(p) ** 0.5 / p.norm())
                p.add_(orthogonalize(g.reshape(len(g), -1)).view_as(p).to(p.dtype), alpha=-group["lr"])


class _WeightAverage:
    """An exponential moving average of the floating-point weights and buffers, copied back into the network."""

    def __init__(self, model: nn.Module) -> None:
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for k, v in model.state_dict().items():
            if k in self.average:
                self.average[k].lerp_(v, 1 - decay)
                v.copy_(self.average[k])


def train_modern(model: ModernVGG, train_images: torch.Tensor, train_labels: torch.Tensor,
                 recipe: ModernRecipe, *, val_images: Optional[torch.Tensor] = None,
                 val_labels: Optional[torch.Tensor] = None, device: torch.device | str | None = None,
                 eval_every_epoch: bool = False, on_epoch: Optional[Callable[[dict], None]] = None) -> History:
    """Train a modern VGG with ``recipe``; the clock runs from the first step to the final (test-time
    augmented) accuracy on ``val_images`` (a hold-out, or the test set for a final run).

    Args:
        model: from ``build_modern_vgg`` (seed it first); its whitening layer is set here from the training images.
        train_images: uint8 ``(N, 3, 32, 32)``; train_labels: ``(N,)``.
        recipe: the ``ModernRecipe``.
        val_images, val_labels: images (uint8) to measure the final accuracy on; ``None``: no accuracy.
        device: default ``pick_device()``. On a CPU with native bfloat16 (and on CUDA) the forward pass runs in
            bfloat16 autocast (float16 on older GPUs, with a gradient scaler); channels-last memory layout.
        eval_every_epoch: also measure the accuracy (without test-time augmentation) after every epoch. That
            time is *not* counted in ``history.time``.
        on_epoch: called with each epoch's row (e.g. to print it).
    Returns:
        A ``History``: per epoch the training loss and accuracy, ``val_acc`` (``None`` unless
        ``eval_every_epoch``), the learning rate and the training seconds so far; ``meta`` holds the recipe, the
        environment, ``final_acc`` (with test-time augmentation), ``train_seconds`` and ``total_seconds``.
    """
    device = pick_device(device)
    dtype = autocast_dtype(device)
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = model.to(device).to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    t0 = time.perf_counter()
    x_all = normalize_images(train_images, device)
    y_all = train_labels.to(device)
    if model.config.whiten:
        init_whitening(model, x_all[:recipe.whiten_images])
    if recipe.flip != "none":       # a random half starts mirrored; "alternate" then flips all every other epoch
        mask = (torch.rand(len(x_all), generator=gen) < 0.5).to(device).view(-1, 1, 1, 1)
        x_all = torch.where(mask, x_all.flip(-1), x_all)
    r = recipe.translate
    padded = F.pad(x_all, (r, r, r, r), mode="reflect") if r else x_all

    n = len(x_all)
    steps_per_epoch = n // recipe.batch_size
    total = max(1, math.ceil(steps_per_epoch * recipe.epochs))
    # decoupled -> PyTorch's SGD: with Nesterov momentum m a constant gradient moves a weight 1 + 1/(1-m) times
    # the plain step; dividing it out keeps lr the size of a step per 1,024 images whatever the momentum.
    kilo = 1024 * (1 + 1 / (1 - recipe.momentum))
    lr = recipe.lr / kilo
    wd = recipe.weight_decay * recipe.batch_size / kilo
    bn_shifts = [p for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in (m.bias,)]
    shift_ids = {id(p) for p in bn_shifts}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in shift_ids]
    lr_shift = lr * recipe.bias_scaler
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD([dict(params=bn_shifts, lr=lr_shift, weight_decay=wd / lr_shift),
                                     dict(params=others, lr=lr, weight_decay=wd / lr)],
                                    momentum=recipe.momentum, nesterov=True)
        optimizers = [optimizer]
    else:
        # muon: the conv filters take orthogonalised steps; the rest is plain SGD with airbench's per-step lrs.
        # The head's lr is for logits divided by the width; rescaled for this network's own logit scale (a
        # weight's effect on the logits, and its gradient, both scale with it).
        filters = [p for p in others if p.dim() == 4]
        head = [p for p in others if p.dim() != 4 and p is not model.whiten.bias]
        width = model.classifier.in_features
        head_lr = recipe.head_lr / (width * model.logit_scale) ** 2
        decay = recipe.decay_per_image * recipe.batch_size
        biases = bn_shifts + [model.whiten.bias]
        optimizer = torch.optim.SGD([dict(params=biases, lr=recipe.bias_lr, weight_decay=decay / recipe.bias_lr),
                                     dict(params=head, lr=head_lr, weight_decay=decay / head_lr)],
                                    momentum=recipe.momentum, nesterov=True)
        optimizers = [optimizer, Muon(filters, lr=recipe.muon_lr, momentum=recipe.muon_momentum)]
    groups = [g for opt in optimizers for g in opt.param_groups]
    base_lrs = [g["lr"] for g in groups]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing, reduction="sum")
    average: Optional[_WeightAverage] = None
    history = History(meta={**environment_info(device), "recipe": asdict(recipe),
                             "model": dict(arch_layers=list(model.config.layers), activation=model.config.activation),
                             "train_images": n, "autocast": str(dtype).replace("torch.", "") if dtype else None})
    step, eval_seconds = 0, 0.0
    for epoch in range(math.ceil(recipe.epochs)):
        if model.config.whiten:      # (a first layer that is not whitening trains like the others)
            model.whiten.bias.requires_grad_(epoch < recipe.whiten_bias_epochs)
        model.train()
        if r:
            images = translate_batch(padded, x_all.shape[-1], gen)
        else:
            images = x_all
        if recipe.flip == "alternate" and epoch % 2 == 1:
            images = images.flip(-1)
        elif recipe.flip == "random":
            mask = (torch.rand(n, generator=gen) < 0.5).to(device).view(-1, 1, 1, 1)
            images = torch.where(mask, images.flip(-1), images)
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x = images[idx].contiguous(memory_format=torch.channels_last)
            y = y_all[idx]
            for g, base in zip(groups, base_lrs):
                g["lr"] = base * recipe.lr_multiplier(step, total)
            with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                for opt in optimizers:
                    scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                for opt in optimizers:
                    opt.step()
            step += 1
            loss_sum += loss.item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            if recipe.ema_from_epoch and epoch >= recipe.ema_from_epoch and step % recipe.ema_every == 0:
                if average is None:
                    average = _WeightAverage(model)
                else:          # a weak average early, a strong one at the end
                    average.update(model, recipe.ema_decay * (step / total) ** 3)
        if average is not None:
            average.update(model, 1.0)                  # the network holds the average at every epoch's end
        val_acc = None
        if eval_every_epoch and val_images is not None:
            t_eval = time.perf_counter()
            val_acc = evaluate_modern(model, normalize_images(val_images, device), val_labels.to(device), level=0)
            eval_seconds += time.perf_counter() - t_eval
        row = dict(epoch=epoch + 1, train_loss=loss_sum / max(1, seen), train_acc=correct / max(1, seen),
                   val_loss=None, val_acc=val_acc, lr=groups[-1]["lr"],
                   time=time.perf_counter() - t0 - eval_seconds)
        history.append(**row)
        if on_epoch is not None:
            on_epoch(row)
        if not math.isfinite(row["train_loss"]):
            raise RuntimeError(f"the training loss became {row['train_loss']} in epoch {epoch + 1}: lower lr "
                               f"(now {recipe.lr}) or check the data")
    train_seconds = time.perf_counter() - t0 - eval_seconds
    if val_images is not None:
        history.meta["final_acc"] = evaluate_modern(model, normalize_images(val_images, device),
                                                    val_labels.to(device), level=recipe.tta_level)
    history.meta.update(train_seconds=train_seconds, total_seconds=time.perf_counter() - t0 - eval_seconds,
                        steps=step)
    return history
