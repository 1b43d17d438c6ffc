package moex

import (
	"fastfeed/fast/fastrt"
)

// The snapshot feeds' recovery, shared by the three families (OLS books, TLS trades,
// MSS statistics): a hole in an instrument's RptSeq that nothing filled makes its state
// of that family stale; the entries that follow are held; the first complete snapshot
// that reaches them (snapshotReaches) gives the state at its RptSeq, and the held
// entries after it are applied while their RptSeqs run on (followOn).

// snapshotReaches reports whether a complete snapshot with RptSeq rpt is used for one
// family's state of an instrument: always when the state is unknown; for a stale state,
// when the snapshot reaches the first held entry (first, 0 when none is held: then when
// it reaches the last RptSeq seen); otherwise when it is newer than the state (last).
func snapshotReaches(known, stale bool, rpt, first, last int64) bool {
	switch {
	case !known:
		return true
	case stale && first > 0:
		return rpt+1 >= first
	case stale:
		return rpt >= last
	}
	return rpt > last
}

// followOn applies the held entries of q (in RptSeq order) that follow last while their
// RptSeqs run on, skipping those at or below it; it returns the entries kept (from the
// next hole on), the last RptSeq applied and whether a hole is left.
func followOn[T any](q []T, last int32, rptOf func(*T) int32, apply func(*T)) ([]T, int32, bool) {
	for i := range q {
		switch r := rptOf(&q[i]); {
		case r <= last:
			continue
		case r == last+1:
			apply(&q[i])
			last = r
			continue
		}
		kept := copy(q, q[i:])
		clear(q[kept:])
		return q[:kept], last, true
	}
	clear(q)
	return q[:0], last, false
}

// snapItem is one entry of a TLS or MSS snapshot being assembled; typ and id are in the
// channel's snapArena.
type snapItem struct {
	typ, id        []byte
	hasID          bool
	px, size       fastrt.Decimal
	hasPx, hasSize bool
}

// snapOther collects one entry of a TLS or MSS snapshot.
func (e *Engine) snapOther(ch *channel, typ, id []byte, px, size fastrt.Decimal, hasPx, hasSize bool) {
	if !ch.snapOn {
		return
	}
	if len(ch.snapOther) >= e.opts.MaxSnapshotEntries || len(typ) == 0 || len(typ) > 8 || len(id) > 64 {
		e.stats.BadEntries++
		ch.snapBroken = true
		return
	}
	off := len(ch.snapArena)
	ch.snapArena = append(ch.snapArena, typ...)
	ch.snapArena = append(ch.snapArena, id...)
	a := ch.snapArena
	ch.snapOther = append(ch.snapOther, snapItem{typ: a[off : off+len(typ) : off+len(typ)],
		id: a[off+len(typ) : len(a) : len(a)], hasID: id != nil, px: px, size: size, hasPx: hasPx, hasSize: hasSize})
}

// rptRange is a hole in an instrument's RptSeq: lo..hi missing.
type rptRange struct{ lo, hi int32 }

// snapWaits is what an instrument holds for the TLS and MSS feeds: its TLR holes and its
// MSR entries held behind a hole (made at the first hole: most instruments never have
// one).
type snapWaits struct {
	tholes []rptRange
	squeue []heldStat
}

func (in *Instrument) waits() *snapWaits {
	if in.wait == nil {
		in.wait = &snapWaits{}
	}
	return in.wait
}

// maxTradeHoles bounds the TLR holes kept per instrument while they wait for a TLS
// snapshot; beyond, the oldest is counted lost.
const maxTradeHoles = 64

// heldStat is an MSR entry held while its instrument's statistics wait for an MSS
// snapshot.
type heldStat struct {
	rpt            int32
	seq            uint32
	typ            []byte
	del            bool
	px, size       fastrt.Decimal
	hasPx, hasSize bool
}

func (e *Engine) tradeEntry(seq uint32, x *entry, hasID, hasSym bool) {
	if !hasSym || len(x.symbol) == 0 {
		e.stats.BadEntries++
		return
	}
	var in *Instrument
	if x.hasRpt {
		if in = e.instrument(x.symbol); in == nil {
			return
		}
		if !e.sequence(in, FamTrades, x.rpt) {
			return
		}
	}
	t := &e.trade
	*t = Trade{Seq: seq, Symbol: x.symbol, RptSeq: x.rpt, HasRptSeq: x.hasRpt, Type: x.typ,
		Action: x.action, HasAction: x.hasAction, Px: x.px, Size: x.size, HasPx: x.hasPx, HasSize: x.hasSize}
	if hasID {
		t.ID = x.id
	}
	e.deliverTrade(in, t)
}

