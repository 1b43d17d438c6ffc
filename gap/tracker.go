// Package gap tracks the sequence numbers of one multicast channel: it arbitrates between
// lines A and B (the first copy of each number wins), drops duplicates, buffers datagrams
// that arrive ahead of a hole, decides when a hole has waited long enough to be recovered
// over FIX and when recovery has failed so that the channel must be rebuilt from
// snapshots, and hands datagrams to the caller strictly in sequence.
//
// A Tracker is a state machine driven by its caller's duty cycle: Offer for every datagram,
// Pop to drain what became deliverable, Poll for timers. It does no I/O, starts no
// goroutines, takes no locks and, once its buffer has grown to its working size, does not
// allocate. Sequence numbers are uint32 compared in serial-number arithmetic (RFC 1982), so
// they may wrap.
package gap

import (
	"fmt"
	"time"
)

// Source says where a datagram came from.
type Source uint8

// Sources.
const (
	LineA    Source = iota // the primary multicast line
	LineB                  // the secondary line carrying the same datagrams
	Recovery               // retransmitted over the FIX recovery session
)

// Verdict is what Offer decided about a datagram.
type Verdict uint8

// Verdicts.
const (
	// Deliver: the datagram is the next in sequence; apply it now, then call Pop until it
	// reports nothing more.
	Deliver Verdict = iota
	// Duplicate: already delivered or already buffered (a line B copy, a replay).
	Duplicate
	// Buffered: ahead of a hole (or waiting for a snapshot); kept until it can be delivered.
	Buffered
	// Dropped: too far ahead to buffer; counted. Repeated far jumps lead to a resync.
	Dropped
)

var verdictNames = [...]string{"deliver", "duplicate", "buffered", "dropped"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", v)
}

// State is the channel's recovery state.
type State uint8

// States.
const (
	// Live: in sequence, nothing missing.
	Live State = iota
	// Gap: a hole is open; waiting for the other line to fill it before asking FIX.
	Gap
	// Recovering: a retransmission of the hole was requested over FIX.
	Recovering
	// Snapshot: the channel's books cannot be trusted (recovery failed, the buffer
	// overflowed, or the handler joined late); live datagrams are buffered until a
	// snapshot says from which sequence number they apply.
	Snapshot
)

var stateNames = [...]string{"live", "gap", "recovering", "snapshot"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ActionKind is what Poll asks the caller to do.
type ActionKind uint8

// Actions.
const (
	None       ActionKind = iota
	Retransmit            // request Beg..End over the FIX recovery session
	Resnapshot            // mark the channel's books stale and request snapshots
)

// Action is a request from Poll.
type Action struct {
	Kind     ActionKind
	Beg, End uint32 // Retransmit: the missing range, inclusive
	Reason   string // why (for logs)
}

// Config bounds a Tracker. The zero value of a field takes its default.
type Config struct {
	// Window is how many datagrams may be buffered ahead of a hole, and how far ahead of
	// the next expected number a datagram may be to be buffered at all. Default 4096.
	Window int
	// GapWait is how long a hole may stay open, waiting for line B, before it is
	// requested over FIX. Default 5ms.
	GapWait time.Duration
	// RecoveryTimeout is how long a FIX retransmission may take before the channel falls
	// back to snapshots. Default 2s.
	RecoveryTimeout time.Duration
	// MaxRequest is the largest range requested over FIX; a larger hole goes to
	// snapshots. Default 10000, the publisher's limit.
	MaxRequest uint32
	// NoRecovery skips FIX retransmission: holes go straight to snapshots.
	NoRecovery bool
	// ResyncAfter is how many consecutive datagrams must continue a far jump before the
	// tracker accepts the new numbering (through a snapshot). Default 3.
	ResyncAfter int
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = 4096
	}
	if c.GapWait <= 0 {
		c.GapWait = 5 * time.Millisecond
	}
	if c.RecoveryTimeout <= 0 {
		c.RecoveryTimeout = 2 * time.Second
	}
	if c.MaxRequest == 0 {
		c.MaxRequest = 10000
	}
	if c.ResyncAfter <= 0 {
		c.ResyncAfter = 3
	}
	return c
}

// Counters are the tracker's cumulative counts. Every field only grows.
type Counters struct {
	Delivered    uint64 // datagrams handed to the caller in sequence
	Duplicates   uint64 // copies dropped (line B, replays, re-sent ranges)
	Gaps         uint64 // holes opened (a hole counts once however it is filled)
	Missing      uint64 // sequence numbers found missing
	RecoveredAB  uint64 // missing numbers filled from multicast (the other line, late arrivals)
	LineBFirst   uint64 // datagrams delivered from line B ahead of line A's copy, no hole open
	RecoveredFIX uint64 // missing numbers filled by FIX retransmission
	Snapshots    uint64 // falls back to snapshots
	Skipped      uint64 // numbers never delivered because a snapshot superseded them
	Dropped      uint64 // datagrams too far ahead to buffer
	Overflows    uint64 // holes whose buffer filled up
	Resyncs      uint64 // far jumps accepted as a new numbering
	Resets       uint64 // SequenceResets applied
}

