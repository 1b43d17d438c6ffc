package feed

import (
	"fmt"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// apply applies one in-sequence message of ch: the codec's, just decoded, or one held
// decoded behind a hole or handed over by the recovery.
func (e *Engine) apply(ch *channel, m *md.Message) {
	e.stats.Messages++
	switch m.Kind {
	case md.KindIncremental:
		e.beginStages(ch)
		entries := m.Incremental.Entries
		for i := range entries {
			e.clock.last = i == len(entries)-1 && e.clock.decodedNs != 0 // time its hand-off
			e.entry(ch, &entries[i])
		}
		e.clock.last = false
		e.recordLatency(ch, m.Incremental.SendingTime)
	case md.KindStatus:
		if in := e.bySymbol[string(m.Status.Symbol)]; in != nil && in.ch == ch {
			e.upstreamStatus(in, m.Status.TradingStatus)
			e.publish(in, Event{Kind: EventStatus, Symbol: in.symbol, Status: m.Status.TradingStatus})
		}
	case md.KindDefinition:
		e.learn(&m.Definition)
	}
}

// recordLatency records tick-to-handler latency: from the publisher's SendingTime to now,
// when the message's entries have been applied and published, and the stages
// (latency.go). A live engine queues the timestamps and records them later (flushStages).
func (e *Engine) recordLatency(ch *channel, sent int64) {
	if sent == 0 {
		return
	}
	now := e.now // an engine's clock: the datagram's (capture) time
	if e.live {
		now = e.clock.end // the end of the timed hand-off: no second clock read
		if now == 0 {
			now = e.clockNow()
		}
	}
	st := e.takeStamp(ch, sent, now)
	if !e.live {
		e.recordStamp(&st)
		return
	}
	if e.npending == len(e.pending) {
		e.flushStages()
	}
	e.pending[e.npending] = st
	e.npending++
}

// recordStamp records one message's tick-to-handler and stages.
func (e *Engine) recordStamp(st *stamp) {
	d := st.now - st.sent
	if d < 0 {
		e.stats.ClockSkew++ // the publisher's clock is ahead of ours
		d = 0
	}
	if d > e.latency.HighestTrackableValue() {
		e.stats.LatencyOverflow++ // a clock 10 s off: recorded at the top of the range
	}
	recordClamped(e.latency, d) // RecordValue's error for a value out of range allocates
	e.recordStages(st)
}

// entry applies one incremental entry.
func (e *Engine) entry(ch *channel, x *md.Entry) {
	var in *instrument
	if len(ch.instruments) == 1 && string(x.Symbol) == ch.instruments[0].symbol {
		in = ch.instruments[0] // most channels carry one topic: no map lookup
	} else {
		in = e.bySymbol[string(x.Symbol)]
	}
	if in == nil || in.ch != ch {
		e.stats.Filtered++
		return
	}
	if in.started && int32(x.RptSeq-in.rptSeq) <= 0 {
		// Already in the book: a snapshot of this instrument was taken after this entry
		// (snapshots of one channel may be valid at different sequence numbers).
		e.stats.SkippedEntries++
		return
	}
	if in.started && x.RptSeq != in.rptSeq+1 {
		e.stats.RptSeqGaps++
		e.log.Debug("RptSeq gap", "symbol", in.symbol, "rptseq", x.RptSeq, "after", in.rptSeq)
		if !in.stale {
			e.markStale(in, "RptSeq gap")
			e.requestSnapshot(ch)
		}
	}
	in.rptSeq, in.started = x.RptSeq, true
	if in.book == nil && !e.createBook(in, x.Price.Exp, x.Size.Exp) {
		return
	}
	in.book.SetRptSeq(int64(x.RptSeq))
	if x.Type == md.Trade {
		if !in.stale {
			e.publish(in, Event{Kind: EventTrade, Symbol: in.symbol, Entry: x, Book: in.book})
		}
		return
	}
	u, err := mdbook.Update(x, in.priceExp, in.sizeExp)
	if err == nil {
		err = in.book.Apply(u)
	}
	if err != nil {
		e.bookError(in, err)
		return
	}
	if !in.stale {
		e.publish(in, Event{Kind: EventBook, Symbol: in.symbol, Entry: x, Book: in.book})
	}
}

func (e *Engine) bookError(in *instrument, err error) {
	e.stats.BookErrors++
	e.log.Debug("book refused an entry", "symbol", in.symbol, "error", err)
	if !in.stale {
		e.markStale(in, "book error")
		e.requestSnapshot(in.ch)
	}
}

func (e *Engine) createBook(in *instrument, priceExp, sizeExp int8) bool {
	if in.defined {
		priceExp, sizeExp = in.priceExp, in.sizeExp
	}
	b, err := book.NewMBP(book.Config{PriceExp: int(priceExp), SizeExp: int(sizeExp)})
	if err != nil {
		e.bookError(in, err)
		return false
	}
	in.book, in.priceExp, in.sizeExp = b, priceExp, sizeExp
	in.book.SetStale(in.isStale())
	return true
}

// definition handles a datagram of the instrument definitions channel. Definitions are
// idempotent and cycled, so they are applied as they come, without sequencing.
func (e *Engine) definition(body []byte) {
	kind, err := e.decode(body)
	if err != nil {
		e.stats.DecodeErrors++
		e.lastErr = fmt.Errorf("definitions channel: %w", err)
		e.log.Debug("decode error", "channel", "definitions", "error", err)
		return
	}
	if kind == md.KindDefinition {
		e.learn(&e.codec.Definition)
	}
}

// learn records an instrument's definition; with All it starts following it.
func (e *Engine) learn(d *md.Definition) {
	e.stats.Definitions++
	in := e.bySymbol[string(d.Symbol)]
	if in == nil {
		if !e.cfg.All {
			return
		}
		addr, err := mcast.ParseChannelName(string(d.Channel))
		if err != nil {
			e.stats.DecodeErrors++
			e.log.Debug("definition with a bad channel", "symbol", d.Symbol, "channel", d.Channel, "error", err)
			return
		}
		ch, err := e.channelFor(addr)
		if err != nil {
			e.log.Debug("definition not followed", "symbol", d.Symbol, "error", err)
			return
		}
		in = e.addInstrument(string(d.Symbol), ch)
	}
	if in.defined {
		return
	}
	in.defined = true
	if in.book != nil && (int8(in.book.PriceExp()) != d.PriceExp || int8(in.book.SizeExp()) != d.SizeExp) {
		// The book was created from entries before the definition came; rebuild it at the
		// defined exponents from a snapshot.
		in.book = nil
		in.priceExp, in.sizeExp = d.PriceExp, d.SizeExp
		e.markStale(in, "exponent changed by definition")
		e.requestSnapshot(in.ch)
		return
	}
	in.priceExp, in.sizeExp = d.PriceExp, d.SizeExp
}

// Source statuses: what a publisher says of its own book (DESIGN.md, "Status f").
const (
	statusStale = 20 // SecurityTradingStatus (326) with Text "stale"
	statusReady = 17 // with Text "ready": whole again
)

// upstreamStatus applies a source's status to in: 20 shows the book stale until 17. The
// status itself reaches the subscribers as it came (EventStatus), so no EventStale is
// added for it.
func (e *Engine) upstreamStatus(in *instrument, status uint32) {
	switch {
	case status == statusStale && !in.upstream:
		in.upstream = true
		e.stats.UpstreamStale++
		e.log.Debug("stale at the source", "symbol", in.symbol)
	case status == statusReady && in.upstream:
		in.upstream = false
	default:
		return
	}
	if in.book != nil {
		in.book.SetStale(in.isStale())
	}
}

func (e *Engine) markStale(in *instrument, why string) {
	if in.stale {
		return
	}
	in.stale = true
	e.stats.StaleEvents++
	if in.book != nil {
		in.book.SetStale(true)
	}
	e.log.Debug("stale", "symbol", in.symbol, "why", why)
	e.publish(in, Event{Kind: EventStale, Symbol: in.symbol, Book: in.book})
}

func (e *Engine) markFresh(in *instrument) {
	if !in.stale {
		return
	}
	in.stale = false
	if in.book != nil {
		in.book.SetStale(in.upstream)
	}
	e.publish(in, Event{Kind: EventFresh, Symbol: in.symbol, Book: in.book})
}

func (e *Engine) staleChannel(ch *channel, why string) {
	for _, in := range ch.instruments {
		e.markStale(in, why)
	}
}

// applySnapshots replaces the books of ch's instruments. When every instrument of the
// channel has its snapshot, the tracker resumes after their common sequence number.
func (e *Engine) applySnapshots(ch *channel, snaps []md.Snapshot) {
	var last uint32
	for i := range snaps {
		s := &snaps[i]
		in := e.bySymbol[string(s.Symbol)]
		if in == nil || in.ch != ch {
			continue
		}
		if in.book == nil {
			var pe, se int8
			if len(s.Entries) > 0 {
				pe, se = s.Entries[0].Price.Exp, s.Entries[0].Size.Exp
			}
			if !e.createBook(in, pe, se) {
				continue
			}
		}
		var err error
		if e.bids, e.asks, err = mdbook.Levels(e.bids[:0], e.asks[:0], s.Entries, in.priceExp, in.sizeExp); err != nil {
			e.bookError(in, fmt.Errorf("snapshot: %w", err))
			continue
		}
		if err := in.book.Replace(e.bids, e.asks); err != nil {
			e.bookError(in, err)
			continue
		}
		in.book.SetRptSeq(int64(s.RptSeq))
		in.rptSeq, in.started = s.RptSeq, true
		in.snapSeq, in.haveSnap = s.LastMsgSeqNumProcessed, true
		last = s.LastMsgSeqNumProcessed
	}
	// Resume the channel once every followed instrument has its snapshot, from the
	// oldest of their sequence numbers; entries an instrument's snapshot already holds are
	// then skipped by their RptSeq.
	first := true
	for _, in := range ch.instruments {
		if !in.haveSnap {
			return
		}
		if first || int32(in.snapSeq-last) < 0 {
			last, first = in.snapSeq, false
		}
	}
	ch.snapWaiting = 0
	e.stats.SnapshotsDone++
	e.stats.LastSnapshotAt = e.now
	ch.tracker.SnapshotApplied(last)
	for _, in := range ch.instruments {
		in.haveSnap = false
		e.markFresh(in)
	}
	e.log.Debug("books rebuilt from snapshots", "channel", ch.name, "seq", last)
	e.drain(ch)
}