// tradeHole records the TLR hole lo..hi of in: its trades wait for a TLS snapshot.
func (e *Engine) tradeHole(in *Instrument, lo, hi int32) {
	w := in.waits()
	if len(w.tholes) >= maxTradeHoles {
		h := w.tholes[0]
		e.lostTrades(nil, in, uint64(h.hi-h.lo+1))
		w.tholes = w.tholes[:copy(w.tholes, w.tholes[1:])]
	}
	w.tholes = append(w.tholes, rptRange{lo, hi})
	if !in.TradesStale {
		in.TradesStale = true
		e.stats.TradeWaits++
	}
}

func (e *Engine) lostTrades(ch *channel, in *Instrument, n uint64) {
	if ch != nil {
		ch.stats.TradesLost += n
	}
	e.stats.TradesLost += n
	in.TradesLost += n
}

// deliverTrade hands a trade on (OnTrade, the Listener); in is nil for a trade without
// RptSeq. A trade taken from a TLS snapshot (Seq 0) is older than the instrument's last:
// it does not change LastPx.
func (e *Engine) deliverTrade(in *Instrument, t *Trade) {
	if in != nil && t.HasPx {
		if t.Seq != 0 {
			in.LastPx, in.LastSize, in.HasLastSize = t.Px, t.Size, t.HasSize
		}
		in.Trades++
	}
	e.stats.Trades++
	if e.OnTrade != nil {
		e.OnTrade(t)
	}
	if e.Listener != nil {
		if in == nil {
			in = e.instrument(t.Symbol)
		}
		if in != nil {
			e.Listener.Trade(in, t)
		}
	}
}

// tradeSnapshot uses a complete TLS snapshot for in: the trades of in's TLR holes that
// it reaches (its RptSeq at or after the hole's end) are taken from it, in RptSeq order,
// none twice. A TLS snapshot carries the instrument's latest trades, oldest first, the
// last one with the snapshot's RptSeq: entry j of n has RptSeq RptSeq-n+1+j. A hole's
// trades older than the first it carries are lost (counted). The trades after a hole
// were delivered as they came: the tape is not held back; a trade taken from a snapshot
// has Seq 0 (its TLR MsgSeqNum is not known).
//
// A snapshot whose RptSeq is past the last TLR trade of in, when every TLR message up to
// its LastMsgSeqNumProcessed was used, shows a hole at the tail (no later trade of in
// came to show it): that hole is taken from it too.
func (e *Engine) tradeSnapshot(ch *channel, in *Instrument) {
	rpt := ch.snapRpt
	if tlr := e.incr[FamTrades]; tlr != nil && in.started[FamTrades] && rpt > in.rpt[FamTrades] &&
		tlr.next > ch.snapLast && ch.snapLast > 0 {
		in.Gaps[FamTrades]++
		in.Missed[FamTrades] += uint64(rpt - in.rpt[FamTrades])
		e.stats.InstrumentGaps++
		e.tradeHole(in, in.rpt[FamTrades]+1, rpt)
		in.rpt[FamTrades] = rpt
	}
	if !in.TradesStale {
		return // the trades are complete: nothing to take
	}
	n := int32(0)
	for i := range ch.snapOther {
		if string(ch.snapOther[i].typ) != "J" {
			n++
		}
	}
	oldest := rpt - n + 1
	w := in.waits()
	kept := 0
	for _, h := range w.tholes {
		if !snapshotReaches(true, true, int64(rpt), 0, int64(h.hi)) {
			e.stats.SnapshotsOld++
			w.tholes[kept] = h
			kept++
			continue
		}
		lo := h.lo
		if lost := min(h.hi, oldest-1) - lo + 1; lost > 0 {
			e.lostTrades(ch, in, uint64(lost))
			lo += lost
		}
		idx := int32(0)
		for k := range ch.snapOther {
			it := &ch.snapOther[k]
			if string(it.typ) == "J" {
				continue
			}
			r := oldest + idx
			idx++
			if r < lo {
				continue
			}
			if r > h.hi {
				break
			}
			t := &e.trade
			*t = Trade{Symbol: ch.snapSym, RptSeq: r, HasRptSeq: true, Type: it.typ, HasAction: true,
				Px: it.px, Size: it.size, HasPx: it.hasPx, HasSize: it.hasSize}
			if it.hasID {
				t.ID = it.id
			}
			ch.stats.TLSRecoveredTrades++
			e.deliverTrade(in, t)
		}
	}
	w.tholes = w.tholes[:kept]
	if kept == 0 {
		in.TradesStale = false
		e.stats.TradesRecovered++
	}
}

