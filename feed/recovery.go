package feed

import (
	"context"
	"fmt"

	"fastfeed/gap"
	"fastfeed/md"
)

// Recovery asks a recovery service for what multicast lost. Requests must not block the
// engine: an implementation queues them and answers through the Sink it was given.
type Recovery interface {
	// Start gives the Recovery the sink for its results; it is called once, before any
	// request.
	Start(sink Sink)
	// Retransmit asks for datagrams beg..end of channel.
	Retransmit(channel string, beg, end uint32)
	// Snapshot asks for snapshots of the symbols of channel, all valid at one channel
	// sequence number.
	Snapshot(channel string, symbols []string)
}

// Sink receives a Recovery's results as commands of the engine's queue. Its methods may
// block while the queue is full (the engine drains it a bounded share per cycle) and are
// safe for concurrent use.
type Sink interface {
	// Retransmitted delivers one retransmitted message of channel, with its sequence
	// number, as a model value (an incremental, a definition or a status): the engine
	// applies it as it is, with no FAST encoding or decoding. The sink takes m: the
	// caller must not change it afterwards.
	Retransmitted(channel string, seq uint32, m *md.Message)
	// Snapshots delivers the snapshots answering one request; every one is valid at the
	// same LastMsgSeqNumProcessed.
	Snapshots(channel string, snaps []md.Snapshot)
	// Failed reports that a request was refused or could not be served.
	Failed(channel string, snapshot bool, reason string)
}

// sink queues results as commands for the engine's goroutine. Results that come after
// the engine stopped are dropped.
type sink struct{ q *commandQueue }

func (s sink) Retransmitted(channel string, seq uint32, m *md.Message) {
	s.q.post(context.Background(), command{op: cmdRetransmitted, channel: channel, seq: seq, msg: m})
}

func (s sink) Snapshots(channel string, snaps []md.Snapshot) {
	s.q.post(context.Background(), command{op: cmdSnapshots, channel: channel, snaps: snaps, snapshot: true})
}

func (s sink) Failed(channel string, snapshot bool, reason string) {
	s.q.post(context.Background(), command{op: cmdFailed, channel: channel, snapshot: snapshot, reason: reason})
}

// recovered applies a recovery result.
func (e *Engine) recovered(c *command, now int64) {
	ch := e.channels[c.channel]
	if ch == nil {
		return
	}
	switch c.op {
	case cmdFailed:
		e.stats.RecoveryFails++
		e.log.Debug("recovery failed", "channel", ch.name, "reason", c.reason)
		if c.snapshot {
			ch.snapWaiting = 0 // the tracker's timer asks again
			return
		}
		if a := ch.tracker.RecoveryFailed(now); a.Kind == gap.Resnapshot {
			e.requestSnapshot(ch)
		}
	case cmdSnapshots:
		if !e.wantsSnapshots(ch) {
			// A late answer (its request timed out, and the books were rebuilt from
			// another): older than the books, which it would take back.
			e.stats.SnapshotsIgnored++
			e.log.Debug("snapshots not needed any more", "channel", ch.name)
			return
		}
		e.applySnapshots(ch, c.snaps)
	case cmdRetransmitted:
		if c.msg == nil || !c.msg.Kind.Sequenced() {
			// The number stays missing: the recovery timeout falls back to snapshots.
			e.decodeError(ch, c.seq, fmt.Errorf("retransmitted: not a sequenced message"))
			return
		}
		e.offer(ch, c.seq, gap.Recovery, c.msg, now)
	}
	e.activate(ch)
}

// wantsSnapshots reports whether ch waits for snapshots: it is being rebuilt from them,
// or a request is out, or one of its books is stale.
func (e *Engine) wantsSnapshots(ch *channel) bool {
	if ch.snapWaiting > 0 || ch.tracker.State() == gap.Snapshot {
		return true
	}
	for _, in := range ch.instruments {
		if in.stale {
			return true
		}
	}
	return false
}
