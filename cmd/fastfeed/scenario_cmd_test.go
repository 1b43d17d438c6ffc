package main

import (
	"context"
	"strings"
	"testing"
)

// TestSoakCommand runs one short round of one scenario through the command.
func TestSoakCommand(t *testing.T) {
	bin := fastfeedBinary(t)
	code, stdout, stderr := fastfeed(t, context.Background(), bin, "soak", "--duration", "1ms", "--scale", "1", "--only", "publisher restarted")
	if code != 0 || !strings.Contains(stdout, "every handler's books equal") || !strings.Contains(stdout, "| publisher restarted | 1 |") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := fastfeed(t, context.Background(), bin, "soak", "--only", "no such scenario"); code == 0 || !strings.Contains(stderr, "matches no scenario") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