type slot struct {
	seq  uint32
	used bool
	src  Source
	data []byte
}

// Tracker tracks one channel. The zero value is not usable; call New.
type Tracker struct {
	cfg     Config
	started bool
	next    uint32 // next sequence number to deliver
	state   State

	slots    []slot // ring indexed by seq % len(slots)
	buffered int

	holeAt    int64  // when the current hole opened (ns)
	holeTop   uint32 // highest sequence number known to exist (buffered or announced)
	holeKnown bool   // holeTop is meaningful
	reqBeg    uint32
	reqEnd    uint32
	reqAt     int64

	snapAsked bool // Snapshot state: the caller has been asked for snapshots

	jumpSeq   uint32 // last far-ahead number seen
	jumpCount int

	counters Counters
}

// New returns a Tracker waiting for its first datagram.
func New(cfg Config) *Tracker {
	cfg = cfg.withDefaults()
	return &Tracker{cfg: cfg}
}

// Next returns the next sequence number the tracker will deliver.
func (t *Tracker) Next() uint32 { return t.next }

// State returns the recovery state.
func (t *Tracker) State() State { return t.state }

// Counters returns the counts so far.
func (t *Tracker) Counters() Counters { return t.counters }

// Buffered returns how many datagrams wait in the buffer.
func (t *Tracker) Buffered() int { return t.buffered }

// diff is b-a in serial-number arithmetic.
func diff(a, b uint32) int64 { return int64(int32(b - a)) }

// Start sets the number of the first datagram to deliver, for a handler that knows where
// the stream starts (e.g. from a snapshot). Without Start, the first datagram seen
// decides: number 1 starts the channel live; anything else is a late join, and the
// tracker goes to Snapshot.
func (t *Tracker) Start(next uint32) {
	t.started = true
	t.next = next
	t.state = Live
}

// Offer takes a datagram with sequence number seq received at time now (ns) from src.
// On Deliver the caller applies payload at once; Offer does not keep it. On Buffered the
// tracker keeps a copy.
func (t *Tracker) Offer(seq uint32, src Source, payload []byte, now int64) Verdict {
	if !t.started {
		t.started = true
		t.next = seq
		if seq != 1 {
			// Late join: the books before seq are unknown.
			t.enterSnapshot(now)
			t.store(seq, src, payload)
			return Buffered
		}
	}
	d := diff(t.next, seq)
	switch {
	case d < 0:
		// Already delivered. (In serial arithmetic a corrupt number such as 2^32-1 just
		// after the start reads as a few numbers behind; it is dropped all the same.)
		t.counters.Duplicates++
		return Duplicate
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
		return Deliver
	case d >= int64(t.cfg.Window) && t.state == Snapshot && d <= 2*int64(t.cfg.Window) && t.continues(seq):
		// Waiting for a snapshot: keep the newest datagrams, sliding the window forward.
		// What slides out is older than any snapshot still to come.
		t.slide(seq - uint32(t.cfg.Window) + 1)
	case d >= int64(t.cfg.Window):
		return t.farAhead(seq, src, payload, now)
	}
	t.jumpCount = 0
	if t.isBuffered(seq) {
		t.counters.Duplicates++
		return Duplicate
	}
	if t.state == Live {
		t.openHole(now)
	}
	if !t.holeKnown || diff(t.holeTop, seq) > 0 {
		t.holeTop, t.holeKnown = seq, true
	}
	t.store(seq, src, payload)
	return Buffered
}

// continues reports whether seq follows the newest datagram buffered closely enough to
// be the stream moving on, rather than a corrupt or spoofed number: only such a
// datagram may slide the window (and so drop what is buffered) while waiting for a
// snapshot. Anything else goes through farAhead, which wants a run of consecutive
// numbers before it believes a jump.
func (t *Tracker) continues(seq uint32) bool {
	return t.holeKnown && diff(t.holeTop, seq) <= max(int64(t.cfg.Window/8), 1)
}

// farAhead handles a datagram beyond the buffer window.
func (t *Tracker) farAhead(seq uint32, src Source, payload []byte, now int64) Verdict {
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
		return Dropped
	}
	// The new numbering is real (a publisher that restarted without a reset, or a long
	// outage): rebuild from snapshots and restart the buffer at the new numbers.
	t.counters.Resyncs++
	t.clearBuffer()
	t.next = seq - uint32(t.jumpCount) + 1
	t.jumpCount = 0
	t.enterSnapshot(now)
	t.counters.Dropped-- // this one is kept
	t.store(seq, src, payload)
	return Buffered
}

