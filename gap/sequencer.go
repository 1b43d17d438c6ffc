package gap

import (
	"fmt"
	"math/rand/v2"
	"time"
)

type slot[T any] struct {
	seq  uint32
	used bool
	src  Source
	data T // reused from one datagram to the next
}

// Sequencer tracks one channel, holding what waits behind a hole as values of type T in
// a ring of slots it reuses: Offer returns the slot to fill, Pop the slot to apply. A
// Tracker holds datagrams as bytes; package feed holds decoded messages (*md.Message),
// so that what waits is decoded once. The zero value is not usable; call NewSequencer.
type Sequencer[T any] struct {
	cfg     Config
	started bool
	next    uint32 // next sequence number to deliver
	state   State

	slots    []slot[T] // ring indexed by seq % len(slots)
	buffered int

	holeAt    int64  // when the current hole opened (ns)
	holeTop   uint32 // highest sequence number known to exist (buffered or announced)
	holeKnown bool   // holeTop is meaningful
	reqBeg    uint32
	reqEnd    uint32
	reqAt     int64

	snapAsked bool  // Snapshot state: the caller has been asked for snapshots
	snapTries int   // snapshot requests since the last snapshot applied, the first included
	snapWait  int64 // how long the request out may go unanswered before the next (ns)
	rng       uint64

	jumpSeq   uint32 // last far-ahead number seen
	jumpCount int

	counters Counters
}

// NewSequencer returns a Sequencer waiting for its first datagram.
func NewSequencer[T any](cfg Config) *Sequencer[T] {
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Sequencer[T]{cfg: cfg, rng: seed}
}

// Started reports whether the first datagram (or Start, a heartbeat, a reset or a
// snapshot) has set the numbering.
func (t *Sequencer[T]) Started() bool { return t.started }

// Next returns the next sequence number the tracker will deliver.
func (t *Sequencer[T]) Next() uint32 { return t.next }

// State returns the recovery state.
func (t *Sequencer[T]) State() State { return t.state }

// Counters returns the counts so far.
func (t *Sequencer[T]) Counters() Counters { return t.counters }

// Buffered returns how many datagrams wait in the buffer.
func (t *Sequencer[T]) Buffered() int { return t.buffered }

// diff is b-a in serial-number arithmetic.
func diff(a, b uint32) int64 { return int64(int32(b - a)) }

// Touch reads what Offer reads of an in-order datagram (the next number, the state, the
// counters), so that it is in the CPU's cache when the datagram comes; it changes nothing.
// A busy-polling receiver calls it between datagrams (package feed, warm.go). The result
// means nothing: it only keeps the reads from being optimized away.
func (t *Sequencer[T]) Touch() uint64 {
	return uint64(t.next) + uint64(t.state) + uint64(t.jumpCount) + t.counters.Delivered + t.counters.LineBFirst
}

// Start sets the number of the first datagram to deliver, for a handler that knows where
// the stream starts (e.g. from a snapshot). Without Start, the first datagram seen
// decides: number 1 starts the channel live; anything else is a late join, and the
// tracker goes to Snapshot.
func (t *Sequencer[T]) Start(next uint32) {
	t.started = true
	t.next = next
	t.state = Live
}

// Offer takes a datagram with sequence number seq received at time now (ns) from src.
// On Deliver the caller applies it at once. On Buffered the caller must fill the slot
// returned (its previous content is the caller's to reuse) before the next call on the
// Sequencer; for any other verdict the slot is nil.
func (t *Sequencer[T]) Offer(seq uint32, src Source, now int64) (Verdict, *T) {
	if !t.started {
		t.started = true
		t.next = seq
		if seq != 1 {
			// Late join: the books before seq are unknown.
			t.enterSnapshot(now)
			return Buffered, t.store(seq, src)
		}
	}
	d := diff(t.next, seq)
	switch {
	case d < 0:
		// Already delivered. (In serial arithmetic a corrupt number such as 2^32-1 just
		// after the start reads as a few numbers behind; it is dropped all the same.)
		t.counters.Duplicates++
		return Duplicate, nil
	case d == 0 && t.state != Snapshot:
		t.jumpCount = 0
		if t.state == Gap || t.state == Recovering {
			// The first missing number of an open hole arrived.
			if src == Recovery {
				t.counters.RecoveredFIX++
			} else {
				t.counters.RecoveredAB++
			}
		} else if src == LineB {
			t.counters.LineBFirst++
		}
		t.deliver()
		return Deliver, nil
	case d >= int64(t.cfg.Window) && t.state == Snapshot && d <= 2*int64(t.cfg.Window) && t.continues(seq):
		// Waiting for a snapshot: keep the newest datagrams, sliding the window forward.
		// What slides out is older than any snapshot still to come.
		t.slide(seq - uint32(t.cfg.Window) + 1)
	case d >= int64(t.cfg.Window):
		return t.farAhead(seq, src, now)
	}
	t.jumpCount = 0
	if t.isBuffered(seq) {
		t.counters.Duplicates++
		return Duplicate, nil
	}
	if t.state == Live {
		t.openHole(now)
	}
	if !t.holeKnown || diff(t.holeTop, seq) > 0 {
		t.holeTop, t.holeKnown = seq, true
	}
	return Buffered, t.store(seq, src)
}

