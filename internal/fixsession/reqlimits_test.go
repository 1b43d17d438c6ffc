package fixsession

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"

	"fastfeed/md"
)

func TestLimiterBucket(t *testing.T) {
	l := newLimiter(RequestLimits{PerSecond: 10, Burst: 2, MaxRejects: 3})
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	id := quickfix.SessionID{BeginString: BeginString, SenderCompID: "A", TargetCompID: "B"}
	for k := range 2 {
		if rej, _ := l.admit(id); rej != nil {
			t.Fatalf("message %d of the burst rejected: %v", k, rej)
		}
	}
	var logouts int
	for k := range 4 {
		rej, logout := l.admit(id)
		if rej == nil || !strings.Contains(rej.Error(), "over the limit of 10 per second") || rej.RejectReason() != rejectReasonOther {
			t.Fatalf("message %d over the burst: %v", k, rej)
		}
		if logout {
			logouts++
			if k != 2 {
				t.Errorf("logout at reject %d, want the 3rd", k+1)
			}
		}
	}
	now = now.Add(100 * time.Millisecond) // one token
	if rej, _ := l.admit(id); rej != nil {
		t.Errorf("after 100 ms at 10/s: %v", rej)
	}
	// A sustained flood gets a token now and then; its rejects still count up.
	other := quickfix.SessionID{BeginString: BeginString, SenderCompID: "A", TargetCompID: "C"}
	var otherLogout bool
	for k := range 40 {
		now = now.Add(20 * time.Millisecond) // 50/s against 10/s
		if _, logout := l.admit(other); logout {
			otherLogout = true
			if k < 3 {
				t.Errorf("logout at message %d", k)
			}
		}
	}
	// A second's quiet starts the count again.
	third := quickfix.SessionID{BeginString: BeginString, SenderCompID: "A", TargetCompID: "D"}
	for range 2 {
		l.admit(third)
	}
	for range 4 {
		now = now.Add(1100 * time.Millisecond)
		for range 3 { // 1 token, 2 rejects
			if _, logout := l.admit(third); logout {
				t.Error("logged out with a second between its rejects")
			}
		}
	}
	if st := l.stats(); st.RateLogouts != 2 || logouts != 1 || !otherLogout {
		t.Errorf("stats %+v, logouts %d, sustained flood logged out %v; want 2 logouts", st, logouts, otherLogout)
	}
	if newLimiter(RequestLimits{}) != nil {
		t.Error("a zero RequestLimits makes a limiter")
	}
	if err := (RequestLimits{PerSecond: -1}).Check(); err == nil {
		t.Error("negative PerSecond accepted")
	}
}

// TestRequestRateLimit: a client over its request rate gets session-level Rejects (3)
// with the reason, then a Logout; the messages within the limit reach the Handler.
func TestRequestRateLimit(t *testing.T) {
	t.Parallel()
	srv, cli := newRecorder(), newRecorder()
	srv.msgs = make(chan received, 1000)
	acc, err := NewAcceptor(AcceptorConfig{Listen: "127.0.0.1:0", CompID: "FFLIMIT",
		Credentials:   StaticCredentials(DemoUsername, DemoPassword),
		RequestLimits: RequestLimits{PerSecond: 20, Burst: 20, MaxRejects: 50}}, srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := acc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acc.Stop)
	var log lockedBuffer
	ini := startInitiator(t, ctx, InitiatorConfig{Connect: acc.Addr(), SenderCompID: "FLOODER", TargetCompID: "FFLIMIT",
		Username: DemoUsername, Password: DemoPassword, ReconnectInterval: 30 * time.Second,
		Logger: debugLogger(&log)}, cli)
	wait(t, cli.logons, "logon")
	const flood = 200
	sent := 0
	for range flood {
		req := md.MarketDataRequest{MDReqID: "f", SubscriptionType: md.SubscriptionSnapshot, ApplID: "G1:1", BegSeqNum: 1, EndSeqNum: 2}
		if ini.Send(req.ToFIX()) != nil {
			break // logged out
		}
		sent++
	}
	lo := wait(t, cli.logouts, "logout of the flooder")
	if lo.reason != reasonRateLogout {
		t.Errorf("logout reason %q, want %q", lo.reason, reasonRateLogout)
	}
	st := acc.LimitStats()
	got := len(srv.msgs)
	// Within the burst (and what refills meanwhile) the requests pass; then MaxRejects
	// rejects in a row end the session.
	if got < 20 || got > 40 || st.RateRejects < 50 || st.RateLogouts != 1 {
		t.Errorf("%d of %d requests reached the handler, stats %+v; want 20 to 40, at least 50 rejects, 1 logout", got, sent, st)
	}
	if !strings.Contains(log.String(), "|35=3|") || !strings.Contains(log.String(), "request rate over the limit of 20 per second") {
		t.Errorf("no session Reject with the reason in the client's log")
	}
}

func debugLogger(w *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