func (t *Tracker) deliver() {
	t.counters.Delivered++
	t.next++
	t.settle()
}

// settle returns to Live when nothing is missing any more.
func (t *Tracker) settle() {
	if t.state == Snapshot {
		return
	}
	if t.buffered == 0 && (!t.holeKnown || diff(t.holeTop, t.next) > 0) {
		t.state = Live
		t.holeKnown = false
	}
}

func (t *Tracker) openHole(now int64) {
	t.state = Gap
	t.holeAt = now
	t.counters.Gaps++
}

// enterSnapshot switches to snapshot recovery; the next Poll asks for snapshots unless
// the caller is already being told (asked).
func (t *Tracker) enterSnapshot(now int64) {
	if t.state != Snapshot {
		t.counters.Snapshots++
	}
	t.state = Snapshot
	t.reqAt = now
	t.snapAsked = false
}

// askSnapshot records that the caller is being asked for snapshots now.
func (t *Tracker) askSnapshot(now int64, reason string) Action {
	t.enterSnapshot(now)
	t.snapAsked = true
	return Action{Kind: Resnapshot, Reason: reason}
}

func (t *Tracker) isBuffered(seq uint32) bool {
	if len(t.slots) == 0 {
		return false
	}
	s := &t.slots[seq%uint32(len(t.slots))]
	return s.used && s.seq == seq
}

// store keeps a copy of payload. The ring grows (by doubling, up to Window) only while
// the distance from next requires it.
func (t *Tracker) store(seq uint32, src Source, payload []byte) {
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
	s.data = append(s.data[:0], payload...)
	t.buffered++
}

func (t *Tracker) grow(need int) {
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
	t.slots = make([]slot, n)
	for i := range old {
		if old[i].used {
			t.slots[old[i].seq%uint32(n)] = old[i]
		} else if old[i].data != nil {
			// keep the buffer for reuse
			j := i % n
			if !t.slots[j].used && t.slots[j].data == nil {
				t.slots[j].data = old[i].data[:0]
			}
		}
	}
}

// slide moves next forward to first, forgetting what is buffered before it.
func (t *Tracker) slide(first uint32) {
	for i := range t.slots {
		if s := &t.slots[i]; s.used && diff(first, s.seq) < 0 {
			s.used = false
			t.buffered--
		}
	}
	t.counters.Skipped += uint64(diff(t.next, first))
	t.next = first
}

func (t *Tracker) clearBuffer() {
	for i := range t.slots {
		t.slots[i].used = false
	}
	t.buffered = 0
	t.holeKnown = false
}

// Pop returns the next datagram in sequence if it is buffered, removing it. The payload is
// valid until the next call on the tracker. Call Pop after every Deliver and after
// SnapshotApplied until it returns ok=false.
func (t *Tracker) Pop() (seq uint32, payload []byte, ok bool) {
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
	return seq, s.data, true
}

// Heartbeat records that the publisher has sent up to last: if last is at or beyond the
// next expected number, the tail of the channel was lost and a hole opens.
func (t *Tracker) Heartbeat(last uint32, now int64) {
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
func (t *Tracker) Reset(newSeqNo uint32) {
	t.clearBuffer()
	t.started = true
	t.next = newSeqNo
	t.state = Live
	t.jumpCount = 0
	t.counters.Resets++
}

// hole returns the first missing range: from next to the number before the first
// buffered one, or to the highest number announced.
func (t *Tracker) hole() (beg, end uint32, ok bool) {
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
func (t *Tracker) Poll(now int64) Action {
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
		if now-t.reqAt >= int64(t.cfg.RecoveryTimeout) {
			t.reqAt = now
			return Action{Kind: Resnapshot, Reason: "snapshots not received in time; asking again"}
		}
	}
	return Action{}
}

// RecoveryFailed reports that the FIX retransmission was refused or the session failed:
// the channel falls back to snapshots.
func (t *Tracker) RecoveryFailed(now int64) Action {
	if t.state == Snapshot {
		return Action{}
	}
	return t.askSnapshot(now, "retransmission refused")
}

// SnapshotApplied reports that the channel's books were replaced by snapshots valid at
// sequence number last (LastMsgSeqNumProcessed). Buffered datagrams after last become
// deliverable (call Pop); those at or before it are dropped.
func (t *Tracker) SnapshotApplied(last uint32) {
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

func (t *Tracker) maxBuffered() uint32 {
	top := t.next
	for i := range t.slots {
		if s := &t.slots[i]; s.used && diff(top, s.seq) > 0 {
			top = s.seq
		}
	}
	return top
}
