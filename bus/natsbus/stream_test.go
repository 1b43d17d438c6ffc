package natsbus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/md"
)

// TestStreamUnavailable: JetStream does not answer (a cluster electing the stream's
// leader, for seconds): the publisher goes on publishing on core NATS, a consumer's
// books follow the ground truth, and the failed checks are counted. The stream was once
// checked on the writer's goroutine, two seconds per check, and the books froze.
func TestStreamUnavailable(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	// A black hole for the JetStream API: every request waits for its timeout.
	hole, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hole.Close)
	if _, err := hole.Subscribe("$JS.API.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := hole.Flush(); err != nil {
		t.Fatal(err)
	}
	c := startChainOn(t, chainConfig{instruments: 8, rate: 1000, count: 4000, conn: ConnConfig{URL: srv.ClientURL()}}, nil)
	cons := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	c.publish()
	c.waitData(t)
	waitBooks(t, "consumer", cons, c.truth(t, nil))
	ps := c.pub.Stats()
	if ps.StreamErrors < 2 {
		t.Errorf("the unanswered stream checks are not counted: %+v", ps)
	}
	if ps.Conflations != 0 || ps.Dropped != 0 {
		t.Errorf("the publisher conflated while only JetStream was unavailable: %+v", ps)
	}
}

// TestCacheReadRetried: a consumer that starts while the last-value cache cannot be read
// (here: direct gets not yet allowed) reads it again until it can, and so learns an
// instrument that never changes; before, it waited for the instrument's next W.
func TestCacheReadRetried(t *testing.T) {
	_, nc := embeddedConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	sc := DefaultStreamConfig(1, true)
	sc.AllowDirect = false
	if err := EnsureStream(ctx, nc, sc); err != nil {
		t.Fatal(err)
	}
	snap := md.Snapshot{Symbol: []byte("QUIET"), RptSeq: 7,
		Entries: []md.Entry{{Type: md.Bid, Price: md.Dec(1005, -1), Size: md.Dec(3, 0), Orders: 1}}}
	if _, err := nc.Request(Subject(PrefixSnap, "CH", "QUIET"), AppendW(nil, &snap, -1, 0, time.Now().UnixNano()), 5*time.Second); err != nil {
		t.Fatalf("storing the W: %v", err)
	}
	cons, err := NewConsumer(ConsumerConfig{Conn: nc, NoSnapRequests: true, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Stop)
	if st := cons.Stats(); st.LVCErrors == 0 || st.Instruments != 0 {
		t.Fatalf("the cache was read without direct gets: %+v", st)
	}
	sc.AllowDirect = true
	if err := EnsureStream(ctx, nc, sc); err != nil {
		t.Fatal(err)
	}
	for cons.Stats().Synchronised != 1 {
		if ctx.Err() != nil {
			t.Fatalf("the consumer never read the cache again: %+v", cons.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := book.Dump{{Symbol: "QUIET", RptSeq: 7, Bids: []book.DumpLevel{{Price: "100.5", Size: "3", Orders: 1}}, Asks: []book.DumpLevel{}}}
	if d := book.DiffDumps(dumpOf(t, cons), want); d != "" {
		t.Errorf("the cached W: %s", d)
	}
}
