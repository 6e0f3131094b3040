"""Book maintenance scripts (not part of vgg_helpers).

What several scripts share lives here, so that none of them imports another's command: ``replace_section``
(a generated block of a page), ``load_timings`` (the measured chapter times, ``book/_data/notebook_timings.json``,
written by ``time_notebooks`` and read by ``workshop`` and ``slides``) and ``exercises`` (a chapter's exercises
and their labels, which ``time_notebooks`` times and ``workshop`` lists in the answer key).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "book" / "_data" / "notebook_timings.json"

#: The label at the end of every exercise title: ``Exercise 2: the FC share (medium · 10 min)``.
EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{admonition\}\s*Exercise\s+(?P<number>\d+)\s*:\s*(?P<title>.*?)\s*"
                      r"\((?P<level>easy|medium|hard)\s*·\s*(?P<minutes>\d+)\s*min\)\s*$", re.M)
ANY_EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{admonition\}\s*Exercise\b(?P<rest>.*)$", re.M)
LEVELS = ("easy", "medium", "hard")


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


def exercises(nb: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The exercises of a chapter and their labels.

    Args:
        nb: the chapter notebook.
    Returns:
        ``(labelled, unlabelled)``: ``labelled`` is a list of ``{"number", "title", "level", "minutes"}`` in the
        order of the notebook; ``unlabelled`` holds the title lines of exercises whose title does not end with
        ``(<easy|medium|hard> · <M> min)``.
    """
    labelled, unlabelled = [], []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for match in ANY_EXERCISE.finditer(cell.source):
            line = match.group(0)
            full = EXERCISE.match(line)
            if full:
                labelled.append({"number": int(full.group("number")), "title": full.group("title"),
                                 "level": full.group("level"), "minutes": int(full.group("minutes"))})
            else:
                unlabelled.append(line.split("}", 1)[1].strip())
    return labelled, unlabelled
