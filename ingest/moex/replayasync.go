package moex

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
)

// This file runs the historical replay requests off the receive path. The engine only
// issues a request (ReplayInFlight at most per connection, into a channel of that
// capacity); the connection's worker goroutines do the TCP exchange and hand the answer
// (the messages, the outcome) back through a bounded channel that the run loop drains
// between two batches of datagrams, so it is applied on the engine's goroutine. The
// per-datagram path costs nothing for it while no hole waits.

// replayJob is one request: connection ch's MsgSeqNums beg..end, issued in the
// connection's generation gen (a reset makes its answer late).
type replayJob struct {
	ch       int
	gen      uint32
	beg, end uint32
}

// replayAnswer is a request's outcome: the messages delivered (each with its MsgSeqNum
// header, back to back in data, ends[i] the end of the i-th) and the error, if any.
type replayAnswer struct {
	replayJob
	data []byte
	ends []int
	err  error
}

// replayWorkers are the goroutines of a live run's requests.
type replayWorkers struct {
	on      bool
	jobs    []chan replayJob // per channel; nil for one that is not incremental
	answers chan *replayAnswer
	pending atomic.Int32 // answers in the channel
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startReplay starts ReplayInFlight workers per incremental connection, if the engine
// has a Replayer; wake, if not nil, interrupts the run loop's wait for datagrams when an
// answer is ready. stopReplay ends them.
func (e *Engine) startReplay(ctx context.Context, wake func()) {
	w := &e.rep
	if e.opts.Replay == nil || w.on {
		return
	}
	n := e.opts.ReplayInFlight
	ctx, w.cancel = context.WithCancel(ctx)
	w.on = true
	w.jobs = make([]chan replayJob, len(e.chans))
	w.answers = make(chan *replayAnswer, n*len(e.chans))
	for i, ch := range e.chans {
		if ch.fam < 0 {
			continue
		}
		jobs := make(chan replayJob, n)
		w.jobs[i] = jobs
		conn := ch.conn.ID
		for range n {
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case j := <-jobs:
						a := &replayAnswer{replayJob: j}
						a.err = e.opts.Replay.Replay(ctx, conn, j.beg, j.end, func(seq uint32, msg []byte) {
							a.data = binary.LittleEndian.AppendUint32(a.data, seq)
							a.data = append(a.data, msg...)
							a.ends = append(a.ends, len(a.data))
						})
						// The channel holds every request in flight: this never waits.
						w.pending.Add(1)
						w.answers <- a
						if wake != nil {
							wake()
						}
					}
				}
			}()
		}
	}
}

// stopReplay cancels the requests in flight, waits for the workers and applies what
// they answered (a cancelled request fails: its hole is a gap).
func (e *Engine) stopReplay() {
	w := &e.rep
	if !w.on {
		return
	}
	w.cancel()
	w.wg.Wait()
	w.on = false
	e.applyReplays()
	for _, ch := range e.chans {
		ch.inflight = 0 // requests never taken by a worker
		ch.reqs = ch.reqs[:0]
	}
}

// applyReplays applies the answers that came (the run loop, between batches). It costs
// one atomic load when none waits.
func (e *Engine) applyReplays() {
	w := &e.rep
	for w.pending.Load() != 0 {
		a := <-w.answers
		w.pending.Add(-1)
		e.replayAnswered(a)
	}
}

// replayable reports whether ch's hole beg..end may be asked of the replay service.
func (e *Engine) replayable(ch *channel, beg, end uint32) bool {
	return e.rep.on && ch.fam >= 0 && beg != 0 && end >= beg && end-beg < uint32(e.opts.MaxReplayGap)
}

