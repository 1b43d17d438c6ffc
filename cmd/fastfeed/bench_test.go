package main

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchCommandQuick runs "fastfeed bench --quick" (in the test's network namespace)
// and checks the report and the plot it writes.
func TestBenchCommandQuick(t *testing.T) {
	bin := fastfeedBinary(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, stdout, stderr := fastfeed(t, ctx, bin, "bench", "--quick", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"p99 tick-to-handler <= 1.5x", "maximum rate >= 0.8x", "wrote " + out + "/REPORT.md"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "bench [13/13] baseline at max msgs/s") {
		t.Errorf("no progress line for the last step:\n%s", stderr)
	}
	report, err := os.ReadFile(filepath.Join(out, "REPORT.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`fastfeed bench --quick --out " + out + "`", "## Targets", "| 10k | handler |", "| 100k | baseline |",
		"| max | handler |", "| max | tick-to-handler |", "![latency percentiles](latency.svg)", "| DecodeIncremental5 |"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
	svg, err := os.ReadFile(filepath.Join(out, "latency.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Polylines []struct{} `xml:"polyline"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil || len(doc.Polylines) != 6 {
		t.Errorf("latency.svg: %v, %d curves, want 6", err, len(doc.Polylines))
	}
}

func TestBenchCommandErrors(t *testing.T) {
	bin := fastfeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"--rates", "fast"},
		{"--rates", "-5"},
		{"--duration", "1h"},
		{"--instruments", "0"},
		{"--pacing", "fast"},
		{"--no-warm"}, // without --busy-poll
		{"--stage-every", "-1"},
		{"extra"},
	} {
		code, _, stderr := fastfeed(t, ctx, bin, append([]string{"bench"}, args...)...)
		if code != 2 || !strings.Contains(stderr, "fastfeed bench:") {
			t.Errorf("bench %q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

// TestFeedLatencyOut checks what --latency-out writes: the .hgrm distribution, then a
// summary line per stage.
func TestFeedLatencyOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "latency.hgrm")
	_, _, st := runPubAndFeed(t, 8, 2000, []string{"--rate", "4000"},
		[]string{"--topics", "SBER,LKOH,AAPL", "--duration", "4s", "--latency-out", out})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.HasPrefix(text, " Value\tPercentile\tTotalCount\t1/(1-Percentile)") || !strings.Contains(text, "#[Max") {
		t.Errorf("not an .hgrm:\n%s", text)
	}
	for _, stage := range []string{"send->kernel rx", "kernel rx->decoded", "decoded->book", "book->subscribers", "tick-to-handler"} {
		if !strings.Contains(text, "#["+stage+":") {
			t.Errorf("no summary of %s:\n%s", stage, text)
		}
	}
	if st.Messages == 0 || !strings.Contains(text, "Total count    = ") {
		t.Errorf("messages %d", st.Messages)
	}
}
