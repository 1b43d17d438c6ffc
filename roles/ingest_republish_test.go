package roles

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestIngestRepublishUsage: the bus's flags are refused without --republish, and bad
// values with it, as usage errors naming the flag.
func TestIngestRepublishUsage(t *testing.T) {
	base := []string{"--moex-config", moexConfig, "--market", "FOND", "--capture", "x"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--linger", "1s"}, "--linger keeps --http (or --republish) serving"},
		{[]string{"--nats", "embedded"}, "--nats is a --republish flag"},
		{[]string{"--group-base", "239.1.1.1"}, "--group-base is a --republish flag"},
		{[]string{"--republish", "--linger", "-1s"}, "--linger must not be negative"},
		{[]string{"--republish", "--capture-rate", "-5"}, "--capture-rate"},
		{[]string{"--republish", "--capture-batch", "0"}, "--capture-batch"},
		{[]string{"--republish", "--fix-listen", "nowhere"}, "--fix-listen"},
		{[]string{"--republish", "--group-size", "0"}, "--group-size"},
		{[]string{"--republish", "--bus-iface", "300.1.1.1"}, "300.1.1.1"},
	} {
		args := append(append([]string(nil), base...), tc.args...)
		err := Ingest(context.Background(), args, discard{}, discard{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
			continue
		}
		var ue *UsageError
		if !errors.As(err, &ue) && !strings.Contains(tc.want, "300.1.1.1") {
			t.Errorf("%v: %v is not a usage error", tc.args, err)
		}
	}
}
