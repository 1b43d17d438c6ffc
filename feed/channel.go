package feed

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"fastfeed/book"
	"fastfeed/gap"
	"fastfeed/md"
)

// instrument is one followed topic.
type instrument struct {
	symbol   string
	ch       *channel
	book     *book.MBP
	priceExp int8
	sizeExp  int8
	defined  bool // a security definition was seen
	rptSeq   uint32
	started  bool // an entry or snapshot set rptSeq
	stale    bool // this handler cannot trust the book (a hole, an RptSeq gap, ...)
	// upstream: the source said its own book is stale (SecurityStatus 326=20, as `ingest
	// --republish` sends for an exchange gap) and has not said 17 since. The book is shown
	// stale either way; only this handler's own recovery clears stale.
	upstream bool
	snapSeq  uint32 // the LastMsgSeqNumProcessed of the snapshot being assembled
	haveSnap bool

	subs        []*Subscription // subscribers matching this instrument
	subsVersion uint64          // e.subsVersion when subs was computed
}

// isStale reports whether in's book is shown stale: this handler's or its source's.
func (in *instrument) isStale() bool { return in.stale || in.upstream }

// channel is one multicast group and port (line A, and B if configured): its sequence
// tracker, which holds what waits behind a hole already decoded, and the followed
// instruments on it. The tracker's slots hold pointers: a message is allocated the first
// time its slot is used and reused from then on, so that memory follows what is held,
// not the window a far-ahead number makes the ring span.
type channel struct {
	name        string
	addr        netip.AddrPort
	tracker     *gap.Sequencer[*md.Message]
	instruments []*instrument
	polling     bool // in the list of channels whose timers run
	lat         *Latencies
	stageTick   int      // incrementals since the last one whose stages were timed (latency.go)
	snapWaiting int      // instruments whose snapshot has not arrived
	copies      copyRing // digests of the copies taken of the last sequence numbers (auth.go)
	snap        snapJoin // the snapshot channel, while joined (snapchan.go)
}

// receive handles one datagram of socket group: it is decoded once, here, and then
// applied at once, held decoded behind a hole, or dropped as a copy.
func (e *Engine) receive(group int, b []byte, now int64) {
	e.stats.Datagrams++
	if group < 0 || group >= len(e.sockets) {
		return
	}
	si := e.sockets[group]
	b, ok := e.authenticate(si, b)
	if !ok {
		return
	}
	if len(b) < 4 {
		e.stats.DecodeErrors++
		e.lastErr = fmt.Errorf("datagram of %d bytes: shorter than the sequence preamble", len(b))
		e.log.Debug("bad datagram", "error", e.lastErr)
		return
	}
	seq := binary.LittleEndian.Uint32(b)
	body := b[4:]
	if si.defs {
		e.definition(body)
		return
	}
	ch := si.ch
	if ch == nil {
		return // a socket left (a snapshot channel) with datagrams still in the batch
	}
	if si.snap {
		e.snapshotDatagram(ch, seq, body)
		return
	}
	kind, ok := e.codec.Peek(body)
	if !ok {
		e.decodeError(ch, seq, errNotFastfeed)
		return
	}
	switch kind {
	case md.KindHeartbeat:
		// Decoded, not only recognised: a corrupt datagram that looks like a heartbeat
		// must not tell the tracker that numbers up to its preamble were sent.
		if _, err := e.decode(body); err != nil {
			e.decodeError(ch, seq, err)
			return
		}
		e.stats.Heartbeats++
		ch.tracker.Heartbeat(seq, now)
		e.activate(ch)
		return
	case md.KindReset:
		if _, err := e.decode(body); err != nil {
			e.decodeError(ch, seq, err)
			return
		}
		e.reset(ch, e.codec.Reset.NewSeqNo)
		return
	}
	// A copy of a number already applied is not decoded. Anything else is decoded now,
	// once: a datagram that does not decode must not take its sequence number (the copy
	// on the other line, or a retransmission, is the real one). Either way it is compared
	// with the copy taken of its number, if one was (auth.go).
	behind := ch.tracker.Started() && int32(seq-ch.tracker.Next()) < 0
	if !behind {
		if _, err := e.decode(body); err != nil {
			e.decodeError(ch, seq, err)
			return
		}
		e.lastInc = body // for warmDecode
	}
	sum := e.datagramDigest(b)
	if !e.sameCopy(ch, si.line, seq, sum, now) {
		return
	}
	if behind {
		ch.tracker.Offer(seq, si.line, now) // a duplicate: counted
		return
	}
	// offer, by hand: this is the path of every datagram.
	switch v, slot := ch.tracker.Offer(seq, si.line, now); v {
	case gap.Deliver:
		ch.copies.add(seq, sum)
		e.apply(ch, &e.codec.Message)
		e.drain(ch)
	case gap.Buffered:
		ch.copies.add(seq, sum)
		e.hold(ch, slot, &e.codec.Message)
	}
}

