package moex

import (
	"fastfeed/book"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
)

// entry is an incremental entry of any of the X templates, normalised.
type entry struct {
	action    uint32
	hasAction bool
	typ       []byte
	id        []byte
	symbol    []byte
	rpt       int32
	hasRpt    bool
	px, size  fastrt.Decimal
	hasPx     bool
	hasSize   bool
}

func (e *Engine) apply(ch *channel, seq uint32) {
	m := &e.msg
	switch m.ID {
	case moexasts.IDWOLSFOND, moexasts.IDWOLSCURR, moexasts.IDWTLSFOND, moexasts.IDWTLSCURR, moexasts.IDWGeneric:
	default:
		if ch.snapOn {
			ch.snapBroken = true
		}
	}
	var hdrSeq uint32
	switch m.ID {
	case moexasts.IDXOLRFOND:
		hdrSeq = m.XOLRFOND.MsgSeqNum
		for i := range m.XOLRFOND.GroupMDEntries {
			g := &m.XOLRFOND.GroupMDEntries[i]
			e.order(&entry{g.MDUpdateAction, g.HasMDUpdateAction, g.MDEntryType, g.MDEntryID, g.Symbol, g.RptSeq, g.HasRptSeq, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize},
				g.HasMDEntryType, g.HasMDEntryID, g.HasSymbol)
		}
	case moexasts.IDXOLRCURR:
		hdrSeq = m.XOLRCURR.MsgSeqNum
		for i := range m.XOLRCURR.GroupMDEntries {
			g := &m.XOLRCURR.GroupMDEntries[i]
			e.order(&entry{g.MDUpdateAction, g.HasMDUpdateAction, g.MDEntryType, g.MDEntryID, g.Symbol, g.RptSeq, g.HasRptSeq, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize},
				g.HasMDEntryType, g.HasMDEntryID, g.HasSymbol)
		}
	case moexasts.IDXTLRFOND:
		hdrSeq = m.XTLRFOND.MsgSeqNum
		for i := range m.XTLRFOND.GroupMDEntries {
			g := &m.XTLRFOND.GroupMDEntries[i]
			e.tradeEntry(seq, &entry{g.MDUpdateAction, g.HasMDUpdateAction, g.MDEntryType, g.MDEntryID, g.Symbol, g.RptSeq, g.HasRptSeq, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize},
				g.HasMDEntryID, g.HasSymbol)
		}
	case moexasts.IDXTLRCURR:
		hdrSeq = m.XTLRCURR.MsgSeqNum
		for i := range m.XTLRCURR.GroupMDEntries {
			g := &m.XTLRCURR.GroupMDEntries[i]
			e.tradeEntry(seq, &entry{g.MDUpdateAction, g.HasMDUpdateAction, g.MDEntryType, g.MDEntryID, g.Symbol, g.RptSeq, g.HasRptSeq, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize},
				g.HasMDEntryID, g.HasSymbol)
		}
	case moexasts.IDXMSRFOND:
		hdrSeq = m.XMSRFOND.MsgSeqNum
		for i := range m.XMSRFOND.GroupMDEntries {
			g := &m.XMSRFOND.GroupMDEntries[i]
			e.statEntry(seq, &entry{g.MDUpdateAction, g.HasMDUpdateAction, g.MDEntryType, g.MDEntryID, g.Symbol, g.RptSeq, g.HasRptSeq, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize},
				g.HasMDEntryType, g.HasSymbol)
		}
	case moexasts.IDXMSRCURR:
		hdrSeq = m.XMSRCURR.MsgSeqNum
		for i := range m.XMSRCURR.GroupMDEntries {
			g := &m.XMSRCURR.GroupMDEntries[i]
			e.statEntry(seq, &entry{g.MDUpdateAction, g.HasMDUpdateAction, g.MDEntryType, g.MDEntryID, g.Symbol, g.RptSeq, g.HasRptSeq, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize},
				g.HasMDEntryType, g.HasSymbol)
		}
	case moexasts.IDWOLSFOND:
		w := &m.WOLSFOND
		hdrSeq = w.MsgSeqNum
		if e.snapBegin(ch, w.Symbol, w.RptSeq, w.LastMsgSeqNumProcessed, w.HasRouteFirst && w.RouteFirst == 1) {
			for i := range w.GroupMDEntries {
				g := &w.GroupMDEntries[i]
				e.snapEntry(ch, g.MDEntryType, g.MDEntryID, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryType && g.HasMDEntryID && g.HasMDEntryPx && g.HasMDEntrySize)
			}
			e.snapEnd(ch, !w.HasLastFragment || w.LastFragment == 1)
		}
	case moexasts.IDWOLSCURR:
		w := &m.WOLSCURR
		hdrSeq = w.MsgSeqNum
		if e.snapBegin(ch, w.Symbol, w.RptSeq, w.LastMsgSeqNumProcessed, w.HasRouteFirst && w.RouteFirst == 1) {
			for i := range w.GroupMDEntries {
				g := &w.GroupMDEntries[i]
				e.snapEntry(ch, g.MDEntryType, g.MDEntryID, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryType && g.HasMDEntryID && g.HasMDEntryPx && g.HasMDEntrySize)
			}
			e.snapEnd(ch, !w.HasLastFragment || w.LastFragment == 1)
		}
	case moexasts.IDWTLSFOND:
		w := &m.WTLSFOND
		hdrSeq = w.MsgSeqNum
		if ch.sfam != FamTrades {
			e.countSnapshot(w.HasLastFragment, w.LastFragment)
		} else if e.snapBegin(ch, w.Symbol, w.RptSeq, w.LastMsgSeqNumProcessed, w.HasRouteFirst && w.RouteFirst == 1) {
			for i := range w.GroupMDEntries {
				g := &w.GroupMDEntries[i]
				e.snapOther(ch, g.MDEntryType, g.MDEntryID, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize)
			}
			e.snapEnd(ch, !w.HasLastFragment || w.LastFragment == 1)
		}
	case moexasts.IDWTLSCURR:
		w := &m.WTLSCURR
		hdrSeq = w.MsgSeqNum
		if ch.sfam != FamTrades {
			e.countSnapshot(w.HasLastFragment, w.LastFragment)
		} else if e.snapBegin(ch, w.Symbol, w.RptSeq, w.LastMsgSeqNumProcessed, w.HasRouteFirst && w.RouteFirst == 1) {
			for i := range w.GroupMDEntries {
				g := &w.GroupMDEntries[i]
				e.snapOther(ch, g.MDEntryType, g.MDEntryID, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize)
			}
			e.snapEnd(ch, !w.HasLastFragment || w.LastFragment == 1)
		}
	case moexasts.IDWGeneric:
		w := &m.WGeneric
		hdrSeq = w.MsgSeqNum
		if ch.sfam != FamStats {
			e.countSnapshot(w.HasLastFragment, w.LastFragment)
		} else if e.snapBegin(ch, w.Symbol, w.RptSeq, w.LastMsgSeqNumProcessed, w.HasRouteFirst && w.RouteFirst == 1) {
			for i := range w.GroupMDEntries {
				g := &w.GroupMDEntries[i]
				if !g.HasMDEntryType {
					e.stats.BadEntries++
					ch.snapBroken = true
					continue
				}
				e.snapOther(ch, g.MDEntryType, g.MDEntryID, g.MDEntryPx, g.MDEntrySize, g.HasMDEntryPx, g.HasMDEntrySize)
			}
			e.snapEnd(ch, !w.HasLastFragment || w.LastFragment == 1)
		}
	case moexasts.IDD:
		d := &m.D
		hdrSeq = d.MsgSeqNum
		if !d.HasSymbol || len(d.Symbol) == 0 {
			e.stats.BadEntries++
			break
		}
		in := e.instrument(d.Symbol)
		if in == nil {
			break
		}
		e.stats.Definitions++
		in.Defined = true
		if d.HasSecurityID && string(d.SecurityID) != in.SecurityID {
			in.SecurityID = string(d.SecurityID)
		}
		if d.HasCurrency && string(d.Currency) != in.Currency {
			in.Currency = string(d.Currency)
		}
		if d.HasMinPriceIncrement {
			in.MinPriceIncrement = d.MinPriceIncrement
		}
		if e.Listener != nil {
			e.Listener.Definition(in)
		}
	case moexasts.IDF:
		f := &m.F
		hdrSeq = f.MsgSeqNum
		if len(f.Symbol) == 0 {
			e.stats.BadEntries++
			break
		}
		in := e.instrument(f.Symbol)
		if in == nil {
			break
		}
		e.stats.Statuses++
		in.HasStatus = f.HasSecurityTradingStatus
		in.TradingStatus = f.SecurityTradingStatus
		if f.HasTradingSessionID && string(f.TradingSessionID) != in.TradingSessionID {
			in.TradingSessionID = string(f.TradingSessionID)
		}
	case moexasts.IDH:
		hdrSeq = m.H.MsgSeqNum
		e.stats.SessionStatuses++
		e.session.Has, e.session.Status = true, m.H.TradSesStatus
		if string(m.H.TradingSessionID) != e.session.ID {
			e.session.ID = string(m.H.TradingSessionID)
		}
	case moexasts.IDX0:
		hdrSeq = m.X0.MsgSeqNum
		e.stats.Heartbeats++
	default:
		e.stats.OtherTemplates++
		return
	}
	if hdrSeq != seq {
		e.stats.SeqMismatch++
	}
}

