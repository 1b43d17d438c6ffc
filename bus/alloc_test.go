package bus

import (
	"context"
	"testing"

	"github.com/quickfixgo/quickfix"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

// newTestClient returns a client with a queue of size n and one active request for "*",
// without a FIX session: what the subscription callback touches.
func newTestClient(tb testing.TB, n int) (*client, *request) {
	tb.Helper()
	b := &Bus{cfg: Config{Users: []User{{Username: "u", Password: "p", Entitlements: []feed.Pattern{"*"}}}, QueueSize: n}, ctx: context.Background()}
	if err := b.cfg.setDefaults(); err != nil {
		tb.Fatal(err)
	}
	c := newClient(b, quickfix.SessionID{}, &b.cfg.Users[0])
	r := &request{c: c, id: "r", patterns: []feed.Pattern{"*"}, active: true}
	return c, r
}

func testEvent(tb testing.TB) (*feed.Event, *md.Entry) {
	bk, err := book.NewMBP(book.Config{PriceExp: -2})
	if err != nil {
		tb.Fatal(err)
	}
	e := &md.Entry{Action: md.Change, Type: md.Bid, Symbol: []byte("SBER"), RptSeq: 1, Price: md.Dec(10125, -2), Size: md.Dec(300, 0), Orders: 3}
	return &feed.Event{Kind: feed.EventBook, Symbol: "SBER", Entry: e, Book: bk}, e
}

// TestCallbackAllocs: the subscription callback, on the handler's goroutine, allocates
// nothing in the steady state (an entry that follows the last one sent).
func TestCallbackAllocs(t *testing.T) {
	c, r := newTestClient(t, 1024)
	ev, e := testEvent(t)
	r.onEvent(ev) // first event: state created, a W of the book queued
	c.ring.Pop(c.ring.Len())
	allocs := testing.AllocsPerRun(500, func() {
		e.RptSeq++
		r.onEvent(ev)
		c.ring.Pop(1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per event", allocs)
	}
}

// TestConflationOnOverflow: a full queue starts conflation: later events are dropped and
// counted, and the writer is asked to resynchronise.
func TestConflationOnOverflow(t *testing.T) {
	c, r := newTestClient(t, 4)
	ev, e := testEvent(t)
	for range 10 {
		r.onEvent(ev)
		e.RptSeq++
	}
	if c.ring.Len() != 4 || !c.conflating || !c.resync.Load() || c.conflations.Load() != 1 || c.dropped.Load() != 6 {
		t.Fatalf("queued %d conflating %v resync %v conflations %d dropped %d", c.ring.Len(), c.conflating, c.resync.Load(),
			c.conflations.Load(), c.dropped.Load())
	}
	if it := c.ring.At(0); it.kind != itemSnapshot {
		t.Errorf("first item %v, want the snapshot of the first event", it.kind)
	}
	if it := c.ring.At(1); it.kind != itemEntry || it.rptSeq != 2 || it.price != md.Dec(10125, -2) {
		t.Errorf("second item %+v", it)
	}
}

// TestRptSeqResync: an entry that does not follow the last one sent queues a W instead.
func TestRptSeqResync(t *testing.T) {
	c, r := newTestClient(t, 16)
	ev, e := testEvent(t)
	r.onEvent(ev) // W at 1
	e.RptSeq = 2
	r.onEvent(ev) // X 2
	e.RptSeq = 5
	r.onEvent(ev) // gap: W at 5
	kinds := []itemKind{c.ring.At(0).kind, c.ring.At(1).kind, c.ring.At(2).kind}
	if kinds[0] != itemSnapshot || kinds[1] != itemEntry || kinds[2] != itemSnapshot || c.ring.At(2).snap.RptSeq != 5 {
		t.Fatalf("queued %v", kinds)
	}
}

func BenchmarkCallback(b *testing.B) {
	c, r := newTestClient(b, 1024)
	ev, e := testEvent(b)
	r.onEvent(ev)
	c.ring.Pop(c.ring.Len())
	b.ReportAllocs()
	for b.Loop() {
		e.RptSeq++
		r.onEvent(ev)
		c.ring.Pop(1)
	}
}