// continues reports whether seq follows the newest datagram buffered closely enough to
// be the stream moving on, rather than a corrupt or spoofed number: only such a
// datagram may slide the window (and so drop what is buffered) while waiting for a
// snapshot. Anything else goes through farAhead, which wants a run of consecutive
// numbers before it believes a jump.
func (t *Sequencer[T]) continues(seq uint32) bool {
	return t.holeKnown && diff(t.holeTop, seq) <= max(int64(t.cfg.Window/8), 1)
}

// farAhead handles a datagram beyond the buffer window.
func (t *Sequencer[T]) farAhead(seq uint32, src Source, now int64) (Verdict, *T) {
	t.counters.Dropped++
	if t.jumpCount > 0 && seq == t.jumpSeq+1 {
		t.jumpCount++
	} else {
		t.jumpCount = 1
	}
	t.jumpSeq = seq
	if t.jumpCount < t.cfg.ResyncAfter {
		if t.state == Live || t.state == Gap {
			// The window overflowed: nothing between next and seq can be buffered any more.
			t.counters.Overflows++
		}
		return Dropped, nil
	}
	// The new numbering is real (a publisher that restarted without a reset, or a long
	// outage): rebuild from snapshots and restart the buffer at the new numbers.
	t.counters.Resyncs++
	t.clearBuffer()
	t.next = seq - uint32(t.jumpCount) + 1
	t.jumpCount = 0
	t.enterSnapshot(now)
	t.counters.Dropped-- // this one is kept
	return Buffered, t.store(seq, src)
}

func (t *Sequencer[T]) deliver() {
	t.counters.Delivered++
	t.next++
	t.settle()
}

// settle returns to Live when nothing is missing any more.
func (t *Sequencer[T]) settle() {
	if t.state == Snapshot {
		return
	}
	if t.buffered == 0 && (!t.holeKnown || diff(t.holeTop, t.next) > 0) {
		t.state = Live
		t.holeKnown = false
	}
}

func (t *Sequencer[T]) openHole(now int64) {
	t.state = Gap
	t.holeAt = now
	t.counters.Gaps++
}

// enterSnapshot switches to snapshot recovery; the next Poll asks for snapshots unless
// the caller is already being told (asked).
func (t *Sequencer[T]) enterSnapshot(now int64) {
	if t.state != Snapshot {
		t.counters.Snapshots++
	}
	t.state = Snapshot
	t.reqAt = now
	t.snapAsked = false
}

// askSnapshot records that the caller is being asked for snapshots now.
func (t *Sequencer[T]) askSnapshot(now int64, reason string) Action {
	t.enterSnapshot(now)
	t.snapAsked = true
	t.snapTries++
	t.snapWait = t.backoff()
	return Action{Kind: Resnapshot, Reason: reason}
}

// backoff returns how long the snapshot request now going out may go unanswered before
// it is sent again: RecoveryTimeout doubled for each request since the last snapshot
// applied, capped at MaxBackoff, plus a random part of up to half of that, so that
// handlers that joined together do not ask again together.
func (t *Sequencer[T]) backoff() int64 {
	d := int64(t.cfg.RecoveryTimeout)
	limit := int64(t.cfg.MaxBackoff)
	for i := 1; i < t.snapTries && d < limit; i++ {
		d *= 2
	}
	d = min(d, max(limit, int64(t.cfg.RecoveryTimeout)))
	// splitmix64: no allocation, no lock, no shared state.
	t.rng += 0x9e3779b97f4a7c15
	z := t.rng
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return d + int64(z%uint64(d/2+1))
}

// SnapshotWait returns how long the snapshot request out may go unanswered before Poll
// asks again (0 outside the Snapshot state or before the first request), and how many
// requests have been made since the last snapshot applied.
func (t *Sequencer[T]) SnapshotWait() (time.Duration, int) {
	if t.state != Snapshot || !t.snapAsked {
		return 0, t.snapTries
	}
	return time.Duration(t.snapWait), t.snapTries
}

func (t *Sequencer[T]) isBuffered(seq uint32) bool {
	if len(t.slots) == 0 {
		return false
	}
	s := &t.slots[seq%uint32(len(t.slots))]
	return s.used && s.seq == seq
}