// SessionStatus returns the market's trading session status (h), if one was seen.
func (e *Engine) SessionStatus() (status int32, sessionID string, ok bool) {
	return e.session.Status, e.session.ID, e.session.Has
}

// instrument returns sym's instrument, made on first sight; nil (counted) when the
// engine already holds MaxInstruments.
func (e *Engine) instrument(sym []byte) *Instrument {
	if in, ok := e.inst[string(sym)]; ok {
		return in
	}
	if len(e.inst) >= e.opts.MaxInstruments {
		e.stats.InstrumentsRefused++
		return nil
	}
	in := &Instrument{Symbol: string(sym)}
	e.inst[in.Symbol] = in
	return in
}

// sequence checks an entry's RptSeq in family fam: it reports whether to apply it. A
// hole in the orders family makes the book stale: it waits for a snapshot.
func (e *Engine) sequence(in *Instrument, fam int, rpt int32) bool {
	if !in.started[fam] {
		in.started[fam] = true
		in.rpt[fam] = rpt
		return true
	}
	last := in.rpt[fam]
	switch {
	case rpt <= last:
		e.stats.StaleEntries++
		return false
	case rpt > last+1:
		in.Gaps[fam]++
		in.Missed[fam] += uint64(rpt - last - 1)
		e.stats.InstrumentGaps++
		switch {
		case fam == FamOrders && in.Book != nil && !in.Book.Stale():
			in.Book.SetStale(true)
			e.stats.SnapshotWaits++
			if e.Listener != nil {
				e.Listener.Stale(in)
			}
		case fam == FamTrades:
			e.tradeHole(in, last+1, rpt-1)
		case fam == FamStats && !in.StatsStale:
			in.StatsStale = true
			e.stats.StatsWaits++
		}
	}
	in.rpt[fam] = rpt
	return true
}

