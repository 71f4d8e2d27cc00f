package report

import (
	"strconv"
	"strings"
)

// Evaluate fills Ratio (Value/BaseVal, when there is a baseline value) and
// Met (when Target is numeric: "<= 1.5x baseline", ">= 0.7x", "<= 3 ms",
// ">= 20000 events/s"). A target in another unit than the figure's, or one
// that is not numeric, leaves Met nil; a Met already set is kept.
func (f *Figure) Evaluate() {
	if f.BaseVal != 0 {
		f.Ratio = f.Value / f.BaseVal
	}
	if f.Met != nil {
		return
	}
	if met, ok := f.check(); ok {
		f.Met = &met
	}
}

// Evaluate calls Figure.Evaluate on every figure of the run.
func (r *Run) Evaluate() {
	for i := range r.Figures {
		r.Figures[i].Evaluate()
	}
}

// check compares the figure with its target; ok is false when the target
// cannot be read as a number or does not apply to this figure.
func (f *Figure) check() (met, ok bool) {
	op, limit, unit, ok := parseTarget(f.Target)
	if !ok {
		return false, false
	}
	got := f.Value
	switch {
	case unit == "x" || unit == "x baseline" || unit == "× baseline" || unit == "×":
		if f.BaseVal == 0 {
			return false, false
		}
		got = f.Value / f.BaseVal
	case unit == "" || strings.EqualFold(unit, f.Unit):
	default:
		return false, false
	}
	switch op {
	case "<=":
		return got <= limit, true
	case "<":
		return got < limit, true
	case ">=":
		return got >= limit, true
	case ">":
		return got > limit, true
	}
	return false, false
}

// parseTarget splits "<= 1.5x baseline" into "<=", 1.5, "x baseline" and
// "<= 3 ms" into "<=", 3, "ms". Digits may carry "," or "_" separators.
func parseTarget(s string) (op string, limit float64, unit string, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.NewReplacer("≤", "<=", "≥", ">=").Replace(s)
	for _, o := range []string{"<=", ">=", "<", ">"} {
		if strings.HasPrefix(s, o) {
			op = o
			s = strings.TrimSpace(s[len(o):])
			break
		}
	}
	if op == "" {
		return "", 0, "", false
	}
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || s[end] == ',' || s[end] == '_') {
		end++
	}
	num := strings.NewReplacer(",", "", "_", "").Replace(s[:end])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return "", 0, "", false
	}
	return op, v, strings.TrimSpace(s[end:]), true
}
