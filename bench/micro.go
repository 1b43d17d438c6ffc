package bench

import (
	"fmt"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/md"
)

// Benchmark is a named microbenchmark. The same functions run under "go test -bench"
// (BenchmarkMicro) and in "fastfeed bench" (through testing.Benchmark).
type Benchmark struct {
	Name string
	F    func(b *testing.B)
}

// Micro returns the codec and book microbenchmarks, the handler's per-message work in
// pieces: FAST+md decode and encode of an incremental of five entries (as md's and fast's
// benchmarks), MBP book changes (as book's), the cost of recording a latency, and the
// baseline's header read.
func Micro(ts *fast.Templates) ([]Benchmark, error) {
	codec, err := md.NewCodec(ts)
	if err != nil {
		return nil, fmt.Errorf("bench: micro: %w", err)
	}
	inc := sampleIncremental()
	wire, err := codec.AppendIncremental(make([]byte, 4), inc)
	if err != nil {
		return nil, fmt.Errorf("bench: micro: %w", err)
	}
	return []Benchmark{
		{"DecodeIncremental5", func(b *testing.B) {
			c, _ := md.NewCodec(ts)
			b.SetBytes(int64(len(wire) - 4))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(wire[4:]); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"EncodeIncremental5", func(b *testing.B) {
			c, _ := md.NewCodec(ts)
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(len(wire) - 4))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.AppendIncremental(buf[:0], inc); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"MBPChange/top/depth=20", mbpChange(20, 0)},
		{"MBPChange/level=10/depth=20", mbpChange(20, 10)},
		{"MBPNewDelete/level=10/depth=20", func(b *testing.B) {
			bk := benchMBP(b, 20)
			if err := bk.Apply(book.Update{Action: book.ActionDelete, Type: book.EntryBid, Price: 9990}); err != nil {
				b.Fatal(err)
			}
			add := book.Update{Action: book.ActionNew, Type: book.EntryBid, Price: 9990, Size: 5, Orders: 1}
			del := book.Update{Action: book.ActionDelete, Type: book.EntryBid, Price: 9990}
			b.ReportAllocs()
			for b.Loop() {
				if err := bk.Apply(add); err != nil {
					b.Fatal(err)
				}
				if err := bk.Apply(del); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"HistogramRecord", func(b *testing.B) {
			h := NewHistogram()
			b.ReportAllocs()
			for i := int64(0); b.Loop(); i++ {
				_ = h.RecordValue(1000 + i&0xffff)
			}
		}},
		{"BaselineHeader", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := Header(wire); !ok {
					b.Fatal("header not read")
				}
			}
		}},
	}, nil
}

func mbpChange(depth, level int) func(b *testing.B) {
	return func(b *testing.B) {
		bk := benchMBP(b, depth)
		u := book.Update{Action: book.ActionChange, Type: book.EntryBid, Price: 10000 - int64(level), Orders: 2}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			u.Size = int64(i & 1023)
			if err := bk.Apply(u); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchMBP returns a book with depth levels a side: bids 10000, 9999, ... and asks
// 10001, 10002, ... (tick 1), as book's benchmarks build it.
func benchMBP(b *testing.B, depth int) *book.MBP {
	bk, err := book.NewMBP(book.Config{PriceExp: -2, MaxLevels: depth + 8})
	if err != nil {
		b.Fatal(err)
	}
	for i := range depth {
		if err := bk.Apply(book.Update{Action: book.ActionNew, Type: book.EntryBid, Price: 10000 - int64(i), Size: 100, Orders: 1}); err != nil {
			b.Fatal(err)
		}
		if err := bk.Apply(book.Update{Action: book.ActionNew, Type: book.EntryOffer, Price: 10001 + int64(i), Size: 100, Orders: 1}); err != nil {
			b.Fatal(err)
		}
	}
	return bk
}

// sampleIncremental is an incremental of five entries on two instruments.
func sampleIncremental() *md.Incremental {
	px := func(m int64) md.Decimal { return md.Decimal{Mantissa: m, Exp: -2, Valid: true} }
	sz := func(m int64) md.Decimal { return md.Decimal{Mantissa: m, Valid: true} }
	return &md.Incremental{
		Header: md.Header{SeqNum: 812, SendingTime: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC).UnixNano()},
		Entries: []md.Entry{
			{Action: md.New, Type: md.Bid, Symbol: []byte("SBER"), RptSeq: 101, Price: px(10125), Size: sz(300), Orders: 3},
			{Action: md.Change, Type: md.Bid, Symbol: []byte("SBER"), RptSeq: 102, Price: px(10120), Size: sz(150), Orders: 2},
			{Action: md.Delete, Type: md.Offer, Symbol: []byte("SBER"), RptSeq: 103, Price: px(10135)},
			{Action: md.New, Type: md.Offer, Symbol: []byte("GAZP"), RptSeq: 55, Price: px(16840), Size: sz(1000), Orders: 7},
			{Action: md.New, Type: md.Trade, Symbol: []byte("GAZP"), RptSeq: 56, Price: px(16838), Size: sz(20)},
		},
	}
}

// MicroResult is one microbenchmark's outcome.
type MicroResult struct {
	Name        string
	NsPerOp     float64
	AllocsPerOp int64
	BytesPerOp  int64
	MBPerSec    float64 // 0 unless the benchmark sets bytes
	N           int
}

// RunMicro runs m through testing.Benchmark (its benchtime is the test.benchtime flag's,
// 1 s unless a program that called testing.Init set it).
func RunMicro(m Benchmark) MicroResult {
	r := testing.Benchmark(m.F)
	res := MicroResult{Name: m.Name, N: r.N, AllocsPerOp: r.AllocsPerOp(), BytesPerOp: r.AllocedBytesPerOp()}
	if r.N > 0 {
		res.NsPerOp = float64(r.T.Nanoseconds()) / float64(r.N)
	}
	if r.Bytes > 0 && r.T > 0 {
		res.MBPerSec = float64(r.Bytes) * float64(r.N) / 1e6 / r.T.Seconds()
	}
	return res
}
