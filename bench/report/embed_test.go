package report_test

import (
	"strings"
	"testing"

	"github.com/lfsync/lfsync/bench/report"
)

func TestEmbed(t *testing.T) {
	doc := "# B\n\nintro\n\n" + report.BeginMark + "\nold run\n" + report.EndMark + "\n\n## Why\n\nanalysis\n"
	got := report.Embed(doc, "new run\n")
	if strings.Contains(got, "old run") || !strings.Contains(got, "new run") {
		t.Errorf("block not replaced:\n%s", got)
	}
	if !strings.HasPrefix(got, "# B\n\nintro\n\n") || !strings.HasSuffix(got, "\n\n## Why\n\nanalysis\n") {
		t.Errorf("text around the markers changed:\n%s", got)
	}
	if again := report.Embed(got, "new run\n"); again != got {
		t.Errorf("Embed is not idempotent:\n%s\nthen\n%s", got, again)
	}

	fresh := report.Embed("", "run\n")
	if !strings.HasPrefix(fresh, "# Benchmarks\n") || !strings.Contains(fresh, report.BeginMark+"\n\nrun\n"+report.EndMark) {
		t.Errorf("new document:\n%s", fresh)
	}

	appended := report.Embed("# Notes\n\ntext\n", "run\n")
	if !strings.HasPrefix(appended, "# Notes\n\ntext\n\n## Latest run\n") || !strings.Contains(appended, "run\n"+report.EndMark) {
		t.Errorf("appended:\n%s", appended)
	}
}
