package fixrecovery

// The client's goroutine: it owns the requests, matches the answers and makes every Sink call.

import (
	"fmt"
	"strconv"
	"time"

	"fastfeed/feed"
	"fastfeed/md"
)

// run owns the requests and makes every Sink call.
func (c *Client) run(sink feed.Sink, startErr error) {
	r := runner{Client: c, sink: sink, startErr: startErr, active: make(map[string]*request),
		late: make(map[string]*request), snaps: make(map[string]*request)}
	tick := max(min(c.cfg.Timeout/10, 250*time.Millisecond), 5*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case req := <-c.inbox:
			r.issue(req)
		case ev := <-c.events:
			r.handle(ev)
		case <-c.kick:
			r.overflow()
		case now := <-ticker.C:
			r.expire(now)
		}
	}
}

// maxRetries is how many times a request cut off by a lost session is sent again.
const maxRetries = 1

// runner is run's state.
type runner struct {
	*Client
	sink     feed.Sink
	startErr error
	loggedOn bool
	reason   string // of the last logout
	seq      uint64 // of MDReqIDs
	waiting  []*request
	active   map[string]*request // sent, by MDReqID (a joined snapshot request under each of its)
	// late holds the snapshot requests that timed out (and were failed), by each of
	// their MDReqIDs, so that an answer that comes after all is still used: at most one
	// per channel, the last.
	late map[string]*request
	// snaps is the snapshot request of each channel still to be answered (waiting,
	// active or late): a new one for the same symbols joins it.
	snaps map[string]*request
}

func (r *runner) fail(req *request, why string) {
	r.log.Info("recovery request failed", "channel", req.channel, "snapshot", req.snapshot, "mdreqid", req.id, "reason", why)
	r.sink.Failed(req.channel, req.snapshot, why)
}

// issue takes a new request: it sends it, or queues it until the logon.
func (r *runner) issue(req *request) {
	if r.startErr != nil {
		r.fail(req, r.startErr.Error())
		return
	}
	if !req.snapshot && (req.beg == 0 || req.beg > req.end) {
		r.fail(req, fmt.Sprintf("invalid range %d..%d", req.beg, req.end))
		return
	}
	if req.snapshot && r.join(req) {
		return
	}
	if req.snapshot {
		if old := r.snaps[req.channel]; old != nil && old.expired {
			r.forget(old) // asked for other symbols: it is not worth waiting for any more
		}
		// The handler gave up replaying this channel: a retransmission of it still
		// waiting for the session would only be refused for the requests it takes up.
		kept := r.waiting[:0]
		for _, w := range r.waiting {
			if !w.snapshot && w.channel == req.channel {
				r.fail(w, "superseded by a snapshot request")
				continue
			}
			kept = append(kept, w)
		}
		clear(r.waiting[len(kept):])
		r.waiting = kept
	}
	r.newID(req)
	req.deadline = time.Now().Add(r.cfg.Timeout)
	if r.loggedOn && r.send(req) {
		r.track(req)
		return
	}
	if len(r.waiting) >= r.cfg.MaxQueued {
		r.fail(req, fmt.Sprintf("%d requests already wait for the recovery session", len(r.waiting)))
		return
	}
	r.waiting = append(r.waiting, req)
	r.track(req)
}

// newID gives req a new MDReqID, which it answers to from now on, besides the ones it
// had.
func (r *runner) newID(req *request) {
	r.seq++
	req.id = "R" + strconv.FormatUint(r.seq, 10)
	req.ids = append(req.ids, req.id)
}

// track makes a snapshot request the one of its channel.
func (r *runner) track(req *request) {
	if req.snapshot {
		r.snaps[req.channel] = req
	}
}

// join makes a new snapshot request one with the channel's request still unanswered, if
// that asks for the same symbols, and reports whether it did: the two get one outcome.
// One still waiting for the logon or still in time (sent, answered within Timeout) is
// not sent again: the service answers it, and asking again would only make it send the
// same snapshots twice. One that timed out (and was failed) is sent again under a new
// MDReqID and answers to both: the service, which replaces a pending duplicate, sends
// one answer, and whichever comes is used, along with what came already.
func (r *runner) join(req *request) bool {
	old := r.snaps[req.channel]
	if old == nil || !sameSymbols(old, req) {
		return false
	}
	r.joined.Add(1)
	if !old.expired {
		return true
	}
	for _, id := range old.ids {
		delete(r.late, id)
	}
	old.expired = false
	r.newID(old)
	old.deadline = time.Now().Add(r.cfg.Timeout)
	if r.loggedOn && r.sendAgain(old) {
		return true
	}
	if len(r.waiting) >= r.cfg.MaxQueued {
		r.forget(old)
		r.fail(req, fmt.Sprintf("%d requests already wait for the recovery session", len(r.waiting)))
		return true
	}
	r.waiting = append(r.waiting, old)
	return true
}

