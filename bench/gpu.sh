#!/usr/bin/env bash
# GPU benchmark of samgeo-rs alone: cold, warm and automatic predict with
# runtime.execution_providers = ["cuda", "cpu"], on the bench's random-weight SAM ViT-B
# (bench/make_models.py). For a machine with an NVIDIA GPU, CUDA 13 and cuDNN 9 (the pip
# wheels below bring their own CUDA/cuDNN libraries):
#
#   bench/gpu.sh [--fast-decoder] [more bench/run.py arguments]
#
# 1. bench/.venv (bench/venv.sh: torch, segment-anything, onnx) and the models (make_models.py);
# 2. bench/.venv-gpu with onnxruntime-gpu 1.31.1 (+ the nvidia-* CUDA 13 / cuDNN 9 wheels): the
#    server loads its libonnxruntime.so.1.31.1 (ORT_DYLIB_PATH), which finds
#    libonnxruntime_providers_cuda.so next to it;
# 3. the release server and the plugins;
# 4. bench/run.py --only ours --providers cuda,cpu: cold, warm (geojson, geotiff, box) and
#    automatic points_per_side 16 and 32, results in bench/out/results_gpu.md;
# 5. fails when the server's log does not show the CUDA provider in use (a silent CPU fallback
#    would otherwise pass for a GPU number).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
bash bench/venv.sh
if [ ! -f bench/out/models/.done ]; then
  bench/.venv/bin/python bench/make_models.py --out bench/out/models
fi
GPU_VENV=${SAMGEO_GPU_VENV:-bench/.venv-gpu}
if [ ! -x "$GPU_VENV/bin/python" ]; then
  python3 -m venv "$GPU_VENV"
fi
if ! "$GPU_VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  "$GPU_VENV/bin/pip" install -q "onnxruntime-gpu==1.31.1" "nvidia-cudnn-cu13" "nvidia-cublas" \
    "nvidia-cuda-runtime" "nvidia-cufft" "nvidia-curand" "nvidia-cuda-nvrtc" || \
  "$GPU_VENV/bin/pip" install -q "onnxruntime-gpu==1.31.1"
fi
capi=$("$GPU_VENV/bin/python" -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')
export ORT_DYLIB_PATH="$capi/libonnxruntime.so.1.31.1"
[ -f "$ORT_DYLIB_PATH" ] || { echo "no $ORT_DYLIB_PATH in the onnxruntime-gpu wheel" >&2; exit 1; }
[ -f "$capi/libonnxruntime_providers_cuda.so" ] || { echo "the wheel has no CUDA provider" >&2; exit 1; }
# The CUDA/cuDNN libraries of the nvidia-* wheels (both venvs), for the provider to dlopen.
libs=$(find "$GPU_VENV" bench/.venv -path '*site-packages/nvidia/*' -name 'lib' -type d 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
"$GPU_VENV/bin/python" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())'

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p samgeo-host
if [ ! -f "$CARGO_TARGET_DIR/plugins/dist/geojson.wasm" ] && [ -z "${SAMGEO_PLUGIN_DIR:-}" ]; then
  PLUGIN_OUT_DIR="$CARGO_TARGET_DIR/plugins/dist" bash plugins/build.sh
fi
export SAMGEO_REAL_DATA="${SAMGEO_REAL_DATA:-/work/shared/data/rasters}"
bench/.venv/bin/python -u bench/run.py --only ours --providers cuda,cpu --skip conc,big,sam2,parity,floor \
  --tag _gpu "$@" 2>&1 | tee bench/out/run_gpu.log
if ! grep 'session ready' bench/out/ours.log | grep -q cuda; then
  echo "the server did not use the CUDA execution provider (see bench/out/ours.log):" >&2
  grep -i 'execution provider\|provider' bench/out/ours.log | head -5 >&2
  exit 1
fi
echo "CUDA execution provider in use; results: bench/out/results_gpu.md"
