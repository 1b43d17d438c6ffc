package feed

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// TestEngineReceive hands an engine datagrams with Receive, with a hole that FIX
// recovery fills through Poll, and checks the books, the counters and the refusals.
func TestEngineReceive(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER", "GAZP"}
	rec := &fakeRecovery{s: s}
	h, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, Recovery: rec})
	if err != nil {
		t.Fatal(err)
	}
	var now int64 = 1e9
	hand := func(sym string, seq uint32) {
		t.Helper()
		ch := mcast.ChannelName(channelOf(sym))
		if !h.Receive(channelOf(sym), s.sent[ch][seq], now) {
			t.Fatalf("Receive refused %s's channel", sym)
		}
		now += 1000
		h.DoWork(now)
	}
	for i := range 30 {
		for j, sym := range syms {
			px := int64(10000 + j*100 + i)
			seq := s.update(sym, md.New, md.Bid, px, 10)
			if sym == "SBER" && i == 10 {
				continue // lost: recovered over "FIX"
			}
			hand(sym, seq)
		}
	}
	if h.Receive(netip.MustParseAddrPort("239.9.9.9:30001"), []byte{1, 0, 0, 0}, now) {
		t.Error("Receive took a datagram for a group not joined")
	}
	// The retransmission comes from another goroutine: the handler's clock advances with
	// the wall clock meanwhile, well within the recovery timeout (2s).
	for i := 0; h.Recovering() || len(rec.retransmits) == 0; i++ {
		if i > 1000 {
			t.Fatal("recovery did not end")
		}
		time.Sleep(time.Millisecond)
		now += int64(time.Millisecond)
		h.DoWork(now)
	}
	h.DoWork(now)
	if d := book.DiffDumps(h.Dump(), s.truthDump(syms...)); d != "" {
		t.Fatalf("books:\n%s", d)
	}
	st := h.Stats()
	if st.Gaps != 1 || st.RecoveredFIX != 1 || st.Datagrams != 59 || st.StaleBooks != 0 {
		t.Errorf("stats %+v", st)
	}
	var sber ChannelStats
	for _, c := range h.Channels() {
		if c.Channel == mcast.ChannelName(channelOf("SBER")) {
			sber = c
		}
	}
	if sber.Gaps != 1 || sber.Missing != 1 || sber.RecoveredFIX != 1 || sber.State != "live" {
		t.Errorf("SBER's channel: %+v", sber)
	}
	if len(h.Sockets()) != 3 {
		t.Errorf("sockets %+v", h.Sockets())
	}
	h.Close()
	var ran bool
	if err := h.Do(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Errorf("Do after Close: ran %v, %v", ran, err)
	}
}

// TestEngineNoAllocs: Receive allocates nothing per datagram once warm.
func TestEngineNoAllocs(t *testing.T) {
	h, err := NewEngine(Config{Topics: benchSymbols, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := stream(&testing.B{}, benchSymbols, 20000)
	i := 0
	step := func() {
		d := &ds[i]
		h.Receive(d.Addr, d.Buf, int64(i))
		i++
		if i%64 == 0 {
			h.DoWork(int64(i))
		}
	}
	for range 1000 {
		step()
	}
	if a := testing.AllocsPerRun(10000, step); a != 0 {
		t.Errorf("%.2f allocations per datagram", a)
	}
	if h.stats.Messages != uint64(i) || h.stats.BookErrors != 0 {
		t.Errorf("messages %d of %d, book errors %d", h.stats.Messages, i, h.stats.BookErrors)
	}
}
