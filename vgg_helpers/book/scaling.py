"""The runs on several processes (``vgg_helpers.distributed``): the training command's flags for a plan.

The chapter and ``bench/scaling.py`` launch ``python -m vgg_helpers.distributed`` (alone or under torchrun) with
``script_args(pick(SCALING, budget))`` and the flags of the run at hand (``--seed``, ``--crash``, ...). Nothing of
these runs is stored: they are trained every time, because what they show is the training itself.
"""
from __future__ import annotations

from ..checks import describe
from ..distributed import command_args
from .plans import SCALING, Plan, pick

__all__ = ["script_args", "scaling_args"]


def script_args(plan: Plan) -> list[str]:
    """The flags that make the training command train ``plan``: its data sizes, network, recipe, split and
    augmentation (the seed is the caller's: ``--seed``).

    Raises:
        TypeError: ``plan`` is not a ``Plan`` (for a budget's name, use ``scaling_args``).
    """
    if not isinstance(plan, Plan):
        hint = f" For a budget's plan, use scaling_args({plan!r})." if isinstance(plan, str) else ""
        raise TypeError(f"plan must be a Plan, e.g. plans.SCALING['smoke']; got {describe(plan)}.{hint}")
    return command_args(plan.run, plan.model, plan.recipe, split_seed=plan.split_seed, augment=plan.augment)


def scaling_args(budget: str) -> list[str]:
    """``script_args`` of ``plans.SCALING`` in ``budget``."""
    return script_args(pick(SCALING, budget))
