"""Check cells of the training-loop chapter (the 10% failure): one training step, and the whole loop.

A tiny classifier and a few seeded batches stand in for VGG and CIFAR-10: the checks run in well under a second,
and they draw their random numbers inside ``torch.random.fork_rng``, so calling a check does not change what the
notebook's next cells draw."""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from ..training import TrainConfig, train
from .common import correct, expect_function, fail, tiny_convnet, toy_batches

__all__ = ["check_train_step", "check_train_loop"]


class _WatchedLoss:
    """Wraps a loss function and counts its calls and the backward passes through its result."""

    def __init__(self, loss_fn: Callable) -> None:
        self.loss_fn, self.calls, self.backwards = loss_fn, 0, 0

    def __call__(self, *args, **kwargs):
        out = self.loss_fn(*args, **kwargs)
        self.calls += 1
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(self._seen)
        return out

    def _seen(self, grad: torch.Tensor) -> None:
        self.backwards += 1


def _reference_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
                          images: torch.Tensor, labels: torch.Tensor) -> float:
    """The training step the exercise asks for (what ``check_train_step`` compares with)."""
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def _same(a: list, b: list, tol: float = 1e-6) -> bool:
    """Whether two lists of tensors are equal up to ``tol`` (relative to their size)."""
    return all(torch.allclose(x, y, rtol=tol, atol=tol) for x, y in zip(a, b))


def check_train_step(train_step: Callable) -> None:
    """Check a learner's ``train_step(model, optimizer, loss_fn, images, labels) -> float``.

    Runs it for four steps on a tiny network with SGD (momentum 0.9) beside a correct step that starts
    from the same weights, and compares the returned losses and the weights after every step.

    Args:
        train_step: the learner's function. It must do one optimiser step on one batch and return the
            batch's loss, computed before the step, as a Python float.
    Raises:
        ExerciseError: the step leaves the weights unchanged (no ``backward``, no ``optimizer.step()``, or
            ``zero_grad`` between them), lets gradients pile up across steps (no ``zero_grad``), updates
            the weights differently from SGD's step, or returns something other than the loss as a float.
    """
    if not expect_function(train_step, "check_train_step", "train_step(model, optimizer, loss_fn, images, labels)"):
        return
    model = tiny_convnet(seed=5)
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    steps_taken = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps_taken.append(1))
    grad_sum = [torch.zeros_like(p) for p in reference.parameters()]
    for step, (images, labels) in enumerate(toy_batches(seed=6, n_batches=4)):
        ref_loss = _reference_train_step(reference, ref_optimizer, loss_fn, images, labels)
        grad_sum = [s + p.grad for s, p in zip(grad_sum, reference.parameters())]
        before = [p.detach().clone() for p in model.parameters()]
        watched = _WatchedLoss(loss_fn)
        steps_taken.clear()
        result = train_step(model, optimizer, watched, images, labels)
        after = [p.detach().clone() for p in model.parameters()]
        grads = [p.grad for p in model.parameters()]
        if watched.calls == 0:
            fail("train_step never called loss_fn",
                 "compute the loss with loss = loss_fn(model(images), labels)")
        if _same(before, after, tol=0.0):
            if watched.backwards == 0:
                fail("the weights did not change, and loss.backward() was never called",
                     "call loss.backward() to compute the gradients, then optimizer.step()")
            if not steps_taken:
                fail("the weights did not change: optimizer.step() was never called",
                     "after loss.backward(), call optimizer.step() to move the weights")
            if all(g is None or not g.any() for g in grads):
                fail("the weights did not change: the gradients were cleared between "
                     "loss.backward() and optimizer.step()",
                     "call optimizer.zero_grad() first, before the forward pass, not after "
                     "backward()")
            fail("the weights did not change: optimizer.step() ran before loss.backward()",
                 "the order is zero_grad(), forward, loss, backward(), step()")
        if not _same(after, [p.detach() for p in reference.parameters()]):
            piled_up = all(g is not None for g in grads) and _same(grads, grad_sum, tol=1e-5)
            if step > 0 and piled_up:
                fail(f"from step {step + 1} on the weights differ from a correct step's: the "
                     f"gradients of all steps so far were added up",
                     "backward() adds to .grad; call optimizer.zero_grad() once per step, "
                     "before loss.backward()")
            fail(f"after step {step + 1} the weights differ from one SGD step on this batch",
                 "use the optimizer you are given, and the order zero_grad(), forward, loss, "
                 "backward(), step()")
        if isinstance(result, torch.Tensor):
            graph = (" that still holds the autograd graph (and every activation of the batch)"
                     if result.requires_grad else "")
            fail(f"train_step returned a tensor{graph}, not a Python float",
                 "return loss.item()")
        if not isinstance(result, float):
            shown = "None" if result is None else f"{type(result).__name__} {result!r:.60}"
            fail(f"train_step returned {shown}, not the loss as a float", "return loss.item()")
        if not math.isclose(result, ref_loss, rel_tol=1e-5, abs_tol=1e-6):
            fail(f"at step {step + 1} train_step returned {result:.6f}, but the batch's loss "
                 f"was {ref_loss:.6f}",
                 "return the loss you called backward() on, computed before the step")
    return correct("train_step: zero_grad, forward, loss, backward, step, and the loss as a float")