// queued is an OLR entry held while its book waits for a snapshot.
type queued struct {
	rpt   int32
	clear bool // MDEntryType J: the book is empty
	u     book.OrderUpdate
}

// hold queues u (its ID copied) for in's stale book.
func (e *Engine) hold(in *Instrument, rpt int32, clear bool, u book.OrderUpdate) {
	if len(in.queue) >= e.opts.MaxQueued {
		n := copy(in.queue, in.queue[1:])
		in.queue = in.queue[:n]
		e.stats.QueueDropped++
	}
	u.ID = append([]byte(nil), u.ID...)
	in.queue = append(in.queue, queued{rpt: rpt, clear: clear, u: u})
	e.stats.QueuedEntries++
}

// applyOrder applies one OLR entry to a book that is whole.
func (e *Engine) applyOrder(b *book.MBO, clear bool, u book.OrderUpdate) {
	if clear {
		e.stats.EmptyBooks++
		b.Clear()
		return
	}
	if err := b.Apply(u); err != nil {
		e.stats.BookErrors++
		return
	}
	e.stats.Orders++
}

func (e *Engine) bookOf(in *Instrument) *book.MBO {
	if in.Book == nil {
		b, err := book.NewMBO(book.Config{PriceExp: PriceExp, SizeExp: SizeExp})
		if err != nil {
			panic(err) // constant, valid configuration
		}
		in.Book = b
	}
	return in.Book
}

