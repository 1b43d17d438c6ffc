package feed

import (
	"encoding/binary"
	"testing"

	"fastfeed/mcast"
	"fastfeed/md"
)

// The benchmarks of this file measure the engine without sockets, through the same calls
// a live receiver and a replay make, so that one run compares builds before and after a
// change of the engine's shape (benchstat).

// sinkRecovery is a Recovery that only keeps its sink, for a benchmark to feed it.
type sinkRecovery struct{ sink Sink }

func (r *sinkRecovery) Start(s Sink)                        { r.sink = s }
func (r *sinkRecovery) Retransmit(string, uint32, uint32)   {}
func (r *sinkRecovery) Snapshot(channel string, _ []string) {}

// BenchmarkReceivePath: one in-sequence datagram through the engine (decode, sequence
// check, book update, subscriber fan-out); ns/datagram, 0 allocs/op.
func BenchmarkReceivePath(b *testing.B) {
	ds, _ := stream(b, benchSymbols, 20000)
	e := benchEngine(b, benchSymbols, nil)
	var events int
	e.Subscribe(func(*Event) { events++ }, "*")
	benchWork(e, 0)
	b.ReportAllocs()
	defer threadCPU(b)()
	i, base := 0, int64(0)
	for b.Loop() {
		if i == len(ds) {
			b.StopTimer()
			e = benchEngine(b, benchSymbols, nil)
			e.Subscribe(func(*Event) { events++ }, "*")
			benchWork(e, 0)
			i, base = 0, base+int64(len(ds))
			b.StartTimer()
		}
		e.Receive(ds[i].Addr, ds[i].Buf, base+int64(i))
		i++
	}
	if events == 0 {
		b.Fatal("no events")
	}
}

// BenchmarkHoleRelease: datagrams that arrive behind a one-datagram hole are held, and
// released when the hole fills; ns per datagram held and released.
func BenchmarkHoleRelease(b *testing.B) {
	const block = 16
	syms := []string{"SBER"}
	ds, _ := stream(b, syms, 16001)
	var e benchTarget
	fresh := func() {
		e = benchEngine(b, syms, nil)
		e.Receive(ds[0].Addr, ds[0].Buf, 0) // the channel starts live at 1
	}
	fresh()
	held := ds[1:]
	b.ReportAllocs()
	defer threadCPU(b)()
	i, now := 0, int64(1)
	for b.Loop() {
		if i == len(held) {
			b.StopTimer()
			fresh()
			i = 0
			b.StartTimer()
		}
		// Each block: its first datagram is late; the others wait behind it.
		if k := i % block; k == block-1 {
			first := i - (block - 1)
			e.Receive(held[first].Addr, held[first].Buf, now) // fills the hole: releases block-1
		} else {
			e.Receive(held[i+1].Addr, held[i+1].Buf, now)
		}
		i++
		now++
	}
}

// BenchmarkRetransmitApplied: a message recovered over FIX, as the recovery client has
// parsed it from tag-value, handed to the engine's sink and applied to its book.
func BenchmarkRetransmitApplied(b *testing.B) {
	syms := []string{"SBER"}
	ds, _ := stream(b, syms, 16000)
	codec, err := md.NewCodec(templates(b))
	if err != nil {
		b.Fatal(err)
	}
	incs := make([]md.Incremental, len(ds))
	for i := range ds {
		if _, err := codec.Decode(ds[i].Buf[4:]); err != nil {
			b.Fatal(err)
		}
		in := codec.Incremental
		in.Entries = append([]md.Entry(nil), in.Entries...)
		for j := range in.Entries {
			in.Entries[j].Symbol = []byte(string(in.Entries[j].Symbol))
			in.Entries[j].ID = nil
		}
		incs[i] = in
	}
	ch := mcast.ChannelName(ds[0].Addr)
	rec := &sinkRecovery{}
	e := benchEngine(b, syms, rec)
	var scratch benchRetransmitter
	b.ReportAllocs()
	defer threadCPU(b)()
	i, now := 0, int64(0)
	for b.Loop() {
		if i == len(ds) {
			b.StopTimer()
			rec = &sinkRecovery{}
			e = benchEngine(b, syms, rec)
			i = 0
			b.StartTimer()
		}
		seq := binary.LittleEndian.Uint32(ds[i].Buf)
		scratch.retransmit(b, codec, rec.sink, ch, seq, &incs[i])
		benchWork(e, now)
		i++
		now++
	}
}
