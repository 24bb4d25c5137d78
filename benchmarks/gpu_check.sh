#!/usr/bin/env bash
# One CUDA GPU, under 8 minutes: the `gpu` tests and the benchmark's default case.
# Writes everything to benchmarks/results/gpu-<date>.{log,json} (or $OUT when set, as on the
# device machine of this workplace).
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
mkdir -p "$out"
stamp=$(date +%Y%m%d)
log="$out/gpu-$stamp.log"
export PYTHONUNBUFFERED=1
{
  echo "== $(date -u)  $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "== gpu tests"
  timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider
  echo "== benchmark (default case)"
  timeout 300 python3 -m ktg_dsl.cli bench benchmarks/ktg3-cifar100.yaml --steps 20 --rounds 3 \
      --warmup 5 --json "$out/gpu-$stamp.json"
} 2>&1 | tee "$log"
echo "results: $log $out/gpu-$stamp.json"
