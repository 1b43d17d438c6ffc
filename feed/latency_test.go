package feed

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestStagePlumbing records known synthetic stage delays and checks that every stage's
// histogram, handler-wide and of the channel, gives them back within its precision.
func TestStagePlumbing(t *testing.T) {
	h, ch := sberHandler(t)
	// Message i (1..1000) spends i µs on the wire, 2i in decode, 3i in the book, 4i in
	// the hand-off: stage s's p50 is 500(s+1) µs, its p99 990(s+1) µs, its max 1000(s+1).
	const n = 1000
	base := time.Now().UnixNano()
	for i := int64(1); i <= n; i++ {
		us := i * int64(time.Microsecond)
		sent := base
		h.clock.rx = sent + us
		h.clock.recv = h.clock.rx + us/2 // decode's 2i: i/2 in the kernel, 3i/2 in the handler
		h.clock.decodedNs = h.clock.rx + 2*us
		h.clock.book, h.clock.subs = 3*us, 4*us
		st := h.takeStamp(ch, sent, h.clock.decodedNs+7*us)
		h.recordStages(&st)
		if h.clock.rx != 0 || h.clock.recv != 0 || h.clock.decodedNs != 0 {
			t.Fatal("the clock of a recorded message was not cleared")
		}
	}
	scale := [NumStages]int64{StageWire: 1, StageDecode: 2, StageBook: 3, StageSubscribers: 4, StageTotal: 10}
	for s := Stage(0); s < NumStages; s++ {
		for _, c := range []struct {
			name   string
			l      *Latencies
			digits float64
		}{{"handler", h.StageLatency(), 1e-3}, {"channel", h.ChannelLatency()[ch.name], 1e-2}} {
			hist := c.l[s]
			if s == StageTotal && c.name == "handler" {
				continue // recorded by recordLatency, from the wall clock
			}
			if got := hist.TotalCount(); got != n {
				t.Errorf("%s %v: count %d, want %d", c.name, s, got, n)
			}
			for _, q := range []struct {
				p    float64
				want int64
			}{{50, 500}, {99, 990}, {100, 1000}} {
				want := q.want * scale[s] * int64(time.Microsecond)
				got := hist.ValueAtQuantile(q.p)
				if d := float64(got-want) / float64(want); d < -c.digits || d > c.digits {
					t.Errorf("%s %v p%v = %d ns, want %d within %.1f%%", c.name, s, q.p, got, want, 100*c.digits)
				}
			}
		}
	}
	// A message drained from the buffer after the datagram's has no kernel time: it counts
	// in Book and Total only, and a message with no hand-off not in Subscribers.
	h.clock.decodedNs = base + 10*int64(time.Microsecond)
	st := h.takeStamp(ch, base, base+20*int64(time.Microsecond))
	h.recordStages(&st)
	l := h.ChannelLatency()[ch.name]
	for s, want := range map[Stage]int64{StageWire: n, StageDecode: n, StageBook: n + 1, StageSubscribers: n, StageTotal: n + 1} {
		if got := l[s].TotalCount(); got != want {
			t.Errorf("after a drained message, %v count %d, want %d", s, got, want)
		}
	}
	split := h.DecodeSplit()
	for _, c := range []struct {
		name string
		hist *hdrhistogram.Histogram
		p50  int64 // µs
	}{{"kernel rx->received", split.Received, 250}, {"received->decoded", split.Work, 750}} {
		if got := c.hist.TotalCount(); got != n {
			t.Errorf("%s: count %d, want %d (the drained message has no kernel time)", c.name, got, n)
		}
		want := c.p50 * int64(time.Microsecond)
		if got := c.hist.ValueAtQuantile(50); got < want*999/1000 || got > want*1001/1000 {
			t.Errorf("%s p50 = %d ns, want %d", c.name, got, want)
		}
	}
	if h.Latency() != h.StageLatency()[StageTotal] {
		t.Error("Latency is not the StageTotal histogram")
	}
}

