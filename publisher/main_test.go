package publisher

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/md"
)

// The multicast tests and benchmarks send datagrams: the whole test binary
// runs in a private network namespace, never on a real interface.
func TestMain(m *testing.M) { netns.RunTests(m) }

var (
	templatesOnce sync.Once
	templates     *fast.Templates
	templatesErr  error
)

func loadTemplates(tb testing.TB) *fast.Templates {
	tb.Helper()
	templatesOnce.Do(func() {
		templates, templatesErr = fast.LoadFile(filepath.Join("..", "fixtures", "templates.xml"))
	})
	if templatesErr != nil {
		tb.Fatal(templatesErr)
	}
	return templates
}

func newCodec(tb testing.TB) *md.Codec {
	tb.Helper()
	c, err := md.NewCodec(loadTemplates(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func generate(tb testing.TB, n int) []Instrument {
	tb.Helper()
	ins, err := GenerateInstruments(n)
	if err != nil {
		tb.Fatal(err)
	}
	return ins
}

// datagram is a datagram sent or received, with its channel address.
type datagram struct {
	addr netip.AddrPort
	data []byte
}

// captureWriter records what the loop sends, without a network.
type captureWriter struct {
	mu  sync.Mutex
	got []datagram
}

func (w *captureWriter) WriteBatch(ms []mcast.Message) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range ms {
		w.got = append(w.got, datagram{ms[i].Addr, bytes.Clone(ms[i].Buf)})
		ms[i].N = len(ms[i].Buf)
	}
	return len(ms), nil
}

func (w *captureWriter) datagrams() []datagram {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]datagram(nil), w.got...)
}

// discardWriter drops everything: the send-free benchmark.
type discardWriter struct{}

func (discardWriter) WriteBatch(ms []mcast.Message) (int, error) { return len(ms), nil }

// toUpdate converts a decoded MBP entry to a book update at the book's
// exponents.
func toUpdate(e *md.Entry, priceExp, sizeExp int8) (book.Update, error) {
	u := book.Update{Action: book.Action(e.Action), Orders: int64(e.Orders)}
	switch e.Type {
	case md.Bid:
		u.Type = book.EntryBid
	case md.Offer:
		u.Type = book.EntryOffer
	case md.Trade:
		u.Type = book.EntryTrade
	default:
		u.Type = book.EntryOther
	}
	var ok bool
	if u.Price, ok = e.Price.At(priceExp); !ok || !e.Price.Valid {
		return u, fmt.Errorf("price %+v not at exponent %d", e.Price, priceExp)
	}
	if e.Size.Valid {
		if u.Size, ok = e.Size.At(sizeExp); !ok {
			return u, fmt.Errorf("size %+v not at exponent %d", e.Size, sizeExp)
		}
	} else if e.Action != md.Delete {
		return u, fmt.Errorf("%v entry without a size", e.Action)
	}
	return u, nil
}

// feedReport is what checkFeed learned from a run's datagrams.
type feedReport struct {
	lastSeq      map[string]uint32   // channel name -> last sequence number (line A)
	sequenced    map[string][][]byte // channel name -> sequenced datagrams of line A, by seq-1
	incrementals int
	heartbeats   int
	definitions  int
	continued    int
	entries      map[string][]entryAt // symbol -> its entries with their channel seq
	books        map[string]*book.MBP
}

type entryAt struct {
	seq uint32
	e   md.Entry
}

