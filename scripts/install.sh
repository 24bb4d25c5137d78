#!/usr/bin/env bash
# Install everything ktg needs on a fresh Debian/Ubuntu machine: Graphviz (apt), PyTorch and
# ktg with its test tools (pip). Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v dot >/dev/null 2>&1; then
    echo "== installing Graphviz (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
fi

if ! "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
    echo "== installing PyTorch"
    "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1
fi

echo "== installing ktg (editable) with its dev tools"
"$PY" -m pip install -q -e '.[dev]'
echo "== ready: $(ktg --version), $(dot -V 2>&1)"
