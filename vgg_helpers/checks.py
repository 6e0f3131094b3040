"""Checks of plain argument values, shared by every module: each failure names the argument, the value it got,
what was expected and, where it is obvious, the fix.

A value of the wrong kind (a string where a number belongs) raises ``TypeError``; a value of the right kind
outside its range raises ``ValueError``. Python, numpy and 0-d tensor numbers are all accepted; bools are not
numbers here (``epochs=True`` is a slip, not 1). Plain Python: no torch needed.
"""
from __future__ import annotations

import difflib
import math
import operator
from dataclasses import fields
from typing import Any, Optional, Sequence

__all__ = ["describe", "whole_number", "real_number", "flag", "choice", "known_fields"]


def describe(value: Any) -> str:
    """A short account of a bad argument for an error message: the value and its type (or an array's shape).

    Args:
        value: what the caller passed.
    Returns:
        E.g. ``"'64' (str)"`` or ``"a Tensor of shape (3, 32, 32)"``.
    """
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"))


def _number_hint(name: str, value: Any, whole: bool) -> str:
    """`` Write name=3.`` when ``value`` is a number in disguise (a string, or a whole float for a count)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ""
        shown = int(number) if number.is_integer() and (whole or "." not in value) else number
        return f" Write {name}={shown!r} (a number, not a string)."
    if whole and isinstance(value, float) and value.is_integer():
        return f" Write {name}={int(value)}."
    return ""


def whole_number(name: str, value: Any, minimum: Optional[int] = None, example: str = "", *,
                 maximum: Optional[int] = None, none_means: Optional[str] = None, fix: str = "") -> Optional[int]:
    """``value`` as an ``int`` (Python, numpy or 0-d tensor integers; never a bool or a float).

    Args:
        name: the argument's name, as the message shows it.
        value: what the caller passed.
        minimum: the smallest value allowed (``None``: any).
        example: typical values, shown in brackets (``"10 for CIFAR-10"``).
        maximum: the largest value allowed (``None``: any).
        none_means: ``None`` is allowed (and returned) and means this, e.g. ``"all"`` for a size.
        fix: a sentence appended to the message (start it with a space).
    Returns:
        The number as a Python ``int`` (or ``None``, see ``none_means``).
    Raises:
        TypeError: not an integer.
        ValueError: outside ``minimum`` .. ``maximum``.

    Example:
        >>> whole_number("epochs", 2.5, 1)
        Traceback (most recent call last):
        ...
        TypeError: epochs must be a whole number >= 1; got 2.5 (float).
    """
    if none_means is not None and value is None:
        return None
    bounds = (f" from {minimum} to {maximum}" if minimum is not None and maximum is not None else
              f" >= {minimum}" if minimum is not None else f" <= {maximum}" if maximum is not None else "")
    expected = (f"a whole number{bounds}" + (f" ({example})" if example else "")
                + (f" (or None for {none_means})" if none_means is not None else ""))
    try:
        if _is_bool(value):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}; got {describe(value)}.{_number_hint(name, value, True)}{fix}"
                        ) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {expected}; got {number}.{fix}")
    return number


def real_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, low_ok: bool = True,
                high_ok: bool = True, expected: str = "") -> float:
    """``value`` as a ``float`` if it is a finite number in the interval (bounds included when ``*_ok``).

    Args:
        name: the argument's name, as the message shows it.
        value: what the caller passed.
        low: lower bound.
        high: upper bound (``math.inf``: none).
        low_ok: whether ``low`` itself is allowed.
        high_ok: whether ``high`` itself is allowed.
        expected: what is expected, in words (default: ``"a number in [low, high]"``).
    Returns:
        The number as a Python ``float``.
    Raises:
        TypeError: not a number (a string, a bool, a list).
        ValueError: NaN, infinite or outside the interval.

    Example:
        >>> real_number("lr", "0.1", 0, math.inf, low_ok=False, high_ok=False)
        Traceback (most recent call last):
        ...
        TypeError: lr must be a number in (0, inf); got '0.1' (str). Write lr=0.1 (a number, not a string).
    """
    expected = expected or f"a number in {'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
    try:
        if _is_bool(value) or isinstance(value, (str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {expected}; got {describe(value)}.{_number_hint(name, value, False)}"
                        ) from None
    if (not math.isfinite(number) or number < low or number > high or (number == low and not low_ok)
            or (number == high and not high_ok)):
        raise ValueError(f"{name} must be {expected}; got {value!r}.")
    return number


def flag(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` if it is ``True`` or ``False`` (numpy bools too).

    Args:
        name: the argument's name, as the message shows it.
        value: what the caller passed.
    Returns:
        The flag as a Python ``bool``.
    Raises:
        TypeError: anything else (``"yes"``, ``1``).
    """
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False; got {describe(value)}.")
    return bool(value)


def choice(name: str, value: Any, allowed: Sequence[str], fix: str = "") -> str:
    """``value`` if it is one of ``allowed`` (exact spelling).

    Args:
        name: the argument's name, as the message shows it.
        value: what the caller passed.
        allowed: the accepted strings.
        fix: a sentence appended to the message (start it with a space).
    Returns:
        ``value``.
    Raises:
        ValueError: anything else; the message lists ``allowed``.
    """
    if isinstance(value, str) and value in allowed:
        return value
    options = ", ".join(repr(a) for a in allowed)
    raise ValueError(f"{name} must be one of {options}; got {describe(value)}.{fix}")


def known_fields(cls: type, changes: dict) -> None:
    """Refuse keyword arguments that are not fields of the dataclass ``cls`` (with the closest field as a hint).

    Args:
        cls: a dataclass, e.g. ``VGGConfig`` or ``ModernRecipe``.
        changes: keyword arguments meant for it.
    Raises:
        TypeError: a key is not a field name.
    """
    names = [f.name for f in fields(cls)]
    for key in changes:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{key!r} is not a {cls.__name__} field.{hint} Valid fields: {', '.join(names)}.")
