"""The build-it exercises of the training-loop chapter (and the exercise layout of the failure and batch-norm
chapters): each check accepts a right answer and names a wrong one.

* ``check_train_step``: a ``train_step(model, optimizer, loss_fn, images, labels)`` (a check kept for teachers' own
  exercises), and ``check_train_loop``: the learner's ``train_loop(model, train_loader, optimizer, steps)``, written
  in the chapter's main text, against ``train`` step by step.

Every check is run on the reference solution (written out here), on planted mistakes, and on the
notebook's own solution cell, exec'd in a namespace with what it needs.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from vgg_helpers.exercises import ExerciseError, check_train_loop, check_train_step

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TITLE = re.compile(r"```\{admonition\} Exercise (\d+): .+ \((easy|medium|hard) · \d+ min\)\n")


def _cells(name: str) -> list:
    return nbformat.read(NOTEBOOKS / name, as_version=4).cells


def _solution_defining(name: str, function: str) -> str:
    """The source of the notebook's solution cell that defines ``function``."""
    found = [c.source for c in _cells(name) if c.cell_type == "code"
             and "solution" in c.metadata.get("tags", []) and f"def {function}(" in c.source]
    assert len(found) == 1, f"{name}: expected one solution cell defining {function}, found {len(found)}"
    return found[0]


# --- the training step ---

def reference_train_step(model, optimizer, loss_fn, images, labels) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def zero_grad_at_the_end(model, optimizer, loss_fn, images, labels) -> float:
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def model_zero_grad(model, optimizer, loss_fn, images, labels) -> float:
    model.zero_grad(set_to_none=False)
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def no_zero_grad(model, optimizer, loss_fn, images, labels) -> float:
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def no_step(model, optimizer, loss_fn, images, labels) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    return loss.item()


def zero_grad_after_backward(model, optimizer, loss_fn, images, labels) -> float:
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def no_backward(model, optimizer, loss_fn, images, labels) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    optimizer.step()
    return loss.item()


def step_before_backward(model, optimizer, loss_fn, images, labels) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    optimizer.step()
    loss.backward()
    return loss.item()


def returns_the_tensor(model, optimizer, loss_fn, images, labels):
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def returns_a_detached_tensor(model, optimizer, loss_fn, images, labels):
    return returns_the_tensor(model, optimizer, loss_fn, images, labels).detach()


def returns_nothing(model, optimizer, loss_fn, images, labels):
    reference_train_step(model, optimizer, loss_fn, images, labels)


def returns_the_loss_after_the_step(model, optimizer, loss_fn, images, labels) -> float:
    reference_train_step(model, optimizer, loss_fn, images, labels)
    with torch.no_grad():
        return loss_fn(model(images), labels).item()


def own_optimizer(model, optimizer, loss_fn, images, labels) -> float:
    return reference_train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn, images, labels)


def never_calls_loss_fn(model, optimizer, loss_fn, images, labels) -> float:
    return reference_train_step(model, optimizer, nn.functional.cross_entropy, images, labels)


@pytest.mark.parametrize("step", [reference_train_step, zero_grad_at_the_end, model_zero_grad])
def test_train_step_check_accepts_right_answers(step, capsys):
    assert check_train_step(step) is None
    assert capsys.readouterr().out.startswith("correct: ")


@pytest.mark.parametrize("step, message", [
    (no_zero_grad, r"gradients of all steps so far were added up.*zero_grad"),
    (no_step, r"optimizer\.step\(\) was never called"),
    (zero_grad_after_backward, r"gradients were cleared between loss\.backward\(\) and optimizer\.step\(\)"),
    (no_backward, r"loss\.backward\(\) was never called"),
    (step_before_backward, r"optimizer\.step\(\) ran before loss\.backward\(\)"),
    (returns_the_tensor, r"returned a tensor that still holds the autograd graph.*loss\.item\(\)"),
    (returns_a_detached_tensor, r"returned a tensor, not a Python float.*loss\.item\(\)"),
    (returns_nothing, r"returned None, not the loss as a float"),
    (returns_the_loss_after_the_step, r"the batch's loss was"),
    (own_optimizer, r"weights differ from one SGD step.*optimizer you are given"),
    (never_calls_loss_fn, r"never called loss_fn"),
])
def test_train_step_check_names_the_mistake(step, message):
    with pytest.raises(ExerciseError, match=message):
        check_train_step(step)


def test_train_step_check_rejects_a_non_function():
    with pytest.raises(ExerciseError, match="pass the function itself"):
        check_train_step(3.0)


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    check_train_step(reference_train_step)
    assert torch.equal(state, torch.random.get_rng_state())


