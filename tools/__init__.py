"""Book maintenance scripts (not part of vgg_helpers)."""
from __future__ import annotations


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
