#!/usr/bin/env bash
# Builds every plugin of this workspace as a WebAssembly component and copies them to a flat
# directory as <name>.wasm (the package name without its `samgeo-` prefix):
#   <out>/geojson.wasm, geotiff.wasm, png.wasm, json.wasm, detections.wasm,
#   size.wasm, foreground.wasm, unique.wasm, template.wasm, template-filter.wasm
#   <out>/testing/misbehave-*.wasm   (sandbox tests; never install these in production)
# With --with-examples it also builds the out-of-tree examples into <out>/examples/.
#
# Environment:
#   PLUGIN_TARGET_DIR  cargo target dir   (default: <repo>/target/plugins)
#   PLUGIN_OUT_DIR     output directory   (default: <repo>/target/plugins/dist)
# Idempotent: rerunning rebuilds what changed and overwrites the copies.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target_dir="${PLUGIN_TARGET_DIR:-$repo/target/plugins}"
out_dir="${PLUGIN_OUT_DIR:-$repo/target/plugins/dist}"
triple=wasm32-wasip2
with_examples=0
for arg in "$@"; do
    case "$arg" in
        --with-examples) with_examples=1 ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    echo "note: rust target $triple may be missing (rustup target add $triple)" >&2
fi

# A component starts with the magic "\0asm" and version/layer bytes 0d 00 01 00
# (a core module would have 01 00 00 00).
is_component() {
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "0061736d0d000100" ]
}

# install <wasm built by cargo> <destination>
install_component() {
    if ! is_component "$1"; then
        echo "error: $1 is not a WebAssembly component" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$2")"
    cp -f "$1" "$2"
    printf '  %-45s %8d bytes\n' "${2#"$out_dir"/}" "$(wc -c < "$2")"
}

echo "building plugins (target dir: $target_dir)"
cargo build --manifest-path "$here/Cargo.toml" --release --target "$triple" \
    --target-dir "$target_dir" --workspace --exclude samgeo-plugin-sdk

echo "components in $out_dir:"
for manifest in "$here"/formatters/*/Cargo.toml "$here"/filters/*/Cargo.toml \
                "$here"/template/Cargo.toml "$here"/template-filter/Cargo.toml "$here"/testing/*/Cargo.toml; do
    package="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n 1)"
    name="${package#samgeo-}"
    built="$target_dir/$triple/release/${package//-/_}.wasm"
    case "$manifest" in
        "$here"/testing/*) dest="$out_dir/testing/$name.wasm" ;;
        *) dest="$out_dir/$name.wasm" ;;
    esac
    install_component "$built" "$dest"
done

if [ "$with_examples" = 1 ]; then
    for dir in "$here"/examples/*/; do
        package="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n 1)"
        cargo build --manifest-path "$dir/Cargo.toml" --release --target "$triple" \
            --target-dir "$target_dir/examples"
        install_component "$target_dir/examples/$triple/release/${package//-/_}.wasm" \
            "$out_dir/examples/${package#samgeo-}.wasm"
    done
fi