class _ToyLoader:
    """A fixed list of batches with a length: what ``train`` needs of a loader."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def check_train_loop(train_loop: Callable) -> None:
    """Check a learner's ``train_loop(model, train_loader, optimizer, steps) -> (losses, accuracy)``.

    Runs it for 7 steps over a loader of 3 batches (so the loop must start a new pass over the data twice) on a
    tiny network, beside ``vgg_helpers.training.train`` from the same weights with the same SGD settings, and
    compares every step's loss, the weights at the end and the running accuracy.

    Args:
        train_loop: the learner's loop. It must put the model in training mode, take exactly ``steps``
            optimiser steps (starting a new pass over ``train_loader`` when one ends), and return the list of
            every step's loss (Python floats, computed before the step) and the fraction of the training
            images seen that were classified correctly (before each step).
    Raises:
        ExerciseError: the losses or weights differ from ``train``'s (a missing ``zero_grad``, a wrong order),
            the number of steps is wrong, the loop stops at the end of the loader, or the results are not
            floats.
    """
    if not expect_function(train_loop, "check_train_loop", "train_loop(model, train_loader, optimizer, steps)"):
        return
    steps, batches = 7, toy_batches(seed=7, n_batches=3)
    model, reference = tiny_convnet(seed=8), tiny_convnet(seed=8)
    ref_losses: list[float] = []
    config = TrainConfig(epochs=3, lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0,
                         schedule="constant", max_steps=steps)
    with torch.random.fork_rng(devices=[]):
        history = train(reference, _ToyLoader(batches), None, config, device="cpu", progress=False,
                        on_step=lambda m, step, loss: ref_losses.append(loss))
    # train() reports the accuracy per pass over the data: weigh each pass by the images it saw
    seen = [min(len(batches), steps - e * len(batches)) * len(batches[0][1]) for e in range(len(history.epoch))]
    ref_acc = sum(a * n for a, n in zip(history.train_acc, seen)) / sum(seen)
    loader = _ToyLoader(batches)
    model.eval()                          # the loop must switch it back to training mode
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    result = train_loop(model, loader, optimizer, steps)
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"train_loop returned {type(result).__name__}, not (losses, accuracy)",
             "end with: return losses, correct / seen")
    losses, accuracy = result
    if not model.training:
        fail("the model was left in evaluation mode", "call model.train() before the first step")
    if not isinstance(losses, list) or not all(isinstance(x, float) for x in losses):
        fail("losses must be a list of Python floats, one per step", "append loss.item() after every step")
    if len(losses) != steps:
        hint = ("when the loader runs out, start a new pass over it (an outer loop over epochs)"
                if len(losses) == len(batches) else "stop after exactly `steps` optimiser steps")
        fail(f"train_loop took {len(losses)} steps, not the {steps} it was asked for", hint)
    for i, (got, ref) in enumerate(zip(losses, ref_losses)):
        if not math.isclose(got, ref, rel_tol=1e-5, abs_tol=1e-6):
            fail(f"at step {i + 1} the loss was {got:.6f}, but train() had {ref:.6f} from the same weights",
                 "each step: forward, loss, optimizer.zero_grad(), loss.backward(), optimizer.step(); "
                 "record loss.item(), the loss before the step")
    if not _same([p.detach() for p in model.parameters()], [p.detach() for p in reference.parameters()]):
        fail("the losses agree but the final weights differ from train()'s",
             "take one optimizer.step() per batch, with the optimizer you are given")
    if not isinstance(accuracy, float) or not math.isclose(accuracy, ref_acc, abs_tol=1e-9):
        fail(f"the running accuracy was {accuracy!r}, expected {ref_acc:.4f} (correct predictions before each "
             "step, over every image seen)",
             "count (outputs.argmax(1) == labels).sum().item() and len(labels) at every step; return a float")
    return correct(f"train_loop: {steps} steps over 3 passes, the same losses and weights as train()")


def _train_loop(model: nn.Module, train_loader, optimizer: torch.optim.Optimizer,
                steps: int) -> tuple[list[float], float]:
    """``steps`` optimiser steps, passing over ``train_loader`` again when it ends: (losses, running accuracy)."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    losses: list[float] = []
    correct = seen = 0
    while len(losses) < steps:
        for images, labels in train_loader:
            if len(losses) == steps:
                break
            outputs = model(images)
            loss = loss_fn(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            correct += (outputs.argmax(1) == labels).sum().item()
            seen += len(labels)
    return losses, correct / seen


# The book's version of this module's pieces, for a student copy's stand-ins (``references``).
REFERENCES = {"train_step": _reference_train_step, "train_loop": _train_loop}
