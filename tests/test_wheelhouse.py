"""The workshop's wheelhouse (tools/wheelhouse.py, ``make wheelhouse``): wheels for Linux, macOS and Windows and the
data in one folder, and an offline install per system that ends with the learner check.

One test builds the Linux wheelhouse for real (from the package index) and installs it offline in a fresh venv,
then runs the learner check, and runs it again with one package removed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tools import wheelhouse

ROOT = Path(__file__).resolve().parents[1]


def test_each_system_gets_binary_wheels_for_the_learners_python():
    for system, tag in (("linux", "manylinux_2_28_x86_64"), ("macos", "macosx_11_0_arm64"),
                        ("windows", "win_amd64")):
        cmd = wheelhouse.download_command(system, "3.12", Path("/w") / system)
        assert cmd[1:4] == ["-m", "pip", "download"] and "--only-binary=:all:" in cmd
        assert ["--python-version", "3.12"] == cmd[cmd.index("--python-version"):][:2]
        assert ["--abi", "cp312"] == cmd[cmd.index("--abi"):][:2] and tag in cmd
        assert cmd[-4:] == ["-r", str(ROOT / "requirements.txt"), "jupyterlab", "setuptools>=77"]
        # the CPU build of torch: PyTorch's CPU index on Linux only (PyPI's Windows and macOS wheels are CPU builds)
        assert ("--extra-index-url" in cmd) == (system == "linux")
    linux = wheelhouse.download_command("linux", "3.11", Path("w"))
    assert linux[linux.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    folder = wheelhouse.download_command("linux", "3.11", Path("w"), "/media/usb/torch-cpu", Path("c.txt"))
    assert ["--find-links", "/media/usb/torch-cpu"] == folder[folder.index("--find-links"):][:2]
    assert ["--constraint", "c.txt"] == folder[folder.index("--constraint"):][:2]
    assert "--extra-index-url" not in wheelhouse.download_command("linux", "3.11", Path("w"), None)


def test_a_wrong_system_or_python_version_is_refused():
    with pytest.raises(ValueError, match="system must be one of linux, macos, windows; got 'mac'"):
        wheelhouse.download_command("mac", "3.11", Path("w"))
    for bad in ("3", "3.11.7", "three.eleven"):
        with pytest.raises(ValueError, match="python must be a version like '3.11'"):
            wheelhouse.download_command("linux", bad, Path("w"))
    with pytest.raises(ValueError, match="system must be one of"):                 # resolving checks them too
        wheelhouse.resolve_command("mac", "3.11", Path("p"), Path("e"))
    with pytest.raises(ValueError, match="python must be a version like '3.11'"):
        wheelhouse.resolve_command("windows", "3", Path("p"), Path("e"))


def test_the_offline_install_per_system_ends_with_the_learner_check():
    for system in wheelhouse.PLATFORMS:
        lines = wheelhouse.install_commands(system)
        assert all("--no-index --find-links" in line for line in lines[1:3])
        assert "jupyterlab" in lines[1] and "--no-deps -e ." in lines[2]
        assert lines[-1].endswith("-m vgg_helpers.install_check")
    assert wheelhouse.install_commands("windows")[0] == "py -3 -m venv .venv"
    assert r"--find-links wheelhouse\windows" in wheelhouse.install_commands("windows")[1]
    assert wheelhouse.install_commands("macos")[1].startswith(".venv/bin/python -m pip install")


def test_another_system_is_resolved_for_itself_then_downloaded_as_pinned():
    pins, extras = Path("w/pins.txt"), Path("w/extras.in")
    for system, target in wheelhouse.UV_PLATFORMS.items():
        cmd = wheelhouse.resolve_command(system, "3.12", pins, extras)
        assert cmd[1:5] == ["-m", "uv", "pip", "compile"] and ["--python-platform", target] == \
            cmd[cmd.index("--python-platform"):][:2] and str(extras) in cmd and str(pins) in cmd
        assert ("--index-strategy" in cmd) == (system == "linux")     # torch's +cpu build from the CPU index
        down = wheelhouse.download_command(system, "3.12", Path("w"), pins=pins)
        assert down[-3:] == ["--no-deps", "-r", str(pins)]
        assert "jupyterlab" not in down                               # the pins already hold everything


def test_build_writes_the_guide_and_stops_on_a_failed_download(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(wheelhouse.subprocess, "run", fake_run)
    monkeypatch.setattr(wheelhouse, "host_system", lambda: "linux")
    guide = wheelhouse.build(tmp_path, python="3.11", data=False)
    text = guide.read_text()
    tools = [(c[2], c[c.index("--dest") + 1] if "--dest" in c else c[c.index("--python-platform") + 1]) for c in calls]
    assert tools == [("pip", str(tmp_path / "linux")),                     # this machine's system: pip resolves
                     ("uv", "aarch64-apple-darwin"), ("pip", str(tmp_path / "macos")),
                     ("uv", "x86_64-pc-windows-msvc"), ("pip", str(tmp_path / "windows"))]
    assert (tmp_path / "windows" / "extras.in").read_text().split() == list(wheelhouse.LEARNER_EXTRAS)
    assert "## Linux (x86-64)" in text and "## macOS 14 or newer (Apple silicon)" in text and "## Windows" in text
    assert "vgg_helpers.install_check" in text and "cifar-10" not in text and not list(tmp_path.glob("*.tmp"))
    monkeypatch.setattr(wheelhouse.subprocess, "run", lambda cmd, *a, **k: subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(SystemExit, match="uv could not resolve the packages for windows"):
        wheelhouse.build(tmp_path, ["windows"], python="3.11", data=False)
    with pytest.raises(SystemExit, match="pip download failed for linux .* Python 3.11 on linux"):
        wheelhouse.build(tmp_path, ["linux"], python="3.11", data=False)
    assert guide.read_text() == text                  # the guide of the last good build is left as it was


def test_windows_and_macos_resolve_their_own_packages(tmp_path):
    """Resolved by uv for the target (the package index's metadata only): Windows gets its own packages and no
    CUDA libraries, a Mac its torch build; pip, run here, would have asked both for Linux's CUDA libraries."""
    extras = tmp_path / "extras.in"
    extras.write_text("\n".join(wheelhouse.LEARNER_EXTRAS) + "\n")
    env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": f"{wheelhouse.MACOS}.0"}
    for system, wanted in (("windows", {"torch", "torchvision", "colorama", "pywinpty", "jupyterlab"}),
                           ("macos", {"torch", "torchvision", "numpy", "jupyterlab", "appnope"})):
        pins = tmp_path / f"{system}.txt"
        done = subprocess.run(wheelhouse.resolve_command(system, "3.11", pins, extras), env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        names = {line.split("==")[0].lower() for line in pins.read_text().splitlines() if "==" in line}
        assert wanted <= names and not {n for n in names if n.startswith(("nvidia", "triton", "cuda"))}, names


def test_make_wheelhouse_target_and_the_guide_use_the_tool():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^wheelhouse: .*\n\t\$\(PY\) tools/wheelhouse\.py", makefile, re.M)
    assert "wheelhouse" in re.search(r"^\.PHONY:.*$", makefile, re.M).group(0)
    guide = (ROOT / "book" / "instructor-guide.md").read_text()
    assert "make wheelhouse" in guide
    for system in wheelhouse.PLATFORMS:
        for line in wheelhouse.install_commands(system):
            assert line in guide, f"the guide's offline install for {system} lacks: {line}"
    assert "/wheelhouse/" in (ROOT / ".gitignore").read_text().split()


# the wheelhouse test's peak use of disk, with some room: measured 8.7 GB at most on 2026-12-07 (PyPI's torch
# build with its CUDA libraries, the only one this machine has: wheels and the venv they install into)
BIG_TMP_GB = 10


def _torch_source() -> tuple[str | None, list[str]]:
    """Where the wheelhouse's torch and torchvision come from here, and the constraints that go with it.

    PyTorch's CPU index when it answers (what ``make wheelhouse`` uses); else a folder pip is configured with that
    holds CPU builds of both; else the build pip installs by default, pinned to the versions this environment runs
    (a machine whose only copy of torch is a local mirror of PyPI's build: the install path is the same, only the
    wheels are bigger).
    """
    try:
        urllib.request.urlopen(wheelhouse.CPU_TORCH_INDEX + "/torch/", timeout=5).close()
        return wheelhouse.CPU_TORCH_INDEX, []
    except OSError:
        pass
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    folders = re.findall(r"find-links='([^']+)'", config) + os.environ.get("PIP_FIND_LINKS", "").split()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in map(Path, folders):
        torch = sorted(folder.glob(f"torch-*+cpu-{tag}-*linux*_x86_64.whl"))
        vision = sorted(folder.glob(f"torchvision-*+cpu-{tag}-*linux*_x86_64.whl"))
        if torch and vision:
            return str(folder), [f"torch=={torch[-1].name.split('-')[1]}",
                                 f"torchvision=={vision[-1].name.split('-')[1]}"]
    import torch
    import torchvision
    return None, [f"torch=={torch.__version__.split('+')[0]}", f"torchvision=={torchvision.__version__.split('+')[0]}"]


@pytest.fixture
def big_tmp(tmp_path):
    """``tmp_path``, emptied after the test: the wheelhouse and the venv hold several GB. Too little free space
    fails here with what to do, not halfway through pip with ``No space left on device``."""
    free = shutil.disk_usage(tmp_path).free / 2**30
    assert free >= BIG_TMP_GB, (
        f"the offline-install test needs at least {BIG_TMP_GB} GB free where pytest keeps its temporary files "
        f"({tmp_path.parent}); {free:.1f} GB are free. Free some space (old fresh clones, /tmp), or give pytest a "
        "folder on a larger disk: pytest --basetemp=/big/disk/pytest-tmp")
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_linux_wheelhouse_installs_offline_and_the_learner_check_passes(big_tmp):
    tmp_path = big_tmp
    torch_source, pins = _torch_source()
    constraint = tmp_path / "constraint.txt"
    constraint.write_text("\n".join(pins) + "\n")
    wheelhouse.build(tmp_path / "wh", ["linux"], data=False, torch_source=torch_source, constraint=constraint)
    names = {p.name.split("-")[0].lower() for p in (tmp_path / "wh" / "linux").glob("*.whl")}
    assert {"torch", "torchvision", "jupyterlab", "setuptools", "numpy", "torchinfo"} <= names
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1",   # nothing but the wheelhouse: no index, no config
               PIP_NO_COMPILE="1")                              # (and no .pyc files: the same install, faster)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for line in wheelhouse.install_commands("linux", str(tmp_path / "wh"))[1:3]:
        cmd = line.replace(".venv/bin/python", str(venv / "bin" / "python")).split()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    env["VGG_DATA_DIR"] = os.environ.get("VGG_DATA_DIR", "")
    check = [str(venv / "bin" / "python"), "-m", "vgg_helpers.install_check"]
    ok = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "PASS  ready for the book" in ok.stdout, ok.stdout + ok.stderr
    assert subprocess.run([str(venv / "bin" / "jupyter"), "lab", "--version"], capture_output=True).returncode == 0
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "torchinfo"], check=True,
                   env=env)
    missing = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and re.search(r"FAIL\s+imports\s+cannot import torchinfo", missing.stdout), \
        missing.stdout


