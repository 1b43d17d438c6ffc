package moex

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/md"
	"fastfeed/mdbook"
	"fastfeed/publisher"
	"fastfeed/replay"
)

const busTemplates = "../../fixtures/templates.xml"

// republishCapture is a FOND capture for the republisher: IDF definitions of all but one
// symbol (ticks 0.05 and 0.010), orders and trades, two OLR datagrams lost on both lines (the
// instruments they touched go stale), the OLS snapshots that repair them, more orders.
func republishCapture(t testing.TB, seed uint64) (*exchange, []byte, []string) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, seed)
	x.drop = func(conn string, seq uint32, line int) bool { return conn == "OLR" && (seq == 80 || seq == 81) }
	syms := []string{"SBER", "GAZP", "LKOH", "AFLT", "NODEF"}
	for i, s := range syms[:4] {
		tick := dec(5, -2)
		if i == 2 {
			tick = dec(10, -3) // 0.010: exponent -2 once normalised
		}
		x.send("IDF", &moexasts.Message{ID: moexasts.IDD, D: moexasts.D{Symbol: []byte(s), HasSymbol: true,
			Currency: []byte("RUB"), HasCurrency: true, MinPriceIncrement: tick, HasMinPriceIncrement: true,
			MessageEncoding: []byte("UTF-8")}})
	}
	for i := range 300 {
		x.orderStep(syms, 1+i%3)
		if i%7 == 0 {
			x.trade(syms[i%len(syms)], 10000+int64(i%40)*5, int64(1+i%9))
		}
	}
	for _, s := range syms {
		x.snapshot(s, 4)
	}
	for range 100 {
		x.orderStep(syms, 2)
	}
	x.close()
	return x, buf.Bytes(), syms
}