// statSnapshot uses a complete MSS snapshot for in as OLS snapshots are used for books:
// it replaces the statistics when they are unknown, newer, or stale and reached by it;
// the held MSR entries after it are then applied.
func (e *Engine) statSnapshot(ch *channel, in *Instrument) {
	rpt := ch.snapRpt
	stale := in.StatsStale
	var first int64
	if in.wait != nil && len(in.wait.squeue) > 0 {
		first = int64(in.wait.squeue[0].rpt)
	}
	if !snapshotReaches(in.started[FamStats], stale, int64(rpt), first, int64(in.rpt[FamStats])) {
		if stale {
			e.stats.SnapshotsOld++
		}
		return
	}
	// The types' strings of the statistics replaced are reused.
	e.statSpare = append(e.statSpare[:0], in.Stats...)
	in.Stats = in.Stats[:0]
	for i := range ch.snapOther {
		it := &ch.snapOther[i]
		if string(it.typ) == "J" || len(in.Stats) >= maxStats {
			continue
		}
		s := Stat{RptSeq: rpt, ChannelSeqNum: ch.snapLast, Px: it.px, HasPx: it.hasPx, Size: it.size, HasSz: it.hasSize}
		for j := range e.statSpare {
			if e.statSpare[j].Type == string(it.typ) {
				s.Type = e.statSpare[j].Type
				break
			}
		}
		if s.Type == "" {
			s.Type = string(it.typ)
		}
		in.Stats = append(in.Stats, s)
	}
	clear(e.statSpare)
	var hole bool
	if w := in.wait; w != nil && len(w.squeue) > 0 {
		w.squeue, _, hole = followOn(w.squeue, rpt, func(h *heldStat) int32 { return h.rpt }, func(h *heldStat) {
			e.applyStat(in, h.seq, h.rpt, h.typ, h.del, h.px, h.size, h.hasPx, h.hasSize)
		})
	}
	in.StatsStale = hole
	if stale && !hole {
		ch.stats.MSSRecovered++
		e.stats.StatsRecovered++
	}
	in.started[FamStats] = true
	in.rpt[FamStats] = max(in.rpt[FamStats], rpt)
}

// maxStats bounds the statistics (entry types) kept per instrument.
const maxStats = 64

func (e *Engine) statEntry(seq uint32, x *entry, hasType, hasSym bool) {
	if !hasSym || len(x.symbol) == 0 || !hasType {
		e.stats.BadEntries++
		return
	}
	in := e.instrument(x.symbol)
	if in == nil {
		return
	}
	if x.hasRpt && !e.sequence(in, FamStats, x.rpt) {
		return
	}
	del := x.hasAction && x.action == 2
	if x.hasRpt && in.StatsStale {
		w := in.waits()
		if len(w.squeue) >= e.opts.MaxQueued {
			n := copy(w.squeue, w.squeue[1:])
			w.squeue = w.squeue[:n]
			e.stats.QueueDropped++
		}
		w.squeue = append(w.squeue, heldStat{rpt: x.rpt, seq: seq, typ: append([]byte(nil), x.typ...), del: del,
			px: x.px, size: x.size, hasPx: x.hasPx, hasSize: x.hasSize})
		e.stats.QueuedEntries++
		return
	}
	e.applyStat(in, seq, x.rpt, x.typ, del, x.px, x.size, x.hasPx, x.hasSize)
}

// applyStat sets (or, del, removes) the statistic of MDEntryType typ of in.
func (e *Engine) applyStat(in *Instrument, seq uint32, rpt int32, typ []byte, del bool, px, size fastrt.Decimal, hasPx, hasSize bool) {
	e.stats.Statistics++
	i := 0
	for i < len(in.Stats) && in.Stats[i].Type != string(typ) {
		i++
	}
	if del {
		if i < len(in.Stats) {
			in.Stats = append(in.Stats[:i], in.Stats[i+1:]...)
		}
		return
	}
	if i == len(in.Stats) {
		if i >= maxStats {
			e.stats.BadEntries++
			return
		}
		in.Stats = append(in.Stats, Stat{Type: string(typ)})
	}
	s := &in.Stats[i]
	s.RptSeq, s.ChannelSeqNum = rpt, seq
	if hasPx {
		s.Px, s.HasPx = px, true
	}
	if hasSize {
		s.Size, s.HasSz = size, true
	}
}
