package opshttp

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/fixtures"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/publisher"
)

// The tests that run a publisher and a handler send multicast: the test binary runs in a
// private network namespace.
func TestMain(m *testing.M) { netns.RunTests(m) }

const port = 30001

func templates(t testing.TB) *fast.Templates {
	t.Helper()
	ts, err := fixtures.Templates()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// gen makes the datagrams of a small feed, one channel per symbol on the default mapping,
// and keeps the ground truth: each book and each channel's last sequence number.
type gen struct {
	t     testing.TB
	codec *md.Codec
	seq   map[string]uint32 // channel -> last sequence number
	rpt   map[string]uint32
	truth map[string]*book.MBP
}

func newGen(t testing.TB) *gen {
	c, err := md.NewCodec(templates(t))
	if err != nil {
		t.Fatal(err)
	}
	return &gen{t: t, codec: c, seq: map[string]uint32{}, rpt: map[string]uint32{}, truth: map[string]*book.MBP{}}
}

func channelOf(symbol string) netip.AddrPort {
	return netip.AddrPortFrom(mcast.DefaultMapping().Group(symbol), port)
}

// datagram is one datagram to hand to an Engine.
type datagram struct {
	dst netip.AddrPort
	buf []byte
	seq uint32
}

// entry makes the next incremental of symbol with one entry (a trade when typ is md.Trade).
func (g *gen) entry(symbol string, action md.Action, typ md.EntryType, px, size int64) datagram {
	g.t.Helper()
	ch := mcast.ChannelName(channelOf(symbol))
	g.seq[ch]++
	g.rpt[symbol]++
	e := md.Entry{Action: action, Type: typ, Symbol: []byte(symbol), RptSeq: g.rpt[symbol], Price: md.Dec(px, -2),
		Size: md.Dec(size, 0), Orders: 1}
	b := g.truth[symbol]
	if b == nil {
		b, _ = book.NewMBP(book.Config{PriceExp: -2})
		g.truth[symbol] = b
	}
	if typ != md.Trade {
		et := book.EntryBid
		if typ == md.Offer {
			et = book.EntryOffer
		}
		if err := b.Apply(book.Update{Action: book.Action(action), Type: et, Price: px, Size: size, Orders: 1}); err != nil {
			g.t.Fatalf("ground truth: %v", err)
		}
	}
	b.SetRptSeq(int64(g.rpt[symbol]))
	payload := binary.LittleEndian.AppendUint32(nil, g.seq[ch])
	payload, err := g.codec.AppendIncremental(payload, &md.Incremental{Header: md.Header{SeqNum: g.seq[ch]}, Entries: []md.Entry{e}})
	if err != nil {
		g.t.Fatal(err)
	}
	return datagram{dst: channelOf(symbol), buf: payload, seq: g.seq[ch]}
}

// levels makes n rounds of updates of symbols: new levels first, then changes and trades.
func (g *gen) levels(symbols []string, rounds int) []datagram {
	var out []datagram
	for i := range rounds {
		for j, sym := range symbols {
			px := int64(10000 + j*1000 + i%10)
			switch {
			case i < 10:
				out = append(out, g.entry(sym, md.New, md.Bid, px, 100))
				out = append(out, g.entry(sym, md.New, md.Offer, px+100, 50))
			case i%3 == 0:
				out = append(out, g.entry(sym, md.New, md.Trade, px, int64(i)))
			default:
				out = append(out, g.entry(sym, md.Change, md.Bid, px, int64(100+i)))
			}
		}
	}
	return out
}

// snapshot returns symbol's ground truth as a snapshot at its channel's last number.
func (g *gen) snapshot(symbol string) md.Snapshot {
	b := g.truth[symbol]
	s := md.Snapshot{Symbol: []byte(symbol), RptSeq: g.rpt[symbol], LastMsgSeqNumProcessed: g.seq[mcast.ChannelName(channelOf(symbol))]}
	for _, side := range []book.Side{book.Bid, book.Ask} {
		typ := md.Bid
		if side == book.Ask {
			typ = md.Offer
		}
		for _, l := range b.AppendLevels(nil, side) {
			s.Entries = append(s.Entries, md.Entry{Type: typ, Price: md.Dec(l.Price, -2), Size: md.Dec(l.Size, 0), Orders: uint32(l.Orders)})
		}
	}
	return s
}

func (g *gen) dump(symbols ...string) book.Dump {
	var d book.Dump
	for _, s := range symbols {
		d = append(d, book.DumpOf(s, g.truth[s]))
	}
	return d
}

// driver runs an Engine on its own goroutine, as a Handler's receiver would: it applies the
// functions handed to it and polls every millisecond, on the wall clock.
type driver struct {
	h    *feed.Engine
	work chan func(now int64)
	stop chan struct{}
	done chan struct{}
}

func drive(t testing.TB, h *feed.Engine) *driver {
	d := &driver{h: h, work: make(chan func(int64)), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case fn := <-d.work:
				fn(time.Now().UnixNano())
			case <-tick.C:
			case <-d.stop:
				h.Close()
				return
			}
			h.DoWork(time.Now().UnixNano())
		}
	}()
	t.Cleanup(func() {
		close(d.stop)
		<-d.done
	})
	return d
}

