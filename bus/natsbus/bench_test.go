package natsbus

import (
	"context"
	"github.com/HdrHistogram/hdrhistogram-go"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

type nopEngine struct{}

func (nopEngine) Do(_ context.Context, fn func()) error { fn(); return nil }

// benchPublisher is a publisher without a writer: the test pops the ring itself.
func benchPublisher(tb testing.TB) (*Publisher, *feed.Event) {
	p, err := NewPublisher(PublisherConfig{Conn: &nats.Conn{}, Engine: nopEngine{}, QueueSize: 1024})
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := book.NewMBP(book.Config{PriceExp: -2})
	e := &md.Entry{Action: md.New, Type: md.Bid, Symbol: []byte("SBER"), RptSeq: 1, Price: md.Dec(10125, -2), Size: md.Dec(10, 0), Orders: 1}
	ev := &feed.Event{Kind: feed.EventBook, Symbol: "SBER", Entry: e, Book: b}
	p.OnEvent(ev) // first sight: the W
	p.ring.Pop(p.ring.Len())
	return p, ev
}

func TestOnEventAllocs(t *testing.T) {
	p, ev := benchPublisher(t)
	n := testing.AllocsPerRun(1000, func() {
		ev.Entry.RptSeq++
		p.OnEvent(ev)
		p.ring.Pop(1)
	})
	if n != 0 {
		t.Errorf("OnEvent: %v allocs per event, want 0", n)
	}
	if p.ring.Len() != 0 || p.Stats().Conflations != 0 {
		t.Errorf("ring %d, stats %+v", p.ring.Len(), p.Stats())
	}
}

// TestOnEventConflates: with the ring full, OnEvent conflates the instrument, drops and
// counts its events, and never blocks.
func TestOnEventConflates(t *testing.T) {
	p, ev := benchPublisher(t)
	for range 2000 {
		ev.Entry.RptSeq++
		p.OnEvent(ev)
	}
	st := p.Stats()
	if p.ring.Len() != 1024 || st.Conflations != 1 || st.Dropped != 2000-1024 {
		t.Errorf("ring %d, stats %+v", p.ring.Len(), st)
	}
	// The resynchronisation takes a W on the engine's goroutine and clears the mark.
	p.takeSnapshots(context.Background(), false)
	if len(p.pending) != 1 || p.pending[0].snap.RptSeq != 0 || p.insts["SBER"].dirty.Load() {
		t.Errorf("after takeSnapshots: %d pending, dirty %v", len(p.pending), p.insts["SBER"].dirty.Load())
	}
}

// BenchmarkOnEvent is the publisher's cost on the engine's goroutine per event.
func BenchmarkOnEvent(b *testing.B) {
	p, ev := benchPublisher(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev.Entry.RptSeq++
		p.OnEvent(ev)
		if i&511 == 511 {
			p.ring.Pop(p.ring.Len())
		}
	}
}

func benchEntries(n int) []md.Entry {
	es := make([]md.Entry, n)
	for i := range es {
		es[i] = md.Entry{Action: md.Change, Type: md.Offer, Symbol: []byte("SBER"), RptSeq: uint32(1000 + i),
			Price: md.Dec(int64(30125+i), -2), Size: md.Dec(int64(10*i+5), 0), Orders: 3}
	}
	return es
}

// BenchmarkEncodeX/natsbus: the payload writer; /quickfix: the same X built as the OMS
// FIX service builds it (md.IncrementalToFIX) and serialised by quickfix.
func BenchmarkEncodeX(b *testing.B) {
	for _, n := range []int{1, 8} {
		es := benchEntries(n)
		b.Run("natsbus/entries="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 2048)
			for b.Loop() {
				buf = AppendX(buf[:0], "SBER", es, 1765000000000000000)
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run("quickfix/entries="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				msg := md.IncrementalToFIX(&md.Incremental{Entries: es}, md.ApplFields{MDReqID: "r1"})
				msg.Body.SetInt(20010, 1765000000)
				out = msg.Bytes()
			}
			b.SetBytes(int64(len(out)))
		})
	}
}

