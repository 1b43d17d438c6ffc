package publisher

import (
	"bytes"
	"reflect"
	"testing"

	"fastfeed/book"
	"fastfeed/md"
)

func newSim(t testing.TB, n int, seed uint64) *Simulator {
	t.Helper()
	s, err := NewSimulator(generate(t, n), DefaultMinDepth, DefaultMaxDepth, seed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run opens every book and runs steps events, returning every entry.
func runSim(s *Simulator, steps int) []SimEntry {
	var out []SimEntry
	for i := range s.Len() {
		out = s.Open(out, i)
	}
	for range steps {
		out = s.Step(out)
	}
	return out
}

type plainEntry struct {
	ins            int32
	action         md.Action
	typ            md.EntryType
	symbol         string
	rpt            uint32
	price, size    md.Decimal
	orders         uint32
	hasID, hasSize bool
}

func plain(es []SimEntry) []plainEntry {
	out := make([]plainEntry, len(es))
	for i, e := range es {
		out[i] = plainEntry{e.Instrument, e.Action, e.Type, string(e.Symbol), e.RptSeq, e.Price, e.Size, e.Orders, len(e.ID) > 0, e.Size.Valid}
	}
	return out
}

func TestSimulatorDeterministic(t *testing.T) {
	a := plain(runSim(newSim(t, 30, 7), 20000))
	b := plain(runSim(newSim(t, 30, 7), 20000))
	if !reflect.DeepEqual(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("same seed, entry %d differs: %+v vs %+v", i, a[i], b[i])
			}
		}
		t.Fatalf("same seed: %d vs %d entries", len(a), len(b))
	}
	c := plain(runSim(newSim(t, 30, 8), 20000))
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 7 and 8 gave the same entries")
	}
	var da, db bytes.Buffer
	s1, s2 := newSim(t, 30, 7), newSim(t, 30, 7)
	runSim(s1, 5000)
	runSim(s2, 5000)
	if err := s1.WriteDump(&da); err != nil {
		t.Fatal(err)
	}
	if err := s2.WriteDump(&db); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da.Bytes(), db.Bytes()) {
		t.Fatal("same seed, different dumps")
	}
}

// TestSimulatorBooks replays every entry on books of its own that refuse
// anomalies, and checks after every event that the books are sane: bids
// below asks, prices on the tick grid and above zero, depth within bounds,
// RptSeq contiguous, trades followed by the change or deletion of the level
// they hit; at the end the replayed books equal the simulator's.
func TestSimulatorBooks(t *testing.T) {
	for _, depth := range [][2]int{{DefaultMinDepth, DefaultMaxDepth}, {1, 1}, {1, 3}, {10, 10}} {
		ins := generate(t, 40)
		s, err := NewSimulator(ins, depth[0], depth[1], 99)
		if err != nil {
			t.Fatal(err)
		}
		shadow := make([]*book.MBP, len(ins))
		for i, in := range ins {
			shadow[i], _ = book.NewMBP(book.Config{PriceExp: int(in.PriceExp), SizeExp: int(in.SizeExp), MaxLevels: depth[1]})
		}
		rpt := make([]uint32, len(ins))
		kinds := map[string]int{}
		var buf []SimEntry
		check := func(es []SimEntry) {
			t.Helper()
			for k, e := range es {
				i := e.Instrument
				in := ins[i]
				if e.RptSeq != rpt[i]+1 {
					t.Fatalf("depth %v: %s RptSeq %d after %d", depth, in.Symbol, e.RptSeq, rpt[i])
				}
				rpt[i] = e.RptSeq
				if string(e.Symbol) != in.Symbol || e.Price.Exp != in.PriceExp || !e.Price.Valid {
					t.Fatalf("depth %v: entry %+v of %s", depth, e.Entry, in.Symbol)
				}
				if e.Price.Mantissa <= 0 || e.Price.Mantissa%in.Tick != 0 {
					t.Fatalf("depth %v: %s price %d not a positive multiple of the tick %d", depth, in.Symbol, e.Price.Mantissa, in.Tick)
				}
				if e.Action != md.Delete && (!e.Size.Valid || e.Size.Mantissa <= 0 || e.Size.Exp != in.SizeExp) {
					t.Fatalf("depth %v: %s entry %+v: bad size", depth, in.Symbol, e.Entry)
				}
				if e.Action == md.Delete && (e.Size.Valid || e.Orders != 0) {
					t.Fatalf("depth %v: %s delete %+v carries a size", depth, in.Symbol, e.Entry)
				}
				if e.Type == md.Trade {
					kinds["trade"]++
					if k+1 >= len(es) || es[k+1].Price != e.Price || es[k+1].Action == md.New || es[k+1].Instrument != i {
						t.Fatalf("depth %v: %s trade %+v not followed by the change or deletion of its level", depth, in.Symbol, e.Entry)
					}
					continue
				}
				kinds[[...]string{"new", "change", "delete"}[e.Action]]++
				u := book.Update{Action: book.Action(e.Action), Type: book.EntryType(e.Type - md.Bid), Price: e.Price.Mantissa,
					Size: e.Size.Mantissa, Orders: int64(e.Orders)}
				if err := shadow[i].Apply(u); err != nil {
					t.Fatalf("depth %v: %s entry %d %+v: %v", depth, in.Symbol, e.RptSeq, u, err)
				}
				if c := shadow[i].Counters(); c.Duplicates != 0 {
					t.Fatalf("depth %v: %s entry %d: New of an existing level", depth, in.Symbol, e.RptSeq)
				}
				shadow[i].SetRptSeq(int64(e.RptSeq))
				b := shadow[i]
				bid, okb := b.Best(book.Bid)
				ask, oka := b.Best(book.Ask)
				if okb && oka && bid.Price >= ask.Price {
					t.Fatalf("depth %v: %s crossed: bid %d >= ask %d", depth, in.Symbol, bid.Price, ask.Price)
				}
				if b.Depth(book.Bid) > depth[1] || b.Depth(book.Ask) > depth[1] {
					t.Fatalf("depth %v: %s has %d/%d levels", depth, in.Symbol, b.Depth(book.Bid), b.Depth(book.Ask))
				}
			}
		}
		for i := range ins {
			buf = s.Open(buf[:0], i)
			if len(buf) < 2*depth[0] {
				t.Fatalf("depth %v: %s opens with %d entries", depth, ins[i].Symbol, len(buf))
			}
			check(buf)
		}
		for range 50000 {
			buf = s.Step(buf[:0])
			if len(buf) == 0 || len(buf) > 2 {
				t.Fatalf("depth %v: a step gave %d entries", depth, len(buf))
			}
			check(buf)
		}
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		for _, k := range []string{"new", "change", "delete", "trade"} {
			if kinds[k] < 1000 {
				t.Errorf("depth %v: only %d %s entries in 50000 events: %v", depth, kinds[k], k, kinds)
			}
		}
		var a, b bytes.Buffer
		named := make([]book.Named, len(ins))
		for i := range ins {
			named[i] = book.Named{Symbol: ins[i].Symbol, Book: shadow[i]}
		}
		if err := book.WriteDump(&a, named); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteDump(&b); err != nil {
			t.Fatal(err)
		}
		da, err := book.ReadDump(&a)
		if err != nil {
			t.Fatal(err)
		}
		db, err := book.ReadDump(&b)
		if err != nil {
			t.Fatal(err)
		}
		if d := book.DiffDumps(da, db); d != "" {
			t.Fatalf("depth %v: replayed books differ from the simulator's:\n%s", depth, d)
		}
	}
}

