package natsbus

import (
	"context"
	"time"

	"fastfeed/md"
)

// run is the writer.
func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	if d, ok := p.cfg.Engine.(Dumper); ok {
		p.initial(ctx, d) // waits for the engine to run
	}
	var tick <-chan time.Time
	if p.cfg.SnapshotEvery > 0 {
		t := time.NewTicker(p.cfg.SnapshotEvery)
		defer t.Stop()
		tick = t.C
	}
	periodic := false
	for {
		select {
		case <-ctx.Done():
			p.drain()
			return
		case <-tick:
			periodic = true
		default:
		}
		if p.resync.Load() || p.reconnect.Load() || p.requested.Load() || p.refill.Load() || periodic {
			if p.nc.IsConnected() {
				p.takeSnapshots(ctx, periodic)
				periodic = false
			}
		}
		if len(p.pending) > 0 && p.ring.Popped() >= p.barrier {
			for _, s := range p.pending {
				p.publishSnapshot(s)
			}
			clear(p.pending)
			p.pending = p.pending[:0]
			continue
		}
		if p.ring.Len() > 0 {
			p.publishQueued()
			continue
		}
		p.parked.Store(true)
		if p.ring.Len() > 0 || p.resync.Load() || p.reconnect.Load() || p.requested.Load() || p.refill.Load() {
			p.parked.Store(false)
			if !p.nc.IsConnected() && p.ring.Len() == 0 {
				// NATS away with instruments to resynchronise: wait for it.
				select {
				case <-ctx.Done():
				case <-tick:
					periodic = true
				case <-time.After(20 * time.Millisecond):
				}
			}
			continue
		}
		select {
		case <-p.wake:
		case <-tick:
			periodic = true
		case <-ctx.Done():
		}
		p.parked.Store(false)
	}
}

// drain publishes what is queued when stopping, for at most a second.
func (p *Publisher) drain() {
	deadline := time.Now().Add(time.Second)
	for p.ring.Len() > 0 && time.Now().Before(deadline) {
		if len(p.pending) > 0 && p.ring.Popped() >= p.barrier {
			for _, s := range p.pending {
				p.publishSnapshot(s)
			}
			p.pending = p.pending[:0]
		}
		p.publishQueued()
	}
	for _, s := range p.pending {
		p.publishSnapshot(s)
	}
	p.pending = nil
}

// takeSnapshots takes, on the engine's goroutine, fresh Ws of the conflated instruments,
// of every instrument after a reconnection, of those consumers asked for, and (periodic)
// of those that changed since their last W.
func (p *Publisher) takeSnapshots(ctx context.Context, periodic bool) {
	all := p.reconnect.Swap(false)
	if p.refill.Swap(false) {
		all = true // the cache is new: fill it
	}
	p.resync.Store(false)
	var reqs map[string]bool
	if p.requested.Swap(false) {
		p.reqMu.Lock()
		reqs, p.reqs = p.reqs, map[string]bool{}
		p.reqMu.Unlock()
	}
	var out []*snapshot
	err := p.cfg.Engine.Do(ctx, func() {
		for _, in := range p.all {
			dirty := in.dirty.Load()
			switch {
			case dirty, all, reqs[in.symbol]:
			case periodic && in.changed && in.started:
			default:
				continue
			}
			if !in.started && !dirty && !all {
				continue
			}
			s := snapshotOf(in, 0)
			if in.book != nil {
				s.snap.RptSeq = uint32(in.book.RptSeq())
			}
			s.resync = dirty || all || reqs[in.symbol]
			out = append(out, s)
			in.dirty.Store(false)
			in.changed, in.started = false, true
		}
		p.barrier = p.ring.Committed()
	})
	if err != nil {
		p.resync.Store(true)
		return
	}
	p.pending = append(p.pending, out...)
}

func (p *Publisher) subjects(in *pubInst) {
	if in.mdSubj == "" {
		in.mdSubj = Subject(PrefixMD, in.channel, in.symbol)
		in.snapSubj = Subject(PrefixSnap, in.channel, in.symbol)
		in.statusSubj = Subject(PrefixStatus, in.channel, in.symbol)
	}
}

// publish publishes one payload; a failure conflates the instrument.
func (p *Publisher) publish(in *pubInst, subject string, payload []byte) bool {
	if err := p.nc.Publish(subject, payload); err != nil {
		p.stats.publishErrors.Add(1)
		if !in.dirty.Swap(true) {
			p.stats.conflations.Add(1)
		}
		p.resync.Store(true)
		return false
	}
	p.stats.messages.Add(1)
	p.stats.bytes.Add(uint64(len(payload)))
	return true
}