def test_the_failure_chapters_solution_passes_its_check(capsys):
    namespace = {"torch": torch, "nn": nn}
    exec(_solution_defining("05-ten-percent-failure.ipynb", "train_loop"), namespace)
    assert check_train_loop(namespace["train_loop"]) is None
    assert "correct:" in capsys.readouterr().out


# --- the training loop, against train() ---

def loop_one_pass(model, train_loader, optimizer, steps):
    model.train()
    losses, correct, seen = [], 0, 0
    for images, labels in train_loader:          # stops when the loader ends
        out = model(images)
        loss = nn.functional.cross_entropy(out, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        correct += (out.argmax(1) == labels).sum().item()
        seen += len(labels)
    return losses, correct / seen


def _planted(**mistake):
    def loop(model, train_loader, optimizer, steps):
        if not mistake.get("eval"):
            model.train()
        losses, correct, seen = [], 0, 0
        while len(losses) < steps:
            for images, labels in train_loader:
                if len(losses) == steps:
                    break
                out = model(images)
                loss = nn.functional.cross_entropy(out, labels)
                if not mistake.get("no_zero_grad"):
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss if mistake.get("tensor") else loss.item())
                correct += (out.argmax(1) == labels).sum().item()
                seen += len(labels)
        return (losses, seen / seen) if mistake.get("bad_acc") else (losses, correct / seen)
    return loop


def test_train_loop_check_accepts_the_reference(capsys):
    assert check_train_loop(_planted()) is None          # no mistake planted: the reference loop
    assert "same losses and weights as train()" in capsys.readouterr().out


@pytest.mark.parametrize("loop, message", [
    (loop_one_pass, "start a new pass"),
    (_planted(no_zero_grad=True), "at step 3 the loss"),
    (_planted(eval=True), "evaluation mode"),
    (_planted(tensor=True), "Python floats"),
    (_planted(bad_acc=True), "running accuracy"),
    (lambda model, loader, optimizer, steps: [0.0] * steps, "not \\(losses, accuracy\\)"),
])
def test_train_loop_check_names_the_mistake(loop, message):
    with pytest.raises(ExerciseError, match=message):
        check_train_loop(loop)


# --- the notebooks: titles, check cells, self-check ---

@pytest.mark.parametrize("name, count", [("05-ten-percent-failure.ipynb", 3), ("06-batch-norm-fix.ipynb", 5)])
def test_exercises_are_numbered_and_labelled(name, count):
    cells = _cells(name)
    titled = [c.source for c in cells if c.cell_type == "markdown" and "{admonition} Exercise" in c.source]
    numbers = [int(m.group(1)) for s in titled for m in TITLE.finditer(s)]
    assert numbers == list(range(1, count + 1)), f"{name}: exercise titles {numbers}"
    for i, c in enumerate(cells):
        if c.cell_type == "markdown" and TITLE.search(c.source):
            assert "solution" in cells[i + 1].metadata.get("tags", []), f"{name}: no solution after {c.source[:60]}"


@pytest.mark.parametrize("name, check", [("05-ten-percent-failure.ipynb", "check_train_loop(train_loop)"),
                                         ("06-batch-norm-fix.ipynb", "check_activation_hook(record_stds)")])
def test_check_cell_follows_the_solution(name, check):
    cells = _cells(name)
    i = next(i for i, c in enumerate(cells) if c.cell_type == "code" and check in c.source)
    assert "solution" not in cells[i].metadata.get("tags", [])
    assert set(cells[i - 1].metadata.get("tags", [])) >= {"solution", "hide-cell"}


@pytest.mark.parametrize("name", ["05-ten-percent-failure.ipynb", "06-batch-norm-fix.ipynb"])
def test_self_check_comes_before_the_exercises(name):
    cells = _cells(name)
    starts = [c.source.split("\n", 1)[0] if c.cell_type == "markdown" else "" for c in cells]
    i = starts.index("## Self-check")
    assert starts[i + 1] == "## Exercises"
    text = cells[i].source
    questions = re.findall(r"^\*\*(\d)\.\*\* ", text, flags=re.M)
    assert 2 <= len(questions) <= 4 and questions == [str(n) for n in range(1, len(questions) + 1)]
    assert text.count("<details><summary>Answer</summary>") == len(questions) == text.count("</details>")


@pytest.mark.parametrize("name", ["05-ten-percent-failure.ipynb", "06-batch-norm-fix.ipynb"])
def test_code_fits_88_columns(name):
    long = [line for c in _cells(name) if c.cell_type == "code" and "setup" not in c.metadata.get("tags", [])
            for line in c.source.splitlines() if len(line) > 88]
    assert not long, long
