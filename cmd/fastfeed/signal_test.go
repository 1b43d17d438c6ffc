package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSignals: SIGHUP kills neither pub nor feed; every graceful stop writes --stats-out:
// SIGTERM (pub), SIGINT (feed) and the end of --duration (feed).
func TestSignals(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubStats, feedStats, timedStats := filepath.Join(dir, "pub.json"), filepath.Join(dir, "feed.json"), filepath.Join(dir, "timed.json")
	f := start(t, ctx, bin, "feed", "--topics", "SBER", "--stats-out", feedStats)
	timed := start(t, ctx, bin, "feed", "--topics", "SBER", "--duration", "1500ms", "--stats-out", timedStats)
	f.waitFor(t, "msg=\"feed handler started\"")
	timed.waitFor(t, "msg=\"feed handler started\"")
	p := start(t, ctx, bin, "pub", "--instruments", "3", "--rate", "200", "--linger", "1h", "--stats-out", pubStats)
	p.waitFor(t, "msg=publishing")
	for _, proc := range []*process{p, f} {
		if err := proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for name, proc := range map[string]*process{"pub": p, "feed": f} {
		select {
		case err := <-proc.done:
			t.Fatalf("%s stopped on SIGHUP: %v\n%s", name, err, proc.stderr.String())
		default:
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "pub")
	f.interrupt(t, "feed")
	timed.wait(t, "feed --duration")
	for _, tt := range []struct{ name, path, counter string }{
		{"pub on SIGTERM", pubStats, "incrementals"},
		{"feed on SIGINT", feedStats, "messages"},
		{"feed at --duration's end", timedStats, "messages"},
	} {
		if _, err := os.Stat(tt.path); err != nil {
			t.Errorf("%s: no --stats-out: %v", tt.name, err)
			continue
		}
		st := readJSON(t, tt.path)
		if n, _ := st[tt.counter].(float64); n <= 0 {
			t.Errorf("%s: --stats-out %s = %v, want > 0", tt.name, tt.counter, st[tt.counter])
		}
	}
}