// offer hands the tracker of ch message m with number seq: applied now if it is the
// next, copied into the tracker's slot if it waits behind a hole.
func (e *Engine) offer(ch *channel, seq uint32, src gap.Source, m *md.Message, now int64) {
	switch v, slot := ch.tracker.Offer(seq, src, now); v {
	case gap.Deliver:
		e.apply(ch, m)
		e.drain(ch)
	case gap.Buffered:
		e.hold(ch, slot, m)
	}
}

// hold copies m into the tracker's slot, where it waits behind a hole.
func (e *Engine) hold(ch *channel, slot **md.Message, m *md.Message) {
	if *slot == nil {
		*slot = new(md.Message)
	}
	(*slot).CopyFrom(m)
	e.activate(ch)
}

var errNotFastfeed = fmt.Errorf("not a fastfeed message")

// decode decodes one FAST message into the engine's codec.
func (e *Engine) decode(body []byte) (md.Kind, error) {
	e.stats.Decoded++
	return e.codec.Decode(body)
}

// drain applies what became deliverable on ch: messages held decoded behind a hole.
func (e *Engine) drain(ch *channel) {
	for ch.tracker.Buffered() > 0 {
		_, m, ok := ch.tracker.Pop()
		if !ok {
			return
		}
		e.apply(ch, *m)
	}
}

func (e *Engine) activate(ch *channel) {
	if !ch.polling {
		ch.polling = true
		e.active = append(e.active, ch)
	}
}

func (e *Engine) decodeError(ch *channel, seq uint32, err error) {
	e.stats.DecodeErrors++
	e.lastErr = fmt.Errorf("channel %s seq %d: %w", ch.name, seq, err)
	e.log.Debug("decode error", "channel", ch.name, "seq", seq, "error", err)
}

// reset applies a SequenceReset: the publisher restarted, so its books start empty.
func (e *Engine) reset(ch *channel, newSeqNo uint32) {
	e.stats.Resets++
	ch.tracker.Reset(newSeqNo)
	ch.copies.clear()
	for _, in := range ch.instruments {
		if in.book != nil {
			in.book.Clear()
			in.book.SetRptSeq(0)
		}
		in.rptSeq, in.started, in.haveSnap = 0, false, false
		e.markFresh(in)
	}
	ch.snapWaiting = 0
	e.log.Debug("sequence reset", "channel", ch.name, "next", newSeqNo)
}

// timers runs the trackers' timers of the channels that have something open.
func (e *Engine) timers(now int64) {
	keep := e.active[:0]
	for _, ch := range e.active {
		a := ch.tracker.Poll(now)
		switch a.Kind {
		case gap.Retransmit:
			e.log.Debug("requesting retransmission", "channel", ch.name, "reason", a.Reason)
			e.stats.Retransmits++
			e.cfg.Recovery.Retransmit(ch.name, a.Beg, a.End)
		case gap.Resnapshot:
			e.log.Debug("requesting snapshots", "channel", ch.name, "reason", a.Reason)
			ch.snapWaiting = 0 // a new request supersedes one that never came
			e.requestSnapshot(ch)
		}
		if ch.tracker.State() == gap.Live && ch.snapWaiting == 0 {
			ch.polling = false
			continue
		}
		keep = append(keep, ch)
	}
	e.active = keep
}

// requestSnapshot asks for snapshots of ch's instruments unless a request is out.
func (e *Engine) requestSnapshot(ch *channel) {
	if ch.snapWaiting > 0 {
		return
	}
	e.staleChannel(ch, "snapshot requested")
	if e.cfg.SnapshotChannels && e.snapshotFromChannel(ch) {
		return
	}
	if e.cfg.Recovery == nil {
		return
	}
	symbols := make([]string, 0, len(ch.instruments))
	for _, in := range ch.instruments {
		symbols = append(symbols, in.symbol)
		in.haveSnap = false
	}
	ch.snapWaiting = len(symbols)
	e.stats.Snapshots++
	e.cfg.Recovery.Snapshot(ch.name, symbols)
}
