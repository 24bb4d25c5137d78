#!/usr/bin/env bash
# One CUDA GPU, under 8 minutes (timeouts 180 + 180 + 100 s): the `gpu` tests, the benchmark's
# default case and its self-supervised case (benchmarks/simclr-resnet.yaml).
# Writes everything to benchmarks/results/gpu-<date>.{log,json} and gpu-<date>-ssl.json
# (or $OUT when set, as on the device machine of this workplace).
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
mkdir -p "$out"
stamp=$(date +%Y%m%d)
log="$out/gpu-$stamp.log"
export PYTHONUNBUFFERED=1
# The Python of scripts/install.sh's environment (.venv or the active one), else python3.
source scripts/env.sh
py=python3
if [ -x "$KTG_PY" ]; then py=$KTG_PY; fi
{
  echo "== $(date -u)  $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "== gpu tests"
  timeout 180 "$py" -m pytest -q -m gpu -p no:cacheprovider
  echo "== benchmark (default case)"
  timeout 180 "$py" -m ktg_dsl.cli bench benchmarks/ktg3-cifar100.yaml --steps 20 --rounds 3 \
      --warmup 5 --json "$out/gpu-$stamp.json"
  echo "== benchmark (self-supervised case)"
  timeout 100 "$py" -m ktg_dsl.cli bench benchmarks/simclr-resnet.yaml --steps 20 --rounds 3 \
      --warmup 5 --json "$out/gpu-$stamp-ssl.json"
} 2>&1 | tee "$log"
echo "results: $log $out/gpu-$stamp.json $out/gpu-$stamp-ssl.json"
