#!/usr/bin/env bash
# Sets up the benchmark environment (idempotent): bench/.venv with CPU-run torch, the seed
# (segment-geospatial[api]), segment-anything, sam2, onnx and onnxruntime 1.31.1; then builds
# the random-weight models (bench/make_models.py) into bench/out/models.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=bench/.venv
PY=$VENV/bin/python
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
if ! "$PY" -c 'import torch, segment_anything, sam2, samgeo.api, onnx, onnxruntime' 2>/dev/null; then
  # PyPI's Linux torch wheel is the CUDA build (torch ~540 MB + nvidia-* ~3 GB); it runs on the
  # CPU when no GPU is present. Installed first so that sam2's source build reuses it
  # (--no-build-isolation) instead of downloading torch again into an isolated build env.
  "$PY" -m pip install torch torchvision
  "$PY" -m pip install setuptools wheel
  SAM2_BUILD_CUDA=0 "$PY" -m pip install --no-build-isolation sam2
  "$PY" -m pip install segment-anything "segment-geospatial[api]" onnx onnxscript onnxruntime==1.31.1
fi
if [ ! -f bench/out/models/.done ]; then
  "$PY" bench/make_models.py --out bench/out/models
fi