// do runs fn on the handler's goroutine and waits for it.
func (d *driver) do(fn func(now int64)) {
	done := make(chan struct{})
	d.work <- func(now int64) { fn(now); close(done) }
	<-done
}

// send hands the datagrams to the handler.
func (d *driver) send(ds ...datagram) {
	d.do(func(now int64) {
		for _, x := range ds {
			d.h.Receive(x.dst, x.buf, now)
		}
	})
}

// fakeRecovery answers from a gen: retransmissions are always refused, snapshots refused
// while refuse is set.
type fakeRecovery struct {
	sink   feed.Sink
	refuse atomic.Bool
	mu     sync.Mutex
	g      *gen
	snaps  atomic.Int64
}

func (f *fakeRecovery) Start(s feed.Sink) { f.sink = s }
func (f *fakeRecovery) Retransmit(channel string, beg, end uint32) {
	go f.sink.Failed(channel, false, "refused by the test")
}
func (f *fakeRecovery) Snapshot(channel string, symbols []string) {
	if f.refuse.Load() {
		go f.sink.Failed(channel, true, "refused by the test")
		return
	}
	f.mu.Lock()
	var out []md.Snapshot
	for _, s := range symbols {
		out = append(out, f.g.snapshot(s))
	}
	f.mu.Unlock()
	f.snaps.Add(1)
	go f.sink.Snapshots(channel, out)
}

// get fetches url and returns the status and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// serve starts s on a loopback port and returns its base URL (no trailing slash).
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.Serve(ctx, ln)
	t.Cleanup(func() {
		cancel()
		s.Close()
	})
	return strings.TrimSuffix(s.URL(), "/")
}

// directRecovery serves a handler's recovery straight from a publisher's hooks (no FIX
// session): retransmissions and snapshots, except for the channel refused, whose requests
// all fail.
type directRecovery struct {
	p      *publisher.Publisher
	ctx    context.Context
	refuse string
	sink   feed.Sink
	wg     sync.WaitGroup
}

func (r *directRecovery) Start(s feed.Sink) { r.sink = s }

func (r *directRecovery) Retransmit(channel string, beg, end uint32) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if channel == r.refuse {
			r.sink.Failed(channel, false, "refused by the test")
			return
		}
		ds, err := r.p.Retransmit(r.ctx, channel, beg, end)
		if err != nil {
			r.sink.Failed(channel, false, err.Error())
			return
		}
		codec, err := md.NewCodec(r.p.Templates())
		if err != nil {
			r.sink.Failed(channel, false, err.Error())
			return
		}
		for _, d := range ds {
			seq, _, err := publisher.DecodeDatagram(codec, d)
			if err != nil {
				r.sink.Failed(channel, false, err.Error())
				return
			}
			m := new(md.Message)
			m.CopyFrom(&codec.Message)
			r.sink.Retransmitted(channel, seq, m)
		}
	}()
}