// TestSimulatorWalk checks that prices wander but stay near their start
// over a long run, for each tick class.
func TestSimulatorWalk(t *testing.T) {
	ins := generate(t, 45) // the known names and a few of every class
	s, err := NewSimulator(ins, DefaultMinDepth, DefaultMaxDepth, 3)
	if err != nil {
		t.Fatal(err)
	}
	var buf []SimEntry
	for i := range ins {
		buf = s.Open(buf[:0], i)
	}
	moved := 0
	for range 200000 {
		buf = s.Step(buf[:0])
	}
	for i, in := range ins {
		b := s.Book(i)
		bid, ok1 := b.Best(book.Bid)
		ask, ok2 := b.Best(book.Ask)
		if !ok1 || !ok2 {
			t.Fatalf("%s: a side is empty", in.Symbol)
		}
		mid := (bid.Price + ask.Price) / 2
		if mid < in.StartPrice/2 || mid > in.StartPrice*2 {
			t.Errorf("%s: mid %d strayed from the start %d", in.Symbol, mid, in.StartPrice)
		}
		if mid != in.StartPrice {
			moved++
		}
	}
	if moved < len(ins)/2 {
		t.Errorf("only %d of %d mids moved", moved, len(ins))
	}
}

func TestSimulatorErrors(t *testing.T) {
	ins := generate(t, 2)
	for _, tc := range []struct {
		name     string
		ins      []Instrument
		min, max int
	}{
		{"no instruments", nil, 5, 20},
		{"min 0", ins, 0, 20},
		{"max < min", ins, 5, 4},
		{"bad tick", []Instrument{{Symbol: "X", Tick: 0, StartPrice: 100}}, 5, 20},
	} {
		if _, err := NewSimulator(tc.ins, tc.min, tc.max, 1); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestGenerateInstruments(t *testing.T) {
	ins := generate(t, 2000)
	if ins[0].Symbol != "SBER" || ins[3].Symbol != "AAPL" {
		t.Errorf("first symbols %s..%s", ins[0].Symbol, ins[3].Symbol)
	}
	cfg := Config{Instruments: ins, Templates: loadTemplates(t)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	again := generate(t, 2000)
	if !reflect.DeepEqual(ins, again) {
		t.Error("GenerateInstruments is not deterministic")
	}
	classes := map[[2]int64]bool{}
	for _, in := range ins {
		classes[[2]int64{in.Tick, int64(in.PriceExp)}] = true
	}
	for _, want := range [][2]int64{{1, -2}, {5, -1}, {25, -4}} {
		if !classes[want] {
			t.Errorf("no instrument with tick %d at exponent %d", want[0], want[1])
		}
	}
	if _, err := GenerateInstruments(0); err == nil {
		t.Error("0 instruments accepted")
	}
	if _, err := GenerateInstruments(MaxInstruments + 1); err == nil {
		t.Error("too many instruments accepted")
	}
}

func TestSimulatorWeights(t *testing.T) {
	ins := generate(t, 4)
	for i, w := range []float64{1, 3, 0.5, 5.5} {
		ins[i].Weight = w
	}
	s, err := NewSimulator(ins, 1, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	const draws = 200000
	var got [4]int
	for range draws {
		got[s.pick()]++
	}
	for i, w := range []float64{0.1, 0.3, 0.05, 0.55} {
		if share := float64(got[i]) / draws; share < w-0.01 || share > w+0.01 {
			t.Errorf("instrument %d drawn %.3f of the time, want %.2f", i, share, w)
		}
	}
}
