package publisher

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// scriptSource runs one step per Poll, then reports done.
type scriptSource struct {
	steps []func(p *Publisher) error
}

func (s *scriptSource) Poll(_ context.Context, p *Publisher, _ time.Duration) (bool, error) {
	if len(s.steps) == 0 {
		return true, nil
	}
	step := s.steps[0]
	s.steps = s.steps[1:]
	return false, step(p)
}

func (s *scriptSource) Wake() {}

// TestSource: a Source adds instruments while the loop runs (the definition sent at
// once, a new channel opened with a SequenceReset and the status sent before the first
// entry, the B line and snapshot channel made for it), states levels (New, Change, Delete derived against the
// ground-truth book; an unchanged level publishes nothing), replaces a book (the
// differences only), trades and marks a book stale then ready: the wire says exactly
// that, with contiguous sequence numbers and RptSeq, and the dump is the books stated.
func TestSource(t *testing.T) {
	var sber, gazp int
	add := func(sym string, pe int8, dst *int) func(*Publisher) error {
		return func(p *Publisher) (err error) {
			*dst, err = p.AddInstrument(Instrument{Symbol: sym, PriceExp: pe, Tick: 1})
			return err
		}
	}
	src := &scriptSource{steps: []func(*Publisher) error{
		add("SBER", -2, &sber),
		func(p *Publisher) error {
			p.SetLevel(sber, book.Bid, 10125, 300, 2)
			p.SetLevel(sber, book.Bid, 10120, 100, 1)
			p.SetLevel(sber, book.Ask, 10130, 50, 1)
			p.SetLevel(sber, book.Ask, 10130, 50, 1) // unchanged: nothing
			p.SetLevel(sber, book.Ask, 10140, 0, 0)  // no such level: nothing
			return nil
		},
		add("GAZP", -1, &gazp),
		func(p *Publisher) error {
			p.SetLevel(sber, book.Bid, 10125, 200, 1) // Change
			p.Trade(sber, 10130, 10)
			p.SetLevel(gazp, book.Ask, 1605, 7, 1)
			p.SetLevel(sber, book.Bid, 10120, 0, 0) // Delete
			return nil
		},
		func(p *Publisher) error {
			p.SetStale(sber, true)
			p.SetStale(sber, true) // already: nothing
			p.ReplaceBook(sber, []book.Level{{Price: 10126, Size: 5, Orders: 1}, {Price: 10125, Size: 200, Orders: 1}},
				[]book.Level{{Price: 10131, Size: 9, Orders: 3}})
			p.SetStale(sber, false)
			return nil
		},
		func(p *Publisher) error {
			if _, err := p.AddInstrument(Instrument{Symbol: "SBER", PriceExp: -2, Tick: 1}); err == nil {
				return fmt.Errorf("SBER added twice")
			}
			if _, err := p.AddInstrument(Instrument{Symbol: "BAD SYM", Tick: 1}); err == nil {
				return fmt.Errorf("a symbol with a space added")
			}
			return nil
		},
	}}
	p, err := New(Config{Templates: loadTemplates(t), Source: src, B: BLine{Port: 30002}, SnapshotChannels: true,
		SnapshotRate: 1e5, Heartbeat: time.Hour, Linger: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := &captureWriter{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.run(ctx, w); err != nil {
		t.Fatal(err)
	}
	codec := newCodec(t)
	m := mcast.Mapping{}
	chanOf := map[string]netip.AddrPort{}
	for _, s := range []string{"SBER", "GAZP"} {
		chanOf[s] = netip.AddrPortFrom(m.Group(s), DefaultPort)
	}
	var lines []string
	seq := map[netip.AddrPort]uint32{}
	rpt := map[string]uint32{}
	bSeen, snapSeen := 0, map[netip.AddrPort]int{}
	for _, d := range w.datagrams() {
		if d.addr.Port() == 30002 {
			bSeen++
			continue
		}
		if d.addr.Port() != DefaultPort {
			if _, kind, err := DecodeDatagram(codec, d.data); err != nil || kind != md.KindSnapshot {
				t.Fatalf("%v: %v %v", d.addr, kind, err)
			}
			snapSeen[d.addr]++
			continue
		}
		pre, kind, err := DecodeDatagram(codec, d.data)
		if err != nil {
			t.Fatal(err)
		}
		if kind.Sequenced() {
			if pre != seq[d.addr]+1 {
				t.Fatalf("%v: %v %d after %d", d.addr, kind, pre, seq[d.addr])
			}
			seq[d.addr] = pre
		}
		switch kind {
		case md.KindReset:
			lines = append(lines, fmt.Sprintf("%v reset", d.addr))
		case md.KindDefinition:
			df := &codec.Definition
			lines = append(lines, fmt.Sprintf("def %s %d %s", df.Symbol, df.PriceExp, df.Channel))
		case md.KindStatus:
			lines = append(lines, fmt.Sprintf("status %s %d %q", codec.Status.Symbol, codec.Status.TradingStatus, codec.Status.Text))
		case md.KindIncremental:
			for _, e := range codec.Incremental.Entries {
				if e.RptSeq != rpt[string(e.Symbol)]+1 {
					t.Fatalf("%s RptSeq %d after %d", e.Symbol, e.RptSeq, rpt[string(e.Symbol)])
				}
				rpt[string(e.Symbol)] = e.RptSeq
				lines = append(lines, fmt.Sprintf("%s %d %c %d %s %s %d", e.Symbol, e.RptSeq, e.Type, e.Action,
					e.Price.Decimal(), e.Size.Decimal(), e.Orders))
			}
		}
	}
	defs, sb, gz := mcast.DefinitionsChannel(DefaultPort), chanOf["SBER"], chanOf["GAZP"]
	want := []string{
		fmt.Sprintf("%v reset", defs),
		// The definition at once; the channel opened before the first entry.
		"def SBER -2 " + mcast.ChannelName(sb), fmt.Sprintf("%v reset", sb), `status SBER 17 ""`,
		"SBER 1 0 0 101.25 300 2", "SBER 2 0 0 101.2 100 1", "SBER 3 1 0 101.3 50 1",
		"def GAZP -1 " + mcast.ChannelName(gz),
		// What was queued goes before GAZP's channel opens; then one incremental per
		// channel touched, in the order touched.
		"SBER 4 0 1 101.25 200 1", "SBER 5 2 0 101.3 10 0",
		fmt.Sprintf("%v reset", gz), `status GAZP 17 ""`, "GAZP 1 1 0 160.5 7 1", "SBER 6 0 2 101.2 0 0",
		`status SBER 20 "stale"`,
		"SBER 7 0 0 101.26 5 1", "SBER 8 1 2 101.3 0 0", "SBER 9 1 0 101.31 9 3",
		`status SBER 17 "ready"`,
	}
	got := strings.Join(lines, "\n")
	// Definition cycles and end-of-data heartbeats may follow; the script's part must match.
	if !strings.HasPrefix(got, strings.Join(want, "\n")) {
		t.Fatalf("wire:\n%s\nwant first:\n%s", got, strings.Join(want, "\n"))
	}
	if bSeen == 0 {
		t.Error("nothing on line B")
	}
	for _, a := range []netip.AddrPort{sb, gz} {
		if sc := netip.AddrPortFrom(a.Addr(), DefaultPort+mcast.DefaultSnapshotPortOffset); snapSeen[sc] == 0 {
			t.Errorf("no W on the snapshot channel %v: %v", sc, snapSeen)
		}
	}
	if a, ok := p.SnapshotChannelOf(mcast.ChannelName(gz)); !ok || a.Port() != DefaultPort+mcast.DefaultSnapshotPortOffset {
		t.Errorf("GAZP's snapshot channel %v %v", a, ok)
	}
	var dump strings.Builder
	if err := p.WriteDump(&dump); err != nil {
		t.Fatal(err)
	}
	wantDump := `{"symbol":"GAZP","rptseq":1,"stale":false,"bids":[],"asks":[["160.5","7",1]]}
{"symbol":"SBER","rptseq":9,"stale":false,"bids":[["101.26","5",1],["101.25","200",1]],"asks":[["101.31","9",3]]}
`
	if dump.String() != wantDump {
		t.Errorf("dump:\n%s\nwant:\n%s", dump.String(), wantDump)
	}
	if ch, ok := p.ChannelOf("GAZP"); !ok || ch != mcast.ChannelName(gz) {
		t.Errorf("ChannelOf(GAZP) = %q %v", ch, ok)
	}
}

// TestSourceStaleRepeated: while a Source's book is stale, each definitions cycle repeats
// its SecurityStatus 20 on the instrument's channel (a handler that joined after the first
// learns it); once ready again, it is not repeated.
func TestSourceStaleRepeated(t *testing.T) {
	var sber int
	idle := func(*Publisher) error { time.Sleep(4 * time.Millisecond); return nil }
	steps := []func(*Publisher) error{
		func(p *Publisher) (err error) {
			sber, err = p.AddInstrument(Instrument{Symbol: "SBER", PriceExp: -2, Tick: 1})
			return err
		},
		func(p *Publisher) error {
			p.SetLevel(sber, book.Bid, 10125, 300, 2)
			p.SetStale(sber, true)
			return nil
		},
	}
	for range 5 {
		steps = append(steps, idle)
	}
	steps = append(steps, func(p *Publisher) error { p.SetStale(sber, false); return nil })
	for range 5 {
		steps = append(steps, idle)
	}
	p, err := New(Config{Templates: loadTemplates(t), Source: &scriptSource{steps: steps}, DefinitionsInterval: 2 * time.Millisecond,
		Heartbeat: time.Hour, Linger: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := &captureWriter{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.run(ctx, w); err != nil {
		t.Fatal(err)
	}
	codec := newCodec(t)
	var statuses []uint32
	for _, d := range w.datagrams() {
		if _, kind, err := DecodeDatagram(codec, d.data); err == nil && kind == md.KindStatus {
			statuses = append(statuses, codec.Status.TradingStatus)
		}
	}
	// The opening status (17), the first 20, at least one repeat, the 17, and no 20 after it.
	last17 := -1
	n20 := 0
	for i, s := range statuses {
		switch s {
		case StatusStale:
			n20++
		case StatusReady:
			last17 = i
		}
	}
	if n20 < 2 || last17 != len(statuses)-1 {
		t.Errorf("statuses %v: want the 20 repeated while stale and none after the last 17", statuses)
	}
}
