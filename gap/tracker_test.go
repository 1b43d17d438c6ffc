package gap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// run executes a script of steps against a tracker and checks each expectation.
//
//	A12 / B12 / R12   offer sequence 12 from line A, line B or recovery; then ">deliver",
//	                  ">duplicate", ">buffered" or ">dropped" is the expected verdict
//	pop>12 / pop>-    pop expects sequence 12, or nothing
//	drain>12,13       pop until empty, expecting exactly these
//	poll>none / poll>rt:4-5 / poll>snap
//	hb:7              heartbeat announcing last sequence 7
//	snap:7            snapshot applied at 7
//	reset:1           sequence reset to 1
//	fail>snap         recovery failed
//	@15ms             set the clock (applies to later steps)
//	state:gap         expect the state
//	need:             the caller needs a snapshot (NeedSnapshot)
func run(t *testing.T, cfg Config, script string) *Tracker {
	t.Helper()
	tr := New(cfg)
	var now int64
	for _, step := range strings.Fields(script) {
		op, want, _ := strings.Cut(step, ">")
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("step %q: %s (state %v, next %d, counters %+v)", step, fmt.Sprintf(format, args...), tr.State(), tr.Next(), tr.Counters())
		}
		switch {
		case op[0] == '@':
			d, err := time.ParseDuration(op[1:])
			if err != nil {
				t.Fatal(err)
			}
			now = int64(d)
		case op[0] == 'A' || op[0] == 'B' || op[0] == 'R':
			seq, err := strconv.ParseUint(op[1:], 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			src := map[byte]Source{'A': LineA, 'B': LineB, 'R': Recovery}[op[0]]
			v := tr.Offer(uint32(seq), src, []byte(op), now)
			if want != "" && v.String() != want {
				fail("verdict %v, want %s", v, want)
			}
		case op == "pop":
			seq, payload, ok := tr.Pop()
			if want == "-" {
				if ok {
					fail("popped %d, want nothing", seq)
				}
				break
			}
			w, _ := strconv.ParseUint(want, 10, 32)
			if !ok || seq != uint32(w) || !strings.HasSuffix(string(payload), want) {
				fail("popped %d %q ok=%v, want %s", seq, payload, ok, want)
			}
		case op == "drain":
			var got []string
			for {
				seq, _, ok := tr.Pop()
				if !ok {
					break
				}
				got = append(got, strconv.FormatUint(uint64(seq), 10))
			}
			if strings.Join(got, ",") != want {
				fail("drained %v, want %s", got, want)
			}
		case op == "poll", op == "fail":
			var a Action
			if op == "poll" {
				a = tr.Poll(now)
			} else {
				a = tr.RecoveryFailed(now)
			}
			var got string
			switch a.Kind {
			case None:
				got = "none"
			case Retransmit:
				got = fmt.Sprintf("rt:%d-%d", a.Beg, a.End)
			case Resnapshot:
				got = "snap"
			}
			if got != want {
				fail("action %s (%s), want %s", got, a.Reason, want)
			}
		default:
			name, arg, _ := strings.Cut(op, ":")
			switch name {
			case "hb", "snap", "reset", "start":
				n, err := strconv.ParseUint(arg, 10, 32)
				if err != nil {
					t.Fatal(err)
				}
				switch name {
				case "hb":
					tr.Heartbeat(uint32(n), now)
				case "snap":
					tr.SnapshotApplied(uint32(n))
				case "reset":
					tr.Reset(uint32(n))
				case "start":
					tr.Start(uint32(n))
				}
			case "need":
				tr.NeedSnapshot(now)
			case "state":
				if tr.State().String() != arg {
					fail("state %v, want %s", tr.State(), arg)
				}
			default:
				t.Fatalf("bad step %q", step)
			}
		}
	}
	return tr
}

