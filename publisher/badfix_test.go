package publisher

import (
	"log/slog"
	"testing"

	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
	"fastfeed/internal/netns"
)

// TestRecoveryServiceMalformedFIX sends the recovery service every kind of malformed FIX
// of fixtest.Cases from raw TCP clients, in this private network namespace, while a
// good client stays logged on: each is refused, dropped or rejected, counted in
// RecoveryStats.FIX and logged, and the process and the good session survive.
func TestRecoveryServiceMalformedFIX(t *testing.T) {
	netns.Require(t)
	var logs fixtest.LogBuffer
	p := newPublisher(t, Config{Instruments: generate(t, 2),
		Recovery: RecoveryConfig{Listen: "127.0.0.1:0", Users: []User{{fixsession.DemoUsername, fixsession.DemoPassword}}}})
	svc := startService(t, p, RecoveryOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	fixtest.Run(t, fixtest.Target{
		Addr:     svc.Addr(),
		CompID:   fixsession.RecoveryCompID,
		Username: fixsession.DemoUsername,
		Password: fixsession.DemoPassword,
		Stats:    func() fixsession.AcceptorStats { return svc.Stats().FIX },
		Logs:     logs.String,
	})
}
