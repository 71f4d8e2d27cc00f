// Package report holds the figures of a `make bench` run and renders them as
// Markdown and JSON, each figure beside its baseline from the same run.
package report

import (
	"time"
)

// Figure is one measured value, with the baseline it is compared with.
type Figure struct {
	Suite    string  `json:"suite"` // "browser" | "server"
	Name     string  `json:"name"`  // "local write p50", "ingest 100 pushers (sqlite)", ...
	Unit     string  `json:"unit"`  // "ms", "events/s", "MB", "KB/conn", ...
	Value    float64 `json:"value"`
	Baseline string  `json:"baseline,omitempty"` // what it is compared with, e.g. "plain IndexedDB, 1 put/tx"
	BaseVal  float64 `json:"baselineValue,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`  // Value / BaseVal
	Better   string  `json:"better"`           // "lower" | "higher"
	Target   string  `json:"target,omitempty"` // e.g. "<= 1.5x baseline", "<= 3 ms"
	Met      *bool   `json:"met,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// Run is one bench run: when, where, and what it measured.
type Run struct {
	Started  time.Time
	Machine  Machine
	Smoke    bool
	Figures  []Figure
	Duration time.Duration
}

// Machine describes the computer a run measured on.
type Machine struct {
	OS, Arch, CPU string
	Cores         int
	MemoryMB      int
	Go, Chromium  string
	Disk          string
}
