package codecs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"fastfeed/fast"
	"fastfeed/fast/codecs/ffcodec"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fixtures"
)

// incremental5 is the message of fast's BenchmarkDecodeIncremental5: five MBP entries of
// one instrument in an MDIncRefresh.
func incremental5() *ffcodec.Message {
	m := &ffcodec.Message{ID: ffcodec.IDMDIncRefresh}
	v := &m.MDIncRefresh
	v.MsgSeqNum, v.SendingTime = 123456, 1795372800123456789
	for j, e := range []struct {
		action   uint32
		typ      string
		px, size int64
		orders   uint32
	}{{1, "0", 28455, 1200, 4}, {0, "0", 28450, 300, 1}, {2, "1", 28470, 0, 0}, {1, "1", 28475, 5000, 12}, {0, "1", 28480, 100, 1}} {
		el := ffcodec.MDIncRefreshMDEntries{
			MDUpdateAction: e.action, MDEntryType: []byte(e.typ), Symbol: []byte("SBER"), RptSeq: uint32(812 + j),
			MDEntryPx: fastDecimal(e.px, -2), HasMDEntryPx: true,
		}
		if e.action != 2 {
			el.MDEntrySize, el.HasMDEntrySize = fastDecimal(e.size, 0), true
			el.NumberOfOrders, el.HasNumberOfOrders = e.orders, true
		}
		v.MDEntries = append(v.MDEntries, el)
	}
	return m
}

// moexTrades is the message of fast's BenchmarkDecodeMOEXTrades: an X-TLR-FOND (2521)
// with three trades.
func moexTrades() *moexasts.Message { return moexTradesN(3) }

// moexTradesN is moexTrades with n trades (a live ASTS trades feed mostly sends one).
func moexTradesN(n int) *moexasts.Message {
	m := &moexasts.Message{ID: moexasts.IDXTLRFOND}
	v := &m.XTLRFOND
	v.MsgSeqNum, v.SendingTime = 4711, 20261122101500123
	for j := range n {
		v.GroupMDEntries = append(v.GroupMDEntries, moexasts.XTLRFONDGroupMDEntries{
			MDEntryType: []byte("z"), MDEntryID: []byte("7001234567" + string(rune('0'+j))), HasMDEntryID: true,
			Symbol: []byte("SBER"), HasSymbol: true, RptSeq: int32(90210 + j), HasRptSeq: true,
			MDEntryTime: 101500123, HasMDEntryTime: true, OrderSide: []byte("B"), HasOrderSide: true,
			MDEntryPx: fastDecimal(28455+int64(j), -2), HasMDEntryPx: true,
			MDEntrySize: fastDecimal(10*int64(j+1), 0), HasMDEntrySize: true,
			TradeValue: fastDecimal(284550*int64(j+1), -1), HasTradeValue: true,
			TradingSessionID: []byte("TQBR"), HasTradingSessionID: true,
		})
	}
	return m
}

func moexTemplates(tb testing.TB) *fast.Templates {
	tb.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "..", "..", "shared", "conformance", "exchange-templates", "moex_asts_FIX50SP2-2017-Mar.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

type workload struct {
	name string
	ts   func(testing.TB) *fast.Templates
	wire func(testing.TB) []byte // generated encoding, checked against the interpreter's
	gen  func() (decode func([]byte) error, encode func([]byte) ([]byte, error))
}

func workloads() []workload {
	return []workload{
		{"Incremental5", func(tb testing.TB) *fast.Templates {
			ts, err := fixtures.Templates()
			if err != nil {
				tb.Fatal(err)
			}
			return ts
		}, nil, func() (func([]byte) error, func([]byte) ([]byte, error)) {
			d, e, in := ffcodec.NewDecoder(), ffcodec.NewEncoder(), incremental5()
			var out ffcodec.Message
			return func(b []byte) error { d.Reset(); _, err := d.Decode(b, &out); return err },
				func(b []byte) ([]byte, error) { e.Reset(); return e.Encode(b, in) }
		}},
		{"MOEXTrade1", moexTemplates, nil, func() (func([]byte) error, func([]byte) ([]byte, error)) {
			d, e, in := moexasts.NewDecoder(), moexasts.NewEncoder(), moexTradesN(1)
			var out moexasts.Message
			return func(b []byte) error { d.Reset(); _, err := d.Decode(b, &out); return err },
				func(b []byte) ([]byte, error) { e.Reset(); return e.Encode(b, in) }
		}},
		{"MOEXTrades", moexTemplates, nil, func() (func([]byte) error, func([]byte) ([]byte, error)) {
			d, e, in := moexasts.NewDecoder(), moexasts.NewEncoder(), moexTrades()
			var out moexasts.Message
			return func(b []byte) error { d.Reset(); _, err := d.Decode(b, &out); return err },
				func(b []byte) ([]byte, error) { e.Reset(); return e.Encode(b, in) }
		}},
	}
}

// wireOf encodes a workload's message with the generated encoder and checks that the
// interpreter encodes the same bytes.
func wireOf(tb testing.TB, w workload) ([]byte, *fast.Templates, *fast.Message) {
	tb.Helper()
	_, enc := w.gen()
	wire, err := enc(nil)
	if err != nil {
		tb.Fatal(err)
	}
	ts := w.ts(tb)
	var m fast.Message
	if _, err := fast.NewDecoder(ts).Decode(wire, &m); err != nil {
		tb.Fatal(err)
	}
	again, err := fast.NewEncoder(ts).Encode(nil, &m)
	if err != nil || !bytes.Equal(again, wire) {
		tb.Fatalf("interpreter re-encodes % x as % x (%v)", wire, again, err)
	}
	return wire, ts, &m
}

func TestWorkloadsAgree(t *testing.T) {
	for _, w := range workloads() {
		wire, _, _ := wireOf(t, w)
		dec, _ := w.gen()
		if err := dec(wire); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
}

// BenchmarkDecode compares the generated decoder with the interpreter on the same bytes,
// dictionaries reset before every message as fastfeed's datagrams require.
func BenchmarkDecode(b *testing.B) {
	for _, w := range workloads() {
		wire, ts, _ := wireOf(b, w)
		b.Run(w.name+"/generated", func(b *testing.B) {
			dec, _ := w.gen()
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuMetric(b)()
			for b.Loop() {
				if err := dec(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(w.name+"/interpreted", func(b *testing.B) {
			d := fast.NewDecoder(ts)
			var m fast.Message
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuMetric(b)()
			for b.Loop() {
				d.Reset()
				if _, err := d.Decode(wire, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode compares the generated encoder with the interpreter on the same message.
func BenchmarkEncode(b *testing.B) {
	for _, w := range workloads() {
		wire, ts, m := wireOf(b, w)
		b.Run(w.name+"/generated", func(b *testing.B) {
			_, enc := w.gen()
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuMetric(b)()
			for b.Loop() {
				var err error
				if buf, err = enc(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(w.name+"/interpreted", func(b *testing.B) {
			e := fast.NewEncoder(ts)
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuMetric(b)()
			for b.Loop() {
				e.Reset()
				var err error
				if buf, err = e.Encode(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var _ = os.Getenv

// cpuMetric reports the thread's CPU time per operation as cpu-ns/op (Linux), the figure
// to compare on a loaded machine; call as defer cpuMetric(b)().
func cpuMetric(b *testing.B) func() {
	lockThread()
	start := threadCPU()
	return func() {
		if d := threadCPU() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
		}
		unlockThread()
	}
}