// at returns d's mantissa at exponent exp.
func at(d fastrt.Decimal, exp int32) (int64, bool) {
	m, e := d.Mantissa, d.Exponent
	for e > exp {
		if m > 1<<62/5 || m < -(1<<62/5) {
			return 0, false
		}
		m *= 10
		e--
	}
	for e < exp {
		if m%10 != 0 {
			return 0, false
		}
		m /= 10
		e++
	}
	return m, true
}

func (e *Engine) order(x *entry, hasType, hasID, hasSym bool) {
	if !hasSym || len(x.symbol) == 0 || !x.hasRpt || !hasType || len(x.typ) != 1 {
		e.stats.BadEntries++
		return
	}
	in := e.instrument(x.symbol)
	if in == nil {
		return
	}
	if !e.sequence(in, FamOrders, x.rpt) {
		return
	}
	b := e.bookOf(in)
	var u book.OrderUpdate
	clear := false
	switch x.typ[0] {
	case '0':
		u.Type = book.EntryBid
	case '1':
		u.Type = book.EntryOffer
	case 'J':
		clear = true
	default:
		b.SetRptSeq(int64(x.rpt))
		return
	}
	if !clear {
		if !hasID {
			e.stats.BadEntries++
			return
		}
		u.ID = x.id
		if x.hasAction {
			if x.action > 2 {
				e.stats.BadEntries++
				return
			}
			u.Action = book.Action(x.action)
		}
		if u.Action != book.ActionDelete {
			var ok1, ok2 bool
			u.Price, ok1 = at(x.px, PriceExp)
			u.Size, ok2 = at(x.size, SizeExp)
			if !x.hasPx || !x.hasSize {
				e.stats.BadEntries++
				return
			}
			if !ok1 || !ok2 {
				e.stats.Precision++
				return
			}
		}
	}
	if b.Stale() {
		e.hold(in, x.rpt, clear, u)
		return
	}
	b.SetRptSeq(int64(x.rpt))
	if e.Listener == nil {
		e.applyOrder(b, clear, u)
		return
	}
	if clear {
		e.applyOrder(b, clear, u)
		e.Listener.Book(in)
		return
	}
	old, hadOld := b.Lookup(u.ID) // the level it leaves changes too
	e.applyOrder(b, clear, u)
	if hadOld {
		e.Listener.Level(in, old.Side, old.Price)
	}
	if u.Action != book.ActionDelete && (!hadOld || old.Side != book.Side(u.Type) || old.Price != u.Price) {
		e.Listener.Level(in, book.Side(u.Type), u.Price)
	}
}

func (e *Engine) countSnapshot(hasLast bool, last uint32) {
	if !hasLast || last == 1 {
		e.stats.Snapshots++
	}
}

// snapBegin starts or continues the order snapshot of sym on ch; it reports whether the
// fragment's entries are to be collected.
func (e *Engine) snapBegin(ch *channel, sym []byte, rpt int32, lastSeq uint32, first bool) bool {
	if first {
		if ch.snapOn {
			e.stats.SnapshotsBroken++
		}
		ch.snapOn, ch.snapBroken = true, false
		ch.snapSym = append(ch.snapSym[:0], sym...)
		ch.snapRpt, ch.snapLast = rpt, lastSeq
		ch.snapEnts, ch.snapArena = ch.snapEnts[:0], ch.snapArena[:0]
		ch.snapOther = ch.snapOther[:0]
		return true
	}
	if !ch.snapOn || ch.snapBroken || string(sym) != string(ch.snapSym) {
		e.stats.SnapshotsBroken++
		ch.snapOn = false
		return false
	}
	return true
}

