"""tools/gpu_check.sh: the GPU machine's script, run here on the CPU with tiny sizes (--tiny)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vgg_helpers.settings import settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not settings().data_dir, reason="needs CIFAR-10 on this machine (VGG_DATA_DIR)")
def test_gpu_check_runs_every_benchmark_tiny(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out)}
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--tiny", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    kinds = sorted(json.loads(p.read_text())["kind"] for p in (tmp_path / "r").glob("*.json"))
    assert kinds == ["modern-vgg-test-cpu", "scaling-cpu", "throughput", "time-to-accuracy-smoke"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "r").glob("*.json"))
    assert "gpu check: 0 step(s) failed" in proc.stdout


def test_gpu_check_rejects_unknown_options():
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--fast"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
