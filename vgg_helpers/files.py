"""Writing files so that nothing is ever left half-written: the one atomic writer, and JSON on top of it."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "write_json"]


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Write a file so that a crash mid-write leaves the old file (or none), never a half-written one.

    Args:
        path: destination.
        write: called with an open file object for a temporary file in the same folder.
        mode: ``"wb"`` or ``"w"``.
    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any, indent: int = 1) -> Path:
    """Write ``obj`` as JSON, atomically.

    Args:
        path: destination.
        obj: anything ``json.dump`` accepts.
        indent: indentation of the written file.
    Returns:
        The destination path.
    """
    return atomic_write(path, lambda f: json.dump(obj, f, indent=indent), mode="w")
