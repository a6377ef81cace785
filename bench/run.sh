#!/usr/bin/env bash
# One command: set up the bench venv and models (idempotent), build the release server and the
# plugins if missing, then run bench/run.py (arguments pass through). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p samgeo-host
if [ ! -f "$CARGO_TARGET_DIR/plugins/dist/geojson.wasm" ] && [ -z "${SAMGEO_PLUGIN_DIR:-}" ]; then
  PLUGIN_OUT_DIR="$CARGO_TARGET_DIR/plugins/dist" bash plugins/build.sh
fi
export SAMGEO_REAL_DATA="${SAMGEO_REAL_DATA:-/work/shared/data/rasters}"
bench/.venv/bin/python -u bench/run.py "$@" 2>&1 | tee bench/out/run.log
