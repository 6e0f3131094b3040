"""Download everything a workshop room needs to install offline: wheels for Linux, macOS and Windows, and
CIFAR-10 (``make wheelhouse``).

Usage:
    python tools/wheelhouse.py                         # all three systems + the data, into wheelhouse/
    python tools/wheelhouse.py --os linux --os windows # some systems only
    python tools/wheelhouse.py --python 3.12 --no-data # the learners' Python; no data set

For each system, ``wheelhouse/<os>/`` gets the wheels of ``requirements.txt``, JupyterLab and ``setuptools``
(to install ``vgg_helpers`` itself from the repository), for the learners' Python version: binary wheels only, so
the machine that downloads may run any system. For its own system ``pip download`` resolves and downloads. For
another system it cannot resolve (pip evaluates environment markers such as ``platform_system == "Linux"`` for the
machine it runs on, so it would ask Windows for CUDA libraries and forget Windows-only packages), so ``uv pip
compile --python-platform`` resolves for the target first, and ``pip download --no-deps --platform`` fetches
exactly those pins (``wheelhouse/<os>/pins.txt``). PyTorch is the CPU build
everywhere: on Linux from PyTorch's CPU index (PyPI's Linux wheels bring several GB of CUDA libraries); PyPI's
Windows and macOS wheels are the CPU (and, on Apple silicon, ``mps``) builds already. ``wheelhouse/data/`` gets
``cifar-10-python.tar.gz`` (about 170 MB, checked against its MD5). ``wheelhouse/INSTALL.md`` says how to install
on each system without a network; ``install_commands`` writes the same lines.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "wheelhouse"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
LEARNER_EXTRAS = ("jupyterlab", "setuptools>=77")     # Jupyter, and the build backend of `pip install -e .`

MACOS = 14   # the oldest macOS the wheels must install on (Sonoma, 2023; 13 is out of Apple's support)

# pip's platform tags per system: 64-bit Linux (glibc 2.17 or newer), Apple-silicon Macs with macOS 14 or newer
# (PyTorch has no Intel-Mac wheels after 2.2), 64-bit Windows. pip matches the tags exactly (it does not widen them to older glibc or macOS
# versions), and packages are tagged with different minimum versions, so every version is listed.
PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux": tuple(f"manylinux_2_{v}_x86_64" for v in range(28, 16, -1)) + ("manylinux2014_x86_64",),
    "macos": tuple(f"macosx_{v}_0_arm64" for v in range(MACOS, 10, -1))
    + tuple(f"macosx_{v}_universal2" for v in ("11_0", "10_15", "10_13", "10_12", "10_9")),
    "windows": ("win_amd64",),
}


# uv's names of the same targets (``uv pip compile --python-platform``): it resolves environment markers for them.
UV_PLATFORMS = {"linux": "x86_64-manylinux_2_28", "macos": "aarch64-apple-darwin", "windows": "x86_64-pc-windows-msvc"}


def host_system() -> str:
    """The system this machine runs, as a key of ``PLATFORMS`` ("" when it is none of them)."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    return "windows" if sys.platform == "win32" else ""


def _check_target(system: str, python: str) -> str:
    """``python`` as pip's ABI tag (``"3.11"`` -> ``"cp311"``), once ``system`` and ``python`` are checked."""
    if system not in PLATFORMS:
        raise ValueError(f"system must be one of {', '.join(PLATFORMS)}; got {system!r}")
    parts = python.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"python must be a version like '3.11'; got {python!r}")
    return f"cp{parts[0]}{parts[1]}"


def _is_index(torch_source: Optional[str]) -> bool:
    return bool(torch_source) and "://" in torch_source and not torch_source.startswith("file:")


def _torch_options(system: str, torch_source: Optional[str]) -> list[str]:
    """Where Linux's CPU torch comes from: an extra index, or a folder of wheels (nothing for the other systems)."""
    if system != "linux" or not torch_source:
        return []
    return ["--extra-index-url" if _is_index(torch_source) else "--find-links", torch_source]


