package natsbus

import (
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

// applySnapshot replaces the book with a W unless the book is whole and at least as new.
func (c *Consumer) applySnapshot(in *cInst, m *Message) {
	if in.synced && m.RptSeq <= in.rptSeq {
		if in.suspect && m.RptSeq == in.rptSeq && !in.stale {
			// The book after a disconnection was whole: nothing was missed.
			in.suspect = false
			in.book.SetStale(false)
			in.askedAt = time.Time{}
			c.publish(in, feed.Event{Kind: feed.EventFresh, Symbol: in.symbol, Book: in.book})
			return
		}
		c.stats.oldSnapshots.Add(1)
		return
	}
	if !in.synced && len(in.buf) > 0 {
		// A W older than the first buffered X leaves a hole: wait for a newer one.
		if first, ok := firstRptSeq(in.buf[0]); ok && int32(first-m.RptSeq) > 1 {
			c.stats.oldSnapshots.Add(1)
			return
		}
	}
	jumped := !in.synced || m.RptSeq != in.rptSeq
	pe, se := m.PriceExp, m.SizeExp
	if !m.HasExp {
		pe, se = finestExp(m.Entries)
	}
	b, err := book.NewMBP(book.Config{PriceExp: int(pe), SizeExp: int(se)})
	if err != nil {
		c.stats.bookErrors.Add(1)
		return
	}
	c.levels = c.levels[:0]
	var bids, asks []book.Level
	for i := range m.Entries {
		e := &m.Entries[i]
		p, ok1 := e.Price.At(pe)
		s, ok2 := e.Size.At(se)
		if !ok1 || !ok2 {
			c.stats.bookErrors.Add(1)
			return
		}
		l := book.Level{Price: p, Size: s, Orders: int64(e.Orders)}
		switch e.Type {
		case md.Bid:
			bids = append(bids, l)
		case md.Offer:
			asks = append(asks, l)
		}
	}
	if err := b.Replace(bids, asks); err != nil {
		c.stats.bookErrors.Add(1)
		return
	}
	b.SetRptSeq(int64(m.RptSeq))
	in.book, in.rptSeq, in.stale, in.suspect = b, m.RptSeq, false, false
	if !in.synced {
		in.synced = true
		c.stats.synced.Add(1)
	}
	if jumped {
		c.stats.resyncs.Add(1)
	}
	in.askedAt = time.Time{}
	c.stats.snapshots.Add(1)
	c.publish(in, feed.Event{Kind: feed.EventFresh, Symbol: in.symbol, Book: in.book})
	// The Xs that arrived while waiting: those after the W apply.
	buf := in.buf
	in.buf = nil
	var scratch Message
	for i, data := range buf {
		if err := ParsePayload(data, &scratch); err != nil {
			continue
		}
		if !in.synced {
			in.buf = append(in.buf, buf[i:]...)
			break
		}
		c.applyEntries(in, &scratch, data)
	}
}

// firstRptSeq returns the RptSeq of an X's first entry.
func firstRptSeq(data []byte) (uint32, bool) {
	var m Message
	if ParsePayload(data, &m) != nil || len(m.Entries) == 0 {
		return 0, false
	}
	return m.Entries[0].RptSeq, true
}

// finestExp returns the smallest exponents of the entries' prices and sizes.
func finestExp(es []md.Entry) (int8, int8) {
	var pe, se int8
	for i := range es {
		if es[i].Price.Valid {
			pe = min(pe, es[i].Price.Exp)
		}
		if es[i].Size.Valid {
			se = min(se, es[i].Size.Exp)
		}
	}
	return pe, se
}

// applyEntries applies an X's entries to a whole book; a hole unsyncs it, and the X is
// kept for when the W arrives.
func (c *Consumer) applyEntries(in *cInst, m *Message, data []byte) {
	for i := range m.Entries {
		e := &m.Entries[i]
		switch {
		case int32(e.RptSeq-in.rptSeq) <= 0:
			c.stats.duplicates.Add(1)
			continue
		case e.RptSeq != in.rptSeq+1:
			c.stats.gaps.Add(1)
			c.unsync(in, true)
			c.buffer(in, data)
			return
		}
		if in.suspect && !in.stale {
			// An X that follows the book after a disconnection: nothing was missed.
			// Subscribers, told stale, get the book again with this entry.
			in.suspect = false
			in.book.SetStale(false)
			in.askedAt = time.Time{}
		}
		in.rptSeq = e.RptSeq
		in.book.SetRptSeq(int64(e.RptSeq))
		c.stats.entries.Add(1)
		if e.Type == md.Trade {
			in.lastPx, in.lastSize = e.Price, e.Size
			in.trades++
			c.publishEntry(in, feed.EventTrade, e)
			continue
		}
		if !c.applyEntry(in, e) {
			c.stats.bookErrors.Add(1)
			c.unsync(in, true)
			return
		}
		c.publishEntry(in, feed.EventBook, e)
	}
}

func (c *Consumer) applyEntry(in *cInst, e *md.Entry) bool {
	if e.Type != md.Bid && e.Type != md.Offer {
		return true
	}
	pe, se := int8(in.book.PriceExp()), int8(in.book.SizeExp())
	if (e.Price.Valid && e.Price.Exp < pe) || (e.Size.Valid && e.Size.Exp < se) {
		if !c.rebook(in, min(pe, e.Price.Exp), min(se, e.Size.Exp)) {
			return false
		}
		pe, se = int8(in.book.PriceExp()), int8(in.book.SizeExp())
	}
	u := book.Update{Action: book.Action(e.Action), Type: book.EntryBid, Orders: int64(e.Orders)}
	if e.Type == md.Offer {
		u.Type = book.EntryOffer
	}
	var ok bool
	if u.Price, ok = e.Price.At(pe); !ok {
		return false
	}
	if e.Size.Valid {
		if u.Size, ok = e.Size.At(se); !ok {
			return false
		}
	}
	return in.book.Apply(u) == nil
}

// rebook moves a book to finer exponents (an entry finer than the book's).
func (c *Consumer) rebook(in *cInst, pe, se int8) bool {
	old := in.book
	b, err := book.NewMBP(book.Config{PriceExp: int(pe), SizeExp: int(se)})
	if err != nil {
		return false
	}
	dp, ds := int8(old.PriceExp()), int8(old.SizeExp())
	var sides [2][]book.Level
	for side := range sides {
		for _, l := range old.AppendLevels(nil, book.Side(side)) {
			p, ok1 := md.Dec(l.Price, dp).At(pe)
			s, ok2 := md.Dec(l.Size, ds).At(se)
			if !ok1 || !ok2 {
				return false
			}
			sides[side] = append(sides[side], book.Level{Price: p, Size: s, Orders: l.Orders})
		}
	}
	if b.Replace(sides[0], sides[1]) != nil {
		return false
	}
	b.SetRptSeq(old.RptSeq())
	b.SetStale(old.Stale())
	in.book = b
	return true
}

// refreshSubs recomputes the instrument's subscribers when subscriptions changed.
func (c *Consumer) refreshSubs(in *cInst) {
	if c.subsDirty.Load() && c.subsDirty.Swap(false) { // a load first: no locked write per message
		c.subMu.Lock()
		c.fsubs = append(c.fsubs, c.newSubs...)
		c.newSubs = nil
		c.subMu.Unlock()
		live := c.fsubs[:0]
		for _, s := range c.fsubs {
			if !s.cancelled.Load() {
				live = append(live, s)
			}
		}
		clear(c.fsubs[len(live):])
		c.fsubs = live
		c.version++
	}
	if in.subsVersion == c.version {
		return
	}
	in.subs = in.subs[:0]
	for _, s := range c.fsubs {
		for _, p := range s.patterns {
			if p.Match(in.symbol, in.channel) {
				in.subs = append(in.subs, s)
				break
			}
		}
	}
	in.subsVersion = c.version
}

func (c *Consumer) publishEntry(in *cInst, kind feed.EventKind, e *md.Entry) {
	if len(in.subs) == 0 {
		return
	}
	c.event = feed.Event{Kind: kind, Symbol: in.symbol, Entry: e, Book: in.book}
	for _, s := range in.subs {
		if !s.cancelled.Load() {
			s.fn(&c.event)
		}
	}
}

func (c *Consumer) publish(in *cInst, ev feed.Event) {
	if len(in.subs) == 0 {
		return
	}
	c.event = ev
	for _, s := range in.subs {
		if !s.cancelled.Load() {
			s.fn(&c.event)
		}
	}
}
