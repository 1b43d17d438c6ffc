package moex

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/replay"
)

// TestLive: the exchange's datagrams (A and B, B late, losses on one line and on both)
// sent on loopback inside the private namespace to the config's groups, from the
// config's source mapped onto 127.0.0.2; RunLive joins them source-specific and the
// books and trades equal the exchange's. Reads through Do while it runs see every
// datagram.
func TestLive(t *testing.T) {
	if !netns.Inside() {
		t.Fatal("not inside a private network namespace")
	}
	src := netip.MustParseAddr("127.0.0.2")
	m := fond(t).MapSources(map[netip.Addr]netip.Addr{netip.MustParseAddr("10.50.129.200"): src})
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 11)
	x.bLag = 3
	x.drop = func(conn string, seq uint32, line int) bool {
		if conn == "OLR" && seq == 40 {
			return true
		}
		return line == 0 && seq%5 == 2
	}
	syms := []string{"SBER", "GAZP", "LKOH"}
	for i := range 150 {
		x.orderStep(syms, 1+i%2)
		if i%7 == 0 {
			x.trade(syms[i%3], 20000+int64(i), 5)
		}
	}
	for _, s := range syms {
		x.snapshot(s, 4)
	}
	x.close()

	e, err := NewEngine(m, Options{GapWait: int64(2 * time.Second), GapWindow: 1024})
	if err != nil {
		t.Fatal(err)
	}
	var trades []byte
	e.OnTrade = func(tr *Trade) { trades = AppendTrade(trades, tr) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunLive(ctx, e, LiveConfig{}) }()
	time.Sleep(200 * time.Millisecond) // the joins

	s, err := mcast.NewSender(mcast.SenderConfig{Interface: src})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := replay.NewReader(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d replay.Datagram
	sent := 0
	for r.Next(&d) == nil {
		if err := s.WriteTo(d.Payload, d.Dst); err != nil {
			t.Fatal(err)
		}
		if sent++; sent%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// A read through Do while RunLive runs (the poller woken for it) sees every datagram.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var st Stats
		var conns []ConnectionOps
		if err := e.Do(ctx, func() { st, conns = e.Stats(), e.Connections() }); err != nil {
			t.Fatal(err)
		}
		var lines uint64
		for _, c := range conns {
			lines += c.Datagrams[0] + c.Datagrams[1]
		}
		if st.Datagrams == uint64(sent) && lines == st.Datagrams {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Do while live: %d datagrams (%d on the lines) of %d", st.Datagrams, lines, sent)
		}
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Datagrams != uint64(sent) || st.WrongSource != 0 || st.DecodeErrors != 0 {
		t.Fatalf("sent %d, stats %+v", sent, st)
	}
	if got, want := dumpBooks(t, e), x.wantBooks(); got != want {
		t.Errorf("books:\n got %s\nwant %s", got, want)
	}
	if want := strings.Join(x.trades, "\n") + "\n"; string(trades) != want {
		t.Errorf("trades:\n got %s\nwant %s", trades, want)
	}
	if c := e.Channels()["OLR"]; c.Gaps != 1 || c.Missed != 1 || c.RecoveredAB == 0 {
		t.Errorf("OLR %+v", c)
	}
}
