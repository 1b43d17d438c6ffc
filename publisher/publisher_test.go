package publisher

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

func newPublisher(t testing.TB, cfg Config) *Publisher {
	t.Helper()
	if cfg.Templates == nil {
		cfg.Templates = loadTemplates(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runCaptured runs p's loop on a capture writer (no network) to the end.
func runCaptured(t *testing.T, p *Publisher) []datagram {
	t.Helper()
	w := &captureWriter{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.state.Store(stateRunning)
	if err := p.run(ctx, w); err != nil {
		t.Fatal(err)
	}
	return w.datagrams()
}

func mustMapping(t testing.TB, base string, size uint32) mcast.Mapping {
	t.Helper()
	m, err := mcast.NewMapping(netip.MustParseAddr(base), size)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLoopCaptured runs the whole loop without a network: colliding topics
// (a mapping of 8 groups), a B line, a small payload limit (so updates are
// split), and checks the feed and that it rebuilds the dumped books.
func TestLoopCaptured(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "books.jsonl")
	p := newPublisher(t, Config{
		Instruments:         generate(t, 30),
		Mapping:             mustMapping(t, "239.192.0.1", 8),
		B:                   BLine{Port: 30002},
		Rate:                0,
		Count:               3000,
		Seed:                5,
		PayloadLimit:        MinPayloadLimit,
		Heartbeat:           20 * time.Millisecond,
		DefinitionsInterval: 10 * time.Millisecond,
		DumpBooks:           dump,
	})
	got := runCaptured(t, p)
	if len(p.Channels()) > 9 {
		t.Fatalf("%d channels for 8 groups", len(p.Channels()))
	}
	r := checkFeed(t, p, got)
	st := p.Stats()
	if st.Incrementals < 3000 || uint64(r.incrementals) != st.Incrementals {
		t.Errorf("stats %d incrementals, %d received, want >= 3000", st.Incrementals, r.incrementals)
	}
	if r.continued == 0 || uint64(r.continued) != st.Splits {
		t.Errorf("%d continued incrementals, stats say %d; want some with a %d-byte limit", r.continued, st.Splits, MinPayloadLimit)
	}
	if r.heartbeats < len(p.Channels()) {
		t.Errorf("%d heartbeats, want at least the end-of-data one per channel", r.heartbeats)
	}
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if d := book.DiffDumps(dumpOf(t, r.books), readDumpFile(t, data)); d != "" {
		t.Fatalf("books rebuilt from the feed differ from the dump:\n%s", d)
	}
	var buf bytes.Buffer
	if err := p.WriteDump(&buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("WriteDump after the run: %v, same as the file: %v", err, bytes.Equal(buf.Bytes(), data))
	}
}

// TestSplit sends one large update and checks its parts.
func TestSplit(t *testing.T) {
	for _, limit := range []int{MinPayloadLimit, DefaultPayloadLimit} {
		p := newPublisher(t, Config{Instruments: generate(t, 5), Mapping: mustMapping(t, "239.1.1.1", 1), PayloadLimit: limit})
		w := &captureWriter{}
		p.w = w
		var es []SimEntry
		for range 400 {
			es = p.sim.Step(es)
		}
		entries := make([]md.Entry, len(es))
		for i := range es {
			entries[i] = es[i].Entry
		}
		p.incremental(0, entries)
		p.send()
		if p.err != nil {
			t.Fatal(p.err)
		}
		got := w.datagrams()
		if len(got) < 2 {
			t.Fatalf("limit %d: %d entries in %d datagram(s)", limit, len(entries), len(got))
		}
		c := newCodec(t)
		var back []md.Entry
		for i, d := range got {
			if len(d.data)-4 > limit {
				t.Errorf("limit %d: part %d is %d bytes", limit, i, len(d.data)-4)
			}
			seq, kind, err := DecodeDatagram(c, d.data)
			if err != nil || kind != md.KindIncremental || seq != uint32(i+1) || c.Incremental.SeqNum != seq {
				t.Fatalf("limit %d: part %d: %v %v seq %d", limit, i, kind, err, seq)
			}
			if last := i == len(got)-1; c.Incremental.Continued == last {
				t.Errorf("limit %d: part %d of %d: Continued %v", limit, i, len(got), c.Incremental.Continued)
			}
			for _, e := range c.Incremental.Entries {
				e.Symbol = bytes.Clone(e.Symbol)
				back = append(back, e)
			}
		}
		if len(back) != len(entries) {
			t.Fatalf("limit %d: %d entries back of %d", limit, len(back), len(entries))
		}
		for i := range back {
			a, b := back[i], entries[i]
			if a.Action != b.Action || a.Type != b.Type || !bytes.Equal(a.Symbol, b.Symbol) || a.RptSeq != b.RptSeq ||
				a.Price != b.Price || a.Size != b.Size || a.Orders != b.Orders {
				t.Fatalf("limit %d: entry %d: %+v, sent %+v", limit, i, a, b)
			}
		}
		if p.chans[0].seq != uint32(len(got)) || p.Stats().Splits != 0 && p.st.Splits != uint64(len(got)-1) {
			t.Errorf("limit %d: channel seq %d, splits %d, parts %d", limit, p.chans[0].seq, p.st.Splits, len(got))
		}
	}
}

// TestHotPathNoAllocs: a send tick (simulate, encode, sequence, retain,
// queue, write) allocates nothing.
func TestHotPathNoAllocs(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 50), Retention: 200, RetentionBytes: MinRetentionBytes, B: BLine{Port: 30002}})
	p.w = discardWriter{}
	epoch := time.Now()
	p.clock(epoch)
	p.startup(context.Background())
	for range 2000 { // books at depth, arena wrapped
		p.produce(maxTickDatagrams)
		p.send()
	}
	for _, want := range []int{1, 7, maxTickDatagrams} {
		allocs := testing.AllocsPerRun(50, func() {
			p.clock(epoch)
			p.produce(want)
			p.heartbeats()
			p.send()
		})
		if allocs != 0 {
			t.Errorf("tick of %d datagrams: %v allocations", want, allocs)
		}
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	if p.ret.tail == 0 {
		t.Error("the retention ring never wrapped")
	}
}

// TestRetransmitAndSnapshot serves requests from the loop while it lingers
// and after it has stopped.
func TestRetransmitAndSnapshot(t *testing.T) {
	p := newPublisher(t, Config{
		Instruments:   generate(t, 3),
		Mapping:       mustMapping(t, "239.1.1.1", 1), // one channel
		Count:         6000,
		PayloadLimit:  MinPayloadLimit, // small datagrams: many of them cheaply
		Retention:     3000,
		MaxRetransmit: 2500,
		Linger:        time.Minute,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := p.Channels()[0].Name
	if _, err := p.Retransmit(ctx, ch, 1, 1); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before Run: %v", err)
	}
	w := &captureWriter{}
	p.state.Store(stateRunning)
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, w) }()
	<-p.DataDone()

	r := checkFeed(t, p, w.datagrams())
	last := r.lastSeq[ch]
	if last < 6000 {
		t.Fatalf("last sequence number %d", last)
	}
	seqd := r.sequenced[ch]
	check := func(what string, beg, end uint32, got [][]byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s %d..%d: %v", what, beg, end, err)
		}
		if len(got) != int(end-beg+1) {
			t.Fatalf("%s %d..%d: %d datagrams", what, beg, end, len(got))
		}
		for i, d := range got {
			if !bytes.Equal(d, seqd[int(beg)-1+i]) {
				t.Fatalf("%s %d..%d: datagram %d differs from the one sent", what, beg, end, beg+uint32(i))
			}
		}
	}
	// A range of many iterations' budgets, served by the loop.
	beg, end := last-2499, last-10
	got, err := p.Retransmit(ctx, ch, beg, end)
	check("loop", beg, end, got, err)

	for _, tc := range []struct {
		beg, end uint32
		ch       string
		want     error
	}{
		{1, 5, ch, ErrBeyondRetention},
		{last, last + 1, ch, ErrBeyondRetention},
		{1, 2501, ch, ErrRangeTooLarge},
		{0, 5, ch, ErrInvalidRange},
		{6, 5, ch, ErrInvalidRange},
		{1, 1, "G239.9.9.9:1", ErrUnknownChannel},
	} {
		_, err := p.Retransmit(ctx, tc.ch, tc.beg, tc.end)
		var re *RangeError
		if !errors.Is(err, tc.want) || !errors.As(err, &re) {
			t.Errorf("Retransmit(%s, %d, %d) = %v, want %v", tc.ch, tc.beg, tc.end, err, tc.want)
		}
		if tc.want == ErrBeyondRetention && (re.Last != last || re.First < last-2999 || re.First > beg) {
			t.Errorf("Retransmit(%d, %d): retained %d..%d, last %d", tc.beg, tc.end, re.First, re.Last, last)
		}
	}

	snaps, err := p.Snapshot(ctx, ch, nil)
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshot of %s: %d, %v", ch, len(snaps), err)
	}
	var buf bytes.Buffer
	if err := p.WriteDump(&buf); err != nil {
		t.Fatal(err)
	}
	want := readDumpFile(t, buf.Bytes())
	if d := book.DiffDumps(dumpOf(t, snapshotBooks(t, p, snaps)), want); d != "" {
		t.Errorf("snapshots differ from the dump:\n%s", d)
	}
	for _, s := range snaps {
		if s.LastMsgSeqNumProcessed != last {
			t.Errorf("%s: snapshot at %d, last sequence number %d", s.Symbol, s.LastMsgSeqNumProcessed, last)
		}
	}
	if _, err := p.Snapshot(ctx, "", []string{"NOPE"}); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("unknown symbol: %v", err)
	}
	if _, err := p.Snapshot(ctx, p.Channels()[1].Name, nil); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("definitions channel: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// After Run: served in the caller, from the frozen state.
	got, err = p.Retransmit(context.Background(), ch, last-100, last)
	check("after stop", last-100, last, got, err)
	if s, err := p.Snapshot(context.Background(), "", []string{"SBER"}); err != nil || len(s) != 1 || string(s[0].Symbol) != "SBER" {
		t.Errorf("snapshot after stop: %v %v", s, err)
	}
}