// TestTotalEndsWithHandOff: a message whose hand-off was timed ends there, so that its
// stages add up to its tick-to-handler with no clock read after the hand-off; one with no
// timed hand-off reads the clock.
func TestTotalEndsWithHandOff(t *testing.T) {
	h, ch := sberHandler(t)
	us := int64(time.Microsecond)
	sent := time.Now().UnixNano() - int64(time.Second) // a clock read would give about a second
	h.clock.rx, h.clock.decodedNs = sent+2*us, sent+3*us
	h.clock.book, h.clock.subs, h.clock.end = 1*us, 1*us, sent+5*us
	h.recordLatency(ch, sent)
	if got := h.Latency().Max(); got < 5*us*999/1000 || got > 5*us*1001/1000 {
		t.Errorf("tick-to-handler %d ns, want 5 µs: the end of the hand-off", got)
	}
	if h.clock.end != 0 {
		t.Error("the hand-off's end was not cleared")
	}
	h.clock.decodedNs = sent + 3*us // no hand-off timed
	h.recordLatency(ch, sent)
	if got := h.Latency().Max(); got < int64(time.Second) {
		t.Errorf("tick-to-handler %d ns without a timed hand-off, want the clock's, over a second", got)
	}
}

// TestLatencyOverflowNoAllocs: a SendingTime more than 10 s old (a publisher's clock that
// far behind) is counted and recorded at the top of the range, without allocating (the
// histogram's error for a value out of range allocates, for every message).
func TestLatencyOverflowNoAllocs(t *testing.T) {
	h, ch := sberHandler(t)
	sent := time.Now().UnixNano() - int64(time.Minute)
	if a := testing.AllocsPerRun(100, func() { h.recordLatency(ch, sent) }); a != 0 {
		t.Errorf("%v allocations per message 10 s late", a)
	}
	if st := h.Stats(); st.LatencyOverflow != 101 || h.Latency().TotalCount() != 101 || h.Latency().Max() < h.Latency().HighestTrackableValue()*999/1000 {
		t.Errorf("overflows %d, recorded %d, max %d", st.LatencyOverflow, h.Latency().TotalCount(), h.Latency().Max())
	}
}

// TestStampsRecordedWhenRead: a live engine keeps the histograms off the datagrams' path
// (pendingStamps), but whoever reads them sees every message: a command (Do), the
// accessors, and a full queue records what it holds.
func TestStampsRecordedWhenRead(t *testing.T) {
	h, ch := sberHandler(t)
	us := int64(time.Microsecond)
	apply := func(n int) {
		for range n {
			sent := time.Now().UnixNano()
			h.clock.rx, h.clock.recv, h.clock.decodedNs = sent+us, sent+2*us, sent+3*us
			h.clock.book, h.clock.subs, h.clock.end = us, us, sent+5*us
			h.recordLatency(ch, sent)
		}
	}
	apply(10)
	if got := h.latency.TotalCount(); got != 0 {
		t.Errorf("%d recorded at once, want 0 (queued)", got)
	}
	var seen int64
	h.queue.ch <- command{op: cmdDo, fn: func() { seen = h.latency.TotalCount() }}
	h.DoWork(time.Now().UnixNano())
	if seen != 10 {
		t.Errorf("a command saw %d recorded, want 10", seen)
	}
	apply(2) // a quiet busy-poll turn records one held message, then the other, then none
	for want := int64(11); want <= 13; want++ {
		h.recordHeld()
		if got := min(want, 12); h.latency.TotalCount() != got {
			t.Errorf("after recordHeld: %d recorded, want %d", h.latency.TotalCount(), got)
		}
	}
	apply(pendingStamps + 5) // the queue fills once: its stamps are recorded
	if got := h.latency.TotalCount(); got != 12+pendingStamps {
		t.Errorf("after a full queue %d recorded, want %d", got, 12+pendingStamps)
	}
	want := int64(12 + pendingStamps + 5)
	if got := h.Latency().TotalCount(); got != want {
		t.Errorf("Latency: %d, want %d", got, want)
	}
	apply(3)
	for name, got := range map[string]int64{
		"StageLatency":   h.StageLatency()[StageDecode].TotalCount(),
		"ChannelLatency": h.ChannelLatency()[ch.name][StageWire].TotalCount(),
		"DecodeSplit":    h.DecodeSplit().Received.TotalCount(),
	} {
		if got != want+3 {
			t.Errorf("%s: %d, want %d", name, got, want+3)
		}
	}
	if a := testing.AllocsPerRun(1000, func() { apply(1) }); a != 0 {
		t.Errorf("%v allocations per message", a)
	}
}

// sberHandler returns a handler following SBER, closed at the test's end, and SBER's
// channel.
func sberHandler(t *testing.T) (*Handler, *channel) {
	t.Helper()
	h, err := New(Config{Topics: []string{"SBER"}, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, h.bySymbol["SBER"].ch
}