// sameSymbols reports whether a and b, snapshot requests of one channel, ask for the
// same instruments.
func sameSymbols(a, b *request) bool {
	if len(a.symbols) != len(b.symbols) {
		return false
	}
	for _, s := range b.symbols {
		if !a.want[s] {
			return false
		}
	}
	return true
}

// forget drops req, a snapshot request, from the maps that answers are matched with.
func (r *runner) forget(req *request) {
	for _, id := range req.ids {
		delete(r.active, id)
		delete(r.late, id)
	}
	if r.snaps[req.channel] == req {
		delete(r.snaps, req.channel)
	}
}

// send sends req and reports whether it went.
func (r *runner) send(req *request) bool {
	if req.snapshot && len(req.ids) <= 1 {
		req.snaps = make(map[string]md.Snapshot, len(req.symbols))
		req.order, req.total = req.order[:0], 0 // a request sent again starts over
	}
	return r.sendAgain(req)
}

// sendAgain sends req under its MDReqID, keeping what came already, and reports whether
// it went.
func (r *runner) sendAgain(req *request) bool {
	if req.snapshot && req.snaps == nil {
		req.snaps = make(map[string]md.Snapshot, len(req.symbols))
	}
	mdr := md.MarketDataRequest{MDReqID: req.id, SubscriptionType: md.SubscriptionSnapshot, ApplID: req.channel}
	if req.snapshot {
		mdr.Symbols = req.symbols
	} else {
		mdr.BegSeqNum, mdr.EndSeqNum = req.beg, req.end
	}
	if err := r.ini.Send(mdr.ToFIX()); err != nil {
		return false
	}
	if req.snapshot {
		r.snapshotsSent.Add(1)
	}
	req.deadline = time.Now().Add(r.cfg.Timeout)
	for _, id := range req.ids { // an answer to any of them is used
		r.active[id] = req
	}
	return true
}

// overflow fails the requests that found the inbox full.
func (r *runner) overflow() {
	r.mu.Lock()
	reqs, lost := r.spilled, r.lost
	r.spilled, r.lost = nil, nil
	r.mu.Unlock()
	const why = "too many recovery requests outstanding"
	for _, req := range reqs {
		r.fail(req, why)
	}
	for snapshot, byChannel := range lost {
		for channel, n := range byChannel {
			for range n {
				r.sink.Failed(channel, snapshot, why)
			}
		}
	}
}

func (r *runner) expire(now time.Time) {
	for id, req := range r.active {
		if now.After(req.deadline) {
			delete(r.active, id)
			if req.snapshot {
				if req.expired {
					continue // under another of its MDReqIDs
				}
				// Failed, so that the handler may ask again (its backoff decides when), but
				// an answer that comes after all is still used.
				if r.snaps[req.channel] != req {
					// Superseded by a request for other symbols: not worth waiting for.
					r.forget(req)
					r.fail(req, fmt.Sprintf("no answer from the recovery service for %v", r.cfg.Timeout))
					continue
				}
				req.expired = true
				for _, id := range req.ids {
					delete(r.active, id)
					r.late[id] = req
				}
			}
			r.fail(req, fmt.Sprintf("no answer from the recovery service for %v", r.cfg.Timeout))
		}
	}
	keep := r.waiting[:0]
	for _, req := range r.waiting {
		if now.After(req.deadline) {
			why := "the recovery session is not logged on"
			if r.reason != "" {
				why += ": " + r.reason
			}
			r.forgetIfSnapshot(req)
			r.fail(req, why)
			continue
		}
		keep = append(keep, req)
	}
	clear(r.waiting[len(keep):])
	r.waiting = keep
}

