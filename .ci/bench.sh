#!/usr/bin/env bash
# Runs the Go benchmarks of the server store and the local query engine.
# The browser suite and baseline ratios are issue 6 (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
go test -run='^$' -bench=. -benchmem -count=1 -timeout 20m ./server/... ./core/... | tee bench/out/go.txt
