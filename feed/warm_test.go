package feed

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// TestWarmNext: the round robin of warmNext visits every followed instrument in turn,
// those of a channel carrying two included, skips the definitions channel and line B,
// survives sockets gone since its last turn, changes no book and no counter, and
// allocates nothing.
func TestWarmNext(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER", "GAZP", "LKOH"}
	m := mcast.DefaultMapping()
	for i := 0; len(syms) == 3; i++ { // a fourth topic on SBER's channel
		if sym := fmt.Sprintf("T%d", i); m.Group(sym) == m.Group("SBER") {
			syms = append(syms, sym)
		}
	}
	e, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, BPort: port + 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, sym := range syms {
		for j := range 5 {
			seq := s.update(sym, md.New, md.Bid, int64(10000-100*j), int64(1+i))
			if !e.Receive(channelOf(sym), s.sent[mcast.ChannelName(channelOf(sym))][seq], int64(seq)) {
				t.Fatalf("%s: datagram %d not received", sym, seq)
			}
		}
	}
	stats, dump := e.Stats(), e.Dump()
	if d := book.DiffDumps(dump, s.truthDump(syms...)); d != "" {
		t.Fatalf("books before warming:\n%s", d)
	}

	// Two rounds: every instrument touched twice, none three times.
	var touched []string
	for range 2 * len(syms) {
		in := e.warmNext()
		if in == nil {
			t.Fatal("warmNext touched nothing")
		}
		touched = append(touched, in.symbol)
	}
	for _, sym := range syms {
		if n := count(touched, sym); n != 2 {
			t.Errorf("%s touched %d times in two rounds, want 2 (order %v)", sym, n, touched)
		}
	}
	if first, second := touched[:len(syms)], touched[len(syms):]; !slices.Equal(first, second) {
		t.Errorf("the rounds differ: %v, then %v", first, second)
	}

	e.warm.sock, e.warm.inst = len(e.sockets)+3, 7 // sockets gone since the last turn
	if in := e.warmNext(); in == nil || !slices.Contains(syms, in.symbol) {
		t.Errorf("after sockets left: touched %v", in)
	}

	if a := testing.AllocsPerRun(100, func() { e.warmNext() }); a != 0 {
		t.Errorf("warmNext: %.1f allocations", a)
	}
	if got := e.Stats(); !reflect.DeepEqual(got, stats) {
		t.Errorf("warming changed the counters:\n got %+v\nwant %+v", got, stats)
	}
	if d := book.DiffDumps(e.Dump(), dump); d != "" {
		t.Errorf("warming changed the books:\n%s", d)
	}
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// TestWarmDecode: decoding the last incremental again between datagrams changes no book
// and no counter, the datagrams after it apply as before, a buffer overwritten behind the
// engine's back (the loop clears lastInc before each read; here it does not) is harmless,
// and it allocates nothing once its copy has grown.
func TestWarmDecode(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER", "GAZP"}
	e, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	e.warmDecode() // nothing received yet: nothing to do
	if seq := s.update("SBER", md.New, md.Offer, 19900, 1); !e.Receive(channelOf("SBER"), s.sent[mcast.ChannelName(channelOf("SBER"))][seq], 1) || e.lastInc != nil {
		t.Fatalf("Receive kept the caller's payload (lastInc %d bytes)", len(e.lastInc))
	}
	hand := func(sym string, seq uint32) []byte { // as Run hands a datagram of its reads
		b := slices.Clone(s.sent[mcast.ChannelName(channelOf(sym))][seq])
		e.lastInc = nil
		e.receiveOn(e.socketIndex(channelOf(sym)), b, int64(seq), 0)
		return b
	}
	for j := range 20 {
		for i, sym := range syms {
			hand(sym, s.update(sym, md.New, md.Offer, int64(20000+100*j), int64(1+i)))
			stats, dump := e.Stats(), e.Dump()
			for range 3 {
				e.warmDecode()
			}
			if e.lastInc != nil || len(e.warmBody) == 0 {
				t.Fatalf("after warmDecode: lastInc %d bytes, warmBody %d", len(e.lastInc), len(e.warmBody))
			}
			if got := e.Stats(); !reflect.DeepEqual(got, stats) {
				t.Fatalf("warmDecode changed the counters:\n got %+v\nwant %+v", got, stats)
			}
			if d := book.DiffDumps(e.Dump(), dump); d != "" {
				t.Fatalf("warmDecode changed the books:\n%s", d)
			}
		}
	}
	if d := book.DiffDumps(e.Dump(), s.truthDump(syms...)); d != "" {
		t.Fatalf("books:\n%s", d)
	}
	if a := testing.AllocsPerRun(100, e.warmDecode); a != 0 {
		t.Errorf("warmDecode: %.1f allocations", a)
	}

	b := hand("SBER", s.update("SBER", md.Delete, md.Offer, 20000, 0))
	for i := range b {
		b[i] = 0xff // a read overwrote the buffer lastInc aliases
	}
	stats := e.Stats()
	e.warmDecode()
	if got := e.Stats(); !reflect.DeepEqual(got, stats) {
		t.Errorf("warmDecode of garbage changed the counters:\n got %+v\nwant %+v", got, stats)
	}
	hand("GAZP", s.update("GAZP", md.Delete, md.Offer, 20000, 0))
	if d := book.DiffDumps(e.Dump(), s.truthDump(syms...)); d != "" {
		t.Fatalf("books after warming on garbage:\n%s", d)
	}
}