// republish runs the capture through an engine republishing on a publisher (sending on
// loopback, in the test's private namespace) until the capture ends.
func republish(t testing.TB, data []byte, cfg publisher.Config) (*publisher.Publisher, *Engine, *Republisher) {
	t.Helper()
	e, err := NewEngine(fond(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Templates, err = fast.LoadFile(busTemplates); err != nil {
		t.Fatal(err)
	}
	cfg.Source = &CaptureSource{R: r, E: e, Batch: 16}
	p, err := publisher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := NewRepublisher(p)
	e.Listener = rep
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return p, e, rep
}

// busRead decodes every datagram the publisher retained, channel by channel, and
// rebuilds the books from them as a handler would, checking that each instrument's
// RptSeq runs on without a hole; it returns the books, the statuses (symbol: texts in
// order) and the definitions' exponents.
func busRead(t *testing.T, p *publisher.Publisher) (book.Dump, map[string][]string, map[string][2]int8) {
	t.Helper()
	codec, err := md.NewCodec(p.Templates())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	books := map[string]*book.MBP{}
	rpt := map[string]uint32{}
	statuses := map[string][]string{}
	exps := map[string][2]int8{}
	all := func(ch string) [][]byte {
		dgs, err := p.Retransmit(ctx, ch, 1, 10000)
		var re *publisher.RangeError
		if errors.As(err, &re) && errors.Is(err, publisher.ErrBeyondRetention) && re.Last > 0 {
			dgs, err = p.Retransmit(ctx, ch, 1, re.Last)
		}
		if err != nil {
			t.Fatalf("retransmit %s: %v", ch, err)
		}
		return dgs
	}
	chans := p.Channels()
	for _, c := range chans { // definitions first: the exponents
		if c.Definitions {
			for _, d := range all(c.Name) {
				if _, kind, err := publisher.DecodeDatagram(codec, d); err != nil || kind != md.KindDefinition {
					t.Fatalf("definitions channel: %v %v", kind, err)
				}
				exps[string(codec.Definition.Symbol)] = [2]int8{codec.Definition.PriceExp, codec.Definition.SizeExp}
			}
		}
	}
	for _, c := range chans {
		if c.Definitions {
			continue
		}
		for i, d := range all(c.Name) {
			seq, kind, err := publisher.DecodeDatagram(codec, d)
			if err != nil || seq != uint32(i+1) {
				t.Fatalf("%s datagram %d: seq %d, %v", c.Name, i+1, seq, err)
			}
			switch kind {
			case md.KindStatus:
				s := &codec.Status
				statuses[string(s.Symbol)] = append(statuses[string(s.Symbol)], string(s.Text))
			case md.KindIncremental:
				for _, x := range codec.Incremental.Entries {
					sym := string(x.Symbol)
					if x.RptSeq != rpt[sym]+1 {
						t.Fatalf("%s: RptSeq %d after %d", sym, x.RptSeq, rpt[sym])
					}
					rpt[sym] = x.RptSeq
					ex, ok := exps[sym]
					if !ok {
						t.Fatalf("%s: entries before its definition", sym)
					}
					b := books[sym]
					if b == nil {
						b, _ = book.NewMBP(book.Config{PriceExp: int(ex[0]), SizeExp: int(ex[1])})
						books[sym] = b
					}
					b.SetRptSeq(int64(x.RptSeq))
					if x.Type == md.Trade {
						continue
					}
					u, err := mdbook.Update(&x, ex[0], ex[1])
					if err == nil {
						err = b.Apply(u)
					}
					if err != nil {
						t.Fatalf("%s entry %d %+v: %v", sym, x.RptSeq, x, err)
					}
				}
			}
		}
	}
	var named []book.Named
	for s, b := range books {
		named = append(named, book.Named{Symbol: s, Book: b})
	}
	var out bytes.Buffer
	if err := book.WriteDump(&out, named); err != nil {
		t.Fatal(err)
	}
	d, err := book.ReadDump(&out)
	if err != nil {
		t.Fatal(err)
	}
	return d, statuses, exps
}

func readDump(t *testing.T, s string) book.Dump {
	t.Helper()
	d, err := book.ReadDump(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// levelsOnly clears what differs between the exchange's books and the bus's: RptSeq
// (the exchange's per order, the bus's per level change and trade).
func levelsOnly(d book.Dump) book.Dump {
	out := make(book.Dump, len(d))
	for i, b := range d {
		b.RptSeq = 0
		out[i] = b
	}
	return out
}

// TestRepublish: a capture with definitions, orders, trades, a channel gap that leaves
// books stale and the snapshots that repair them, republished: the bus's datagrams,
// decoded and applied as a handler would, give the publisher's dump exactly and the
// exchange's books level for level; every instrument's RptSeq runs on; a stale book
// was announced (status "stale") and its repair too ("ready"); exponents come from
// the definitions (ticks 0.05 and 0.010: -2) or are 8 decimals without one.
func TestRepublish(t *testing.T) {
	x, data, syms := republishCapture(t, 3)
	p, e, rep := republish(t, data, publisher.Config{Recovery: publisher.RecoveryConfig{Listen: "127.0.0.1:0"}})
	var pub bytes.Buffer
	if err := p.WriteDump(&pub); err != nil {
		t.Fatal(err)
	}
	want := readDump(t, pub.String())
	got, statuses, exps := busRead(t, p)
	if d := book.DiffDumps(got, want); d != "" {
		t.Fatalf("the bus's datagrams give other books than the publisher's dump:\n%s", d)
	}
	if d := book.DiffDumps(levelsOnly(want), levelsOnly(readDump(t, x.wantBooks()))); d != "" {
		t.Fatalf("the republished books differ from the exchange's:\n%s", d)
	}
	if d := book.DiffDumps(levelsOnly(want), levelsOnly(readDump(t, dumpBooks(t, e)))); d != "" {
		t.Fatalf("the republished books differ from the engine's:\n%s", d)
	}
	if len(want) != len(syms) {
		t.Errorf("%d books on the bus, want %d", len(want), len(syms))
	}
	if exps["SBER"] != [2]int8{-2, 0} || exps["LKOH"] != [2]int8{-2, 0} || exps["NODEF"] != [2]int8{-8, 0} {
		t.Errorf("exponents %v", exps)
	}
	stale := 0
	for s, st := range statuses {
		for i, text := range st[1:] { // st[0]: the opening status
			want := "stale"
			if i%2 == 1 {
				want = "ready"
			}
			if text != want {
				t.Errorf("%s statuses %q", s, st)
				break
			}
		}
		if len(st)%2 == 0 {
			t.Errorf("%s left stale: statuses %q", s, st)
		}
		stale += (len(st) - 1) / 2
	}
	rs := rep.Stats()
	t.Logf("books %d, stale announced %d, engine gaps %d, bus %+v", len(got), stale, e.Stats().InstrumentGaps, p.Stats())
	if stale == 0 || rs != (RepublishStats{Instruments: uint64(len(syms))}) || e.Stats().InstrumentGaps == 0 {
		t.Errorf("stale announced %d; republisher %+v; engine %+v", stale, rs, e.Stats())
	}
}
