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
	for i := 0; len(syms) == 3; i++ { // a fourth topic on SBER's channel
		if sym := fmt.Sprintf("T%d", i); channelOf(sym) == channelOf("SBER") {
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
