#!/bin/sh
# Builds the publishable lfsync package into a directory (default js/dist):
# the wasm engine, the wasm_exec.js of the Go that built it, and the JS
# package files. `cd js/dist && npm pack` then makes the tarball.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/js/dist"}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$out/lfsync.wasm" ./wasm
goroot=$(go env GOROOT)
shim="$goroot/lib/wasm/wasm_exec.js"
[ -f "$shim" ] || shim="$goroot/misc/wasm/wasm_exec.js"
cp "$shim" "$out/wasm_exec.js"
cp js/index.js js/index.d.ts js/lfsync.global.js js/lfsync.global.d.ts js/package.json js/README.md "$out/"
echo "built $out: lfsync.wasm $(wc -c <"$out/lfsync.wasm") bytes, $(gzip -9c "$out/lfsync.wasm" | wc -c) gzipped"
