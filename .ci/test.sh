#!/usr/bin/env bash
# Runs every test: lint, native (-race, the real server in-process), the
# IndexedDB store in headless Chromium (GOOS=js), the TypeScript type check,
# the end-to-end browser tests, and `make bench` in its smoke mode so the
# instrument cannot rot. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "=== $*"; }

step "dependencies"
bash .ci/deps.sh

step "build"
bash .ci/build.sh

step "lint"
bash .ci/lint.sh

step "native tests (go test -race)"
go test -race -count=1 -timeout 40m ./...

step "browser tests of the wasm packages (headless Chromium)"
if [ -x bin/wasmbrowsertest ]; then
	GOOS=js GOARCH=wasm go test -count=1 -timeout 10m -exec="$PWD/bin/wasmbrowsertest" ./idb/... ./wasm/...
elif [ "${CI:-}" = "true" ]; then
	echo "bin/wasmbrowsertest is missing" >&2; exit 1
else
	echo "skipped: bin/wasmbrowsertest is missing"
fi

step "TypeScript type check of js/index.d.ts"
if [ -x js/node_modules/.bin/tsc ]; then
	(cd js && node_modules/.bin/tsc --noEmit -p test)
elif [ "${CI:-}" = "true" ]; then
	echo "TypeScript is missing" >&2; exit 1
else
	echo "skipped: TypeScript is missing"
fi

step "benchmark instrument, smoke mode (small sizes, writes nothing; make bench is the real run)"
go run ./bench -smoke -md= -json=

step "all tests passed"
