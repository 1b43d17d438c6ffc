package natsbus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/bus"
	"fastfeed/feed"
)

func feedPattern(s string) feed.Pattern { return feed.Pattern(s) }

// embeddedConn starts an embedded server (JetStream on) and connects to it.
func embeddedConn(t *testing.T) (*Server, *nats.Conn) {
	t.Helper()
	srv, err := StartServer(ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := ConnConfig{URL: srv.URL()}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return srv, nc
}

// waitClientBooks waits until a FIX client's books equal want.
func waitClientBooks(t *testing.T, name string, cl *bus.Client, want book.Dump, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var got book.Dump
		cl.Books(func(b *bus.Books) { got = b.Dump() })
		d := book.DiffDumps(got, want)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: books differ from the ground truth (%+v):\n%s", name, cl.Report(), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
