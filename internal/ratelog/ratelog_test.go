package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the summary timer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestLimitPerCause(t *testing.T) {
	var buf syncBuffer
	r := New(slog.New(slog.NewTextHandler(&buf, nil)), 3)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	for range 10 {
		r.Warn("garbled", "bad checksum")
	}
	for range 2 {
		r.Warn("timeout", "no logon")
	}
	if got := r.Suppressed(); got != 7 {
		t.Fatalf("Suppressed = %d, want 7", got)
	}
	now = now.Add(time.Second)
	r.Warn("garbled", "bad checksum")
	r.Close()
	lines := buf.lines()
	var garbled, timeouts int
	for _, l := range lines {
		switch {
		case strings.Contains(l, "bad checksum"):
			garbled++
		case strings.Contains(l, "no logon"):
			timeouts++
		}
	}
	if garbled != 4 || timeouts != 2 {
		t.Fatalf("lines written: %d garbled, %d timeout, want 4 and 2:\n%s", garbled, timeouts, strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[len(lines)-1], "suppressed=7") {
		t.Fatalf("the first line of the next second does not carry the 7 suppressed: %q", lines[len(lines)-1])
	}
}

func TestSummaryWhenQuiet(t *testing.T) {
	var buf syncBuffer
	r := New(slog.New(slog.NewTextHandler(&buf, nil)), 1)
	for range 5 {
		r.Warn("garbled", "bad checksum")
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(strings.Join(buf.lines(), "\n"), "log lines suppressed") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary line after the second ended:\n%s", strings.Join(buf.lines(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last := buf.lines()[len(buf.lines())-1]; !strings.Contains(last, "suppressed=4") || !strings.Contains(last, "cause=garbled") {
		t.Fatalf("summary %q, want cause=garbled suppressed=4", last)
	}
	r.Close()
}
