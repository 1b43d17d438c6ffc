package publisher

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
	"fastfeed/internal/netns"
)

// TestRecoveryServiceDisconnectsSlowReader asks for a long retransmission from a raw client
// that never reads: the service must stop the answer when its queue is not taken in
// time, and disconnect the client, rather than queue the whole answer in quickfix (whose
// session loop spins while messages wait).
func TestRecoveryServiceDisconnectsSlowReader(t *testing.T) {
	netns.Require(t)
	const n = 9000
	p := newPublisher(t, Config{Instruments: generate(t, 1), Count: n, Retention: n, MaxRetransmit: n,
		Recovery: RecoveryConfig{Listen: "127.0.0.1:0", Users: []User{{fixsession.DemoUsername, fixsession.DemoPassword}}}})
	if err := p.Run(context.Background()); err != nil { // the data, then requests are served from the final state
		t.Fatal(err)
	}
	var logs fixtest.LogBuffer
	svc := startService(t, p, RecoveryOptions{RateWindow: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var channel string
	for _, ci := range p.Channels() {
		if !ci.Definitions {
			channel = ci.Name
		}
	}
	c := fixtest.Dial(t, fixtest.Target{Addr: svc.Addr(), CompID: fixsession.RecoveryCompID}, "T-SLOW")
	c.Logon(t, fixsession.DemoUsername, fixsession.DemoPassword)
	c.Write(t, c.Message("35=V", "262=slow", "263=0", "264=0", "267=2", "269=0", "269=1",
		"1180="+channel, "1182=100", "1183=9000"))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "too slow to take its answer") {
		if time.Now().After(deadline) {
			t.Fatalf("no slow-client disconnection; retransmitted %d\n%s", svc.Stats().Retransmitted, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := svc.Stats().Retransmitted; got == 0 || got >= 8901 {
		t.Errorf("retransmitted %d: the whole answer was queued for a client that does not read", got)
	}
	for deadline := time.Now().Add(30 * time.Second); len(svc.acc.Sessions()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow client's session did not end")
		}
	}
}
