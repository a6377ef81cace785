#!/usr/bin/env bash
# Creates (idempotently) the Python environment bench/.venv with CPU-run torch, segment-anything,
# sam2, onnx and onnxruntime 1.31.1: what scripts/export-models needs. With --with-seed, also the
# seed (segment-geospatial[api]) for the benchmarks. SAMGEO_PY_VENV overrides the location.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SAMGEO_PY_VENV:-bench/.venv}
PY=$VENV/bin/python
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
if ! "$PY" -c 'import torch, torchvision, segment_anything, sam2, onnx, onnxruntime' 2>/dev/null; then
  # PyPI's Linux torch wheel is the CUDA build (torch ~540 MB + nvidia-* ~3 GB); it runs on the
  # CPU when no GPU is present. Installed first so that sam2's source build reuses it
  # (--no-build-isolation) instead of downloading torch again into an isolated build env.
  "$PY" -m pip install torch torchvision
  "$PY" -m pip install setuptools wheel
  SAM2_BUILD_CUDA=0 "$PY" -m pip install --no-build-isolation sam2
  "$PY" -m pip install segment-anything onnx onnxscript onnxruntime==1.31.1
fi
if [ "${1:-}" = "--with-seed" ] && ! "$PY" -c 'import samgeo.api' 2>/dev/null; then
  "$PY" -m pip install "segment-geospatial[api]"
fi