// snapshotBooks builds books from snapshots.
func snapshotBooks(t *testing.T, p *Publisher, snaps []md.Snapshot) map[string]*book.MBP {
	t.Helper()
	out := map[string]*book.MBP{}
	for _, s := range snaps {
		b := snapshotBook(t, p, &s)
		out[string(s.Symbol)] = b
	}
	return out
}

func snapshotBook(t *testing.T, p *Publisher, s *md.Snapshot) *book.MBP {
	t.Helper()
	in := p.cfg.Instruments[p.bySymbol[string(s.Symbol)]]
	b, err := book.NewMBP(book.Config{PriceExp: int(in.PriceExp), SizeExp: int(in.SizeExp)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.Entries {
		e.Action = md.New
		u, err := toUpdate(&e, in.PriceExp, in.SizeExp)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	b.SetRptSeq(int64(s.RptSeq))
	return b
}

func TestConfigErrors(t *testing.T) {
	ts := loadTemplates(t)
	good := func() Config { return Config{Instruments: generate(t, 3), Templates: ts} }
	dup := good()
	dup.Instruments[1].Symbol = dup.Instruments[0].Symbol
	offTick := good()
	offTick.Instruments[2].StartPrice++ // LKOH, tick 0.5
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no templates", Config{Instruments: generate(t, 1)}, "Templates is nil"},
		{"no instruments", Config{Templates: ts}, "no instruments"},
		{"duplicate", dup, `symbol "SBER" already given`},
		{"off tick", offTick, "not a multiple of the tick"},
		{"negative rate", func() Config { c := good(); c.Rate = -1; return c }(), "rate -1"},
		{"negative spin wait", func() Config { c := good(); c.SpinWait = -1; return c }(), "spin wait -1ns is negative"},
		{"payload", func() Config { c := good(); c.PayloadLimit = 10; return c }(), "payload limit 10"},
		{"depth", func() Config { c := good(); c.MinDepth, c.MaxDepth = 5, 3; return c }(), "depth 5..3"},
		{"iface", func() Config { c := good(); c.Interface = netip.MustParseAddr("239.1.1.1"); return c }(), "not a unicast"},
		{"b is a", func() Config { c := good(); c.B.Port = DefaultPort; return c }(), "the B line is the A line"},
		{"defs collide", func() Config {
			c := good()
			c.Mapping = mustMapping(t, "239.5.5.5", 1)
			c.DefinitionsGroup = netip.MustParseAddr("239.5.5.5")
			return c
		}(), "is also the channel of"},
		{"users", func() Config { c := good(); c.Recovery.Users = []User{{"a", "b"}, {"a", "c"}}; return c }(), `"a" given twice`},
		{"symbol", func() Config { c := good(); c.Instruments[2].Symbol = "A B"; return c }(), "not printable ASCII"},
		{"long description", func() Config {
			c := good()
			c.Instruments[0].Description = string(bytes.Repeat([]byte("x"), 2000))
			return c
		}(), "over the payload limit"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 1), Recovery: RecoveryConfig{Users: []User{{"demo", "demo"}, {"ops", "s3cret"}}}})
	for _, tc := range []struct {
		u, pw string
		ok    bool
	}{{"demo", "demo", true}, {"ops", "s3cret", true}, {"ops", "demo", false}, {"", "", false}, {"demo", "", false}} {
		if got := p.Authenticate(tc.u, tc.pw); got != tc.ok {
			t.Errorf("Authenticate(%q, %q) = %v", tc.u, tc.pw, got)
		}
	}
	r := p.Recovery()
	if r.Listen != DefaultRecoveryListen || r.CompID != DefaultRecoveryCompID || len(r.Users) != 2 {
		t.Errorf("Recovery() = %+v", r)
	}
}

// TestDumpPathFailsEarly: a dump file that cannot be created fails Run
// before any datagram is sent.
func TestDumpPathFailsEarly(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 2), Count: 10, DumpBooks: filepath.Join(t.TempDir(), "no", "such", "dir.jsonl")})
	w := &captureWriter{}
	p.state.Store(stateRunning)
	err := p.run(context.Background(), w)
	if err == nil || !strings.Contains(err.Error(), "dump books") {
		t.Fatalf("Run: %v", err)
	}
	if n := len(w.datagrams()); n != 0 {
		t.Errorf("%d datagrams sent", n)
	}
}

