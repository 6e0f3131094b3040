#!/usr/bin/env bash
# The GPU check: on a machine with a GPU, record the gpu budget of the benchmarks (the modern VGG's accuracy and
# seconds over three seeds, throughput, images per second of chapter 9's torchrun + DDP training script on one GPU
# and on all of them when several, and the time to accuracy). The most wanted first; the limits add up to 560 s.
#
#   bash tools/gpu_check.sh                 # on the GPU machine, from anywhere; results -> bench/results/
#   bash tools/gpu_check.sh --tiny --out D  # the same steps on the CPU with tiny sizes (tests/test_gpu_check.py)
#
# Data: VGG_DATA_DIR if set; else a packed copy at .gpu-data/cifar10-jpeg.tar.xz (made on the development machine
# by `tools/gpu_check.sh --pack`, since the GPU machine has no network) is unpacked; else CIFAR-10 is downloaded.
# Every step runs under its own time limit and a failed step does not stop the others; the exit status is the
# number of failed steps. Results are also copied to $OUT when that is set (the device tool's output folder).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
OUT_DIR=bench/results
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1 ;;
    --out) OUT_DIR=$2; shift ;;
    --pack)
      src=${VGG_DATA_DIR:-../shared/data/cifar10-jpeg}
      mkdir -p .gpu-data && tar -C "$(dirname "$src")" -cf - "$(basename "$src")" | xz -T2 -6 > .gpu-data/cifar10-jpeg.tar.xz
      grep -qx '/.gpu-data/' .git/info/exclude 2>/dev/null || echo '/.gpu-data/' >> .git/info/exclude
      ls -l .gpu-data/cifar10-jpeg.tar.xz; exit 0 ;;
    *) echo "usage: tools/gpu_check.sh [--tiny] [--out DIR] | --pack" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
STAMP=$(mktemp)        # results written after this file are this run's
if [ -z "${VGG_DATA_DIR:-}" ] && [ -f .gpu-data/cifar10-jpeg.tar.xz ]; then
  mkdir -p /tmp/vgg-data && tar -C /tmp/vgg-data -xJf .gpu-data/cifar10-jpeg.tar.xz && export VGG_DATA_DIR=/tmp/vgg-data/cifar10-jpeg
fi
failed=0
step() {   # step SECONDS NAME COMMAND...: run one step under a time limit, log it, count a failure
  local limit=$1 name=$2; shift 2
  echo "=== $name (limit ${limit} s) ==="
  local t0=$SECONDS
  timeout "$limit" "$@"; local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - t0)) s ==="
  [ $rc -eq 0 ] || failed=$((failed + 1))
}
if [ $TINY -eq 1 ]; then
  step 300 modern-vgg "$PY" -m bench.modern_vgg --arch modern-128 --epochs 1 --seeds 0 --train-size 512 \
    --test-size 256 --set batch_size=128 whiten_images=256 --out "$OUT_DIR"
  step 300 throughput "$PY" -m bench.throughput --device cpu --width 0.125 --batch-size 16 --steps 1 --warmup 1 \
    --rounds 1 --num-workers 0 --no-imagefolder --out "$OUT_DIR"
  step 300 time-to-accuracy "$PY" -m bench.time_to_accuracy --budget smoke --epochs 1 --train-size 256 \
    --test-size 200 --out "$OUT_DIR"
  step 300 scaling "$PY" -m bench.scaling --device cpu --budget smoke --steps 4 --rounds 1 --max-processes 1 \
    --out "$OUT_DIR"
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| bf16 native',
torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0))"
  # the gpu target of the modern VGG: >= 94% test accuracy in <= 60 s (airbench94's recipe, 64/256/256 widths)
  step 180 modern-vgg "$PY" -m bench.modern_vgg --arch modern-256 --epochs 10 --seeds 0 1 2 --eval-every-epoch \
    --out "$OUT_DIR"
  step 120 throughput "$PY" -m bench.throughput --device cuda --variants --steps 40 --warmup 5 --rounds 2 \
    --num-workers 4 --out "$OUT_DIR"
  step 60 scaling "$PY" -m bench.scaling --device cuda --steps 30 --rounds 1 --out "$OUT_DIR"
  step 200 time-to-accuracy "$PY" -m bench.time_to_accuracy --budget gpu --out "$OUT_DIR"
fi
if [ -n "${OUT:-}" ]; then   # only this run's files: the device tool brings back at most 8
  find "$OUT_DIR" -maxdepth 1 -name '*.json' -newer "$STAMP" -exec cp {} "$OUT"/ \;
fi
rm -f "$STAMP"
echo "gpu check: $failed step(s) failed; results in $OUT_DIR"
exit $failed