def test_the_lean_learner_install_is_the_same_on_the_setup_page_and_in_the_guide():
    lines = [".venv/bin/python -m pip install torch torchvision --index-url " + wheelhouse.CPU_TORCH_INDEX,
             ".venv/bin/python -m pip install -r requirements.txt jupyterlab",
             ".venv/bin/python -m pip install --no-deps -e .", ".venv/bin/python -m vgg_helpers.install_check"]
    for page in ("setup.md", "instructor-guide.md"):
        text = (ROOT / "book" / page).read_text()
        assert all(line in text for line in lines), page
        assert "requirements-dev.txt" not in text.split("learner install")[1][:900], f"{page}: not the lean one"


def test_the_data_is_cifar10s_archive_checked_by_its_md5(tmp_path, monkeypatch):
    import torchvision.datasets.utils as utils
    from torchvision.datasets import CIFAR10

    seen = []
    monkeypatch.setattr(utils, "download_url", lambda url, root, filename, md5: seen.append((url, root, filename, md5)))
    path = wheelhouse.download_data(tmp_path / "data")
    assert seen == [(CIFAR10.url, str(tmp_path / "data"), "cifar-10-python.tar.gz", CIFAR10.tgz_md5)]
    assert path == tmp_path / "data" / "cifar-10-python.tar.gz"
    assert "## The data" in wheelhouse.install_guide(["linux"], data=True)
