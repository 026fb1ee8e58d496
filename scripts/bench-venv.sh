#!/usr/bin/env bash
# A Python venv with onnxruntime 1.31.0, the peer that benches/detect.rs compares against.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .local/bench-venv/bin/python ]; then
  python3 -m venv .local/bench-venv
  .local/bench-venv/bin/pip install --quiet onnxruntime==1.31.0 numpy
fi