// request issues a request for ch's hole beg..end if it may be asked and a worker slot
// is free; it reports whether it did.
func (e *Engine) request(ch *channel, beg, end uint32) bool {
	if !e.replayable(ch, beg, end) {
		return false
	}
	ch.prune()
	if ch.inflight >= e.opts.ReplayInFlight || len(ch.reqs) >= e.opts.ReplayInFlight {
		if ch.busy != beg {
			ch.busy = beg
			ch.stats.ReplayBusy++
		}
		return false
	}
	i := slices.Index(e.chans, ch)
	select {
	case e.rep.jobs[i] <- replayJob{ch: i, gen: ch.gen, beg: beg, end: end}:
	default:
		return false // cannot happen: inflight bounds the channel
	}
	ch.inflight++
	ch.reqs = append(ch.reqs, replayRange{beg: beg, end: end})
	ch.stats.ReplayRequests++
	return true
}

// covering returns the range asked that holds beg..end, or nil.
func (ch *channel) covering(beg, end uint32) *replayRange {
	for i := range ch.reqs {
		if r := &ch.reqs[i]; r.beg <= beg && end <= r.end {
			return r
		}
	}
	return nil
}

// prune forgets the ranges ch has gone past.
func (ch *channel) prune() {
	ch.reqs = slices.DeleteFunc(ch.reqs, func(r replayRange) bool { return r.end < ch.next })
}

// replayAnswered applies an answer: its messages go among the held datagrams (those
// already held or used are duplicates) and the ones that follow on are used; a failed
// request leaves its hole (what it did not deliver) to be a gap.
func (e *Engine) replayAnswered(a *replayAnswer) {
	ch := e.chans[a.ch]
	ch.inflight--
	if a.gen != ch.gen || a.end < ch.next {
		ch.stats.ReplayLate++
		if a.err != nil {
			ch.stats.ReplayFailed++
		}
		return
	}
	r := ch.covering(a.beg, a.end)
	held := len(ch.held)
	start := 0
	for _, end := range a.ends {
		p := a.data[start:end]
		start = end
		seq := binary.LittleEndian.Uint32(p)
		if seq < ch.next || seq < a.beg || seq > a.end {
			continue
		}
		if _, dup := slices.BinarySearchFunc(ch.held[:held], seq, cmpSeq); dup {
			continue
		}
		var buf []byte
		if n := len(ch.spare); n > 0 {
			buf, ch.spare = ch.spare[n-1][:0], ch.spare[:n-1]
		}
		ch.held = append(ch.held, pending{seq: seq, at: e.now, line: -1, data: append(buf, p...)})
		ch.stats.ReplayMessages++
	}
	slices.SortFunc(ch.held, bySeq)
	complete := a.err == nil && len(a.ends) == int(a.end-a.beg+1)
	if complete {
		ch.stats.RecoveredReplay++
		if r != nil {
			r.end = 0 // answered: pruned below
		}
	} else {
		ch.stats.ReplayFailed++
		if r != nil {
			r.failed = true // what is still missing of it is a gap
		}
	}
	e.drain(ch)
	ch.prune()
	e.expire(ch, e.now)
}

// requestHoles asks for the holes among ch's held datagrams after the first that have
// waited GapWait, while workers are free (the first hole is expire's): a burst of holes
// is asked at once rather than one answer after another. It looks at each held datagram
// once (ch.scanned).
func (e *Engine) requestHoles(ch *channel, now int64) {
	if !e.rep.on || ch.fam < 0 || len(ch.held) < 2 || ch.inflight >= e.opts.ReplayInFlight {
		return
	}
	i := 1
	if ch.scanned > ch.held[0].seq {
		i, _ = slices.BinarySearchFunc(ch.held, ch.scanned, cmpSeq)
		i = max(i, 1)
	}
	for ; i < len(ch.held); i++ {
		prev, p := ch.held[i-1].seq, &ch.held[i]
		if p.seq > prev+1 {
			beg, end := prev+1, p.seq-1
			if ch.covering(beg, end) == nil && e.replayable(ch, beg, end) {
				if now-p.at < e.opts.GapWait {
					return
				}
				if !e.request(ch, beg, end) {
					return
				}
			}
		}
		ch.scanned = p.seq
	}
}
