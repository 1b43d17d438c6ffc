package bus

import (
	"context"
	"fastfeed/internal/spsc"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// client is one logged-on OMS session.
type client struct {
	b    *Bus
	id   quickfix.SessionID
	key  string
	user *User

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	ring    spsc.Ring[item]
	parked  atomic.Bool
	wake    chan struct{}
	ctl     chan md.MarketDataRequest
	outWake chan struct{}
	written atomic.Int64 // application messages the session handed to its connection
	resync  atomic.Bool  // the ring overflowed: conflate
	dead    atomic.Bool

	// Handler goroutine only.
	conflating bool

	// Writer only.
	handed      int64
	reqs        map[string]*request
	conflatedAt time.Time // first conflation since the client last caught up; zero if none
	entries     []md.Entry
	pending     []queued // Ws to send before the ring's items

	// Counters.
	messages, nEntries, snapshots, rejects atomic.Uint64
	overLimit                              atomic.Uint64 // subscriptions refused over MaxSubscriptions
	overInRow                              int           // of them in a row (the run goroutine's)
	conflations, dropped                   atomic.Uint64
	mu                                     sync.Mutex
	loggedOut                              string
	nReqs                                  atomic.Int64
}

// request is one subscription (or snapshot request) of a client.
type request struct {
	c         *client
	id        string
	patterns  []feed.Pattern
	sub       Canceler
	cancelled atomic.Bool

	// Handler goroutine only.
	active bool
	syms   map[string]*symState
}

// symState is what a request knows of one instrument.
type symState struct {
	covered bool // matched by the request and entitled
	started bool // rptSeq is the RptSeq of the last entry or snapshot sent
	rptSeq  uint32
}

func newClient(b *Bus, id quickfix.SessionID, user *User) *client {
	c := &client{b: b, id: id, key: id.String(), user: user, done: make(chan struct{}),
		wake: make(chan struct{}, 1), ctl: make(chan md.MarketDataRequest, 64), outWake: make(chan struct{}, 1),
		reqs: map[string]*request{}}
	c.ctx, c.cancel = context.WithCancel(b.ctx)
	c.ring = spsc.New[item](b.cfg.QueueSize)
	return c
}

// stop ends the client: its subscriptions are cancelled and its writer returns.
func (c *client) stop() {
	c.dead.Store(true)
	c.cancel()
}

func (c *client) stats(connected bool) ClientStats {
	c.mu.Lock()
	lo := c.loggedOut
	c.mu.Unlock()
	return ClientStats{Session: c.key, Username: c.user.Username, Requests: int(c.nReqs.Load()),
		Messages: c.messages.Load(), Entries: c.nEntries.Load(), Snapshots: c.snapshots.Load(),
		Rejects: c.rejects.Load(), OverLimit: c.overLimit.Load(), Conflations: c.conflations.Load(), Dropped: c.dropped.Load(),
		LoggedOut: lo, Connected: connected}
}

// entitled reports whether the client's user may see symbol.
func (c *client) entitled(symbol, channel string) bool {
	for _, p := range c.user.Entitlements {
		if p.Match(symbol, channel) {
			return true
		}
	}
	return false
}

// state returns the request's state of symbol, creating it (handler goroutine only).
func (r *request) state(symbol string) *symState {
	st := r.syms[symbol]
	if st == nil {
		st = &symState{}
		ch := r.c.b.cfg.ChannelOf(symbol)
		if r.c.entitled(symbol, ch) {
			for _, p := range r.patterns {
				if p.Match(symbol, ch) {
					st.covered = true
					break
				}
			}
		}
		if r.syms == nil {
			r.syms = map[string]*symState{}
		}
		r.syms[symbol] = st
	}
	return st
}

// onEvent is the request's feed subscription callback, on the handler's goroutine: it
// copies the event into the client's ring and returns.
func (r *request) onEvent(ev *feed.Event) {
	c := r.c
	if !r.active || r.cancelled.Load() || c.dead.Load() {
		return
	}
	st := r.state(ev.Symbol)
	if !st.covered {
		return
	}
	if c.conflating {
		c.dropped.Add(1)
		return
	}
	switch ev.Kind {
	case feed.EventBook, feed.EventTrade:
		e := ev.Entry
		if !st.started || e.RptSeq != st.rptSeq+1 {
			// The client's copy does not end just before this entry: send the book as
			// it is now instead.
			r.pushSnapshot(ev.Symbol, ev.Book, e.RptSeq, st)
			return
		}
		it := c.reserve()
		if it == nil {
			return
		}
		st.rptSeq = e.RptSeq
		it.kind, it.req, it.symbol = itemEntry, r, ev.Symbol
		it.action, it.typ, it.rptSeq, it.orders = e.Action, e.Type, e.RptSeq, e.Orders
		it.price, it.size = e.Price, e.Size
		it.idLen = uint8(copy(it.id[:], e.ID))
		it.at = time.Now().UnixNano()
		c.commit()
	case feed.EventStale:
		it := c.reserve()
		if it == nil {
			return
		}
		st.started = false
		it.kind, it.req, it.symbol, it.at = itemStale, r, ev.Symbol, time.Now().UnixNano()
		c.commit()
	case feed.EventFresh:
		var seq uint32
		if ev.Book != nil {
			seq = uint32(ev.Book.RptSeq())
		}
		r.pushSnapshot(ev.Symbol, ev.Book, seq, st)
	case feed.EventStatus:
		it := c.reserve()
		if it == nil {
			return
		}
		it.kind, it.req, it.symbol, it.status, it.at = itemStatus, r, ev.Symbol, ev.Status, time.Now().UnixNano()
		c.commit()
	}
}

// pushSnapshot queues a W of v (nil: an empty book) valid at rptSeq. It allocates: it is
// the resynchronisation path, not the steady state.
func (r *request) pushSnapshot(symbol string, v *book.MBP, rptSeq uint32, st *symState) {
	c := r.c
	it := c.reserve()
	if it == nil {
		return
	}
	var snap *md.Snapshot
	if v == nil {
		snap = &md.Snapshot{Symbol: []byte(symbol), RptSeq: rptSeq}
	} else {
		snap = snapshotOf(symbol, v, rptSeq)
	}
	st.started, st.rptSeq = true, rptSeq
	it.kind, it.req, it.symbol, it.snap, it.at = itemSnapshot, r, symbol, snap, time.Now().UnixNano()
	c.commit()
}

// reserve returns the next free slot, or nil after starting conflation.
func (c *client) reserve() *item {
	it := c.ring.Reserve()
	if it == nil {
		c.conflating = true
		c.conflations.Add(1)
		c.dropped.Add(1)
		c.resync.Store(true)
		c.signal()
	}
	return it
}

func (c *client) commit() {
	c.ring.Commit()
	c.signal()
}

// signal wakes the writer if it sleeps.
func (c *client) signal() {
	if c.parked.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// queued is a W to send with what follows it.
type queued struct {
	req   *request
	snap  *md.Snapshot
	stale bool
	at    int64
}

// snapshots returns Ws of the books of dump the request covers, and marks their states
// (handler goroutine: in a Do function).
func (r *request) snapshots(dump book.Dump, now int64) []queued {
	var out []queued
	for i := range dump {
		d := &dump[i]
		st := r.state(d.Symbol)
		if !st.covered {
			continue
		}
		st.rptSeq, st.started = uint32(d.RptSeq), !d.Stale
		out = append(out, queued{req: r, snap: snapshotOfDump(d), stale: d.Stale, at: now})
	}
	return out
}

// check returns why the request cannot be served with the instruments of dump, or nil.
// With hold, a wildcard that matches nothing yet is served (Config.HoldWildcards).
func (r *request) check(dump book.Dump, hold bool) *md.MarketDataReject {
	c := r.c
	for _, p := range r.patterns {
		matched, entitled := 0, 0
		for i := range dump {
			sym := dump[i].Symbol
			ch := c.b.cfg.ChannelOf(sym)
			if p.Match(sym, ch) {
				matched++
				if c.entitled(sym, ch) {
					entitled++
				}
			}
		}
		exact := !isWildcard(string(p))
		switch {
		case matched == 0 && !exact && hold:
			// Served as its instruments appear.
		case matched == 0 && exact:
			return &md.MarketDataReject{MDReqID: r.id, Reason: md.RejectUnknownSymbol, Text: fmt.Sprintf("unknown symbol %q", string(p))}
		case matched == 0:
			return &md.MarketDataReject{MDReqID: r.id, Reason: md.RejectUnknownSymbol, Text: fmt.Sprintf("no instrument matches %q", string(p))}
		case entitled == 0:
			return &md.MarketDataReject{MDReqID: r.id, Reason: md.RejectInsufficientPermissions,
				Text: fmt.Sprintf("user %q is not entitled to %q", c.user.Username, string(p))}
		}
	}
	return nil
}

func isWildcard(p string) bool {
	return p == "*" || p[len(p)-1] == '*' || (p[0] == 'G' && containsByte(p, ':'))
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// run is the client's writer.
func (c *client) run() {
	defer close(c.done)
	defer c.cancelAll()
	cfg := &c.b.cfg
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for c.ctx.Err() == nil {
		select {
		case req := <-c.ctl:
			c.request(req)
			continue
		default:
		}
		if c.resync.Load() {
			c.conflate()
			continue
		}
		if !c.conflatedAt.IsZero() && time.Since(c.conflatedAt) > cfg.SlowLimit {
			c.evict(fmt.Sprintf("slow consumer: conflated %d times, not caught up for %v", c.conflations.Load(), cfg.SlowLimit))
			return
		}
		if c.handed-c.written.Load() >= int64(cfg.MaxInFlight) {
			// The connection is not taking messages: wait, and let the ring fill.
			timer.Reset(10 * time.Millisecond)
			select {
			case <-c.outWake:
			case <-timer.C:
			case <-c.ctx.Done():
			}
			continue
		}
		if len(c.pending) > 0 {
			q := c.pending[0]
			c.pending[0] = queued{}
			c.pending = c.pending[1:]
			c.sendPending(q)
			continue
		}
		if c.ring.Len() > 0 {
			c.sendQueued()
			continue
		}
		c.conflatedAt = time.Time{} // caught up
		c.parked.Store(true)
		if c.ring.Len() > 0 || c.resync.Load() {
			c.parked.Store(false)
			continue
		}
		select {
		case <-c.wake:
		case req := <-c.ctl:
			c.parked.Store(false)
			c.request(req)
		case <-c.ctx.Done():
		}
		c.parked.Store(false)
	}
}

func (c *client) cancelAll() {
	for _, r := range c.reqs {
		r.cancelled.Store(true)
		if r.sub != nil {
			r.sub.Cancel()
		}
	}
	clear(c.reqs)
	c.nReqs.Store(0)
}

// evict logs the client out for being slow.
func (c *client) evict(reason string) {
	c.dead.Store(true)
	c.cancelAll()
	c.mu.Lock()
	c.loggedOut = reason
	c.mu.Unlock()
	c.b.log.Warn("OMS client logged out", "session", c.key, "reason", reason, "dropped", c.dropped.Load(), "handed", c.handed, "written", c.written.Load())
	if err := c.b.acc.Logout(c.id, reason); err != nil {
		c.b.log.Warn("OMS client logout", "session", c.key, "err", err)
	}
	c.cancel() // requests still arriving are refused
}

// conflate answers an overflow: on the handler's goroutine, drop what is queued, take
// fresh snapshots of everything subscribed and resume queueing; then send them.
func (c *client) conflate() {
	if c.conflatedAt.IsZero() {
		c.conflatedAt = time.Now()
	}
	var out []queued
	err := c.b.src.Do(c.ctx, func() {
		dropped := c.ring.Discard()
		c.dropped.Add(uint64(dropped))
		dump := c.b.src.Dump()
		now := time.Now().UnixNano()
		for _, r := range c.reqs {
			if r.active && !r.cancelled.Load() {
				out = append(out, r.snapshots(dump, now)...)
			}
		}
		c.conflating = false
		c.resync.Store(false)
	})
	if err != nil {
		return
	}
	// The new snapshots supersede those of subscriptions still waiting to be sent.
	keep := c.pending[:0]
	for _, q := range c.pending {
		if !q.req.active {
			keep = append(keep, q)
		}
	}
	c.pending = append(keep, out...)
}

// request serves one MarketDataRequest.
func (c *client) request(req md.MarketDataRequest) {
	reject := func(reason byte, text string) {
		c.send(md.MarketDataReject{MDReqID: req.MDReqID, Reason: reason, Text: text}.ToFIX())
		c.rejects.Add(1)
		c.b.log.Info("OMS request rejected", "session", c.key, "mdreqid", req.MDReqID, "reason", string(reason), "text", text)
	}
	switch req.SubscriptionType {
	case md.SubscriptionUnsubscribe:
		r := c.reqs[req.MDReqID]
		if r == nil {
			reject(0, fmt.Sprintf("unknown MDReqID %q: nothing to unsubscribe", req.MDReqID))
			return
		}
		r.cancelled.Store(true)
		r.sub.Cancel()
		delete(c.reqs, req.MDReqID)
		c.nReqs.Store(int64(len(c.reqs)))
		return
	case md.SubscriptionSnapshot, md.SubscriptionSubscribe, 0:
	default:
		reject(md.RejectUnsupportedSubscriptionRequestType, fmt.Sprintf("unsupported SubscriptionRequestType %q", req.SubscriptionType))
		return
	}
	subscribe := req.SubscriptionType == md.SubscriptionSubscribe
	switch {
	case c.reqs[req.MDReqID] != nil:
		reject(md.RejectDuplicateMDReqID, fmt.Sprintf("MDReqID %q is already subscribed", req.MDReqID))
		return
	case req.BegSeqNum != 0 || req.EndSeqNum != 0:
		reject(md.RejectUnsupportedSubscriptionRequestType, "retransmission (ApplBegSeqNum) is served by the recovery service, not the OMS service")
		return
	case req.MarketDepth != 0:
		reject(md.RejectUnsupportedMarketDepth, "only MarketDepth 0 (full book) is served")
		return
	case subscribe && c.b.cfg.MaxSubscriptions > 0 && len(c.reqs) >= c.b.cfg.MaxSubscriptions:
		c.overLimit.Add(1)
		reject(md.RejectInsufficientBandwidth, fmt.Sprintf("subscription limit of %d per client reached", c.b.cfg.MaxSubscriptions))
		c.overInRow++
		if limit := c.b.cfg.RequestLimits.MaxRejects; c.overInRow == limit || limit == 0 && c.overInRow == fixsession.DefaultMaxLimitRejects {
			c.b.log.Warn("OMS client over its subscription limit: logging out", "session", c.key)
			go c.b.acc.Logout(c.id, "subscription limit: logged out") //nolint:errcheck // best effort
		}
		return
	}
	c.overInRow = 0
	r := &request{c: c, id: req.MDReqID}
	for _, s := range req.Symbols {
		r.patterns = append(r.patterns, feed.Pattern(s))
	}
	if req.ApplID != "" {
		r.patterns = append(r.patterns, feed.Pattern(req.ApplID))
	}
	if len(r.patterns) == 0 {
		reject(md.RejectUnknownSymbol, "no Symbol (55) or ApplID (1180) in the request")
		return
	}
	for _, p := range r.patterns {
		if err := checkPattern(string(p)); err != nil {
			reject(md.RejectUnknownSymbol, err.Error())
			return
		}
	}
	if subscribe {
		// Registered before the snapshot is taken; events are ignored until the Do
		// function below activates the request, and RptSeq continuity covers a
		// registration that takes effect after it.
		r.sub = c.b.src.Subscribe(r.onEvent, r.patterns...)
	}
	var rej *md.MarketDataReject
	var out []queued
	err := c.b.src.Do(c.ctx, func() {
		dump := c.b.src.Dump()
		if rej = r.check(dump, subscribe && c.b.cfg.HoldWildcards); rej != nil {
			return
		}
		out = r.snapshots(dump, time.Now().UnixNano())
		r.active = subscribe
	})
	if err != nil || rej != nil {
		if r.sub != nil {
			r.sub.Cancel()
		}
		// With err (the client's context ended: a logout), the function may still run
		// on the source's goroutine: nothing it writes is read.
		if err == nil {
			reject(rej.Reason, rej.Text)
		}
		return
	}
	if subscribe {
		c.reqs[r.id] = r
		c.nReqs.Store(int64(len(c.reqs)))
	}
	c.b.log.Info("OMS request served", "session", c.key, "mdreqid", r.id, "patterns", fmt.Sprint(r.patterns),
		"subscribe", subscribe, "instruments", len(out))
	c.pending = append(c.pending, out...)
}