// store takes the slot of seq and returns it for the caller to fill. The ring grows (by
// doubling, up to Window) only while the distance from next requires it.
func (t *Sequencer[T]) store(seq uint32, src Source) *T {
	need := diff(t.next, seq) + 1
	if need > int64(len(t.slots)) {
		t.grow(int(need))
	}
	s := &t.slots[seq%uint32(len(t.slots))]
	if s.used {
		// The slot holds an older number that can no longer be delivered (only possible
		// in Snapshot state, where the window slides); forget it.
		t.buffered--
	}
	s.seq, s.used, s.src = seq, true, src
	t.buffered++
	return &s.data
}

func (t *Sequencer[T]) grow(need int) {
	n := max(len(t.slots), 16)
	for n < need {
		n *= 2
	}
	n = min(n, t.cfg.Window)
	if n < need {
		n = need // never happens: callers check the window first
	}
	if n == len(t.slots) {
		return
	}
	old := t.slots
	t.slots = make([]slot[T], n)
	taken := make([]bool, n) // slots whose storage came from the old ring
	for i := range old {
		if old[i].used {
			j := old[i].seq % uint32(n)
			t.slots[j], taken[j] = old[i], true
		}
	}
	for i := range old {
		// Keep the storage of the unused slots for reuse.
		if j := i % n; !old[i].used && !taken[j] {
			t.slots[j].data, taken[j] = old[i].data, true
		}
	}
}

// slide moves next forward to first, forgetting what is buffered before it.
func (t *Sequencer[T]) slide(first uint32) {
	for i := range t.slots {
		if s := &t.slots[i]; s.used && diff(first, s.seq) < 0 {
			s.used = false
			t.buffered--
		}
	}
	t.counters.Skipped += uint64(diff(t.next, first))
	t.next = first
}

func (t *Sequencer[T]) clearBuffer() {
	for i := range t.slots {
		t.slots[i].used = false
	}
	t.buffered = 0
	t.holeKnown = false
}

// Pop returns the next datagram in sequence if it is buffered, removing it. The slot is
// valid until the next call on the Sequencer. Call Pop after every Deliver and after
// SnapshotApplied until it returns ok=false.
func (t *Sequencer[T]) Pop() (seq uint32, v *T, ok bool) {
	if t.buffered == 0 || t.state == Snapshot {
		return 0, nil, false
	}
	s := &t.slots[t.next%uint32(len(t.slots))]
	if !s.used || s.seq != t.next {
		return 0, nil, false
	}
	s.used = false
	t.buffered--
	seq = t.next
	t.deliver()
	return seq, &s.data, true
}

// Heartbeat records that the publisher has sent up to last: if last is at or beyond the
// next expected number, the tail of the channel was lost and a hole opens.
func (t *Sequencer[T]) Heartbeat(last uint32, now int64) {
	if !t.started {
		t.Start(last + 1)
		if last != 0 {
			// A handler that starts on a heartbeat missed everything before it.
			t.enterSnapshot(now)
		}
		return
	}
	if diff(t.next, last) < 0 {
		return
	}
	if t.state == Live {
		t.openHole(now)
	}
	if !t.holeKnown || diff(t.holeTop, last) > 0 {
		t.holeTop, t.holeKnown = last, true
	}
}

// Reset applies a SequenceReset: numbering restarts at newSeqNo and everything buffered
// is forgotten. The caller clears the channel's books.
func (t *Sequencer[T]) Reset(newSeqNo uint32) {
	t.clearBuffer()
	t.started = true
	t.next = newSeqNo
	t.state = Live
	t.jumpCount = 0
	t.counters.Resets++
}

// hole returns the first missing range: from next to the number before the first
// buffered one, or to the highest number announced.
func (t *Sequencer[T]) hole() (beg, end uint32, ok bool) {
	if t.state == Live || t.state == Snapshot {
		return 0, 0, false
	}
	beg = t.next
	end = beg
	found := false
	for i := uint32(0); i < uint32(len(t.slots)); i++ {
		if t.isBuffered(beg + i) {
			end = beg + i - 1
			found = true
			break
		}
	}
	if !found {
		if !t.holeKnown || diff(beg, t.holeTop) < 0 {
			return 0, 0, false
		}
		end = t.holeTop
	}
	if diff(beg, end) < 0 {
		return 0, 0, false
	}
	return beg, end, true
}

