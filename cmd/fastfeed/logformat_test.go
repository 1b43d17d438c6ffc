package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogFormatJSON: with --log-format json every role that logs writes one JSON object
// a line (time, level, msg and the attributes); a bad format is refused.
func TestLogFormatJSON(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := start(t, ctx, bin, "record", "--topics", "SBER", "--out", filepath.Join(dir, "c.pcapng"), "--duration", "3s", "--log-format", "json")
	f := start(t, ctx, bin, "feed", "--topics", "SBER", "--duration", "3s", "--log-format", "json")
	rec.waitFor(t, `"msg":"recording"`)
	f.waitFor(t, `"msg":"feed handler started"`)
	code, _, pubLog := fastfeed(t, ctx, bin, "pub", "--instruments", "2", "--count", "50", "--log-format", "json")
	if code != 0 {
		t.Fatalf("pub: exit %d\n%s", code, pubLog)
	}
	rec.wait(t, "record")
	f.wait(t, "feed")
	code, _, replayLog := fastfeed(t, ctx, bin, "replay", "fixtures/feed.pcap", "--max", "--log-format", "json")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, replayLog)
	}
	for _, tt := range []struct{ role, log, msg string }{
		{"pub", pubLog, "publishing"},
		{"feed", f.stderr.String(), "feed handler stopped"},
		{"record", rec.stderr.String(), "recorded"},
		{"replay", replayLog, "replay done"},
	} {
		lines := strings.Split(strings.TrimSpace(tt.log), "\n")
		seen := false
		for _, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Errorf("%s: not a JSON line: %q (%v)", tt.role, l, err)
				continue
			}
			if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
				t.Errorf("%s: line without time, level or msg: %q", tt.role, l)
			}
			seen = seen || rec["msg"] == tt.msg
		}
		if !seen {
			t.Errorf("%s: no %q record in:\n%s", tt.role, tt.msg, tt.log)
		}
	}
	code, _, log := fastfeed(t, ctx, bin, "feed", "--topics", "SBER", "--log-format", "xml")
	if code != 2 || !strings.Contains(log, `--log-format "xml": want text or json`) {
		t.Errorf("--log-format xml: exit %d\n%s", code, log)
	}
}

// TestOMSConnectionRefused: fastfeed oms with nothing listening says "connection
// refused", naming the address, after a few attempts (not a 20 s wait for a logon).
func TestOMSConnectionRefused(t *testing.T) {
	bin := fastfeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	code, _, log := fastfeed(t, ctx, bin, "oms", "--connect", "127.0.0.1:9871")
	took := time.Since(begin)
	if code != 1 || !strings.Contains(log, "connection refused by 127.0.0.1:9871") {
		t.Fatalf("exit %d after %v\n%s", code, took, log)
	}
	if took > 15*time.Second {
		t.Errorf("gave up after %v: want a few attempts, a second apart", took)
	}
	code, _, log = fastfeed(t, ctx, bin, "oms", "--connect", "127.0.0.1:9871", "--duration", "2s")
	if code != 1 || !strings.Contains(log, "connect: connection refused") {
		t.Errorf("stopped by --duration before giving up: exit %d, want the refused dial as the reason\n%s", code, log)
	}
}
