"""The build-it exercise of the batch-norm chapter: a forward hook that records activation statistics
(``check_activation_hook``), on the reference answer, planted mistakes and the chapter's own solution cell."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from vgg_helpers.exercises import ExerciseError, check_activation_hook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _solution_defining(name: str, function: str) -> str:
    """The source of the notebook's solution cell that defines ``function``."""
    found = [c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells if c.cell_type == "code"
             and "solution" in c.metadata.get("tags", []) and f"def {function}(" in c.source]
    assert len(found) == 1, f"{name}: expected one solution cell defining {function}, found {len(found)}"
    return found[0]


# --- a forward hook that records activation statistics ---

def _hooked(model: nn.Module, images: torch.Tensor, record, remove: bool = True,
            kinds: tuple = (nn.Conv2d, nn.Linear)) -> dict:
    stds: dict[str, float] = {}

    def hook_for(name):
        def hook(module, inputs, output):
            stds[name] = record(inputs, output)
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in model.named_modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(images)
    if remove:
        for h in handles:
            h.remove()
    return stds


def reference_record_stds(model, images):
    return _hooked(model, images, lambda inputs, output: output.std().item())


def population_std(model, images):
    return _hooked(model, images, lambda inputs, output: output.std(unbiased=False).item())


def hooks_left_on(model, images):
    return _hooked(model, images, lambda inputs, output: output.std().item(), remove=False)


def records_the_input(model, images):
    return _hooked(model, images, lambda inputs, output: inputs[0].std().item())


def convolutions_only(model, images):
    return _hooked(model, images, lambda inputs, output: output.std().item(), kinds=(nn.Conv2d,))


def every_module(model, images):
    return _hooked(model, images, lambda inputs, output: output.std().item(), kinds=(nn.Module,))


def one_image(model, images):
    return _hooked(model, images, lambda inputs, output: output[0].std().item())


def tensors(model, images):
    return _hooked(model, images, lambda inputs, output: output.std())


def the_mean(model, images):
    return _hooked(model, images, lambda inputs, output: output.mean().item())


def a_list(model, images):
    return list(reference_record_stds(model, images).values())


@pytest.mark.parametrize("record", [reference_record_stds, population_std])
def test_activation_hook_check_accepts_right_answers(record, capsys):
    assert check_activation_hook(record) is None
    assert capsys.readouterr().out.startswith("correct: ")


@pytest.mark.parametrize("record, message", [
    (hooks_left_on, r"hooks are still registered on features\.0.*handle\.remove\(\)"),
    (records_the_input, r"std of the layer.s input, not of its output"),
    (convolutions_only, r"no value for classifier\.0, classifier\.2 \(Linear\)"),
    (every_module, r"layers that are not Conv2d or Linear"),
    (one_image, r"the first image.s output, not of the whole batch.s.*output\.std\(\)"),
    (tensors, r"is a Tensor, not a float.*\.item\(\)"),
    (the_mean, r"the std of its output over the batch is"),
    (a_list, r"returned list, not a dict"),
])
def test_activation_hook_check_names_the_mistake(record, message):
    with pytest.raises(ExerciseError, match=message):
        check_activation_hook(record)


def test_the_batch_norm_chapters_solution_passes_its_check(capsys):
    torch.manual_seed(0)

    def diagnostic_model(batch_norm: bool) -> nn.Module:      # a small stand-in for the chapter's VGG
        from vgg_helpers import build_vgg
        return build_vgg("vgg11", width=0.125, head="imagenet", input_size=32, num_classes=10,
                         init="paper", batch_norm=batch_norm)

    namespace = {"torch": torch, "nn": nn, "diagnostic_model": diagnostic_model,
                 "xb": torch.randn(4, 3, 32, 32)}
    exec(_solution_defining("06-batch-norm-fix.ipynb", "record_stds"), namespace)
    out = capsys.readouterr().out
    assert "plain: first conv" in out and "batch norm: first conv" in out
    assert check_activation_hook(namespace["record_stds"]) is None
    assert "correct:" in capsys.readouterr().out


def test_the_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    check_activation_hook(reference_record_stds)
    assert torch.equal(state, torch.random.get_rng_state())


# --- the one-cycle learning-rate schedule ---

def _one_cycle(step: int, total: int, warmup: float = 0.2) -> float:
    t = step / total
    return t / warmup if t < warmup else (1 - t) / (1 - warmup)


def test_one_cycle_check_accepts_a_right_answer(capsys):
    from vgg_helpers.exercises import check_one_cycle

    check_one_cycle(_one_cycle)
    check_one_cycle(lambda step, total, warmup=0.2: torch.tensor(_one_cycle(step, total, warmup)))  # a 0-d tensor
    assert capsys.readouterr().out.count("correct: one_cycle") == 2


@pytest.mark.parametrize("answer, message", [
    (lambda step, total, warmup=0.2: max(0.0, 1 - step / total), "there is no warm-up"),
    (lambda step, total, warmup=0.2: (step / total) / warmup if step / total < warmup else 1 - step / total,
     "drops from 1 to 1 - warmup in one step"),
    (lambda step, total, warmup=0.2: (step / total) / warmup if step / total < warmup
     else 0.5 * (1 + math.cos(math.pi * (step / total - warmup) / (1 - warmup))), "the decay is a cosine"),
    (lambda step, total, warmup=0.2: 0.1 * _one_cycle(step, total, warmup), "the learning rate .* not the factor"),
    (lambda step, total, warmup=0.2: _one_cycle(min(step + 1, total), total, warmup),       # one step ahead
     r"one_cycle\(0, 100, warmup=0.2\) returned 0.05; the one-cycle factor there is 0"),
    (lambda step, total, warmup=0.2: None, r"returned None \(NoneType\), not a number"),
    (lambda step, total, warmup=0.2: "0.5", r"returned .*str.*not a number"),
])
def test_one_cycle_check_names_each_planted_mistake(answer, message):
    from vgg_helpers.exercises import check_one_cycle

    with pytest.raises(ExerciseError, match=message):
        check_one_cycle(answer)


def test_one_cycle_check_wants_the_warmup_argument():
    from vgg_helpers.exercises import check_one_cycle

    with pytest.raises(ExerciseError, match=r"one_cycle\(step, total, warmup=0.2\).*no warmup argument"):
        check_one_cycle(lambda step, total: 0.0)
