package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastfeed/internal/netns"
)

// TestServeFIXChecksConfigFirst: feed --serve-fix with a bad OMS configuration stops
// before joining any group, saying what is wrong and where.
func TestServeFIXChecksConfigFirst(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tt := range []struct{ name, config, want string }{
		{"no users", `{"users": []}`, "bus: no users"},
		{"no password", `{"users": [{"username": "a", "password": "", "entitlements": ["*"]}]}`, "empty username or password"},
		{"user twice", `{"users": [{"username": "a", "password": "a"}, {"username": "a", "password": "b"}]}`, `user "a" given twice`},
		{"bad entitlement", `{"users": [{"username": "a", "password": "a", "entitlements": ["S*B"]}]}`, `pattern "S*B": '*' only at the end`},
		{"unknown field", `{"users": [{"username": "a", "password": "a"}], "colour": "red"}`, `unknown field "colour"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, log := fastfeed(t, ctx, bin, "feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:9871", "--bus-config", path, "--duration", "5s")
			if code != 1 || !strings.Contains(log, tt.want) || !strings.Contains(log, path) {
				t.Errorf("exit %d, want 1 and %q naming %s:\n%s", code, tt.want, path, log)
			}
			if strings.Contains(log, "msg=joined") {
				t.Errorf("joined groups before checking the OMS configuration:\n%s", log)
			}
		})
	}
	code, _, log := fastfeed(t, ctx, bin, "feed", "--topics", "SBER", "--serve-fix", "127.0.0.1", "--duration", "5s")
	if code != 1 || !strings.Contains(log, `listen address "127.0.0.1"`) || strings.Contains(log, "msg=joined") {
		t.Errorf("--serve-fix without a port: exit %d\n%s", code, log)
	}
}

// TestServeFIXOutsideRepository: from a directory with no fixtures/ and a binary with
// none beside it, feed --serve-fix runs on the demo OMS configuration compiled in, says
// so, and a demo user logs on.
func TestServeFIXOutsideRepository(t *testing.T) {
	bin := fastfeedBinary(t)
	elsewhere := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, err := netns.Command(ctx, bin, "feed", "--topics", "SBER", "--serve-fix", "127.0.0.1:9871", "--duration", "20s")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = elsewhere
	f := &process{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = f.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- cmd.Wait() }()
	f.waitFor(t, "msg=\"OMS service listening\"")
	if log := f.stderr.String(); !strings.Contains(log, "using the demo one compiled in") {
		t.Errorf("the compiled-in configuration is not said:\n%s", log)
	}
	code, _, omsLog := fastfeed(t, ctx, bin, "oms", "--connect", "127.0.0.1:9871", "--username", "demo", "--password", "demo", "--duration", "3s")
	if code != 0 || !strings.Contains(omsLog, "oms logged on") {
		t.Errorf("oms as demo/demo: exit %d\n%s", code, omsLog)
	}
	// No publisher: the feed ends with SBER never heard of (exit 1); only its log matters.
	_ = f.cmd.Process.Signal(os.Interrupt)
	<-f.done
	if log := f.stderr.String(); !strings.Contains(log, `msg="OMS client logged on"`) {
		t.Errorf("the demo user's logon is not in the feed's log:\n%s", log)
	}
}
