package moex

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"fastfeed/replay"
)

// benchCapture is a FOND capture of 3,000 instruments: orders (1 to 3 entries a message)
// and a trade every tenth message, line A only.
func benchCapture(tb testing.TB, messages int) (data []byte, symbols []string) {
	m := fond(tb)
	var buf bytes.Buffer
	x := newExchange(tb, m, &buf, 9)
	x.drop = func(_ string, _ uint32, line int) bool { return line == 1 }
	for i := range 3000 {
		symbols = append(symbols, fmt.Sprintf("S%04d", i))
	}
	for i := range messages {
		if i%10 == 9 {
			x.trade(symbols[i%len(symbols)], 10000+int64(i%100), 10)
			continue
		}
		x.orderStep(symbols, 1+i%3)
	}
	x.close()
	return buf.Bytes(), symbols
}

var benchData []byte

// BenchmarkIngestCapture: a capture of 3,000 instruments read, decoded and applied to the
// books (fresh engine every op, so the books' growth is in): ns and allocations per
// message, messages/s, and the heap the engine holds per instrument at the end.
func BenchmarkIngestCapture(b *testing.B) {
	const messages = 60000
	if benchData == nil {
		benchData, _ = benchCapture(b, messages)
	}
	m := fond(b)
	run := func() *Engine {
		e, err := NewEngine(m, Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := replay.NewReader(bytes.NewReader(benchData), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := RunCapture(context.Background(), r, e); err != nil {
			b.Fatal(err)
		}
		return e
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := run()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if e.Stats().Datagrams != messages || e.Stats().DecodeErrors != 0 {
		b.Fatalf("stats %+v", e.Stats())
	}
	heldPerInstrument := float64(after.HeapAlloc-before.HeapAlloc) / float64(len(e.Instruments()))
	runtime.KeepAlive(e)
	lockThread()
	defer unlockThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	for b.Loop() {
		run()
	}
	cpu := threadCPU() - cpu0
	n := float64(b.N) * messages
	b.ReportMetric(b.Elapsed().Seconds()*1e9/n, "ns/msg")
	b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
	if cpu > 0 {
		// CPU time of this thread (the run is single-threaded): what a message costs
		// when the machine is shared and wall time counts other processes' slices.
		b.ReportMetric(float64(cpu)/n, "cpu-ns/msg")
	}
	b.ReportMetric(heldPerInstrument, "heapB/instrument")
}

// TestSteadyStateAllocs: once the instruments and their books exist, a datagram (decode,
// sequence checks, book update, trade callback) allocates nothing.
func TestSteadyStateAllocs(t *testing.T) {
	data, _ := benchCapture(t, 20000)
	r, err := replay.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	type dg struct {
		src, dst netip.AddrPort
		b        []byte
	}
	var all []dg
	var d replay.Datagram
	for r.Next(&d) == nil {
		all = append(all, dg{d.Src, d.Dst, bytes.Clone(d.Payload)})
	}
	e, err := NewEngine(fond(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var trades int
	e.OnTrade = func(*Trade) { trades++ }
	half := len(all) * 3 / 4
	for _, x := range all[:half] {
		e.Datagram(x.src, x.dst, x.b, 0)
	}
	i := half
	allocs := testing.AllocsPerRun(len(all)-half-1, func() {
		x := all[i]
		i++
		e.Datagram(x.src, x.dst, x.b, 0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per datagram", allocs)
	}
	if st := e.Stats(); st.DecodeErrors != 0 || st.BookErrors != 0 || trades == 0 {
		t.Errorf("stats %+v trades %d", st, trades)
	}
}

// BenchmarkHeldBehindHole: 8,192 OLR datagrams held behind a one-message hole (as behind
// a slow historical replay request), then used when the hole is given up: ns per datagram
// held and used. Holding is an append in MsgSeqNum order and the drain one move, so the
// cost per datagram does not grow with the datagrams held.
func BenchmarkHeldBehindHole(b *testing.B) {
	const held = 8192
	data, _ := benchCapture(b, held*10/9+64)
	m := fond(b)
	olr := udpDst(m, "OLR", 0)
	type dg struct {
		src, dst netip.AddrPort
		p        []byte
	}
	var dgs []dg
	r, err := replay.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		b.Fatal(err)
	}
	var d replay.Datagram
	for r.Next(&d) == nil {
		if d.Dst == olr {
			dgs = append(dgs, dg{d.Src, d.Dst, bytes.Clone(d.Payload)})
		}
	}
	if len(dgs) < held+2 {
		b.Fatalf("%d OLR datagrams", len(dgs))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e, err := NewEngine(m, Options{GapWindow: held + 1, GapWait: 1 << 62})
		if err != nil {
			b.Fatal(err)
		}
		e.Datagram(dgs[0].src, dgs[0].dst, dgs[0].p, 0)
		for _, x := range dgs[2 : held+2] { // datagram 2 lost
			e.Datagram(x.src, x.dst, x.p, 1)
		}
		e.Flush()
		if c := e.Channels()["OLR"]; c.Messages != held+1 || c.Gaps != 1 {
			b.Fatalf("OLR %+v", c)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*held), "ns/datagram")
}