// Poll checks the timers at time now and returns what the caller must do, at most one
// action per call.
func (t *Sequencer[T]) Poll(now int64) Action {
	switch t.state {
	case Gap:
		if now-t.holeAt < int64(t.cfg.GapWait) {
			return Action{}
		}
		beg, end, ok := t.hole()
		if !ok {
			t.settle()
			return Action{}
		}
		n := uint32(diff(beg, end)) + 1
		t.counters.Missing += uint64(n)
		if t.cfg.NoRecovery || n > t.cfg.MaxRequest {
			return t.askSnapshot(now, fmt.Sprintf("hole of %d datagrams (%d..%d)", n, beg, end))
		}
		t.state = Recovering
		t.reqBeg, t.reqEnd, t.reqAt = beg, end, now
		return Action{Kind: Retransmit, Beg: beg, End: end, Reason: fmt.Sprintf("hole %d..%d open for %v", beg, end, time.Duration(now-t.holeAt))}
	case Recovering:
		if diff(t.reqEnd, t.next) > 0 {
			// The requested range is in; a further hole may remain.
			t.state = Gap
			t.holeAt = now
			if beg, _, ok := t.hole(); !ok || beg != t.next {
				t.settle()
			}
			return Action{}
		}
		if now-t.reqAt >= int64(t.cfg.RecoveryTimeout) {
			return t.askSnapshot(now, fmt.Sprintf("retransmission of %d..%d timed out", t.reqBeg, t.reqEnd))
		}
	case Snapshot:
		// Ask (late join, resync), or ask again when the snapshots did not come in time.
		if !t.snapAsked {
			return t.askSnapshot(now, "books unknown from sequence "+fmt.Sprint(t.next))
		}
		if now-t.reqAt >= t.snapWait {
			waited := time.Duration(now - t.reqAt)
			t.reqAt = now
			t.snapTries++
			t.snapWait = t.backoff()
			t.counters.SnapshotRetries++
			return Action{Kind: Resnapshot, Reason: fmt.Sprintf("snapshots not received in %v; asking again (request %d, next wait %v)",
				waited.Round(time.Millisecond), t.snapTries, time.Duration(t.snapWait).Round(time.Millisecond))}
		}
	}
	return Action{}
}

// NextPoll returns when Poll next has something to do for certain (Unix ns, in now's
// clock): at once when a request is to be made, else when a hole has waited GapWait,
// a retransmission RecoveryTimeout or a snapshot request its backoff. ok is false in
// the Live state, where only Offer and Heartbeat change anything. A caller that sleeps
// until then (and wakes for datagrams and answers) polls no more than it needs: a
// handler waiting seconds for snapshots does not wake every millisecond.
func (t *Sequencer[T]) NextPoll(now int64) (at int64, ok bool) {
	switch t.state {
	case Gap:
		return t.holeAt + int64(t.cfg.GapWait), true
	case Recovering:
		if diff(t.reqEnd, t.next) > 0 {
			return now, true
		}
		return t.reqAt + int64(t.cfg.RecoveryTimeout), true
	case Snapshot:
		if !t.snapAsked {
			return now, true
		}
		return t.reqAt + t.snapWait, true
	}
	return 0, false
}

// RecoveryFailed reports that the FIX retransmission was refused or the session failed:
// the channel falls back to snapshots.
func (t *Sequencer[T]) RecoveryFailed(now int64) Action {
	if t.state == Snapshot {
		return Action{}
	}
	return t.askSnapshot(now, "retransmission refused")
}

// SnapshotApplied reports that the channel's books were replaced by snapshots valid at
// sequence number last (LastMsgSeqNumProcessed). Buffered datagrams after last become
// deliverable (call Pop); those at or before it are dropped.
func (t *Sequencer[T]) SnapshotApplied(last uint32) {
	next := last + 1
	if t.started && t.state != Snapshot && diff(t.next, next) < 0 {
		return // an old snapshot: the books are already further on
	}
	if t.started && diff(t.next, next) > 0 {
		t.counters.Skipped += uint64(diff(t.next, next))
	}
	for i := range t.slots {
		s := &t.slots[i]
		if s.used && diff(next, s.seq) < 0 {
			s.used = false
			t.buffered--
		}
	}
	t.started = true
	t.next = next
	t.state = Gap
	t.holeKnown = false
	t.holeAt = 0
	t.snapTries = 0
	if t.buffered == 0 {
		t.state = Live
		return
	}
	// Buffered numbers beyond a new hole keep the Gap state; Poll handles it. If next is
	// buffered, Pop delivers it.
	t.holeTop, t.holeKnown = t.maxBuffered(), true
	if !t.isBuffered(next) {
		t.counters.Gaps++
	}
}

func (t *Sequencer[T]) maxBuffered() uint32 {
	top := t.next
	for i := range t.slots {
		if s := &t.slots[i]; s.used && diff(top, s.seq) > 0 {
			top = s.seq
		}
	}
	return top
}
