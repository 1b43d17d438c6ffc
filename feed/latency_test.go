package feed

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/mcast"
	"fastfeed/md"
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

// TestStageSampling: a live engine times the stages of one incremental in StageEvery of
// each channel's, and every message's tick-to-handler; the readings are the batch's
// clock plus the monotonic time since (setBase), so a sampled message's stages add up to
// its tick-to-handler and fall between its send and the test's clock after it.
func TestStageSampling(t *testing.T) {
	syms := []string{"SBER", "GAZP"}
	for _, tc := range []struct {
		every, per int // StageEvery, messages per symbol
	}{{1, 12}, {4, 12}, {DefaultStageEvery, 20}, {0, 17}} {
		t.Run(fmt.Sprint("every=", tc.every), func(t *testing.T) {
			s := newScript(t)
			next := 0
			fakeJoin := func(netip.AddrPort) (int, error) { next++; return next - 1, nil }
			e, err := newEngine(Config{Topics: syms, Templates: templates(t), Port: port, StageEvery: tc.every}, fakeJoin)
			if err != nil {
				t.Fatal(err)
			}
			e.Subscribe(func(*Event) {}, "SBER", "GAZP")
			e.DoWork(time.Now().UnixNano())
			for j := range tc.per {
				for i, sym := range syms {
					seq := s.update(sym, md.New, md.Offer, int64(20000+100*j), int64(1+i))
					b := stamped(t, s, s.sent[mcast.ChannelName(channelOf(sym))][seq], time.Now().UnixNano())
					base := time.Now()
					e.setBase(base)
					e.receiveOn(e.socketIndex(channelOf(sym)), b, base.UnixNano(), base.UnixNano()-1000)
				}
			}
			sampled := 0
			for _, st := range e.pending[:e.npending] { // held, not yet recorded
				if st.now < st.rx || st.now > time.Now().UnixNano() {
					t.Fatalf("message ended at %d, received at %d, now %d", st.now, st.rx, time.Now().UnixNano())
				}
				if st.decoded == 0 {
					continue
				}
				sampled++
				if st.decoded < st.recv || st.recv < st.rx || st.book < 0 || st.subs <= 0 || st.decoded+st.book+st.subs != st.now {
					t.Errorf("sampled stamp out of order or not adding up: %+v", st)
				}
			}
			every := tc.every
			if every == 0 {
				every = DefaultStageEvery
			}
			want := int64(tc.per / every) // sampled per channel
			if sampled != int(want)*len(syms) {
				t.Errorf("%d messages held with their stages, want %d", sampled, int(want)*len(syms))
			}
			if got := e.Latency().TotalCount(); got != int64(tc.per*len(syms)) {
				t.Errorf("tick-to-handler: %d recorded, want every message's, %d", got, tc.per*len(syms))
			}
			for _, sym := range syms {
				l := e.ChannelLatency()[mcast.ChannelName(channelOf(sym))]
				if got := l[StageTotal].TotalCount(); got != int64(tc.per) {
					t.Errorf("%s tick-to-handler: %d, want %d", sym, got, tc.per)
				}
				for _, st := range []Stage{StageWire, StageDecode, StageBook, StageSubscribers} {
					if got := l[st].TotalCount(); got != want {
						t.Errorf("%s %v: %d sampled, want %d (one in %d)", sym, st, got, want, every)
					}
				}
			}
			split := e.DecodeSplit()
			for name, got := range map[string]int64{"handler decode": e.StageLatency()[StageDecode].TotalCount(),
				"split received": split.Received.TotalCount(), "split work": split.Work.TotalCount()} {
				if got != want*int64(len(syms)) {
					t.Errorf("%s: %d sampled, want %d", name, got, want*int64(len(syms)))
				}
			}
			var more [][]byte
			for j := range 101 {
				seq := s.update("SBER", md.Change, md.Offer, int64(20000+100*(j%tc.per)), 7)
				more = append(more, stamped(t, s, s.sent[mcast.ChannelName(channelOf("SBER"))][seq], time.Now().UnixNano()))
			}
			if a := testing.AllocsPerRun(100, func() {
				e.setBase(time.Now())
				e.receiveOn(e.socketIndex(channelOf("SBER")), more[0], e.clock.baseNs, e.clock.baseNs-1000)
				more = more[1:]
			}); a != 0 {
				t.Errorf("%v allocations per message", a)
			}
		})
	}
}

// TestClockNow: readings within a batch are its clock plus the monotonic time since,
// and outside Run (no batch clock) the wall clock.
func TestClockNow(t *testing.T) {
	h, _ := sberHandler(t)
	before := time.Now().UnixNano()
	if got := h.clockNow(); got < before || got > time.Now().UnixNano() {
		t.Errorf("without a batch clock: %d, not between the reads around it", got)
	}
	base := time.Now().Add(-time.Hour) // a read an hour ago: an hour of monotonic time since
	h.setBase(base)
	got := h.clockNow()
	if d := got - time.Now().UnixNano(); d < -int64(time.Millisecond) || d > 0 {
		t.Errorf("batch an hour ago: clockNow %d ns from the wall clock, want within a millisecond before", d)
	}
}

// stamped returns datagram b of script s with SendingTime sent: without one, no latency
// is timed.
func stamped(t *testing.T, s *script, b []byte, sent int64) []byte {
	t.Helper()
	if _, err := s.codec.Decode(b[4:]); err != nil {
		t.Fatal(err)
	}
	inc := s.codec.Message.Incremental
	inc.SendingTime = sent
	out, err := s.codec.AppendIncremental(slices.Clone(b[:4]), &inc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
