package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `fastfeed demo` briefly: it must end with books equal to the publisher's
// ground truth, having recovered the loss it injects over its FIX session.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, stdout, stderr := fastfeed(t, ctx, fastfeedBinary(t), "demo", "--duration", "2s", "--instruments", "6", "--rate", "2000")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"books equal the publisher's ground truth", "by FIX retransmission"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}
