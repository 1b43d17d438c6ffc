package moex

import (
	"errors"
	"hash/crc32"
)

func bySeq(a, b pending) int { return int(int64(a.seq) - int64(b.seq)) }

func cmpSeq(p pending, seq uint32) int { return int(int64(p.seq) - int64(seq)) }

// overflow gives up the first hole while ch holds more than its window: GapWindow, or
// ReplayWindow while the hole is asked of the replay service (it is asked now if it can
// be).
func (e *Engine) overflow(ch *channel) {
	for len(ch.held) > e.opts.GapWindow {
		first := ch.held[0].seq
		r := ch.covering(ch.next, first-1)
		if r == nil && e.request(ch, ch.next, first-1) {
			r = ch.covering(ch.next, first-1)
		}
		if r != nil && !r.failed && len(ch.held) <= e.opts.ReplayWindow {
			return
		}
		e.gap(ch)
	}
}

// Flush gives up every hole still waiting (the end of a capture or a live run).
func (e *Engine) Flush() {
	for _, ch := range e.chans {
		for len(ch.held) > 0 {
			e.gap(ch)
		}
	}
}

// expire deals with the first hole once it has waited GapWait: it is asked of the
// replay service if it can be (then it waits for the answer), else it is a gap. A hole
// whose request failed is a gap at once.
func (e *Engine) expire(ch *channel, now int64) {
	for len(ch.held) > 0 {
		first := ch.held[0].seq
		if len(ch.reqs) > 0 {
			ch.prune()
			if r := ch.covering(ch.next, first-1); r != nil {
				if !r.failed {
					return // asked: the answer, line B or a full window ends the wait
				}
				e.gap(ch)
				continue
			}
		}
		if now-ch.held[0].at < e.opts.GapWait {
			return
		}
		if e.request(ch, ch.next, first-1) {
			return
		}
		if ch.inflight > 0 && e.replayable(ch, ch.next, first-1) && len(ch.held) <= e.opts.ReplayWindow {
			return // every worker busy: wait for one
		}
		e.gap(ch)
	}
}

// gap gives up the hole before the first held datagram: it is counted as a gap and the
// connection goes on from that datagram.
func (e *Engine) gap(ch *channel) {
	first := ch.held[0].seq
	if ch.fam >= 0 {
		ch.stats.SnapshotGaps++
	}
	ch.stats.Gaps++
	ch.stats.Missed += uint64(first - ch.next)
	ch.snapBroken = ch.snapOn
	ch.next = first
	ch.prune()
	e.drain(ch)
}

// reset starts ch's numbering again (MsgSeqNum 1 after higher numbers: a new trading
// day): the held datagrams are dropped and, for an incremental connection, the
// instruments' RptSeqs of its family start again, their order books emptied.
func (e *Engine) reset(ch *channel) {
	ch.stats.Resets++
	for _, p := range ch.held {
		ch.spare = append(ch.spare, p.data)
	}
	ch.held = ch.held[:0]
	ch.next = 0
	ch.hasFirst = false
	ch.reqs = ch.reqs[:0]
	ch.gen++
	ch.scanned = 0
	ch.snapOn = false
	if ch.fam < 0 {
		return
	}
	for _, in := range e.inst {
		in.started[ch.fam], in.rpt[ch.fam] = false, 0
		switch ch.fam {
		case FamOrders:
			in.queue = in.queue[:0]
			if in.Book != nil {
				in.Book.Clear()
				in.Book.SetRptSeq(0)
				in.Book.SetStale(false)
				if e.Listener != nil {
					e.Listener.Book(in)
				}
			}
		case FamTrades:
			in.TradesStale = false
			if in.wait != nil {
				in.wait.tholes = in.wait.tholes[:0]
			}
		case FamStats:
			in.Stats = in.Stats[:0]
			in.StatsStale = false
			if in.wait != nil {
				clear(in.wait.squeue)
				in.wait.squeue = in.wait.squeue[:0]
			}
		}
	}
}

// family returns the RptSeq family of an incremental connection, -1 for any other.
func family(conn string) int {
	switch conn {
	case "OLR":
		return FamOrders
	case "TLR":
		return FamTrades
	case "MSR":
		return FamStats
	}
	return -1
}

// snapFamily returns the RptSeq family of a snapshot connection, -1 for any other.
func snapFamily(conn string) int {
	switch conn {
	case "OLS":
		return FamOrders
	case "TLS":
		return FamTrades
	case "MSS":
		return FamStats
	}
	return -1
}

// drain uses the held datagrams that follow on.
func (e *Engine) drain(ch *channel) {
	i := 0
	for ; i < len(ch.held) && ch.held[i].seq <= ch.next; i++ {
		p := ch.held[i]
		if p.seq == ch.next {
			e.use(ch, p.seq, p.data)
		} else {
			ch.stats.Duplicates++
		}
		ch.spare = append(ch.spare, p.data)
	}
	if i > 0 {
		ch.held = ch.held[:copy(ch.held, ch.held[i:])]
	}
}

var errTrailing = errors.New("bytes after the message")

// use decodes and applies the datagram with MsgSeqNum seq, the next of its connection.
func (e *Engine) use(ch *channel, seq uint32, payload []byte) {
	ch.next = seq + 1
	if seq == 1 {
		ch.first, ch.hasFirst = crc32.ChecksumIEEE(payload), true
	}
	ch.stats.Messages++
	e.dec.Reset()
	n, err := e.dec.Decode(payload[4:], &e.msg)
	if err != nil {
		e.stats.DecodeErrors++
		ch.snapBroken = ch.snapOn
		return
	}
	if n != len(payload)-4 {
		e.stats.Trailing++
	}
	e.apply(ch, seq)
}
