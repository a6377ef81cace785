# syntax=docker/dockerfile:1
# samgeo-api in a container: build stages, then a slim Debian bookworm runtime with GDAL, ONNX
# Runtime (from the PyPI wheel, as scripts/setup does), the server and its WebAssembly plugins.
#
#   docker build -t samgeo-rs .
#   docker run -p 8000:8000 -v /srv/models:/models:ro -v /srv/samgeo/models.toml:/etc/samgeo/models/models.toml:ro samgeo-rs
#
# No model weights are in the image: mount the ONNX exports and a [models...] fragment
# (README.md, "Real models"); deploy/samgeo.container.toml, the image's configuration, includes
# /etc/samgeo/models/*.toml. Models configured but absent answer 503 naming the key to add.

ARG RUST_VERSION=1.95
ARG ORT_VERSION=1.31.1

# --- ONNX Runtime: the shared library from the official wheel (CPU build). -------------------
FROM python:3.11-slim-bookworm AS ort
ARG ORT_VERSION
RUN pip download --no-cache-dir --no-deps --only-binary=:all: -d /tmp/wheel "onnxruntime==${ORT_VERSION}" \
 && python -m zipfile -e /tmp/wheel/onnxruntime-*.whl /tmp/ort \
 && mkdir -p /ort \
 && cp "/tmp/ort/onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" /ort/

# --- Build: the release server and the plugins (wasm32-wasip2 components). -------------------
FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgdal-dev pkg-config nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The web page's map library (OpenLayers) is embedded in the binary at build time.
RUN cd web && npm ci --omit=dev --ignore-scripts --no-audit --no-fund
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p samgeo-host --bin samgeo-api \
 && install -D target/release/samgeo-api /out/samgeo-api
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/plugins/target \
    PLUGIN_TARGET_DIR=/src/plugins/target PLUGIN_OUT_DIR=/out/plugins bash plugins/build.sh \
 && rm -rf /out/plugins/testing

# --- Runtime. ------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
ARG ORT_VERSION
# GDAL 3.6 (the library the server was linked against), CA certificates for /vsicurl/ sources,
# curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgdal32 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 samgeo \
 && useradd --system --uid 10001 --gid samgeo --home-dir /var/lib/samgeo --shell /usr/sbin/nologin samgeo \
 && mkdir -p /var/lib/samgeo /shared /etc/samgeo/models /models \
 && chown samgeo:samgeo /var/lib/samgeo /shared
COPY --from=ort /ort/libonnxruntime.so.${ORT_VERSION} /usr/local/lib/samgeo/libonnxruntime.so.${ORT_VERSION}
COPY --from=build /out/samgeo-api /usr/local/bin/samgeo-api
COPY --from=build /out/plugins /usr/local/lib/samgeo/plugins
COPY deploy/samgeo.container.toml /etc/samgeo/samgeo.toml
ENV ORT_DYLIB_PATH=/usr/local/lib/samgeo/libonnxruntime.so.${ORT_VERSION}
USER samgeo
WORKDIR /var/lib/samgeo
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl --fail --silent --max-time 2 http://127.0.0.1:8000/health >/dev/null || exit 1
# SIGTERM lets requests in flight finish (server.shutdown_grace_secs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/samgeo-api", "--config", "/etc/samgeo/samgeo.toml"]
