package fast

import (
	"path/filepath"
	"testing"
)

func loadFixture(tb testing.TB) *Templates {
	tb.Helper()
	ts, err := LoadFile(filepath.Join("..", "fixtures", "templates.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

// incremental5 builds a typical incremental refresh: five MBP entries of one instrument.
func incremental5(tb testing.TB, ts *Templates, m *Message) {
	tb.Helper()
	t := ts.ByName("MDIncRefresh")
	m.Reset(t)
	g := m.Root()
	g.SetUint(t.FieldIndex("MsgSeqNum"), 123456)
	g.SetUint(t.FieldIndex("SendingTime"), 1795372800123456789)
	seq := g.SetSeq(t.FieldIndex("MDEntries"), 5)
	f := seq.Elem(0).Fields()
	idx := func(name string) int {
		for i, x := range f {
			if x.Name == name {
				return i
			}
		}
		tb.Fatalf("no field %s", name)
		return -1
	}
	action, typ, sym, rpt, px, size, orders := idx("MDUpdateAction"), idx("MDEntryType"), idx("Symbol"), idx("RptSeq"), idx("MDEntryPx"), idx("MDEntrySize"), idx("NumberOfOrders")
	entries := []struct {
		action uint64
		typ    string
		px     int64
		size   int64
		orders uint64
	}{
		{1, "0", 28455, 1200, 4},
		{0, "0", 28450, 300, 1},
		{2, "1", 28470, 0, 0},
		{1, "1", 28475, 5000, 12},
		{0, "1", 28480, 100, 1},
	}
	for j, e := range entries {
		el := seq.Elem(j)
		el.SetUint(action, e.action)
		el.SetString(typ, e.typ)
		el.SetString(sym, "SBER")
		el.SetUint(rpt, uint64(812+j))
		el.SetDecimal(px, e.px, -2)
		if e.action != 2 {
			el.SetDecimal(size, e.size, 0)
			el.SetUint(orders, e.orders)
		}
	}
}

// moexTrades builds a MOEX ASTS X-TLR-FOND (template 2521) trades message with three trades.
func moexTrades(tb testing.TB, m *Message) *Templates {
	tb.Helper()
	ts, err := LoadFile(filepath.Join(sharedDir(tb), "conformance", "exchange-templates", "moex_asts_FIX50SP2-2017-Mar.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	t := ts.ByID(2521)
	m.Reset(t)
	g := m.Root()
	g.SetUint(t.FieldIndex("MsgSeqNum"), 4711)
	g.SetUint(t.FieldIndex("SendingTime"), 20261122101500123)
	seq := g.SetSeq(t.FieldIndex("GroupMDEntries"), 3)
	f := seq.Elem(0).Fields()
	idx := func(name string) int {
		for i, x := range f {
			if x.Name == name {
				return i
			}
		}
		tb.Fatalf("no field %s", name)
		return -1
	}
	for j := 0; j < 3; j++ {
		el := seq.Elem(j)
		el.SetString(idx("MDEntryType"), "z")
		el.SetString(idx("MDEntryID"), "7001234567"+string(rune('0'+j)))
		el.SetString(idx("Symbol"), "SBER")
		el.SetInt(idx("RptSeq"), int64(90210+j))
		el.SetUint(idx("MDEntryTime"), 101500123)
		el.SetString(idx("OrderSide"), "B")
		el.SetDecimal(idx("MDEntryPx"), 28455+int64(j), -2)
		el.SetDecimal(idx("MDEntrySize"), 10*int64(j+1), 0)
		el.SetDecimal(idx("TradeValue"), 284550*int64(j+1), -1)
		el.SetString(idx("TradingSessionID"), "TQBR")
	}
	return ts
}

func benchDecode(b *testing.B, ts *Templates, m *Message) {
	wire, err := NewEncoder(ts).Encode(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	dec := NewDecoder(ts)
	var out Message
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		dec.Reset() // every datagram starts with fresh dictionaries
		if _, err := dec.Decode(wire, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncode(b *testing.B, ts *Templates, m *Message) {
	enc := NewEncoder(ts)
	buf := make([]byte, 0, 1500)
	wire, err := enc.Encode(buf, m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	for b.Loop() {
		enc.Reset()
		if buf, err = enc.Encode(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeIncremental5(b *testing.B) {
	ts := loadFixture(b)
	var m Message
	incremental5(b, ts, &m)
	benchDecode(b, ts, &m)
}

func BenchmarkEncodeIncremental5(b *testing.B) {
	ts := loadFixture(b)
	var m Message
	incremental5(b, ts, &m)
	benchEncode(b, ts, &m)
}

func BenchmarkDecodeMOEXTrades(b *testing.B) {
	var m Message
	ts := moexTrades(b, &m)
	benchDecode(b, ts, &m)
}

func BenchmarkEncodeMOEXTrades(b *testing.B) {
	var m Message
	ts := moexTrades(b, &m)
	benchEncode(b, ts, &m)
}

// snapshot10 builds a full refresh of one instrument: five bid and five offer levels, the
// entry type copied from level to level, prices as a copied exponent and a delta mantissa.
func snapshot10(tb testing.TB, ts *Templates, m *Message) {
	tb.Helper()
	t := ts.ByName("MDSnapshotFullRefresh")
	m.Reset(t)
	g := m.Root()
	g.SetUint(t.FieldIndex("MsgSeqNum"), 123457)
	g.SetUint(t.FieldIndex("SendingTime"), 1795372800123457789)
	g.SetUint(t.FieldIndex("LastMsgSeqNumProcessed"), 123456)
	g.SetString(t.FieldIndex("Symbol"), "SBER")
	g.SetUint(t.FieldIndex("RptSeq"), 817)
	seq := g.SetSeq(t.FieldIndex("MDEntries"), 10)
	f := seq.Elem(0).Fields()
	idx := func(name string) int {
		for i, x := range f {
			if x.Name == name {
				return i
			}
		}
		tb.Fatalf("no field %s", name)
		return -1
	}
	for j := 0; j < 10; j++ {
		el := seq.Elem(j)
		typ, px := "0", int64(28450-5*j)
		if j >= 5 {
			typ, px = "1", int64(28470+5*(j-5))
		}
		el.SetString(idx("MDEntryType"), typ)
		el.SetDecimal(idx("MDEntryPx"), px, -2)
		el.SetDecimal(idx("MDEntrySize"), int64(100*(j+1)), 0)
		el.SetUint(idx("NumberOfOrders"), uint64(j+1))
	}
}

// BenchmarkDecodeCopyDeltaCorpus decodes a corpus of two templates with copy, delta and
// increment operators (fixtures/templates.xml: the 5-entry incremental refresh and a
// 10-level full refresh, in turn), dictionaries reset before every message; ns/op is per
// message.
func BenchmarkDecodeCopyDeltaCorpus(b *testing.B) {
	ts := loadFixture(b)
	var inc, snap Message
	incremental5(b, ts, &inc)
	snapshot10(b, ts, &snap)
	enc := NewEncoder(ts)
	var corpus [][]byte
	size := 0
	for _, m := range []*Message{&inc, &snap} {
		enc.Reset()
		w, err := enc.Encode(nil, m)
		if err != nil {
			b.Fatal(err)
		}
		corpus = append(corpus, w)
		size += len(w)
	}
	dec := NewDecoder(ts)
	var out Message
	b.SetBytes(int64(size / len(corpus)))
	b.ReportAllocs()
	defer cpuMetric(b)()
	i := 0
	for b.Loop() {
		dec.Reset()
		if _, err := dec.Decode(corpus[i], &out); err != nil {
			b.Fatal(err)
		}
		i ^= 1
	}
}
