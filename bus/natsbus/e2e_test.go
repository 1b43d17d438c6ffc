package natsbus

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/internal/netns"
	"fastfeed/publisher"
)

func TestMain(m *testing.M) { netns.RunTests(m) }

// chain is a market publisher, a feed handler following every instrument, an embedded
// NATS server and a Publisher of the handler's events, in process, in the private
// namespace.
type chain struct {
	ctx     context.Context
	p       *publisher.Publisher
	h       *feed.Handler
	srv     *Server
	nc      *nats.Conn
	pub     *Publisher
	symbols []string
	pubDone chan error
	url     string
}

type chainConfig struct {
	instruments int
	rate        float64
	count       int64
	server      ServerConfig
	conn        ConnConfig // URL filled in
	queue       int
}

func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

func startChain(tb testing.TB, cc chainConfig) *chain {
	tb.Helper()
	return startChainOn(tb, cc, nil)
}

// startChainOn starts a chain on cc.conn.URL if set (no embedded server), with the
// stream configuration sc (nil: the default).
func startChainOn(tb testing.TB, cc chainConfig, sc *StreamConfig) *chain {
	tb.Helper()
	ts, err := fast.LoadFile("../../fixtures/templates.xml")
	if err != nil {
		tb.Fatal(err)
	}
	ins, err := publisher.GenerateInstruments(cc.instruments)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	p, err := publisher.New(publisher.Config{Instruments: ins, Templates: ts, Rate: cc.rate, Count: cc.count, Seed: 7, Linger: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	c := &chain{ctx: ctx, p: p, pubDone: make(chan error, 1)}
	for _, in := range ins {
		c.symbols = append(c.symbols, in.Symbol)
	}
	if c.h, err = feed.New(feed.Config{Topics: c.symbols, Templates: ts}); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = c.h.Run(ctx) }()
	conn := cc.conn
	if conn.URL == "" {
		if c.srv, err = StartServer(cc.server); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.srv.Shutdown() })
		conn.URL = c.srv.URL()
	}
	c.url = conn.URL
	if c.nc, err = conn.Connect(PublisherOptions()...); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.nc.Close)
	chOf := func(s string) string { ch, _ := p.ChannelOf(s); return ch }
	c.pub, err = NewPublisher(PublisherConfig{Conn: c.nc, Engine: c.h, ChannelOf: chOf, SnapshotEvery: 300 * time.Millisecond,
		QueueSize: cc.queue, Stream: sc, Logger: logger()})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.pub.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.pub.Stop)
	c.h.Subscribe(c.pub.OnEvent, "*")
	return c
}

func (c *chain) publish() { go func() { c.pubDone <- c.p.Run(c.ctx) }() }

func (c *chain) waitData(tb testing.TB) {
	tb.Helper()
	select {
	case <-c.p.DataDone():
	case <-time.After(60 * time.Second):
		tb.Fatal("publisher did not finish")
	}
}

// truth is the publisher's ground truth, restricted to keep (nil: all).
func (c *chain) truth(tb testing.TB, keep func(string) bool) book.Dump {
	tb.Helper()
	var b bytes.Buffer
	if err := c.p.WriteDump(&b); err != nil {
		tb.Fatal(err)
	}
	d, err := book.ReadDump(&b)
	if err != nil {
		tb.Fatal(err)
	}
	if keep == nil {
		return d
	}
	var out book.Dump
	for _, x := range d {
		if keep(x.Symbol) {
			out = append(out, x)
		}
	}
	return out
}

func (c *chain) consumer(tb testing.TB, cfg ConsumerConfig, conn ConnConfig) *Consumer {
	tb.Helper()
	if conn.URL == "" {
		conn.URL = c.url
	}
	if cfg.Conn == nil {
		nc, err := conn.Connect()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(nc.Close)
		cfg.Conn = nc
	}
	cfg.Logger = logger()
	cons, err := NewConsumer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := cons.Start(c.ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cons.Stop)
	return cons
}

func dumpOf(tb testing.TB, c *Consumer) book.Dump {
	var d book.Dump
	if err := c.Do(context.Background(), func() { d = c.Dump() }); err != nil {
		tb.Fatal(err)
	}
	return d
}