func TestTracker(t *testing.T) {
	cfg := Config{Window: 16, GapWait: 5 * time.Millisecond, RecoveryTimeout: time.Second, MaxRequest: 100}
	tests := []struct {
		name   string
		cfg    Config
		script string
		want   Counters
	}{
		{"in order", cfg, "A1>deliver A2>deliver A3>deliver pop>- state:live",
			Counters{Delivered: 3}},
		{"duplicates", cfg, "A1>deliver A2>deliver A2>duplicate A1>duplicate state:live",
			Counters{Delivered: 2, Duplicates: 2}},
		{"line B copies dropped", cfg, "A1>deliver B1>duplicate B2>deliver A2>duplicate A3>deliver B3>duplicate",
			Counters{Delivered: 3, Duplicates: 3, LineBFirst: 1}},
		{"reorder within the wait", cfg, "A1>deliver A3>buffered state:gap A2>deliver drain>3 state:live poll>none",
			Counters{Delivered: 3, Gaps: 1, RecoveredAB: 1}},
		{"hole filled by line B", cfg, "A1>deliver A3>buffered A4>buffered B2>deliver drain>3,4 B3>duplicate B4>duplicate state:live",
			Counters{Delivered: 4, Gaps: 1, RecoveredAB: 1, Duplicates: 2}},
		{"buffered copy from the other line", cfg, "A1>deliver A3>buffered B3>duplicate",
			Counters{Delivered: 1, Gaps: 1, Duplicates: 1}},
		{"hole recovered over FIX", cfg, "A1>deliver A4>buffered A5>buffered @4ms poll>none @6ms poll>rt:2-3 state:recovering " +
			"R2>deliver pop>- R3>deliver drain>4,5 poll>none state:live A6>deliver",
			Counters{Delivered: 6, Gaps: 1, Missing: 2, RecoveredFIX: 2}},
		{"line B fills while FIX is asked", cfg, "A1>deliver A3>buffered @6ms poll>rt:2-2 B2>deliver R2>duplicate drain>3 poll>none state:live",
			Counters{Delivered: 3, Gaps: 1, Missing: 1, RecoveredAB: 1, Duplicates: 1}},
		{"recovery timeout falls back to snapshot", cfg, "A1>deliver A3>buffered @6ms poll>rt:2-2 @500ms poll>none @1006ms poll>snap state:snapshot " +
			"A4>buffered pop>- snap:3 drain>4 state:live A5>deliver",
			Counters{Delivered: 3, Gaps: 1, Missing: 1, Snapshots: 1, Skipped: 2}},
		{"recovery refused", cfg, "A1>deliver A3>buffered @6ms poll>rt:2-2 fail>snap state:snapshot snap:2 drain>3 state:live",
			Counters{Delivered: 2, Gaps: 1, Missing: 1, Snapshots: 1, Skipped: 1}},
		{"no recovery configured", Config{Window: 16, GapWait: time.Millisecond, NoRecovery: true},
			"A1>deliver A3>buffered @2ms poll>snap snap:2 drain>3 state:live",
			Counters{Delivered: 2, Gaps: 1, Missing: 1, Snapshots: 1, Skipped: 1}},
		{"hole larger than a request", Config{Window: 1000, GapWait: time.Millisecond, MaxRequest: 10},
			"A1>deliver A50>buffered @2ms poll>snap state:snapshot snap:49 drain>50 state:live",
			Counters{Delivered: 2, Gaps: 1, Missing: 48, Snapshots: 1, Skipped: 48}},
		{"heartbeat reveals a lost tail", cfg, "A1>deliver A2>deliver hb:2 state:live hb:4 state:gap @6ms poll>rt:3-4 R3>deliver R4>deliver poll>none state:live",
			Counters{Delivered: 4, Gaps: 1, Missing: 2, RecoveredFIX: 2}},
		{"late join waits for a snapshot", cfg, "A100>buffered state:snapshot poll>snap poll>none A101>buffered A102>buffered pop>- @3s poll>snap snap:100 drain>101,102 state:live A103>deliver",
			Counters{Delivered: 3, Snapshots: 1, SnapshotRetries: 1, Skipped: 1}},
		{"late join, snapshot newer than buffer", cfg, "A100>buffered A101>buffered snap:101 drain> state:live A102>deliver",
			Counters{Delivered: 1, Snapshots: 1, Skipped: 2}},
		{"late join, snapshot leaves a hole", cfg, "A100>buffered A103>buffered snap:100 state:gap @6ms poll>rt:101-102 R101>deliver R102>deliver drain>103",
			Counters{Delivered: 3, Snapshots: 1, Gaps: 1, Missing: 2, RecoveredFIX: 2, Skipped: 1}},
		{"heartbeat before any data", cfg, "hb:0 A1>deliver state:live",
			Counters{Delivered: 1}},
		{"sequence reset", cfg, "A1>deliver A2>deliver A5>buffered reset:1 state:live pop>- A1>deliver A2>deliver A3>deliver",
			Counters{Delivered: 5, Gaps: 1, Resets: 1}},
		{"wraparound", cfg, "start:4294967294 A4294967294>deliver A4294967295>deliver A0>deliver A1>deliver A4294967295>duplicate",
			Counters{Delivered: 4, Duplicates: 1}},
		{"reorder across the wrap", cfg, "start:4294967295 A4294967295>deliver A1>buffered A0>deliver drain>1",
			Counters{Delivered: 3, Gaps: 1, RecoveredAB: 1}},
		{"absurd jump is dropped", cfg, "A1>deliver A2147483648>dropped A4294967295>duplicate A2>deliver A3>deliver state:live",
			Counters{Delivered: 3, Dropped: 1, Overflows: 1, Duplicates: 1}},
		{"absurd jump sustained becomes a resync", cfg, "A1>deliver A1000000>dropped A1000001>dropped A1000002>buffered state:snapshot poll>snap " +
			"snap:1000001 drain>1000002 A1000003>deliver",
			Counters{Delivered: 3, Dropped: 2, Overflows: 2, Resyncs: 1, Snapshots: 1, Skipped: 2}},
		{"window overflow", Config{Window: 8, GapWait: time.Millisecond, MaxRequest: 100},
			"A1>deliver A3>buffered A9>buffered A10>dropped @2ms poll>rt:2-2 R2>deliver drain>3",
			Counters{Delivered: 3, Gaps: 1, Missing: 1, RecoveredFIX: 1, Dropped: 1, Overflows: 1}},
		{"snapshot wait slides the window", Config{Window: 4, GapWait: time.Millisecond},
			"A10>buffered A11>buffered A12>buffered A13>buffered A14>buffered A15>buffered snap:12 drain>13,14,15 state:live",
			Counters{Delivered: 3, Snapshots: 1, Skipped: 3}},
		{"snapshot wait keeps its window against a bogus number", Config{Window: 8, GapWait: time.Millisecond},
			"A10>buffered A11>buffered A12>buffered A20>dropped A13>buffered snap:12 drain>13 state:live A14>deliver",
			Counters{Delivered: 2, Snapshots: 1, Skipped: 3, Dropped: 1}},
		{"snapshot needed by the caller", cfg, "need: A1>deliver A2>deliver need: state:snapshot A3>buffered poll>snap poll>none A4>buffered " +
			"snap:3 drain>4 state:live A5>deliver",
			Counters{Delivered: 4, Snapshots: 1, Skipped: 1}},
		{"stale snapshot ignored", cfg, "A1>deliver A2>deliver A3>deliver snap:1 A4>deliver",
			Counters{Delivered: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := run(t, tt.cfg, tt.script)
			if got := tr.Counters(); got != tt.want {
				t.Errorf("counters\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestTrackerRandom feeds a shuffled, duplicated, lossy stream through two lines and
// checks that everything is delivered exactly once and in order when each hole is
// eventually filled by recovery.
func TestTrackerRandom(t *testing.T) {
	const n = 20000
	tr := New(Config{Window: 256, GapWait: time.Millisecond, MaxRequest: 10000})
	tr.Start(1)
	var next uint32 = 1
	var now int64
	rng := uint64(12345)
	rand := func(k int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(k))
	}
	deliver := func(seq uint32) {
		if seq != next {
			t.Fatalf("delivered %d, want %d", seq, next)
		}
		next++
	}
	offer := func(seq uint32, src Source) {
		if tr.Offer(seq, src, []byte{byte(seq)}, now) == Deliver {
			deliver(seq)
			for {
				s, p, ok := tr.Pop()
				if !ok {
					break
				}
				if p[0] != byte(s) {
					t.Fatalf("payload of %d is %d", s, p[0])
				}
				deliver(s)
			}
		}
	}
	for seq := uint32(1); seq <= n; {
		// Emit a small window out of order on line A, each datagram lost with 5%
		// probability, and copy some on line B.
		k := 1 + rand(6)
		batch := make([]uint32, 0, k)
		for i := 0; i < k && seq <= n; i++ {
			batch = append(batch, seq)
			seq++
		}
		for i := len(batch) - 1; i > 0; i-- {
			j := rand(i + 1)
			batch[i], batch[j] = batch[j], batch[i]
		}
		for _, s := range batch {
			if rand(20) != 0 {
				offer(s, LineA)
			}
			if rand(4) == 0 {
				offer(s, LineB)
			}
		}
		now += int64(time.Millisecond / 2)
		if a := tr.Poll(now); a.Kind == Retransmit {
			for s := a.Beg; s != a.End+1; s++ {
				offer(s, Recovery)
			}
		} else if a.Kind == Resnapshot {
			t.Fatalf("unexpected snapshot fallback: %s", a.Reason)
		}
	}
	// Flush the tail: the publisher's heartbeat announces the last number.
	tr.Heartbeat(n, now)
	for i := 0; i < 3 && next <= n; i++ {
		now += int64(10 * time.Millisecond)
		if a := tr.Poll(now); a.Kind == Retransmit {
			for s := a.Beg; s != a.End+1; s++ {
				offer(s, Recovery)
			}
		}
	}
	if next != n+1 {
		t.Fatalf("delivered up to %d of %d", next-1, n)
	}
	c := tr.Counters()
	if c.Delivered != n || c.RecoveredFIX == 0 || c.RecoveredAB == 0 || c.Duplicates == 0 {
		t.Errorf("counters %+v", c)
	}
	if tr.State() != Live {
		t.Errorf("state %v at the end", tr.State())
	}
}

func TestTrackerBoundedMemory(t *testing.T) {
	tr := New(Config{Window: 64})
	tr.Offer(1, LineA, nil, 0)
	for _, s := range []uint32{1 << 31, 1<<32 - 1, 1 << 20, 70, 65, 64} {
		tr.Offer(s, LineA, make([]byte, 1400), 0)
	}
	if len(tr.slots) > 64 {
		t.Fatalf("buffer grew to %d slots with a window of 64", len(tr.slots))
	}
}

func TestTrackerNoAllocs(t *testing.T) {
	tr := New(Config{Window: 64, GapWait: time.Hour})
	payload := make([]byte, 200)
	seq := uint32(1)
	step := func() {
		// Deliver one, buffer two ahead, then fill the hole.
		tr.Offer(seq, LineA, payload, 0)
		tr.Offer(seq+2, LineA, payload, 0)
		tr.Offer(seq+1, LineB, payload, 0)
		for {
			if _, _, ok := tr.Pop(); !ok {
				break
			}
		}
		tr.Poll(0)
		seq += 3
	}
	for i := 0; i < 100; i++ {
		step()
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("%.1f allocations per step", a)
	}
}

func BenchmarkOfferInOrder(b *testing.B) {
	tr := New(Config{})
	payload := make([]byte, 200)
	seq := uint32(1)
	b.ReportAllocs()
	for b.Loop() {
		tr.Offer(seq, LineA, payload, 0)
		tr.Offer(seq, LineB, payload, 0)
		seq++
	}
}

// TestSnapshotBackoff: a snapshot request that goes unanswered is sent again after
// RecoveryTimeout, then twice as long each time (plus up to half as much at random), up
// to MaxBackoff; a snapshot applied starts over from RecoveryTimeout. Two sequencers
// with different seeds do not ask again at the same times.
func TestSnapshotBackoff(t *testing.T) {
	const base = time.Second
	cfg := Config{Window: 16, RecoveryTimeout: base, MaxBackoff: 8 * base}
	asks := func(seed uint64) []time.Duration {
		cfg := cfg
		cfg.Seed = seed
		tr := NewSequencer[[]byte](cfg)
		tr.Offer(100, LineA, 0)
		var at []time.Duration
		if at, ok := tr.NextPoll(0); !ok || at != 0 {
			t.Errorf("late join: NextPoll %v %v, want now", at, ok)
		}
		if a := tr.Poll(0); a.Kind != Resnapshot {
			t.Fatalf("late join: %+v, want a snapshot request", a)
		}
		last := int64(0)
		for now := time.Duration(0); now <= 60*time.Second; now += 10 * time.Millisecond {
			due, ok := tr.NextPoll(int64(now))
			w, _ := tr.SnapshotWait()
			if !ok || due != last+int64(w) {
				t.Fatalf("at %v: NextPoll %v %v, want the request at %v plus its wait %v", now, due, ok, last, w)
			}
			if a := tr.Poll(int64(now)); a.Kind == Resnapshot {
				if int64(now) < due {
					t.Fatalf("asked again at %v, before NextPoll %v", now, due)
				}
				at = append(at, now)
				last = int64(now)
			}
		}
		if got := tr.Counters().SnapshotRetries; got != uint64(len(at)) {
			t.Errorf("SnapshotRetries %d, want %d", got, len(at))
		}
		// A snapshot applied ends the backoff: the next request waits RecoveryTimeout again.
		tr.SnapshotApplied(100)
		if w, n := tr.SnapshotWait(); w != 0 || n != 0 {
			t.Errorf("after a snapshot: wait %v after %d requests, want 0 and 0", w, n)
		}
		tr.Offer(200, LineA, int64(61*time.Second))
		tr.Offer(201, LineA, int64(61*time.Second))
		tr.Offer(202, LineA, int64(61*time.Second))
		if a := tr.Poll(int64(61 * time.Second)); a.Kind != Resnapshot {
			t.Fatalf("after the resync: %+v, want a snapshot request", a)
		}
		if w, n := tr.SnapshotWait(); w < base || w > base*3/2 || n != 1 {
			t.Errorf("new recovery: wait %v after %d requests, want %v..%v after 1", w, n, base, base*3/2)
		}
		return at
	}
	a := asks(1)
	prev := time.Duration(0)
	for i, at := range a {
		wait := at - prev
		want := base << min(i, 3) // 1, 2, 4, 8, 8, ... s
		if wait < want || wait > want*3/2+10*time.Millisecond {
			t.Errorf("request %d again after %v, want %v..%v (asked at %v)", i+2, wait, want, want*3/2, a)
		}
		prev = at
	}
	if len(a) < 5 || len(a) > 9 {
		t.Errorf("%d requests in 60 s, want 5..9 (backoff capped at 8 s): %v", len(a), a)
	}
	if b := asks(2); slices.Equal(a, b) {
		t.Errorf("two seeds asked again at the same times %v: no jitter", a)
	}
}

// TestSequencerTouch: Touch reads the in-order state and changes none of it.
func TestSequencerTouch(t *testing.T) {
	s := NewSequencer[int](Config{})
	for seq := uint32(1); seq <= 3; seq++ {
		s.Offer(seq, LineA, 0)
	}
	s.Offer(4, LineB, 0)
	next, state, counters := s.Next(), s.State(), s.Counters()
	if got, want := s.Touch(), uint64(next)+uint64(state)+counters.Delivered+counters.LineBFirst; got != want {
		t.Errorf("Touch = %d, want %d (next %d, state %v, %+v)", got, want, next, state, counters)
	}
	if s.Next() != next || s.State() != state || s.Counters() != counters {
		t.Errorf("Touch changed the sequencer: next %d state %v %+v", s.Next(), s.State(), s.Counters())
	}
}
