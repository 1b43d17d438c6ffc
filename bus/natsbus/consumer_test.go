package natsbus

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"fastfeed/md"
)

// TestConsumerLatencyClamped: an X published longer ago than the latency histogram holds
// is recorded at the histogram's top, not dropped (a consumer far behind must not look
// like one that received nothing).
func TestConsumerLatencyClamped(t *testing.T) {
	lat := hdrhistogram.New(1, int64(time.Millisecond), 3)
	c, err := NewConsumer(ConsumerConfig{Conn: &nats.Conn{}, Latency: lat})
	if err != nil {
		t.Fatal(err)
	}
	s := md.Snapshot{Symbol: []byte("SBER")}
	c.handle(&nats.Msg{Subject: "snap.G239-1-2-3-30001.SBER", Data: AppendW(nil, &s, -2, 0, 1)})
	e := []md.Entry{{Action: md.New, Type: md.Bid, RptSeq: 1, Price: md.Dec(10000, -2), Size: md.Dec(7, 0), Orders: 1}}
	c.handle(&nats.Msg{Subject: "md.G239-1-2-3-30001.SBER", Data: AppendX(nil, "SBER", e, time.Now().Add(-time.Hour).UnixNano())})
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	if lat.TotalCount() != 1 || lat.Max() < lat.HighestTrackableValue() {
		t.Errorf("histogram: %d values, max %d (top %d)", lat.TotalCount(), lat.Max(), lat.HighestTrackableValue())
	}
}

// TestDisconnectionSuspect: after a disconnection a consumer shows its books stale but
// remembers how far they went: the cache's older W is refused (it was once applied as
// current), a W as new as the book or an X that follows it makes the book whole again,
// and a hole resynchronises it as always.
func TestDisconnectionSuspect(t *testing.T) {
	_, nc := embeddedConn(t)
	c, err := NewConsumer(ConsumerConfig{Conn: nc, NoSnapRequests: true})
	if err != nil {
		t.Fatal(err)
	}
	const snap, mdSubj = "snap.CH.SBER", "md.CH.SBER"
	w := func(seq uint32, px int64) *nats.Msg {
		s := md.Snapshot{Symbol: []byte("SBER"), RptSeq: seq, Entries: []md.Entry{{Type: md.Bid, Price: md.Dec(px, -2), Size: md.Dec(5, 0), Orders: 1}}}
		return &nats.Msg{Subject: snap, Data: AppendW(nil, &s, -2, 0, time.Now().UnixNano())}
	}
	x := func(seq uint32, px int64) *nats.Msg {
		e := []md.Entry{{Action: md.New, Type: md.Bid, RptSeq: seq, Price: md.Dec(px, -2), Size: md.Dec(1, 0), Orders: 1}}
		return &nats.Msg{Subject: mdSubj, Data: AppendX(nil, "SBER", e, time.Now().UnixNano())}
	}
	state := func() (uint32, bool, int) {
		d := c.Dump()
		if len(d) != 1 {
			t.Fatalf("dump %+v", d)
		}
		return uint32(d[0].RptSeq), d[0].Stale, len(d[0].Bids)
	}
	check := func(step string, seq uint32, stale bool, bids int) {
		t.Helper()
		if s, st, b := state(); s != seq || st != stale || b != bids {
			t.Fatalf("%s: rptseq %d stale %v bids %d, want %d %v %d (stats %+v)", step, s, st, b, seq, stale, bids, c.Stats())
		}
	}
	disconnect := func() { c.lost.Store(true); c.tick() }

	c.handle(w(10, 10000))
	c.handle(x(11, 10010))
	check("whole", 11, false, 2)
	disconnect()
	check("disconnected", 11, true, 2)
	c.handle(w(10, 10000)) // the cache's W, written before the disconnection
	check("the older W refused", 11, true, 2)
	c.handle(w(11, 10000))
	c.handle(x(11, 10010))
	check("a W as new as the book", 11, false, 2)
	disconnect()
	c.handle(x(12, 10020))
	check("an X that follows", 12, false, 3)
	disconnect()
	c.handle(x(14, 10040))
	check("a hole", 12, true, 3)
	if st := c.Stats(); st.OldSnapshots != 1 || st.Gaps != 1 || st.Duplicates != 1 {
		t.Errorf("counters %+v", st)
	}
}
