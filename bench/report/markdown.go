package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Markdown renders the run: a header with the machine, then a table per
// suite (figure, value, baseline, ratio, target, met) followed by the
// figures' notes.
func (r *Run) Markdown() string {
	var b strings.Builder
	kind := "full run"
	if r.Smoke {
		kind = "smoke run (small sizes, not comparable with a full run)"
	}
	fmt.Fprintf(&b, "Run of %s UTC, %s, took %s.\n\n", r.Started.UTC().Format("2006-01-02 15:04"), kind, r.Duration.Round(time.Second))
	b.WriteString(r.Machine.Markdown())
	b.WriteString("\n")
	for _, suite := range r.suites() {
		fmt.Fprintf(&b, "### %s suite\n\n", suite)
		b.WriteString("| figure | value | baseline | ratio | target | met |\n")
		b.WriteString("|---|---:|---|---:|---|---|\n")
		var notes []string
		for _, f := range r.Figures {
			if f.Suite != suite {
				continue
			}
			name := cell(f.Name)
			if f.Note != "" {
				notes = append(notes, f.Note)
				name += fmt.Sprintf(" <sup>%d</sup>", len(notes))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n",
				name, cell(Quantity(f.Value, f.Unit)), cell(baselineCell(f)), ratioCell(f), cell(f.Target), metCell(f.Met))
		}
		if len(notes) > 0 {
			b.WriteString("\n")
			for i, n := range notes {
				fmt.Fprintf(&b, "%d. %s\n", i+1, strings.ReplaceAll(n, "\n", " "))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Markdown renders the machine as a short list.
func (m Machine) Markdown() string {
	var b strings.Builder
	b.WriteString("Machine:\n\n")
	item := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "- %s: %s\n", k, v)
		}
	}
	item("OS", strings.Trim(m.OS+"/"+m.Arch, "/"))
	cpu := m.CPU
	if m.Cores > 0 {
		cpu = strings.TrimSpace(fmt.Sprintf("%s, %d cores", cpu, m.Cores))
		cpu = strings.TrimPrefix(cpu, ", ")
	}
	item("CPU", cpu)
	if m.MemoryMB > 0 {
		item("memory", fmt.Sprintf("%d MB", m.MemoryMB))
	}
	item("disk", m.Disk)
	item("Go", m.Go)
	item("Chromium", m.Chromium)
	return b.String()
}

// suites lists the suites in the order of their first figure.
func (r *Run) suites() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if !seen[f.Suite] {
			seen[f.Suite] = true
			out = append(out, f.Suite)
		}
	}
	return out
}

func baselineCell(f Figure) string {
	switch {
	case f.Baseline == "" && f.BaseVal == 0:
		return ""
	case f.BaseVal == 0:
		return f.Baseline
	case f.Baseline == "":
		return Quantity(f.BaseVal, f.Unit)
	}
	return Quantity(f.BaseVal, f.Unit) + " (" + f.Baseline + ")"
}

func ratioCell(f Figure) string {
	if f.BaseVal == 0 || math.IsNaN(f.Ratio) || math.IsInf(f.Ratio, 0) {
		return ""
	}
	return Number(f.Ratio) + "x"
}

func metCell(m *bool) string {
	switch {
	case m == nil:
		return ""
	case *m:
		return "yes"
	}
	return "**no**"
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

// Quantity formats a value with its unit, e.g. "1.23 ms", "21,400 events/s".
func Quantity(v float64, unit string) string {
	if unit == "" {
		return Number(v)
	}
	return Number(v) + " " + unit
}

// Number formats v with three significant digits below 100 and as a whole
// number with thousands separators above.
func Number(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return thousands(int64(math.Round(v)))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a >= 0.01:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func thousands(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
