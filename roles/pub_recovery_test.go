package roles

import (
	"encoding/json"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"fastfeed/publisher"
)

// TestPubRecoveryFlags checks that the --fix-* flags reach the recovery service's
// options, their defaults being the service's, and that fix_too_slow is in --stats-out.
func TestPubRecoveryFlags(t *testing.T) {
	parse := func(args ...string) PubOptions {
		t.Helper()
		var o PubOptions
		fs := flag.NewFlagSet("pub", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.Register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := parse()
	want := publisher.RecoveryOptions{MaxPending: publisher.DefaultRecoveryMaxPending, InFlight: publisher.DefaultRecoveryInFlight,
		MinRate: publisher.DefaultRecoveryMinRate, RateWindow: publisher.DefaultRecoveryRateWindow}
	if got := o.RecoveryOptions(); got != want {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	o = parse("--fix-min-rate", "1000", "--fix-rate-window", "3s", "--fix-max-pending", "2", "--fix-in-flight", "4096")
	want = publisher.RecoveryOptions{MaxPending: 2, InFlight: 4096, MinRate: 1000, RateWindow: 3 * time.Second}
	if got := o.RecoveryOptions(); got != want {
		t.Errorf("flags: %+v, want %+v", got, want)
	}
	if _, err := o.PublisherConfig(map[string]bool{}); err != nil {
		t.Errorf("valid --fix-* flags refused: %v", err)
	}
	o = parse("--fix-rate-window", "10ms")
	if _, err := o.PublisherConfig(map[string]bool{"fix-rate-window": true}); err == nil || !strings.Contains(err.Error(), "--fix-rate-window 10ms") {
		t.Errorf("--fix-rate-window 10ms: %v", err)
	}
	b, err := json.Marshal(NewPubStats(publisher.Stats{}, publisher.RecoveryStats{TooSlow: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"fix_too_slow":3`) {
		t.Errorf("stats %s: no fix_too_slow", b)
	}
}
