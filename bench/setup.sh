#!/usr/bin/env bash
# Sets up the benchmark environment (idempotent): bench/.venv (bench/venv.sh: torch,
# segment-anything, sam2, onnx, onnxruntime 1.31.1, and the seed segment-geospatial[api]); then
# builds the random-weight models (bench/make_models.py) into bench/out/models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/venv.sh --with-seed
if [ ! -f bench/out/models/.done ]; then
  bench/.venv/bin/python bench/make_models.py --out bench/out/models
fi
