"""Book maintenance scripts (not part of vgg_helpers).

What several scripts share lives here, so that none of them imports another's command: ``replace_section``
(a generated block of a page) and ``load_timings`` (the measured chapter times, ``book/_data/notebook_timings.json``,
written by ``time_notebooks`` and read by ``workshop`` and ``slides``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "book" / "_data" / "notebook_timings.json"


def load_timings(path: Path = TIMINGS) -> dict[str, Any] | None:
    """Read the timings file.

    Args:
        path: the JSON file.
    Returns:
        Its content, or None when it does not exist yet.
    """
    return json.loads(path.read_text()) if path.exists() else None


def replace_section(text: str, start: str, end: str, body: str, where: str) -> str:
    """``text`` with the lines between the marker lines ``start`` and ``end`` replaced by ``body``.

    Args:
        text: a page's markdown.
        start: the opening marker (kept).
        end: the closing marker (kept).
        body: the new content between them.
        where: the page's name, for the error message.
    Returns:
        The new markdown.
    Raises:
        ValueError: a marker is missing.
    """
    if start not in text or end not in text:
        raise ValueError(f"{where} must contain the lines:\n{start}\n{end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"
