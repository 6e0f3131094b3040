"""The notebooks' setup cell, run outside Colab in a fresh virtual environment that looks like a Colab runtime.

Colab has torch, torchvision, numpy, matplotlib, tqdm and pillow, but neither torchinfo nor vgg_helpers. A real
copy of torch costs gigabytes, so the fresh environment sees the packages of this project's ``.venv`` through a
"shim" folder of symbolic links, listed in a ``.pth`` file, leaving out vgg_helpers (and its editable-install
finder), torchinfo, pip and setuptools. The setup cell then runs with a fake ``google.colab`` module (the
"am I in Colab" branch) and its repository address replaced by a clean copy of this repository; afterwards vgg_helpers
must be importable from the fresh environment and torch must be the very same one (not reinstalled).
"""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from tools import sync_notebooks

ROOT = Path(__file__).resolve().parents[1]

# Entries of the project's site-packages the fresh environment must NOT see.
HIDDEN_PREFIXES = ("vgg_helpers", "vgg-helpers", "vgg_helpers-", "__editable__", "torchinfo", "pip", "setuptools",
                   "_distutils_hack", "pkg_resources", "wheel", "__pycache__")
PROBE = """
import importlib.util, json, sys
import torch
spec = importlib.util.find_spec("vgg_helpers")
print("PROBE" + json.dumps({"torch": torch.__version__, "torch_file": torch.__file__,
    "vgg_helpers": spec.origin if spec else None, "torchinfo": importlib.util.find_spec("torchinfo") is not None,
    "prefix": sys.prefix}))
"""
# Copying the repository keeps pip's in-tree build (build/, *.egg-info) out of the shared working tree.
_TOP_LEVEL = {".git", ".venv", "_build", "notebooks", "student", "runs", "data", "wheelhouse", "book", "tests",
              "build"}          # folders of the repository that the package does not need (top level only:
#                                 vgg_helpers/book/ is the package's own harness and must be copied)
_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__", ".ipynb_checkpoints")


def COPY_IGNORE(folder: str, names: list[str]) -> set[str]:
    """What the copy of the repository leaves out (``shutil.copytree``'s ignore function)."""
    top = {n for n in names if n in _TOP_LEVEL} if Path(folder).resolve() == ROOT.resolve() else set()
    return top | set(_ANYWHERE(folder, names))


def make_shim(site_packages: Path, shim: Path) -> None:
    """Fill ``shim`` with symbolic links to every entry of ``site_packages`` except the hidden ones.

    Args:
        site_packages: the project's site-packages folder.
        shim: an empty folder to fill.
    """
    shim.mkdir()
    for entry in site_packages.iterdir():
        name = entry.name.lower()
        if name.endswith(".pth") or name.startswith(HIDDEN_PREFIXES):
            continue
        (shim / entry.name).symlink_to(entry)


def _probe(python: Path, cwd: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([str(python), "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


def test_hidden_prefixes_cover_the_editable_install():
    """The project's own environment reaches vgg_helpers only through entries the shim leaves out."""
    site = Path(sysconfig.get_paths()["purelib"])
    shown = [p.name for p in site.iterdir() if "vgg" in p.name.lower() and not p.name.lower().startswith(HIDDEN_PREFIXES)]
    assert not shown, f"these entries would leak vgg_helpers into the fresh environment: {shown}"


def test_setup_cell_installs_vgg_helpers_and_keeps_torch(tmp_path: Path):
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "torch").is_dir():
        pytest.skip(f"torch is not installed in {site}")
    env_dir, shim, source = tmp_path / "colab-like-venv", tmp_path / "shim", tmp_path / "source"
    venv.EnvBuilder(with_pip=True, symlinks=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    if not python.exists():
        python = env_dir / "Scripts" / "python.exe"
    fresh_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    make_shim(site, shim)
    (fresh_site / "colab_preinstalled.pth").write_text(f"{shim}\n")
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE)

    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env.update(PYTHONNOUSERSITE="1", PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", MPLBACKEND="Agg",
               )
    work = tmp_path / "work"
    work.mkdir()

    before = _probe(python, work, env)
    assert before["prefix"] == str(env_dir) or Path(before["prefix"]).resolve() == env_dir.resolve()
    assert before["vgg_helpers"] is None, f"vgg_helpers leaks into the fresh environment: {before['vgg_helpers']}"
    assert before["torchinfo"] is False

    cell = work / "setup_cell.py"
    # Colab, simulated: a google.colab module, and the book's repository replaced by a clean local copy.
    colab_cell = FAKE_COLAB + sync_notebooks.setup_source().replace(sync_notebooks.book_url(), str(source))
    assert colab_cell != FAKE_COLAB + sync_notebooks.setup_source(), "the setup cell no longer installs BOOK"
    cell.write_text(colab_cell)
    run = subprocess.run([str(python), str(cell)], cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"the setup cell failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    assert f"torch {before['torch']}" in run.stdout, run.stdout  # describe_runtime() ran, with the same torch

    after = _probe(python, work, env)
    assert after["vgg_helpers"] and Path(after["vgg_helpers"]).resolve().is_relative_to(fresh_site.resolve()), \
        f"vgg_helpers should now be installed in the fresh environment, found at {after['vgg_helpers']}"
    assert after["torchinfo"] is True
    assert (after["torch"], after["torch_file"]) == (before["torch"], before["torch_file"]), "torch was reinstalled"
    assert not list(fresh_site.glob("torch")) and not list(fresh_site.glob("torch-*.dist-info")), \
        "pip installed a second torch into the fresh environment"

    # The installed package is whole: the exercises, the book's harness and its stored runs came with it.
    shipped = subprocess.run([str(python), "-c", "from vgg_helpers.exercises import check_tta; "
                              "from vgg_helpers.book.store import stored_runs; print('STORED', len(stored_runs()))"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=120)
    count = re.search(r"STORED (\d+)", shipped.stdout)
    assert shipped.returncode == 0 and count and int(count.group(1)) >= 100, shipped.stderr[-2000:] + shipped.stdout

    # Running the cell again (a learner re-running it) installs nothing and still works.
    again = subprocess.run([str(python), str(cell)], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "torch" in again.stdout, again.stderr[-2000:]

    # A Colab GPU runtime (a T4: compute capability 7.5, no native bfloat16), simulated: the setup cell says
    # that the measured cpu budget is used, and mixed precision would be float16 (with a gradient scaler).
    gpu = work / "colab_t4.py"
    gpu.write_text(FAKE_COLAB_T4 + colab_cell + """
from vgg_helpers.runtime import autocast_dtype, current_budget
print("BUDGET", current_budget(SETTINGS.budget), "AMP", autocast_dtype("cuda"))
""")
    colab_env = {k: v for k, v in env.items() if k != "VGG_BOOK_BUDGET"}    # Colab sets no budget
    t4 = subprocess.run([str(python), str(gpu)], cwd=work, env=colab_env, capture_output=True, text=True,
                        timeout=120)
    assert t4.returncode == 0, t4.stderr[-2000:]
    assert "device: cuda (Tesla T4)" in t4.stdout and "measured cpu budget" in t4.stdout, t4.stdout
    assert "BUDGET cpu AMP torch.float16" in t4.stdout, t4.stdout


FAKE_COLAB = """import sys, types
sys.modules["google"] = types.ModuleType("google")
sys.modules["google.colab"] = types.ModuleType("google.colab")
"""

FAKE_COLAB_T4 = """import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
torch.cuda.get_device_name = lambda device=None: "Tesla T4"
torch.cuda.get_device_capability = lambda device=None: (7, 5)
torch.cuda.is_bf16_supported = lambda *a, **k: True
"""