func (r *directRecovery) Snapshot(channel string, symbols []string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if channel == r.refuse {
			r.sink.Failed(channel, true, "refused by the test")
			return
		}
		snaps, err := r.p.Snapshot(r.ctx, channel, symbols)
		if err != nil {
			r.sink.Failed(channel, true, err.Error())
			return
		}
		r.sink.Snapshots(channel, snaps)
	}()
}

// system is a publisher and a handler joined on loopback in the test's namespace, with
// the handler's operator view served.
type system struct {
	p       *publisher.Publisher
	h       *feed.Handler
	s       *Server
	url     string
	symbols []string
	stale   string // the symbol whose channel's recovery is refused ("" for none)
	pubDone chan error
	start   func() // starts the publisher (with systemConfig.hold)
}

type systemConfig struct {
	instruments int
	rate        float64
	duration    time.Duration
	inject      feed.Inject
	refuse      string // symbol whose channel's recovery is refused
	hold        bool   // the publisher waits for system.start
}

func startSystem(t *testing.T, c systemConfig) *system {
	t.Helper()
	netns.Require(t)
	ts := templates(t)
	ins, err := publisher.GenerateInstruments(c.instruments)
	if err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(publisher.Config{Instruments: ins, Templates: ts, Rate: c.rate, Duration: c.duration,
		Linger: time.Minute, Seed: 7, Heartbeat: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sys := &system{p: p, pubDone: make(chan error, 1), stale: c.refuse}
	for _, in := range ins {
		sys.symbols = append(sys.symbols, in.Symbol)
	}
	rec := &directRecovery{p: p, ctx: ctx}
	if c.refuse != "" {
		rec.refuse, _ = p.ChannelOf(c.refuse)
	}
	h, err := feed.New(feed.Config{Topics: sys.symbols, Templates: ts, Recovery: rec, Inject: c.inject})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sys.h = h
	feedDone := make(chan error, 1)
	go func() { feedDone <- h.Run(ctx) }()
	sys.s, err = New(Config{Role: "feed", Handler: h, NoDataAfter: time.Minute})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sys.url = serve(t, sys.s)
	var once sync.Once
	sys.start = func() { once.Do(func() { go func() { sys.pubDone <- p.Run(ctx) }() }) }
	if !c.hold {
		sys.start()
	}
	t.Cleanup(func() {
		cancel()
		sys.start() // if held, Run returns at once: ctx is done
		<-feedDone
		<-sys.pubDone
		rec.wg.Wait()
	})
	return sys
}

// truth returns the publisher's ground truth once its data has stopped.
func (sys *system) truth(t *testing.T) book.Dump {
	t.Helper()
	select {
	case <-sys.p.DataDone():
	case <-time.After(time.Minute):
		t.Fatal("the publisher's data did not stop")
	}
	var b strings.Builder
	if err := sys.p.WriteDump(&b); err != nil {
		t.Fatal(err)
	}
	d, err := book.ReadDump(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// settled waits until every channel but the refused one is live with nothing buffered.
func (sys *system) settled(t *testing.T) {
	t.Helper()
	refused, _ := sys.p.ChannelOf(sys.stale)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := sys.h.Ops(context.Background(), feed.OpsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, c := range st.Channels {
			if c.Channel != refused && (c.OpenHole || c.Buffered > 0) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channels did not settle: %+v", st.Channels)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// top cuts each side of the books to depth levels.
func top(d book.Dump, depth int) book.Dump {
	out := make(book.Dump, len(d))
	for i, b := range d {
		b.Bids = b.Bids[:min(depth, len(b.Bids))]
		b.Asks = b.Asks[:min(depth, len(b.Asks))]
		out[i] = b
	}
	return out
}