// checkFeed checks the datagrams of a run as a handler would see them, and
// rebuilds the books from the incrementals of line A:
//   - every datagram decodes alone and came on a channel of the publisher;
//   - a channel starts with a SequenceReset (preamble 0, NewSeqNo 1);
//   - sequenced messages run 1..N without holes, preamble = MsgSeqNum;
//   - a heartbeat's preamble, MsgSeqNum and LastMsgSeqNumProcessed are the
//     last sequence number of its channel;
//   - every entry's symbol maps (crc32) to the group it came on, and each
//     instrument's RptSeq runs 1, 2, 3... in order;
//   - definitions name each instrument's channel; line B, if any, carries
//     the same bytes as line A.
//
// The entries of the symbols in keep are returned with their sequence
// numbers.
func checkFeed(t *testing.T, p *Publisher, got []datagram, keep ...string) *feedReport {
	t.Helper()
	c := newCodec(t)
	cfg := p.cfg
	infos := p.Channels()
	byA := map[netip.AddrPort]ChannelInfo{}
	byB := map[netip.AddrPort]ChannelInfo{}
	for _, ci := range infos {
		byA[ci.Group] = ci
		if ci.B.IsValid() {
			byB[ci.B] = ci
		}
	}
	perLine := map[netip.AddrPort][][]byte{}
	for _, d := range got {
		if _, ok := byA[d.addr]; !ok {
			if _, ok := byB[d.addr]; !ok {
				t.Fatalf("datagram on %v, not a channel of the publisher", d.addr)
			}
		}
		perLine[d.addr] = append(perLine[d.addr], d.data)
	}
	r := &feedReport{lastSeq: map[string]uint32{}, sequenced: map[string][][]byte{},
		entries: map[string][]entryAt{}, books: map[string]*book.MBP{}}
	exps := map[string][2]int8{}
	for _, in := range cfg.Instruments {
		exps[in.Symbol] = [2]int8{in.PriceExp, in.SizeExp}
	}
	rptSeq := map[string]uint32{}
	for _, ci := range infos {
		dgs := perLine[ci.Group]
		if len(dgs) == 0 {
			t.Fatalf("%s: nothing received", ci.Name)
		}
		if p.hasB {
			b := perLine[ci.B]
			if len(b) != len(dgs) {
				t.Errorf("%s: line A has %d datagrams, line B %d", ci.Name, len(dgs), len(b))
			}
			for i := range min(len(b), len(dgs)) {
				if !bytes.Equal(b[i], dgs[i]) {
					t.Errorf("%s: datagram %d differs between lines A and B", ci.Name, i)
					break
				}
			}
		}
		var last uint32
		for i, d := range dgs {
			seq, kind, err := DecodeDatagram(c, d)
			if err != nil {
				t.Fatalf("%s: datagram %d does not decode alone: %v", ci.Name, i, err)
			}
			if i == 0 && (kind != md.KindReset || seq != 0 || c.Reset.NewSeqNo != 1 || c.Reset.SeqNum != 0) {
				t.Fatalf("%s: first datagram is %v with preamble %d, want a SequenceReset, preamble 0, NewSeqNo 1", ci.Name, kind, seq)
			}
			switch kind {
			case md.KindReset:
				if i != 0 {
					t.Errorf("%s: datagram %d: a second SequenceReset", ci.Name, i)
				}
				continue
			case md.KindHeartbeat:
				if seq != last || c.Heartbeat.LastSeqNum != last || c.Heartbeat.SeqNum != last {
					t.Errorf("%s: heartbeat preamble %d, MsgSeqNum %d, LastMsgSeqNumProcessed %d; last sequence number %d",
						ci.Name, seq, c.Heartbeat.SeqNum, c.Heartbeat.LastSeqNum, last)
				}
				r.heartbeats++
				continue
			}
			if !kind.Sequenced() {
				t.Fatalf("%s: unexpected %v", ci.Name, kind)
			}
			if seq != last+1 {
				t.Fatalf("%s: sequence number %d after %d", ci.Name, seq, last)
			}
			last = seq
			r.sequenced[ci.Name] = append(r.sequenced[ci.Name], d)
			switch kind {
			case md.KindDefinition:
				def := &c.Definition
				if !ci.Definitions || def.SeqNum != seq {
					t.Fatalf("%s: definition %s (MsgSeqNum %d) with preamble %d", ci.Name, def.Symbol, def.SeqNum, seq)
				}
				want, ok := p.ChannelOf(string(def.Symbol))
				if !ok || string(def.Channel) != want || def.TotNumReports != uint32(len(cfg.Instruments)) ||
					def.BookType != md.PriceDepth {
					t.Fatalf("%s: definition of %s: channel %s (want %s), TotNumReports %d, book type %d",
						ci.Name, def.Symbol, def.Channel, want, def.TotNumReports, def.BookType)
				}
				e := exps[string(def.Symbol)]
				if def.PriceExp != e[0] || def.SizeExp != e[1] || !def.Tick.Valid {
					t.Fatalf("%s: definition of %s: exponents %d %d, tick %+v", ci.Name, def.Symbol, def.PriceExp, def.SizeExp, def.Tick)
				}
				r.definitions++
			case md.KindStatus:
				if c.Status.SeqNum != seq || c.Status.TradingStatus != statusOpen || !has(ci.Instruments, string(c.Status.Symbol)) {
					t.Fatalf("%s: status %+v with preamble %d", ci.Name, c.Status, seq)
				}
			case md.KindIncremental:
				inc := &c.Incremental
				if inc.SeqNum != seq || len(inc.Entries) == 0 {
					t.Fatalf("%s: incremental MsgSeqNum %d, %d entries, preamble %d", ci.Name, inc.SeqNum, len(inc.Entries), seq)
				}
				if ci.Definitions {
					t.Fatalf("%s: incremental on the definitions channel", ci.Name)
				}
				if len(d)-4 > cfg.PayloadLimit {
					t.Fatalf("%s: datagram %d: %d bytes of FAST, over the limit %d", ci.Name, seq, len(d)-4, cfg.PayloadLimit)
				}
				r.incrementals++
				if inc.Continued {
					r.continued++
				}
				for _, e := range inc.Entries {
					sym := string(e.Symbol)
					if g := cfg.Mapping.Group(sym); g != ci.Group.Addr() {
						t.Fatalf("%s: entry of %s, whose group is %v", ci.Name, sym, g)
					}
					if e.RptSeq != rptSeq[sym]+1 {
						t.Fatalf("%s: %s RptSeq %d after %d", ci.Name, sym, e.RptSeq, rptSeq[sym])
					}
					rptSeq[sym] = e.RptSeq
					x := exps[sym]
					b := r.books[sym]
					if b == nil {
						var err error
						if b, err = book.NewMBP(book.Config{PriceExp: int(x[0]), SizeExp: int(x[1])}); err != nil {
							t.Fatal(err)
						}
						r.books[sym] = b
					}
					u, err := toUpdate(&e, x[0], x[1])
					if err != nil {
						t.Fatalf("%s: %s entry %d: %v", ci.Name, sym, e.RptSeq, err)
					}
					if err := b.Apply(u); err != nil {
						t.Fatalf("%s: %s entry %d (%+v): %v", ci.Name, sym, e.RptSeq, u, err)
					}
					b.SetRptSeq(int64(e.RptSeq))
					if has(keep, sym) {
						ec := e
						ec.Symbol = nil
						r.entries[sym] = append(r.entries[sym], entryAt{seq, ec})
					}
				}
			}
		}
		r.lastSeq[ci.Name] = last
	}
	for sym, b := range r.books {
		if d := b.Counters(); d != (book.Counters{}) {
			t.Errorf("%s: rebuilt book counted anomalies %+v", sym, d)
		}
	}
	return r
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dumpOf writes the books in the dump format.
func dumpOf(t *testing.T, books map[string]*book.MBP) book.Dump {
	t.Helper()
	var named []book.Named
	for s, b := range books {
		named = append(named, book.Named{Symbol: s, Book: b})
	}
	sort.Slice(named, func(i, j int) bool { return named[i].Symbol < named[j].Symbol })
	var buf bytes.Buffer
	if err := book.WriteDump(&buf, named); err != nil {
		t.Fatal(err)
	}
	d, err := book.ReadDump(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readDumpFile parses a dump file.
func readDumpFile(t *testing.T, data []byte) book.Dump {
	t.Helper()
	d, err := book.ReadDump(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("publisher's dump: %v\n%s", err, firstLines(data, 3))
	}
	return d
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
