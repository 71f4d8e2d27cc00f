#!/usr/bin/env bash
# Installs what the tests need when it is missing: Chromium and PostgreSQL
# (apt), the wasm browser test runner (Go module proxy) and TypeScript (npm).
# Under CI=true a component that cannot be installed is an error; on a
# laptop it is a warning and the tests that need it skip.
set -euo pipefail
cd "$(dirname "$0")/.."

warn() { echo "deps: $*" >&2; }
fail() {
	if [ "${CI:-}" = "true" ]; then echo "deps: $*" >&2; exit 1; fi
	warn "$* (tests that need it will skip)"
}

# sudo when we are not root and it is available.
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "$@"
}

chromium_path() {
	for c in "${LFSYNC_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
		[ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
	done
	return 1
}

if ! chromium_path >/dev/null; then
	echo "deps: installing Chromium through apt"
	apt_install chromium fonts-liberation || fail "Chromium is missing and could not be installed"
fi

# The PostgreSQL tests start a throwaway cluster with initdb and pg_ctl
# (server/postgres/pgtest); they need the server binaries, not a running
# service.
postgres_bin() {
	command -v initdb >/dev/null && return 0
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if ! postgres_bin; then
	echo "deps: installing PostgreSQL through apt"
	apt_install postgresql || fail "PostgreSQL is missing and could not be installed"
fi

mkdir -p bin
if [ ! -x bin/wasmbrowsertest ]; then
	echo "deps: installing wasmbrowsertest into bin/"
	# Installed outside our module: it is built against an older chromedp.
	(GOFLAGS= GOBIN="$PWD/bin" go install github.com/agnivade/wasmbrowsertest@v0.11.0) ||
		fail "could not install wasmbrowsertest"
fi

if [ -f js/package.json ] && [ ! -x js/node_modules/.bin/tsc ]; then
	if command -v npm >/dev/null; then
		echo "deps: installing TypeScript for the type check of js/index.d.ts"
		(cd js && npm install --no-save --no-package-lock --no-audit --no-fund typescript@5 >/dev/null) ||
			fail "could not install TypeScript"
	else
		fail "npm is missing: cannot type-check js/index.d.ts"
	fi
fi
