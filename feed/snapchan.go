package feed

// Snapshot channels (docs/snapshot-channels.md): with Config.SnapshotChannels, a channel
// whose books must be rebuilt (a late join, a hole of more than SnapshotAfter datagrams,
// a retransmission that failed) joins its snapshot channel, the same group on port +
// SnapshotPortOffset, where the publisher cycles a W of every instrument, instead of
// asking the recovery service over TCP. Each W is applied as it comes (applySnapshots);
// once every followed instrument of the channel has one, the tracker resumes after the
// oldest of their LastMsgSeqNumProcessed, the incrementals held behind are applied
// (entries a W already holds are skipped by RptSeq) and the snapshot channel is left.
// If the snapshot channel gives nothing complete for SnapshotWait, the recovery service
// is asked as well (counted as a fallback).

import (
	"net/netip"

	"fastfeed/mcast"
	"fastfeed/md"
)

// snapJoin is a channel's membership of its snapshot channel.
type snapJoin struct {
	on     bool
	addr   netip.AddrPort
	socket int
	since  int64 // when it was joined
}

// snapshotFromChannel takes ch's snapshots from its snapshot channel, joining it the
// first time; false means: ask the recovery service (the join failed, or the channel has
// been waited on for SnapshotWait).
func (e *Engine) snapshotFromChannel(ch *channel) bool {
	if !ch.snap.on {
		addr, err := mcast.SnapshotChannel(ch.addr, e.cfg.SnapshotPortOffset)
		if err == nil {
			var i int
			if i, err = e.joinGroup(addr); err == nil {
				e.setSocket(i, socketInfo{ch: ch, snap: true})
				ch.snap = snapJoin{on: true, addr: addr, socket: i, since: e.now}
			}
		}
		if err != nil {
			e.stats.SnapshotChannelErrors++
			e.log.Warn("cannot join the snapshot channel; asking the recovery service", "channel", ch.name, "error", err)
			return false
		}
		e.stats.SnapshotChannelJoins++
		e.log.Debug("joined the snapshot channel", "channel", ch.name, "snapshot_channel", addr)
		for _, in := range ch.instruments {
			in.haveSnap = false
		}
	} else if e.cfg.Recovery != nil && e.now-ch.snap.since >= int64(e.cfg.SnapshotWait) {
		e.stats.SnapshotChannelFallbacks++
		e.log.Info("snapshot channel incomplete; asking the recovery service too", "channel", ch.name,
			"waited", e.cfg.SnapshotWait)
		return false
	}
	ch.snapWaiting = 0
	for _, in := range ch.instruments {
		if !in.haveSnap {
			ch.snapWaiting++
		}
	}
	ch.snapWaiting = max(ch.snapWaiting, 1)
	e.activate(ch)
	return true
}

// snapshotDatagram handles a datagram of ch's snapshot channel (number seq, counted by
// the publisher per snapshot channel; a lost W is the next cycle's, so seq is not
// tracked).
func (e *Engine) snapshotDatagram(ch *channel, seq uint32, body []byte) {
	if !ch.snap.on || ch.snapWaiting == 0 {
		e.stats.SnapshotChannelIgnored++ // in flight as the channel was left
		return
	}
	kind, err := e.decode(body)
	if err != nil {
		e.decodeError(ch, seq, err)
		return
	}
	s := &e.codec.Snapshot
	if kind != md.KindSnapshot || s.Continued {
		e.stats.SnapshotChannelIgnored++
		return
	}
	e.stats.SnapshotChannelW++
	if t := ch.tracker; t.Started() && int32(s.LastMsgSeqNumProcessed+1-t.Next()) < 0 {
		// Older than numbers already taken: applying it would need them again. The
		// next cycle's W is newer.
		e.stats.SnapshotChannelOld++
		return
	}
	e.snapOne[0] = *s
	e.applySnapshots(ch, e.snapOne[:])
	e.snapOne[0] = md.Snapshot{}
	if ch.snapWaiting == 0 {
		e.leaveSnapshotChannel(ch)
	}
}

// leaveSnapshotChannel leaves ch's snapshot channel: the books are whole again.
func (e *Engine) leaveSnapshotChannel(ch *channel) {
	if !ch.snap.on {
		return
	}
	i := ch.snap.socket
	e.setSocket(i, socketInfo{})
	if key, ok := addrKey(ch.snap.addr); ok {
		delete(e.byAddr, key)
	}
	if e.leave != nil {
		if err := e.leave(i); err != nil {
			e.log.Warn("leaving the snapshot channel", "channel", ch.name, "error", err)
		}
	}
	ch.snap = snapJoin{}
	e.stats.SnapshotChannelLeaves++
	e.log.Debug("left the snapshot channel", "channel", ch.name)
}