func BenchmarkParsePayload(b *testing.B) {
	for _, n := range []int{1, 8} {
		data := AppendX(nil, "SBER", benchEntries(n), 1765000000000000000)
		b.Run("entries="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var m Message
			for b.Loop() {
				if err := ParsePayload(data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConsumerApply is the consumer's cost per X of one entry: parse, RptSeq check,
// latency record, book update and the event to one subscriber.
func BenchmarkConsumerApply(b *testing.B) {
	c, err := NewConsumer(ConsumerConfig{Conn: &nats.Conn{}, Latency: hdrhistogram.New(1, int64(10*time.Second), 3)})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1024
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		a := md.New
		if i%2 == 1 {
			a = md.Delete
		}
		e := []md.Entry{{Action: a, Type: md.Bid, RptSeq: uint32(i + 1), Price: md.Dec(int64(10000+i/2%50), -2), Size: md.Dec(7, 0), Orders: 1}}
		msgs[i] = &nats.Msg{Subject: "md.G239-1-2-3-30001.SBER", Data: AppendX(nil, "SBER", e, time.Now().UnixNano())}
	}
	s := md.Snapshot{Symbol: []byte("SBER")}
	c.handle(&nats.Msg{Subject: "snap.G239-1-2-3-30001.SBER", Data: AppendW(nil, &s, -2, 0, 1)})
	events := 0
	c.Subscribe(func(*feed.Event) { events++ }, "*")
	in := c.insts["SBER"]
	c.handle(&nats.Msg{Subject: "status.G239-1-2-3-30001.SBER", Data: AppendF(nil, "SBER", 2, "", 1)}) // picks up the subscription
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			in.rptSeq = 0
			in.book.Clear()
		}
		c.handle(msgs[i%n])
	}
	if st := c.Stats(); st.Gaps != 0 || st.BookErrors != 0 || events == 0 {
		b.Fatalf("stats %+v, events %d", st, events)
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkGroupDispatch is a Group's cost per X of one entry handed to 100 members
// (parse once; per member: RptSeq check, book update, latency record): one op is one
// message to all members, ns/member-update the share of each.
func BenchmarkGroupDispatch(b *testing.B) {
	g, err := NewGroup(&nats.Conn{}, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	const members, n = 100, 1024
	cs := make([]*Consumer, members)
	for i := range cs {
		if cs[i], err = NewConsumer(ConsumerConfig{Group: g, Latency: hdrhistogram.New(1, int64(10*time.Second), 3)}); err != nil {
			b.Fatal(err)
		}
	}
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		a := md.New
		if i%2 == 1 {
			a = md.Delete
		}
		e := []md.Entry{{Action: a, Type: md.Bid, RptSeq: uint32(i + 1), Price: md.Dec(int64(10000+i/2%50), -2), Size: md.Dec(7, 0), Orders: 1}}
		msgs[i] = &nats.Msg{Subject: "md.G239-1-2-3-30001.SBER", Data: AppendX(nil, "SBER", e, time.Now().UnixNano())}
	}
	s := md.Snapshot{Symbol: []byte("SBER")}
	g.dispatch(cs, &nats.Msg{Subject: "snap.G239-1-2-3-30001.SBER", Data: AppendW(nil, &s, -2, 0, 1)})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			for _, c := range cs {
				in := c.insts["SBER"]
				in.rptSeq = 0
				in.book.Clear()
			}
		}
		g.dispatch(cs, msgs[i%n])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/members, "ns/member-update")
	for _, c := range cs {
		if st := c.Stats(); st.Gaps != 0 || st.BookErrors != 0 || st.Entries == 0 {
			b.Fatalf("stats %+v", st)
		}
	}
}
