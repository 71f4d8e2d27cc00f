package report_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lfsync/lfsync/bench/report"
)

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    report.Figure
		met  string // "yes", "no", "" (nil)
	}{
		{"ratio within", report.Figure{Value: 1.2, BaseVal: 1, Target: "<= 1.5x baseline"}, "yes"},
		{"ratio beyond", report.Figure{Value: 2, BaseVal: 1, Target: "<= 1.5x baseline"}, "no"},
		{"throughput ratio", report.Figure{Value: 6000, BaseVal: 10000, Target: ">= 0.7x baseline"}, "no"},
		{"unicode", report.Figure{Value: 8000, BaseVal: 10000, Target: "≥ 0.7×"}, "yes"},
		{"absolute", report.Figure{Value: 2.5, Unit: "ms", Target: "<= 3 ms"}, "yes"},
		{"absolute miss", report.Figure{Value: 3.5, Unit: "ms", Target: "<= 3 ms"}, "no"},
		{"separators", report.Figure{Value: 19999, Unit: "events/s", Target: ">= 20,000 events/s"}, "no"},
		{"other unit", report.Figure{Value: 1, Unit: "MB", Target: "<= 300 ms"}, ""},
		{"ratio without baseline", report.Figure{Value: 1, Target: "<= 1.5x baseline"}, ""},
		{"words", report.Figure{Value: 1, Target: "as small as possible"}, ""},
		{"no target", report.Figure{Value: 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Evaluate()
			got := ""
			if f.Met != nil {
				got = map[bool]string{true: "yes", false: "no"}[*f.Met]
			}
			if got != tc.met {
				t.Errorf("Met=%q, want %q (target %q, value %v, baseline %v)", got, tc.met, f.Target, f.Value, f.BaseVal)
			}
			if f.BaseVal != 0 && f.Ratio != f.Value/f.BaseVal {
				t.Errorf("Ratio=%v, want %v", f.Ratio, f.Value/f.BaseVal)
			}
		})
	}
}

func TestEvaluateKeepsMet(t *testing.T) {
	yes := true
	f := report.Figure{Value: 10, Unit: "ms", Target: "<= 3 ms", Met: &yes}
	f.Evaluate()
	if !*f.Met {
		t.Errorf("Evaluate overwrote a Met set by the suite")
	}
}

func sample() *report.Run {
	r := &report.Run{
		Started:  time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC),
		Machine:  report.Machine{OS: "linux", Arch: "amd64", CPU: "Test CPU", Cores: 2, MemoryMB: 8000, Go: "go1.26.8", Chromium: "156.0"},
		Duration: 7*time.Minute + 12*time.Second,
		Figures: []report.Figure{
			{Suite: "browser", Name: "local write p50", Unit: "ms", Value: 1.234, Baseline: "plain IndexedDB | 1 put/tx", BaseVal: 0.8, Better: "lower", Target: "<= 1.5x baseline", Note: "doc + outbox in one transaction"},
			{Suite: "server", Name: "ingest 100 pushers (sqlite)", Unit: "events/s", Value: 21400, Better: "higher", Target: ">= 20000 events/s"},
			{Suite: "browser", Name: "wasm gzip", Unit: "MB", Value: 1.41, Better: "lower", Target: "<= 1.5 MB"},
		},
	}
	r.Evaluate()
	return r
}

func TestMarkdown(t *testing.T) {
	md := sample().Markdown()
	for _, want := range []string{
		"2026-11-23 19:00 UTC", "7m12s", "Test CPU, 2 cores", "8000 MB", "156.0",
		"### browser suite", "### server suite",
		"| local write p50 <sup>1</sup> | 1.23 ms | 0.800 ms (plain IndexedDB \\| 1 put/tx) | 1.54x | <= 1.5x baseline | **no** |",
		"| ingest 100 pushers (sqlite) | 21,400 events/s |  |  | >= 20000 events/s | yes |",
		"1. doc + outbox in one transaction",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if b, s := strings.Index(md, "### browser"), strings.Index(md, "### server"); b > s {
		t.Errorf("suites not in order of first figure:\n%s", md)
	}
	if strings.Count(md, "wasm gzip") != 1 || strings.Index(md, "wasm gzip") > strings.Index(md, "### server") {
		t.Errorf("wasm gzip not in the browser table:\n%s", md)
	}
}

func TestJSON(t *testing.T) {
	r := sample()
	r.Figures = append(r.Figures, report.Figure{Suite: "browser", Name: "broken", Value: math.NaN()})
	b, err := r.JSON()
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var got struct {
		Started         time.Time       `json:"started"`
		DurationSeconds float64         `json:"durationSeconds"`
		Machine         map[string]any  `json:"machine"`
		Figures         []report.Figure `json:"figures"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("JSON does not decode: %v\n%s", err, b)
	}
	if got.DurationSeconds != 432 || got.Machine["cores"] != 2.0 || len(got.Figures) != 4 {
		t.Errorf("decoded %+v", got)
	}
	f := got.Figures[0]
	if f.Ratio == 0 || f.Met == nil || *f.Met || f.BaseVal != 0.8 {
		t.Errorf("first figure %+v, want ratio, met=false, baseline 0.8", f)
	}
	if !strings.Contains(got.Figures[3].Note, "NaN") {
		t.Errorf("NaN value not noted: %+v", got.Figures[3])
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.00123: "0.00123", 0.5: "0.500", 1.234: "1.23", 12.34: "12.3", 1234.5: "1,235", -20000: "-20,000", 1e6: "1,000,000"} {
		if got := report.Number(v); got != want {
			t.Errorf("Number(%v)=%q, want %q", v, got, want)
		}
	}
}

func TestProbe(t *testing.T) {
	m := report.Probe(t.TempDir())
	if m.Cores < 1 || m.Go == "" || m.OS == "" {
		t.Errorf("Probe()=%+v", m)
	}
}