// waitBooks waits until the consumer's books equal want.
func waitBooks(tb testing.TB, name string, c *Consumer, want book.Dump) {
	tb.Helper()
	deadline := time.Now().Add(45 * time.Second) // under -race on a loaded machine consumers can lag by seconds
	for {
		diff := book.DiffDumps(dumpOf(tb, c), want)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: books differ from the ground truth (stats %+v):\n%s", name, c.Stats(), diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEnd: market publisher -> multicast -> handler -> Publisher -> NATS ->
// Consumer; the consumer's books, rebuilt only from what it received, equal the
// publisher's ground truth, with no hole and no conflation.
func TestEndToEnd(t *testing.T) {
	c := startChain(t, chainConfig{instruments: 8, rate: 2000, count: 4000})
	cons := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	c.publish()
	c.waitData(t)
	waitBooks(t, "consumer", cons, c.truth(t, nil))
	st, ps := cons.Stats(), c.pub.Stats()
	if st.Gaps != 0 || st.ParseErrors != 0 || st.BookErrors != 0 || st.Entries == 0 || st.Synchronised != 8 {
		t.Errorf("consumer counters: %+v", st)
	}
	if ps.Conflations != 0 || ps.PublishErrors != 0 || ps.Entries == 0 || ps.Snapshots < 8 {
		t.Errorf("publisher counters: %+v", ps)
	}
	t.Logf("publisher %+v", ps)
	t.Logf("consumer %+v", st)
}

// TestLateJoiner: consumers that start while the data flows read the last-value cache,
// find the RptSeq hole between its W and the live Xs, and converge: one by asking the
// publisher for a fresh W, one (no requests) from the periodic Ws alone.
func TestLateJoiner(t *testing.T) {
	c := startChain(t, chainConfig{instruments: 8, rate: 1000, count: 3000})
	c.publish()
	time.Sleep(800 * time.Millisecond) // a third of the data
	asking := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	patient := c.consumer(t, ConsumerConfig{NoSnapRequests: true, Patterns: []feed.Pattern{"SBER", "G*"}}, ConnConfig{})
	c.waitData(t)
	waitBooks(t, "asking", asking, c.truth(t, nil))
	waitBooks(t, "patient", patient, c.truth(t, func(s string) bool { return s == "SBER" || strings.HasPrefix(s, "G") }))
	for name, cons := range map[string]*Consumer{"asking": asking, "patient": patient} {
		st := cons.Stats()
		if st.LVCReads == 0 || st.Snapshots == 0 {
			t.Errorf("%s did not start from the last-value cache: %+v", name, st)
		}
		t.Logf("%s %+v", name, st)
	}
	if asking.Stats().SnapRequests == 0 || patient.Stats().SnapRequests != 0 {
		t.Errorf("snapshot requests: asking %d, patient %d", asking.Stats().SnapRequests, patient.Stats().SnapRequests)
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServerRestart: the NATS server goes away mid-run and comes back on the same port.
// The handler never stalls; the publisher counts refused publishes, conflates, and
// after reconnecting sends fresh Ws; the consumer's books equal the ground truth.
func TestServerRestart(t *testing.T) {
	addr := freePort(t)
	dir := t.TempDir()
	c := startChain(t, chainConfig{instruments: 8, rate: 1000, count: 3000, server: ServerConfig{Listen: addr, StoreDir: dir}})
	cons := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	c.publish()
	time.Sleep(700 * time.Millisecond)
	c.srv.Shutdown()
	time.Sleep(700 * time.Millisecond) // data keeps flowing into the handler
	// Cut off, the consumer shows its books stale, not frozen as if current.
	for _, b := range dumpOf(t, cons) {
		if !b.Stale {
			t.Errorf("%s: not stale while NATS is away (rptseq %d)", b.Symbol, b.RptSeq)
		}
	}
	srv, err := StartServer(ServerConfig{Listen: addr, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	c.waitData(t)
	waitBooks(t, "consumer", cons, c.truth(t, nil))
	ps, st := c.pub.Stats(), cons.Stats()
	t.Logf("publisher %+v", ps)
	t.Logf("consumer %+v", st)
	if ps.Disconnects == 0 || ps.Reconnects == 0 || ps.Conflations == 0 || ps.Dropped == 0 || ps.Resnapshots < 8 {
		t.Errorf("publisher counters show no outage handled: %+v", ps)
	}
	if st.Reconnects == 0 || st.Resyncs <= 8 {
		t.Errorf("consumer counters show no resynchronisation: %+v", st)
	}
	var hs feed.Stats
	_ = c.h.Do(c.ctx, func() { hs = c.h.Stats() })
	if hs.Gaps != 0 || hs.KernelDrops != 0 {
		t.Errorf("the handler lost data while NATS was away: %+v", hs)
	}
}

// TestSlowWriter: a ring too small for the rate conflates instruments instead of
// blocking the handler, and the consumer still converges.
func TestSmallQueue(t *testing.T) {
	c := startChain(t, chainConfig{instruments: 8, rate: 3000, count: 4000, queue: 4})
	cons := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	c.publish()
	c.waitData(t)
	waitBooks(t, "consumer", cons, c.truth(t, nil))
	if ps := c.pub.Stats(); ps.Conflations == 0 || ps.Dropped == 0 {
		t.Errorf("a 4-slot queue at 3000/s never conflated: %+v", ps)
	}
}