func (p *Publisher) publishSnapshot(s *snapshot) {
	in := s.inst
	p.subjects(in)
	if s.stale {
		p.buf = AppendF(p.buf[:0], in.symbol, StatusStale, TextStale, s.at)
		if p.publish(in, in.statusSubj, p.buf) {
			p.stats.statuses.Add(1)
		}
		return
	}
	s.snap.LastMsgSeqNumProcessed = 0
	p.buf = AppendW(p.buf[:0], &s.snap, s.pe, s.se, s.at)
	if p.publish(in, in.snapSubj, p.buf) {
		p.stats.snapshots.Add(1)
		if s.resync {
			p.stats.resnapshots.Add(1)
		}
	}
}

// publishQueued publishes the item at the ring's head: a W, an f, or an X of up to
// MaxBatch consecutive entries of one instrument.
func (p *Publisher) publishQueued() {
	limit := p.ring.Len()
	if len(p.pending) > 0 {
		limit = min(limit, int(p.barrier-p.ring.Popped()))
	}
	it := p.ring.At(0)
	in := it.inst
	p.subjects(in)
	if in.dirty.Load() && it.kind != itemStale {
		// Superseded by the W the conflation will bring.
		p.ring.Pop(1)
		return
	}
	switch it.kind {
	case itemSnapshot:
		s := it.snap
		p.ring.Pop(1)
		p.publishSnapshot(s)
	case itemStale, itemReady, itemStatus:
		st, text := it.status, ""
		switch it.kind {
		case itemStale:
			st, text = StatusStale, TextStale
		case itemReady:
			st, text = StatusReady, TextReady
		}
		p.buf = AppendF(p.buf[:0], in.symbol, st, text, it.at)
		p.ring.Pop(1)
		if p.publish(in, in.statusSubj, p.buf) {
			p.stats.statuses.Add(1)
		}
	case itemEntry:
		at := it.at
		n := min(limit, p.cfg.MaxBatch)
		p.entries = p.entries[:0]
		k := 0
		for ; k < n; k++ {
			e := p.ring.At(k)
			if e.kind != itemEntry || e.inst != in {
				break
			}
			p.entries = append(p.entries, md.Entry{Action: e.action, Type: e.typ, RptSeq: e.rptSeq,
				ID: e.id[:e.idLen], Price: e.price, Size: e.size, Orders: e.orders})
		}
		p.buf = AppendX(p.buf[:0], in.symbol, p.entries, at)
		p.ring.Pop(k)
		if p.publish(in, in.mdSubj, p.buf) {
			p.stats.entries.Add(uint64(k))
		}
	}
}

// streamTimeout bounds one check of the last-value cache stream.
const streamTimeout = 2 * time.Second

// keepStream is the stream keeper: it checks the last-value cache stream after every
// reconnection (a restarted server may have lost it) and, while it is unavailable, every
// snapshot period (at least every second). When the stream becomes available again, or
// is checked after a reconnection, it has the writer write every book's W into it. It never blocks the writer: a JetStream
// request may wait seconds while a cluster elects a stream leader.
func (p *Publisher) keepStream(ctx context.Context, ok bool) {
	defer close(p.keeperDone)
	every := max(p.cfg.SnapshotEvery, time.Second)
	for {
		var retry <-chan time.Time
		if !ok {
			retry = time.After(every)
		}
		kicked := false
		select {
		case <-ctx.Done():
			return
		case <-p.streamKick:
			kicked = true
		case <-retry:
		}
		sctx, cancel := context.WithTimeout(ctx, streamTimeout)
		err := EnsureStream(sctx, p.nc, *p.cfg.Stream)
		cancel()
		switch {
		case err != nil:
			p.stats.streamErrors.Add(1)
			if ok && ctx.Err() == nil {
				p.log.Warn("NATS last-value cache stream unavailable; retrying", "err", err)
			}
			ok = false
		case !ok || kicked:
			// Unavailable until now, or after a reconnection to a server that may
			// have lost the stream: the Ws the writer sent meanwhile may be missing
			// from it.
			if !ok {
				p.log.Info("NATS last-value cache stream available; writing every book's W")
			}
			ok = true
			p.refill.Store(true)
			p.signal()
		}
	}
}
