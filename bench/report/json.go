package report

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// runJSON is the wire form of a Run.
type runJSON struct {
	Started         time.Time   `json:"started"`
	DurationSeconds float64     `json:"durationSeconds"`
	Smoke           bool        `json:"smoke"`
	Machine         machineJSON `json:"machine"`
	Figures         []Figure    `json:"figures"`
}

type machineJSON struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryMB int    `json:"memoryMB"`
	Go       string `json:"go"`
	Chromium string `json:"chromium,omitempty"`
	Disk     string `json:"disk,omitempty"`
}

// JSON renders the run as indented JSON. Values that JSON cannot hold (NaN,
// infinities) become 0, with the original spelled out in the figure's note.
func (r *Run) JSON() ([]byte, error) {
	m := r.Machine
	out := runJSON{
		Started:         r.Started.UTC(),
		DurationSeconds: math.Round(r.Duration.Seconds()*10) / 10,
		Smoke:           r.Smoke,
		Machine:         machineJSON{m.OS, m.Arch, m.CPU, m.Cores, m.MemoryMB, m.Go, m.Chromium, m.Disk},
		Figures:         make([]Figure, len(r.Figures)),
	}
	for i, f := range r.Figures {
		f.Value = finite(f.Value, "value", &f.Note)
		f.BaseVal = finite(f.BaseVal, "baseline value", &f.Note)
		f.Ratio = finite(f.Ratio, "ratio", &f.Note)
		out.Figures[i] = f
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to encode the run as JSON: %w", err)
	}
	return append(b, '\n'), nil
}

func finite(v float64, what string, note *string) float64 {
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		return v
	}
	s := fmt.Sprintf("%s was %v", what, v)
	if *note != "" {
		s = *note + "; " + s
	}
	*note = s
	return 0
}
