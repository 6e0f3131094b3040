"""What every check shares: the error a wrong answer raises, the line a right one prints, the guard that the
answer is a function, the toy networks."""
from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any, Callable, NoReturn

import torch
from torch import nn

from ..checks import describe

__all__ = ["ExerciseError", "NotAttempted", "correct", "expect_function", "fail",
           "tiny_convnet", "toy_batches"]


class ExerciseError(AssertionError):
    """An exercise answer is not right yet; the message says what is wrong and where to look."""


def correct(message: str) -> None:
    """Print the line a check prints for a right answer, ``"correct: " + message``.

    Checks return nothing, so that a notebook cell ending with a check shows only this line.

    Args:
        message: what was checked (``"make_layers builds Table 1's VGG-11"``).
    """
    print(f"correct: {message}")


def fail(what: str, hint: str) -> NoReturn:
    """Raise the error a check raises for a wrong answer (``what`` is wrong; ``hint`` says where to look)."""
    raise ExerciseError(f"not yet: {what}. Hint: {hint}")


class NotAttempted:
    """What a student copy's exercise cell holds until the learner writes the piece (``references.not_attempted``
    makes it): called, it runs the book's version ``reference`` and says so once."""

    def __init__(self, name: str, reference: Callable) -> None:
        self.name = name
        self._reference = reference
        self._said = False

    def __repr__(self) -> str:
        return f"not_attempted({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._said:
            print(f"using the book's version of {self.name}: your exercise is still open")
            self._said = True
        return self._reference(*args, **kwargs)


def expect_function(answer: Any, check: str, signature: str) -> bool:
    """``fail`` unless ``answer`` is a function that the check can call as ``signature`` says.

    The first line of every check: passing the function's result (``check_x(x(...))``), its name in quotes, a
    network, a class or ``None`` gets a message that names the slip instead of ``'int' object is not callable``.
    An exercise not written yet (``not_attempted``) prints one line saying so and returns ``False``: the check
    then stops without an error.

    Args:
        answer: what the learner passed to the check.
        check: the check's name, e.g. ``"check_conv_params"``.
        signature: how the check calls the answer, as the book writes the function, e.g.
            ``"conv_params(in_channels, out_channels, kernel_size)"``; ``name=default`` entries are passed by keyword.
    Returns:
        ``True`` when the check should go on, ``False`` for an exercise not attempted yet.
    Raises:
        ExerciseError: ``answer`` is not a function, or takes other arguments than ``signature``.
    """
    name, params = signature.rstrip(")").split("(")
    if isinstance(answer, NotAttempted):
        print(f"not attempted yet: {check} checks your {name} -- write it in the cell above, run that cell, "
              "then this one")
        return False
    example = f"{check}({name})"
    got = f"{check} expects your function, got"
    without_calling = f"pass the function itself, without calling it: {example}"
    if answer is None:
        fail(f"{got} None", f"None is what a function without `return` gives, or a name set to None; "
             f"{without_calling}")
    if isinstance(answer, str):
        fail(f"{got} the string {answer!r}", f"pass the function, not its name in quotes: {example}")
    if isinstance(answer, type):
        fail(f"{got} the class {answer.__name__}", f"write a function, def {signature}: ..., and pass it: {example}")
    if isinstance(answer, nn.Module):
        fail(f"{got} a {type(answer).__name__}: a network, not a function",
             f"if it is what your function returned, {without_calling}")
    if not callable(answer):
        fail(f"{got} {describe(answer)}: a value, such as a function's result", without_calling)
    entries = [p.strip() for p in params.split(",") if p.strip()]
    keywords = [p.split("=")[0] for p in entries if "=" in p]
    try:
        takes = inspect.signature(answer)
    except (TypeError, ValueError):     # a built-in without a signature: let the call itself tell
        return True
    try:
        takes.bind(*(None for p in entries if "=" not in p), **dict.fromkeys(keywords))
    except TypeError:
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in takes.parameters.values())
        missing = [k for k in keywords if k not in takes.parameters and not accepts_any]
        shown = takes.replace(parameters=[p.replace(annotation=p.empty) for p in takes.parameters.values()],
                              return_annotation=takes.empty)
        lacks = f": it has no {', '.join(missing)} argument{'s' * (len(missing) > 1)}" if missing else ""
        fail(f"{check} calls your function as {signature}, but it takes {shown}{lacks}",
             f"define it as def {signature}: ...")
    return True


def tiny_convnet(seed: int) -> nn.Module:
    """A VGG-shaped toy (``features``, ``flatten``, ``classifier``) without dropout or batch norm, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        classifier = nn.Sequential(nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, 4))
        return nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(),
                                           classifier=classifier))


def toy_batches(seed: int, n_batches: int, batch_size: int = 8) -> list:
    """``n_batches`` seeded ``(images, labels)`` pairs of 3x8x8 images in 4 classes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, 8, 8, generator=g),
             torch.randint(0, 4, (batch_size,), generator=g)) for _ in range(n_batches)]