// stallWriter captures, and stalls once for stall when its count of writes reaches at.
type stallWriter struct {
	captureWriter
	n, at int
	stall time.Duration
}

func (w *stallWriter) WriteBatch(ms []mcast.Message) (int, error) {
	if w.n++; w.n == w.at {
		time.Sleep(w.stall)
	}
	return w.captureWriter.WriteBatch(ms)
}

// TestMaxLag: a loop stalled for 600 ms at 200 incrementals/s catches up by sending
// the backlog in a burst, unless MaxLag bounds it: then what was due more than MaxLag
// ago is skipped and counted, and the rest of the run keeps the rate. (A low rate, so
// that a loaded machine under -race still catches up.)
func TestMaxLag(t *testing.T) {
	for _, maxLag := range []time.Duration{0, 20 * time.Millisecond} {
		p := newPublisher(t, Config{Instruments: generate(t, 4), Rate: 200, Duration: 1500 * time.Millisecond, Seed: 3,
			Heartbeat: time.Second, MaxLag: maxLag})
		w := &stallWriter{at: 20, stall: 600 * time.Millisecond}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p.state.Store(stateRunning)
		if err := p.run(ctx, w); err != nil {
			t.Fatal(err)
		}
		cancel()
		st := p.Stats()
		switch {
		case maxLag == 0 && (st.Skipped != 0 || st.Incrementals < 280):
			t.Errorf("no max lag: %d incrementals, %d skipped; want the whole 1500 ms at 200/s sent", st.Incrementals, st.Skipped)
		case maxLag > 0 && (st.Skipped < 90 || st.Incrementals > 220 || st.Incrementals+st.Skipped < 280):
			t.Errorf("max lag %v: %d incrementals, %d skipped; want about 120 skipped", maxLag, st.Incrementals, st.Skipped)
		}
		t.Logf("max lag %v: %d incrementals, %d skipped, max lag seen %v", maxLag, st.Incrementals, st.Skipped, st.MaxLag)
	}
}

