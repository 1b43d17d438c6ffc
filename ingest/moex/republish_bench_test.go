package moex

import (
	"bytes"
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"fastfeed/fast"
	"fastfeed/mcast"
	"fastfeed/publisher"
	"fastfeed/replay"
)

// allocSource is a CaptureSource that reads the process's allocation count when a
// quarter of the capture is left (every instrument and book exists by then) and at its
// end: the steady state's allocations.
type allocSource struct {
	*CaptureSource
	polls, mark    int
	before, after  uint64
	messages, left int
}

func (s *allocSource) Poll(ctx context.Context, p *publisher.Publisher, wait time.Duration) (bool, error) {
	var ms runtime.MemStats
	if s.polls == s.mark {
		runtime.ReadMemStats(&ms)
		s.before = ms.Mallocs
	}
	s.polls++
	done, err := s.CaptureSource.Poll(ctx, p, wait)
	if done {
		runtime.ReadMemStats(&ms)
		s.after = ms.Mallocs
	}
	return done, err
}

// BenchmarkIngestCaptureRepublish: BenchmarkIngestCapture's capture (3,000 instruments)
// read, decoded, applied to the MBO books and republished on the topic bus (level
// changes derived, encoded, sequenced, retained, sent with sendmmsg on loopback in the
// test's namespace), a fresh engine and publisher every op: ns per exchange message,
// messages/s, and the allocations per message of the last quarter of the capture, when
// every instrument and book exists (steady-allocs/msg).
func BenchmarkIngestCaptureRepublish(b *testing.B) {
	const messages = 60000
	if benchData == nil {
		benchData, _ = benchCapture(b, messages)
	}
	for _, bc := range []struct {
		name   string
		single bool
	}{{"topic-groups", false}, {"single-group", true}} {
		b.Run(bc.name, func(b *testing.B) { benchRepublish(b, benchData, messages, bc.single) })
	}
}

// benchRepublish republishes data, a capture of messages datagrams, with a fresh engine
// and publisher every op; single puts every topic on one group.
func benchRepublish(b *testing.B, data []byte, messages int, single bool) {
	m := fond(b)
	ts, err := fast.LoadFile(busTemplates)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 256
	run := func() (*allocSource, *Republisher, *publisher.Publisher) {
		e, err := NewEngine(m, Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := replay.NewReader(bytes.NewReader(data), nil)
		if err != nil {
			b.Fatal(err)
		}
		src := &allocSource{CaptureSource: &CaptureSource{R: r, E: e, Batch: batch}, mark: messages * 3 / 4 / batch}
		cfg := publisher.Config{Templates: ts, Source: src, RetentionBytes: publisher.MinRetentionBytes,
			Recovery: publisher.RecoveryConfig{Listen: "127.0.0.1:0"}}
		if single {
			if cfg.Mapping, err = mcast.SingleGroupMapping(netip.MustParseAddr("239.1.1.1")); err != nil {
				b.Fatal(err)
			}
		}
		p, err := publisher.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		rep := NewRepublisher(p)
		e.Listener = rep
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if st := e.Stats(); st.Datagrams != uint64(messages) || st.DecodeErrors != 0 {
			b.Fatalf("engine %+v", st)
		}
		return src, rep, p
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, rep0, p0 := run()
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Held after a run: the engine's books, the bus's books, definitions and tables, and
	// the retention (a 4 MiB arena and 100,000 records of 32 bytes).
	held := float64(after.HeapAlloc-before.HeapAlloc) / float64(rep0.Stats().Instruments)
	runtime.KeepAlive(p0)
	b.ReportAllocs()
	lockThread() // Run's loop is this goroutine: its thread's CPU time is the work's
	defer unlockThread()
	cpu0 := threadCPU()
	var steady, entries, datagrams float64
	for b.Loop() {
		src, rep, p := run()
		steady += float64(src.after-src.before) / float64(messages-src.mark*batch)
		st := p.Stats()
		entries += float64(st.Entries)
		datagrams += float64(st.Datagrams)
		if rs := rep.Stats(); rs.Refused != 0 || rs.Precision != 0 || st.SourceErrors != 0 {
			b.Fatalf("republisher %+v, publisher %+v", rs, st)
		}
	}
	cpu := threadCPU() - cpu0
	n := float64(b.N) * float64(messages)
	b.ReportMetric(b.Elapsed().Seconds()*1e9/n, "ns/msg")
	if cpu > 0 {
		b.ReportMetric(float64(cpu)/n, "cpu-ns/msg") // user and system time of the thread: sendmmsg included
	}
	b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(steady/float64(b.N), "steady-allocs/msg")
	b.ReportMetric(entries/n, "bus-entries/msg")
	b.ReportMetric(held, "heapB/instrument")
	b.ReportMetric(datagrams/n, "bus-datagrams/msg")
}

// TestRepublishSteadyStateAllocs: 50 instruments whose books have grown to their depth
// by the last quarter of the capture: from there on, a datagram (decode, MBO update,
// level derived, entry encoded, sequenced, retained and sent) allocates nothing beyond
// what the engine alone does on the same datagrams (its MBO order tables' rare amortized
// growth: the capture's books keep gaining orders); a margin of one per 100 datagrams
// for the runtime's own (none without the race detector, a few with it).
func TestRepublishSteadyStateAllocs(t *testing.T) {
	const messages = 20000
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 4)
	x.drop = func(_ string, _ uint32, line int) bool { return line == 1 }
	var syms []string
	for i := range 50 {
		syms = append(syms, "T"+string(rune('A'+i/26))+string(rune('A'+i%26)))
	}
	for i := range messages {
		if i%10 == 9 {
			x.trade(syms[i%len(syms)], 10000+int64(i%100), 10)
			continue
		}
		x.orderStep(syms, 1+i%3)
	}
	x.close()
	ts, err := fast.LoadFile(busTemplates)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.NewReader(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 64
	src := &allocSource{CaptureSource: &CaptureSource{R: r, E: e, Batch: batch}, mark: messages * 3 / 4 / batch}
	p, err := publisher.New(publisher.Config{Templates: ts, Source: src, RetentionBytes: publisher.MinRetentionBytes,
		Recovery: publisher.RecoveryConfig{Listen: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Listener = NewRepublisher(p)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	withBus := src.after - src.before
	// The engine alone, on the same datagrams: its books' own amortized growth.
	e2, err := NewEngine(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := replay.NewReader(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d replay.Datagram
	var ms runtime.MemStats
	var before uint64
	for i := 0; r2.Next(&d) == nil; i++ {
		if i == src.mark*batch {
			runtime.ReadMemStats(&ms)
			before = ms.Mallocs
		}
		e2.Datagram(d.Src, d.Dst, d.Payload, d.Time)
	}
	runtime.ReadMemStats(&ms)
	alone := ms.Mallocs - before
	n := messages - src.mark*batch
	t.Logf("last quarter (%d datagrams): %d allocations republishing, %d by the engine alone; publisher %+v", n, withBus, alone, p.Stats())
	if withBus > alone+uint64(n)/100 {
		t.Errorf("republishing adds %d allocations to the engine's %d over %d datagrams", withBus-alone, alone, n)
	}
}