def resolve_command(system: str, python: str, pins: Path, extras: Path, torch_source: Optional[str] = CPU_TORCH_INDEX,
                    constraint: Optional[Path] = None) -> list[str]:
    """The ``uv pip compile`` command that pins every package for another system (markers evaluated for it).

    Args:
        system: the target system.
        python: the learners' Python version.
        pins: the file to write.
        extras: a requirements file with ``LEARNER_EXTRAS``.
        torch_source: see ``download_command``.
        constraint: see ``download_command``.
    Returns:
        The command, as a list.
    Raises:
        ValueError: for an unknown system or a malformed Python version.
    """
    _check_target(system, python)
    cmd = [sys.executable, "-m", "uv", "pip", "compile", str(ROOT / "requirements.txt"), str(extras),
           "--python-platform", UV_PLATFORMS[system], "--python-version", python, "--no-header", "--quiet",
           "--output-file", str(pins)]
    cmd += _torch_options(system, torch_source)
    if system == "linux" and _is_index(torch_source):
        cmd += ["--index-strategy", "unsafe-best-match"]       # take torch's +cpu build from the CPU index
    return cmd + (["--constraint", str(constraint)] if constraint else [])


def download_command(system: str, python: str, dest: Path, torch_source: Optional[str] = CPU_TORCH_INDEX,
                     constraint: Optional[Path] = None, pins: Optional[Path] = None) -> list[str]:
    """The ``pip download`` command that fills one system's folder.

    Args:
        system: ``"linux"``, ``"macos"`` or ``"windows"``.
        python: the learners' Python version, e.g. ``"3.11"``.
        dest: the system's folder.
        torch_source: on Linux, where the CPU build of PyTorch comes from: an index URL, a folder of wheels,
            or ``None`` for PyPI's (CUDA) build.
        constraint: an optional pip constraints file (e.g. to pin the torch version).
        pins: for another system than this machine's, the pins ``resolve_command`` wrote: downloaded as they
            are (``--no-deps``) instead of resolved by pip.
    Returns:
        The command, as a list.
    Raises:
        ValueError: for an unknown system or a malformed Python version.
    """
    abi = _check_target(system, python)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(dest),
           "--python-version", python, "--implementation", "cp", "--abi", abi]
    for tag in PLATFORMS[system]:
        cmd += ["--platform", tag]
    cmd += _torch_options(system, torch_source)
    if pins:
        return cmd + ["--no-deps", "-r", str(pins)]
    if constraint:
        cmd += ["--constraint", str(constraint)]
    return cmd + ["-r", str(ROOT / "requirements.txt"), *LEARNER_EXTRAS]


def install_commands(system: str, folder: str = "wheelhouse") -> list[str]:
    """The offline install on one system, run from the repository's folder, ending with the learner check.

    Args:
        system: ``"linux"``, ``"macos"`` or ``"windows"``.
        folder: the wheelhouse's path from the repository.
    Returns:
        Shell lines (PowerShell on Windows).
    """
    if system == "windows":
        py, wheels = r".venv\Scripts\python", f"{folder}\\windows"
        first = "py -3 -m venv .venv"
    else:
        py, wheels, first = ".venv/bin/python", f"{folder}/{system}", "python3 -m venv .venv"
    pip = f"{py} -m pip install --no-index --find-links {wheels}"
    return [first, f"{pip} -r requirements.txt jupyterlab", f"{pip} --no-deps -e .",
            f"{py} -m vgg_helpers.install_check"]


