package bus

import (
	"log/slog"
	"testing"

	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
)

// TestBusMalformedFIX sends the OMS service every kind of malformed FIX of
// fixtest.Cases from raw TCP clients, in this private network namespace, while a good
// client stays logged on: each is refused, dropped or rejected, counted in FIXStats and
// logged, and the process and the good session survive.
func TestBusMalformedFIX(t *testing.T) {
	var logs fixtest.LogBuffer
	m := startMarket(t, 2, 100, 10, Config{
		Users:  users(User{Username: "demo", Entitlements: []feed.Pattern{"*"}}),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	fixtest.Run(t, fixtest.Target{
		Addr:     m.b.Addr(),
		CompID:   fixsession.OMSCompID,
		Username: "demo",
		Password: "demo-pw",
		Stats:    m.b.FIXStats,
		Logs:     logs.String,
	})
}
