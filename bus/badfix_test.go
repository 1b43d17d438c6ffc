package bus

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/fixtest"
)

// syncBuffer is a bytes.Buffer safe for concurrent use: a log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestBusMalformedFIX sends the OMS service every kind of malformed FIX of
// fixtest.Cases from raw TCP clients, in this private network namespace, while a good
// client stays logged on: each is refused, dropped or rejected, counted in FIXStats and
// logged, and the process and the good session survive.
func TestBusMalformedFIX(t *testing.T) {
	var logs syncBuffer
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
