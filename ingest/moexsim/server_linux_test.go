package moexsim

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastfeed/ingest/moex"
	"fastfeed/replay"
)

// TestReplayServiceRefuses: the historical replay service answers a good request with
// exactly the messages asked for, and refuses, with a Logout whose Text says why, bad
// credentials, a range beyond what it keeps, more than 1000 messages and a connection
// that is not incremental; the client names each failure and counts it.
func TestReplayServiceRefuses(t *testing.T) {
	var buf bytes.Buffer
	w, err := replay.NewWriter(&buf, replay.PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	x, err := New(Config{Market: fond(t), Instruments: 3, Seed: 9, Retention: 100, Username: "demo", Password: "pw"},
		&CaptureOutput{W: w})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Open(); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if err := x.Step(); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.ServeReplay(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	olrLast := x.conns["OLR"].seq
	c := &moex.ReplayClient{Addr: addr, Username: "demo", Password: "pw", Timeout: time.Second}
	var got []uint32
	if err := c.Replay(t.Context(), "OLR", olrLast-9, olrLast, func(seq uint32, msg []byte) { got = append(got, seq) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || got[0] != olrLast-9 || got[9] != olrLast {
		t.Fatalf("delivered %v", got)
	}
	for _, tc := range []struct {
		name     string
		user     string
		conn     string
		beg, end uint32
		want     string
	}{
		{"password", "nobody", "OLR", olrLast, olrLast, "unknown username or wrong password"},
		{"retention", "demo", "OLR", 1, 5, "kept are"},
		{"not incremental", "demo", "OLS", 1, 1, "not an incremental connection"},
	} {
		c := &moex.ReplayClient{Addr: addr, Username: tc.user, Password: "pw", Timeout: time.Second}
		err := c.Replay(t.Context(), tc.conn, tc.beg, tc.end, func(uint32, []byte) {})
		if err == nil || !strings.Contains(err.Error(), tc.want) || c.Stats().Rejected != 1 {
			t.Errorf("%s: %v (want %q), %+v", tc.name, err, tc.want, c.Stats())
		}
	}
	// The client refuses to ask for more than 1000 itself.
	if err := c.Replay(t.Context(), "OLR", 1, 1001, func(uint32, []byte) {}); err == nil || !strings.Contains(err.Error(), "want 1..1000") {
		t.Errorf("1001 messages: %v", err)
	}
	// Not FIX at all: the service counts a bad request and closes.
	nc, err := net.Dial("tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [512]byte
	for {
		if _, err := nc.Read(b[:]); err != nil {
			break
		}
	}
	nc.Close()
	if s := x.Stats(); s.BadClient != 1 || s.Refused != 3 || s.Replayed != 10 {
		t.Errorf("service %+v", s)
	}
}

// BenchmarkReplayRequest: one historical replay request of 10 OLR messages over
// loopback TCP (connect, Logon, MarketDataRequest, answer, Logout), client and service.
func BenchmarkReplayRequest(b *testing.B) {
	var buf bytes.Buffer
	w, err := replay.NewWriter(&buf, replay.PcapNG)
	if err != nil {
		b.Fatal(err)
	}
	x, err := New(Config{Market: fond(b), Instruments: 3, Seed: 9}, &CaptureOutput{W: w})
	if err != nil {
		b.Fatal(err)
	}
	if err := x.Open(); err != nil {
		b.Fatal(err)
	}
	for range 100 {
		if err := x.Step(); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.ServeReplay(ctx, ln)
	c := &moex.ReplayClient{Addr: netip.MustParseAddrPort(ln.Addr().String()), Timeout: time.Second}
	last := x.conns["OLR"].seq
	n := 0
	b.ResetTimer()
	for range b.N {
		if err := c.Replay(b.Context(), "OLR", last-9, last, func(uint32, []byte) { n++ }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 10*b.N {
		b.Fatalf("%d messages", n)
	}
}
