# lfsync — the two commands a new machine needs are `make run` and `make test`.
# Recipes live in .ci/*.sh; this file only names them.

ADDR ?= :8080
DB   ?= ./data/lfsync.db

.PHONY: run test build bench lint clean

## run: build everything, start the server on SQLite under ./data (open mode, demo only) and serve the demo at http://localhost:8080
run: build
	./bin/lfsync serve --open --addr $(ADDR) --db $(DB) --web web/dist

## test: install what the tests need (Chromium, wasmbrowsertest, TypeScript) and run every test
test:
	bash .ci/test.sh

## build: the server binary (bin/lfsync) and the browser bundle (web/dist, precompressed)
build:
	bash .ci/build.sh

## bench: benchmarks against plain-JS and plain-Go baselines (docs/benchmarks.md)
bench:
	bash .ci/bench.sh

## lint: gofmt, go vet natively and for GOOS=js GOARCH=wasm
lint:
	bash .ci/lint.sh

## clean: remove build outputs and test artifacts
clean:
	rm -rf bin web/dist e2e/artifacts