def install_guide(systems: list[str], data: bool) -> str:
    """The text of ``INSTALL.md``: the offline install per system, and where to put the data."""
    lines = ["# Installing offline from this wheelhouse", "",
             "Copy the repository and this folder (as `wheelhouse/` inside the repository) to the machine, open a "
             "terminal in the repository's folder and run the lines for its system. The last line is the "
             "learner check: one PASS or FAIL line per item.", ""]
    names = {"linux": "Linux (x86-64)", "macos": f"macOS {MACOS} or newer (Apple silicon)", "windows": "Windows (64-bit, PowerShell)"}
    for system in systems:
        lines += [f"## {names[system]}", "", "```", *install_commands(system), "```", ""]
    if data:
        lines += ["## The data", "", "Unpack `data/cifar-10-python.tar.gz` (`tar -xzf wheelhouse/data/cifar-10-python."
                  "tar.gz -C DIR`; `tar` is on Windows 10 and later too) and set `VGG_DATA_DIR=DIR` before starting "
                  "Jupyter: the folder then holds `cifar-10-batches-py/`.", ""]
    return "\n".join(lines)


def download_data(dest: Path) -> Path:
    """Download CIFAR-10's python archive into ``dest`` (skipped when a copy with the right MD5 is there).

    Args:
        dest: the folder.
    Returns:
        The archive's path.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_url

    download_url(CIFAR10.url, str(dest), CIFAR10.filename, CIFAR10.tgz_md5)
    return dest / CIFAR10.filename


def build(out: Path = OUT, systems: Optional[list[str]] = None, python: Optional[str] = None, data: bool = True,
          torch_source: Optional[str] = CPU_TORCH_INDEX, constraint: Optional[Path] = None) -> Path:
    """Fill the wheelhouse.

    Args:
        out: the folder.
        systems: the systems (default: all three).
        python: the learners' Python version (default: this one's).
        data: also download CIFAR-10.
        torch_source: see ``download_command``.
        constraint: see ``download_command``.
    Returns:
        The path of ``INSTALL.md``.
    Raises:
        SystemExit: when a download fails (pip's message is shown above it).
    """
    systems = systems or list(PLATFORMS)
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    for system in systems:
        dest = out / system
        dest.mkdir(parents=True, exist_ok=True)
        pins = None
        if system != host_system():
            pins, extras = dest / "pins.txt", dest / "extras.in"
            extras.write_text("\n".join(LEARNER_EXTRAS) + "\n")
            print(f"{system}: resolving for {UV_PLATFORMS[system]}, Python {python} (uv) ...", flush=True)
            env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": f"{MACOS}.0"}   # uv's macOS version to resolve for
            if subprocess.run(resolve_command(system, python, pins, extras, torch_source, constraint),
                              env=env).returncode:
                raise SystemExit(f"uv could not resolve the packages for {system} (its message is above). Check the "
                                 f"network, and that they exist for Python {python} on {system}.")
        print(f"{system}: downloading wheels for Python {python} into {dest} ...", flush=True)
        done = subprocess.run(download_command(system, python, dest, torch_source, constraint, pins))
        if done.returncode:
            raise SystemExit(f"pip download failed for {system} (its message is above). Check the network, and "
                             f"that every package has a wheel for Python {python} on {system}.")
    if data:
        print(f"data: CIFAR-10 into {out / 'data'} ...", flush=True)
        download_data(out / "data")
    guide = out / "INSTALL.md"
    tmp = guide.with_suffix(".tmp")
    tmp.write_text(install_guide(systems, data))
    tmp.replace(guide)
    print(f"wrote {guide}: the offline install for {', '.join(systems)}")
    return guide


def main(argv: Optional[list[str]] = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="the folder (default: %(default)s)")
    ap.add_argument("--os", action="append", choices=list(PLATFORMS), dest="systems",
                    help="a system to download for (repeatable; default: all)")
    ap.add_argument("--python", help="the learners' Python version, e.g. 3.11 (default: this one's)")
    ap.add_argument("--no-data", action="store_true", help="skip the CIFAR-10 archive")
    ap.add_argument("--torch-source", default=CPU_TORCH_INDEX,
                    help="Linux's CPU PyTorch: an index URL or a folder of wheels (default: %(default)s)")
    ap.add_argument("--constraint", type=Path, help="a pip constraints file, e.g. to pin torch")
    args = ap.parse_args(argv)
    build(args.out, args.systems, args.python, not args.no_data, args.torch_source, args.constraint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