func (r *runner) handle(ev event) {
	switch {
	case ev.logon:
		r.loggedOn, r.reason = true, ""
		waiting := r.waiting
		r.waiting = nil
		for i, req := range waiting {
			if !r.send(req) { // lost again already
				r.waiting = append(r.waiting, waiting[i:]...)
				break
			}
		}
	case ev.logout:
		wasOn := r.loggedOn
		r.loggedOn, r.reason = false, ev.reason
		if !wasOn && ev.reason != "" {
			// The service refused the logon, and says why: the requests waiting for it
			// fail now rather than at their timeouts.
			for _, req := range r.waiting {
				r.forgetIfSnapshot(req)
				r.fail(req, "the recovery service refused the logon: "+ev.reason)
			}
			clear(r.waiting)
			r.waiting = r.waiting[:0]
		}
		why := "recovery session lost"
		if ev.reason != "" {
			why += ": " + ev.reason
		}
		// The service forgets the session's requests: no late answer will come.
		for _, req := range r.late {
			r.forget(req)
		}
		for id, req := range r.active {
			if r.active[id] == nil {
				continue // under another of its MDReqIDs, done already
			}
			for _, id := range req.ids {
				delete(r.active, id)
			}
			req.ids = req.ids[:0]
			// A session lost in the middle of an answer is asked again, once, for
			// what is still missing, at the next logon: a dropped connection is not a
			// refusal, and a snapshot costs the handler far more than the rest of a
			// replay.
			if req.retries < maxRetries && len(r.waiting) < r.cfg.MaxQueued {
				req.retries++
				if !req.snapshot && req.next > req.beg {
					req.beg = req.next
				}
				r.newID(req)
				r.log.Info("recovery request to be sent again at the next logon", "channel", req.channel,
					"snapshot", req.snapshot, "mdreqid", req.id, "reason", why)
				r.waiting = append(r.waiting, req)
				continue
			}
			r.forgetIfSnapshot(req)
			r.fail(req, why)
		}
	default:
		r.answer(&ev)
	}
}

// answer applies an answer message to its request.
func (r *runner) answer(ev *event) {
	req := r.active[ev.reqID]
	if req == nil {
		req = r.late[ev.reqID]
		if req == nil || ev.kind != byte(md.KindSnapshot) || ev.err != nil {
			if req != nil {
				r.forget(req) // failed already: nothing more is expected of it
			}
			r.log.Debug("recovery answer to no pending request", "mdreqid", ev.reqID, "msgtype", string(ev.kind))
			return
		}
	}
	if ev.reqID != req.id {
		req.oldAnswer = true
	}
	done := func(why string) {
		if req.snapshot {
			if req.expired || req.oldAnswer {
				r.lateAnswers.Add(1)
			}
			r.forget(req)
		} else {
			delete(r.active, req.id)
		}
		if why != "" && !req.expired {
			r.fail(req, why)
		}
	}
	switch {
	case ev.err != nil:
		done(fmt.Sprintf("malformed answer: %v", ev.err))
		return
	case ev.kind == 'Y':
		why := "refused by the recovery service"
		if ev.rej.Reason != 0 {
			why += " (MDReqRejReason " + string(rune(ev.rej.Reason)) + ")"
		}
		if ev.rej.Text != "" {
			why += ": " + ev.rej.Text
		}
		done(why)
		return
	case req.snapshot != (ev.kind == byte(md.KindSnapshot)):
		done(fmt.Sprintf("answered with MsgType %c", ev.kind))
		return
	}
	if !req.expired {
		req.deadline = time.Now().Add(r.cfg.Timeout)
	}
	if req.snapshot {
		r.snapshotAnswer(req, ev, done)
		return
	}
	seq := ev.appl.ApplSeqNum
	if seq < req.next || seq > req.end {
		return // a duplicate, or not of the range
	}
	m := &md.Message{Kind: md.Kind(ev.kind)}
	switch m.Kind {
	case md.KindIncremental:
		m.Incremental = ev.inc
	case md.KindDefinition:
		m.Definition = ev.def
	case md.KindStatus:
		m.Status = ev.stat
	}
	r.sink.Retransmitted(req.channel, seq, m)
	req.next = seq + 1
	if req.next > req.end || req.next == 0 { // 0: wrapped past the last number
		done("")
	}
}

func (r *runner) snapshotAnswer(req *request, ev *event, done func(string)) {
	sym := string(ev.snap.Symbol)
	if len(req.symbols) > 0 && !req.want[sym] {
		return
	}
	if _, dup := req.snaps[sym]; !dup {
		req.order = append(req.order, sym)
	}
	req.snaps[sym] = ev.snap
	if ev.total > 0 {
		req.total = ev.total
	}
	complete := len(req.snaps) == len(req.symbols)
	if len(req.symbols) == 0 {
		complete = req.total > 0 && len(req.snaps) >= req.total
	}
	if !complete {
		return
	}
	order := req.symbols
	if len(order) == 0 {
		order = req.order
	}
	snaps := make([]md.Snapshot, 0, len(order))
	for _, s := range order {
		snaps = append(snaps, req.snaps[s])
	}
	done("")
	r.sink.Snapshots(req.channel, snaps)
}

// forgetIfSnapshot forgets req if it is a snapshot request, about to fail.
func (r *runner) forgetIfSnapshot(req *request) {
	if req.snapshot {
		r.forget(req)
	}
}
