"""The book's version of every build-it exercise's piece: what a student copy runs until the learner has written
their own (``not_attempted``), so that the rest of the chapter can go on. Each topic module keeps its pieces beside
its checks (its ``REFERENCES``); each is an answer its check accepts (``tests/exercises/test_references.py``). Read
them after trying the exercise, not before."""
from __future__ import annotations

from typing import Callable

from . import architecture, batch_norm, fast, modern, paper, scaling, training
from .common import NotAttempted

__all__ = ["REFERENCES", "not_attempted", "reference"]

# exercise piece (the name the chapter defines) -> the book's version, in the book's order
REFERENCES: dict[str, Callable] = {**architecture.REFERENCES, **training.REFERENCES, **batch_norm.REFERENCES,
                                   **paper.REFERENCES, **fast.REFERENCES, **modern.REFERENCES, **scaling.REFERENCES}


def reference(name: str) -> Callable:
    """The book's version of the exercise piece ``name`` (a key of ``REFERENCES``)."""
    if name not in REFERENCES:
        raise KeyError(f"no exercise piece is called {name!r}; the pieces are {', '.join(REFERENCES)}")
    return REFERENCES[name]


def not_attempted(name: str) -> NotAttempted:
    """A stand-in for an exercise the learner has not written yet: its check cell says "not attempted yet"
    instead of stopping the notebook, and the cells that use the piece run the book's version, saying so, so
    that Run All goes on through the chapter.

    Args:
        name: the function the exercise asks for, e.g. ``"conv_params"`` (a key of ``references.REFERENCES``).
    """
    return NotAttempted(name, reference(name))