// sizeWriter records how many datagrams each WriteBatch (sendmmsg) was given.
type sizeWriter struct {
	captureWriter
	sizes []int
}

func (w *sizeWriter) WriteBatch(ms []mcast.Message) (int, error) {
	w.sizes = append(w.sizes, len(ms))
	return w.captureWriter.WriteBatch(ms)
}

// TestSpinWait: with SpinWait the paced loop sends each datagram when it is due, one a
// sendmmsg, where sleeping sends what came due while Go's timer overslept (logged, not
// asserted: that is the runtime's business); the rate is kept either way.
func TestSpinWait(t *testing.T) {
	const rate, dur = 2000, 400 * time.Millisecond
	for _, spin := range []time.Duration{0, 5 * time.Millisecond} {
		p := newPublisher(t, Config{Instruments: generate(t, 4), Rate: rate, Duration: dur, Seed: 5,
			NoStatus: true, Heartbeat: time.Second, SpinWait: spin})
		w := &sizeWriter{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p.state.Store(stateRunning)
		err := p.run(ctx, w)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if want := uint64(rate * dur.Seconds()); st.Incrementals < want*9/10 || st.Incrementals > want*11/10 {
			t.Errorf("spin wait %v: %d incrementals in %v, want about %d", spin, st.Incrementals, dur, want)
		}
		sizes := slices.Sorted(slices.Values(w.sizes))
		median := sizes[len(sizes)/2]
		t.Logf("spin wait %v: %d incrementals in %d sendmmsg, median %d datagrams, max %d", spin, st.Incrementals, len(sizes), median, sizes[len(sizes)-1])
		if spin > 0 && median != 1 {
			t.Errorf("spin wait %v: median %d datagrams a sendmmsg, want 1", spin, median)
		}
	}
}

// TestSpinReturns: a spinning wait ends early for a request, which it queues, and for the
// end of the context.
func TestSpinReturns(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 1)})
	r := &request{ch: 7}
	go func() { time.Sleep(20 * time.Millisecond); p.reqs <- r }()
	start := time.Now()
	p.spin(context.Background(), time.Minute)
	if el := time.Since(start); el > 30*time.Second || len(p.queue) != 1 || p.queue[0] != r {
		t.Fatalf("after %v: queue %v, want the request", el, p.queue)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p.spin(ctx, time.Minute)
	if ctx.Err() == nil {
		t.Fatal("spin returned before its context ended, with nothing to do")
	}
	start = time.Now()
	p.spin(context.Background(), 2*time.Millisecond)
	if el := time.Since(start); el < 2*time.Millisecond {
		t.Errorf("a spin of 2ms returned after %v", el)
	}
}
