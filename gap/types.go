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
	// back to snapshots, and how long the first snapshot request may go unanswered before
	// it is sent again. Default 2s.
	RecoveryTimeout time.Duration
	// MaxBackoff caps the wait before a snapshot request is sent again: each request
	// since the last snapshot applied waits twice as long as the one before (from
	// RecoveryTimeout), up to MaxBackoff, plus a random part of up to half of it, so that
	// a recovery service that cannot keep up is not asked ever more often by ever more
	// handlers at once. Default 8 times RecoveryTimeout.
	MaxBackoff time.Duration
	// Seed seeds the random part of the backoff (0: a random seed).
	Seed uint64
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
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 8 * c.RecoveryTimeout
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
	// SnapshotRetries counts snapshot requests sent again because the last one went
	// unanswered for its backoff (Config.MaxBackoff).
	SnapshotRetries uint64
	Skipped         uint64 // numbers never delivered because a snapshot superseded them
	Dropped         uint64 // datagrams too far ahead to buffer
	Overflows       uint64 // holes whose buffer filled up
	Resyncs         uint64 // far jumps accepted as a new numbering
	Resets          uint64 // SequenceResets applied
}
