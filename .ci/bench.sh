#!/usr/bin/env bash
# make bench: the browser suite (headless Chromium) and the server suite, each
# figure beside its plain-JS or plain-Go baseline of the same run. Writes
# docs/benchmarks.md (between its bench markers) and docs/benchmarks.json.
# BENCH_FLAGS="-smoke" for the short mode; "-postgres off" skips PostgreSQL.
# Extra arguments go to the instrument: bash .ci/bench.sh -suite server
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/deps.sh  # Chromium and PostgreSQL, as for the tests
bash .ci/build.sh # web/dist: the wasm and the JS package the browser suite loads
# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
go run ./bench ${BENCH_FLAGS:-} "$@"
