#!/usr/bin/env bash
# Builds everything `make run` and the tests serve: the server binary in
# bin/, and web/dist/ holding the wasm engine, the Go runtime shim that
# matches it, the lfsync JS package, the demo pages, and .gz/.br siblings.
set -euo pipefail
cd "$(dirname "$0")/.."

dist=web/dist
rm -rf "$dist"
mkdir -p "$dist" bin

echo "build: bin/lfsync"
go build -trimpath -o bin/lfsync ./cmd/lfsync

echo "build: $dist/lfsync.wasm"
GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$dist/lfsync.wasm" ./wasm

# wasm_exec.js must come from the Go that built the .wasm (Go >= 1.24 keeps
# it in lib/wasm, older releases in misc/wasm).
goroot=$(go env GOROOT)
shim="$goroot/lib/wasm/wasm_exec.js"
[ -f "$shim" ] || shim="$goroot/misc/wasm/wasm_exec.js"
cp "$shim" "$dist/"

# The npm-style package, then the demo pages beside it.
for f in js/*.js js/*.d.ts js/package.json; do
	[ -f "$f" ] && cp "$f" "$dist/"
done
for f in web/*.html web/*.css web/*.js web/*.svg web/*.ico; do
	[ -f "$f" ] && cp "$f" "$dist/"
done

echo "build: precompressing $dist"
./bin/lfsync precompress "$dist"
