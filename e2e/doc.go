// Package e2e holds lfsync's end-to-end browser tests: headless Chromium,
// driven by chromedp, loads the demo pages (web/) built with the real wasm
// engine and syncs through the real server started in-process.
//
// Run them with `go test -count=1 ./e2e/`. TestMain builds the wasm and a
// temporary web root itself, so no make step is needed. Environment:
//
//	LFSYNC_CHROMIUM   path of the Chromium binary (default /usr/bin/chromium,
//	                  then chromium or google-chrome on PATH)
//	LFSYNC_WEB_DIST   serve this prebuilt web root (e.g. web/dist after
//	                  make build; relative to the module root) instead of
//	                  building one
//	CI=true           a missing Chromium fails the tests instead of skipping
//
// Screenshots go to e2e/artifacts/.
package e2e
