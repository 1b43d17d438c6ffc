package bench

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/md"
)

// Benchmark is a named microbenchmark: Setup prepares its state and returns one
// operation. The same operations run under "go test -bench" (BenchmarkMicro, through
// testing.B) and in "fastfeed bench" (through [RunMicro], which needs no package
// testing, so that the shipped binary does not link it).
type Benchmark struct {
	Name  string
	Bytes int64 // bytes an operation processes, for MB/s (0: none)
	Setup func() (op func() error, err error)
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
	payload := int64(len(wire) - 4)
	return []Benchmark{
		{"DecodeIncremental5", payload, func() (func() error, error) {
			c, err := md.NewCodec(ts)
			return func() error { _, err := c.Decode(wire[4:]); return err }, err
		}},
		{"EncodeIncremental5", payload, func() (func() error, error) {
			c, err := md.NewCodec(ts)
			buf := make([]byte, 0, 1500)
			return func() error {
				var err error
				buf, err = c.AppendIncremental(buf[:0], inc)
				return err
			}, err
		}},
		{"MBPChange/top/depth=20", 0, mbpChange(20, 0)},
		{"MBPChange/level=10/depth=20", 0, mbpChange(20, 10)},
		{"MBPNewDelete/level=10/depth=20", 0, func() (func() error, error) {
			bk, err := benchMBP(20)
			if err != nil {
				return nil, err
			}
			if err := bk.Apply(book.Update{Action: book.ActionDelete, Type: book.EntryBid, Price: 9990}); err != nil {
				return nil, err
			}
			add := book.Update{Action: book.ActionNew, Type: book.EntryBid, Price: 9990, Size: 5, Orders: 1}
			del := book.Update{Action: book.ActionDelete, Type: book.EntryBid, Price: 9990}
			return func() error {
				if err := bk.Apply(add); err != nil {
					return err
				}
				return bk.Apply(del)
			}, nil
		}},
		{"HistogramRecord", 0, func() (func() error, error) {
			h := NewHistogram()
			var i int64
			return func() error {
				i++
				_ = h.RecordValue(1000 + i&0xffff)
				return nil
			}, nil
		}},
		{"BaselineHeader", 0, func() (func() error, error) {
			return func() error {
				if _, _, ok := Header(wire); !ok {
					return errors.New("header not read")
				}
				return nil
			}, nil
		}},
	}, nil
}

func mbpChange(depth, level int) func() (func() error, error) {
	return func() (func() error, error) {
		bk, err := benchMBP(depth)
		u := book.Update{Action: book.ActionChange, Type: book.EntryBid, Price: 10000 - int64(level), Orders: 2}
		var i int64
		return func() error {
			i++
			u.Size = i & 1023
			return bk.Apply(u)
		}, err
	}
}

// benchMBP returns a book with depth levels a side: bids 10000, 9999, ... and asks
// 10001, 10002, ... (tick 1), as book's benchmarks build it.
func benchMBP(depth int) (*book.MBP, error) {
	bk, err := book.NewMBP(book.Config{PriceExp: -2, MaxLevels: depth + 8})
	if err != nil {
		return nil, err
	}
	for i := range depth {
		if err := bk.Apply(book.Update{Action: book.ActionNew, Type: book.EntryBid, Price: 10000 - int64(i), Size: 100, Orders: 1}); err != nil {
			return nil, err
		}
		if err := bk.Apply(book.Update{Action: book.ActionNew, Type: book.EntryOffer, Price: 10001 + int64(i), Size: 100, Orders: 1}); err != nil {
			return nil, err
		}
	}
	return bk, nil
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

// RunMicro runs m for about benchtime (1 s if 0), the way testing.Benchmark does: more
// and more operations per run until a run lasts benchtime, and reports the last run.
// Allocations are counted with runtime.ReadMemStats around the run.
func RunMicro(m Benchmark, benchtime time.Duration) (MicroResult, error) {
	if benchtime <= 0 {
		benchtime = time.Second
	}
	res := MicroResult{Name: m.Name}
	op, err := m.Setup()
	if err != nil {
		return res, fmt.Errorf("bench: %s: %w", m.Name, err)
	}
	var before, after runtime.MemStats
	n := 1
	for {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		for range n {
			if err := op(); err != nil {
				return res, fmt.Errorf("bench: %s: %w", m.Name, err)
			}
		}
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		if d >= benchtime || n >= 1e9 {
			res.N = n
			res.NsPerOp = float64(d.Nanoseconds()) / float64(n)
			res.AllocsPerOp = int64(after.Mallocs-before.Mallocs) / int64(n)
			res.BytesPerOp = int64(after.TotalAlloc-before.TotalAlloc) / int64(n)
			if m.Bytes > 0 && d > 0 {
				res.MBPerSec = float64(m.Bytes) * float64(n) / 1e6 / d.Seconds()
			}
			return res, nil
		}
		// Aim 20% past benchtime from the rate so far, growing at most 100x a run.
		next := int64(n) * 100
		if ns := d.Nanoseconds(); ns > 0 {
			next = min(next, int64(float64(benchtime.Nanoseconds())*1.2*float64(n)/float64(ns)))
		}
		n = int(max(min(next, 1e9), int64(n)+1))
	}
}