func (e *Engine) snapEntry(ch *channel, typ, id []byte, px, size fastrt.Decimal, complete bool) {
	if !ch.snapOn {
		return
	}
	if len(typ) != 1 || (typ[0] != '0' && typ[0] != '1') {
		return // J (empty book) and anything else adds no order
	}
	p, ok1 := at(px, PriceExp)
	s, ok2 := at(size, SizeExp)
	if !complete || !ok1 || !ok2 || len(ch.snapEnts) >= e.opts.MaxSnapshotEntries || len(id) > book.MaxIDLen {
		e.stats.BadEntries++
		ch.snapBroken = true
		return
	}
	// The ID is copied into the arena; an earlier ID keeps the arena's older backing
	// array, whose bytes do not change, when append moves it.
	off := len(ch.snapArena)
	ch.snapArena = append(ch.snapArena, id...)
	ch.snapEnts = append(ch.snapEnts, book.OrderUpdate{Type: book.EntryType(typ[0] - '0'),
		Price: p, Size: s, ID: ch.snapArena[off:len(ch.snapArena):len(ch.snapArena)]})
}

func (e *Engine) snapEnd(ch *channel, last bool) {
	if !last || !ch.snapOn {
		return
	}
	ch.snapOn = false
	if ch.snapBroken {
		e.stats.SnapshotsBroken++
		return
	}
	e.stats.Snapshots++
	switch ch.sfam {
	case FamTrades:
		if in, ok := e.inst[string(ch.snapSym)]; ok {
			e.tradeSnapshot(ch, in)
		}
		return
	case FamStats:
		if in := e.instrument(ch.snapSym); in != nil {
			e.statSnapshot(ch, in)
		}
		return
	}
	in := e.instrument(ch.snapSym)
	if in == nil {
		return
	}
	b := in.Book
	// A book is replaced when it has none or when the snapshot is newer (the entries it
	// includes are then skipped as already applied). A stale book waits for a snapshot
	// that reaches the entries it holds: then the held entries after the snapshot's
	// RptSeq are applied; an older snapshot is not used (the next cycle is waited for).
	rpt := ch.snapRpt
	stale := b != nil && b.Stale()
	var prev int64
	if b != nil {
		prev = b.RptSeq()
		if stale {
			prev = int64(in.rpt[FamOrders])
		}
	}
	var first int64
	if len(in.queue) > 0 {
		first = int64(in.queue[0].rpt)
	}
	if !snapshotReaches(b != nil, stale, int64(rpt), first, prev) {
		if stale {
			e.stats.SnapshotsOld++
		}
		return
	}
	b = e.bookOf(in)
	if err := b.Replace(ch.snapEnts); err != nil {
		e.stats.BookErrors++
		return
	}
	b.SetRptSeq(int64(rpt))
	// The held entries that follow the snapshot are applied while their RptSeqs run on;
	// at another hole among them the book stays stale with the rest held.
	var hole bool
	in.queue, _, hole = followOn(in.queue, rpt, func(q *queued) int32 { return q.rpt }, func(q *queued) {
		e.applyOrder(b, q.clear, q.u)
		b.SetRptSeq(int64(q.rpt))
	})
	b.SetStale(hole)
	if stale && !hole {
		e.stats.BooksRecovered++
	}
	in.started[FamOrders] = true
	in.rpt[FamOrders] = max(in.rpt[FamOrders], rpt)
	in.SnapshotLastMsgSeqNum = ch.snapLast
	e.stats.SnapshotsUsed++
	if e.Listener != nil {
		e.Listener.Book(in) // the snapshot and the held entries that followed it
	}
}
