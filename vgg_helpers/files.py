"""Writing files so that nothing is ever left half-written: the one atomic writer, and JSON on top of it."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path, PurePath
from typing import Any, Callable

__all__ = ["atomic_write", "write_json", "json_safe", "remove_stale_temp_files"]

# Temporary files are named ".<destination>.<pid>.<random>.tmp" next to their destination, so a later write can
# tell a leftover of a killed process (its pid no longer runs) from a write in progress.
_TMP_SUFFIX = ".tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True          # it exists but belongs to someone else (or we cannot tell): leave its file alone
    return True


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left behind.

    A write killed mid-way (power cut, ``kill -9``) cannot clean up after itself; ``atomic_write`` calls this
    before every write, so a leftover lives only until the next save of the same file.

    Args:
        path: the destination whose leftovers to remove.
    Returns:
        The files removed.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*{_TMP_SUFFIX}"):
        parts = tmp.name[len(path.name) + 2:].split(".")
        if len(parts) == 3 and parts[0].isdigit() and int(parts[0]) != os.getpid() and not _pid_running(int(parts[0])):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Write a file so that a crash mid-write leaves the old file (or none), never a half-written one.

    The file gets the usual permissions (``0o666`` less the umask), like a file made by ``open``, so a shared
    cache stays readable by others. Leftover temporary files of killed writers are removed first.

    Args:
        path: destination.
        write: called with an open file object for a temporary file in the same folder.
        mode: ``"wb"`` or ``"w"``.
    Returns:
        The destination path.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w'; got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of the file to write, e.g. {path / 'run.pt'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=_TMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())       # mkstemp makes 0600 files
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dump`` writes as valid JSON and ``torch.load(weights_only=True)`` reads.

    Numpy scalars and arrays become Python numbers and lists, paths become strings, tuples lists, and NaN or
    infinite floats ``None`` (JSON has no NaN).

    Args:
        obj: nested dicts, lists, tuples, numbers, strings, paths, numpy values.
    Returns:
        The converted copy.
    Raises:
        TypeError: something else (an object, a tensor); the message names the key path.

    Example:
        >>> import numpy as np
        >>> json_safe({"acc": np.float64(0.5), "loss": float("nan"), "n": (np.int64(3),)})
        {'acc': 0.5, 'loss': None, 'n': [3]}
    """
    def convert(x: Any, where: str) -> Any:
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x) if math.isfinite(x) else None
        if isinstance(x, PurePath):
            return str(x)
        if isinstance(x, dict):
            return {str(k): convert(v, f"{where}[{k!r}]") for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [convert(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if type(x).__module__ == "numpy" and hasattr(x, "tolist"):
            return convert(x.tolist(), where)
        if hasattr(x, "item") and hasattr(x, "numel") and x.numel() == 1:      # a one-element tensor
            return convert(x.item(), where)
        raise TypeError(f"{where or 'the value'} is a {type(x).__name__} ({x!r:.60}), which cannot be stored as "
                        "JSON: pass numbers, strings, lists or dicts of them (e.g. str(value)).")
    return convert(obj, "")


def write_json(path: str | os.PathLike, obj: Any, indent: int = 1) -> Path:
    """Write ``obj`` as JSON, atomically (converted by ``json_safe``: always valid JSON, never a bare NaN).

    Args:
        path: destination.
        obj: anything ``json_safe`` accepts.
        indent: indentation of the written file.
    Returns:
        The destination path.
    """
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False)
    return atomic_write(path, lambda f: f.write(text), mode="w")
