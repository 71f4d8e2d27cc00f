#!/usr/bin/env bash
# gofmt, and go vet natively and for js/wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './web/dist/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# core/integration links the server and SQLite: native only.
GOOS=js GOARCH=wasm go vet $(GOOS=js GOARCH=wasm go list ./core/... ./idb/... ./wasm/... | grep -v /core/integration)
