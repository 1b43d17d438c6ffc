package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"fastfeed/md"
)

// Group runs consumers that share one NATS connection and one goroutine, the way one
// process on a host serves many consumers (screens, strategies, risk books): the
// connection has one subscription per distinct subject filter, NATS delivers a message
// once to the process, and the group's goroutine hands it to every member consumer
// following that filter, each parsing it and applying it to its own books as it would
// alone. No goroutine switch per consumer and message, and the server writes one copy per
// process instead of one per consumer.
//
// A member is a Consumer whose ConsumerConfig.Group is the group; its callbacks and Do
// run on the group's goroutine, so a slow member delays the others (as it would share
// the process's CPU anyway).
type Group struct {
	nc  *nats.Conn
	log *slog.Logger

	msgs chan *nats.Msg // from the group's subscriptions
	own  chan owned     // messages for one member (its last-value cache reads)
	do   chan func()

	// Group goroutine only.
	members  []*Consumer
	byFilter map[string]*groupSub
	bySub    map[*nats.Subscription]*groupSub
	seenDisc uint64
	msg      Message
	subjects subjectCache
	applied  []*Consumer
	slots    map[string]int32 // symbol -> its number in the members' instrument caches

	messages, slow, permission, disconnects, reconnects atomic.Uint64
	lastLatency                                         atomic.Int64 // ns, of the last message a member applied
	reconnected                                         atomic.Bool

	cancel context.CancelFunc
	done   chan struct{}
}

type owned struct {
	c *Consumer
	m *nats.Msg
}

// groupSub is one subscription of the group and the members following its filter.
type groupSub struct {
	sub     *nats.Subscription
	members []*Consumer
}

// GroupStats are a group's counters.
type GroupStats struct {
	Messages      uint64 `json:"messages"`      // messages received on the connection
	SlowConsumer  uint64 `json:"slow_consumer"` // messages NATS dropped for the group (every member misses them)
	Permission    uint64 `json:"permission"`    // permission violations reported by the server
	Disconnects   uint64 `json:"disconnects"`
	Reconnects    uint64 `json:"reconnects"`
	Members       int    `json:"members"`
	Subscriptions int    `json:"subscriptions"`
}

// NewGroup returns a group on nc, whose subscriptions queue at most inbound messages for
// the group's goroutine (0: DefaultInbound); beyond, NATS drops them (GroupStats
// SlowConsumer) and the members resynchronise. Start it before its members.
func NewGroup(nc *nats.Conn, inbound int, log *slog.Logger) (*Group, error) {
	if nc == nil {
		return nil, errors.New("natsbus: group needs a connection")
	}
	if inbound <= 0 {
		inbound = DefaultInbound
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{nc: nc, log: log, msgs: make(chan *nats.Msg, inbound), own: make(chan owned, inbound),
		do: make(chan func()), slots: map[string]int32{}, byFilter: map[string]*groupSub{}, bySub: map[*nats.Subscription]*groupSub{}}, nil
}

// Start takes the connection's error and reconnection handlers and starts the group's
// goroutine.
func (g *Group) Start(ctx context.Context) {
	g.nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		switch {
		case errors.Is(err, nats.ErrSlowConsumer):
			g.slow.Add(1)
		case strings.Contains(strings.ToLower(err.Error()), "permissions violation"):
			g.permission.Add(1)
			g.log.Warn("NATS permission refused", "err", err)
		default:
			g.log.Warn("NATS", "err", err)
		}
	})
	g.nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err != nil {
			g.disconnects.Add(1)
			g.log.Warn("NATS disconnected", "err", err)
		}
	})
	g.nc.SetReconnectHandler(func(nc *nats.Conn) {
		g.reconnects.Add(1)
		g.reconnected.Store(true)
		g.log.Info("NATS reconnected; the members read the last-value cache again", "server", nc.ConnectedUrlRedacted())
	})
	ctx, g.cancel = context.WithCancel(ctx)
	g.done = make(chan struct{})
	go g.run(ctx)
}

// Stop unsubscribes and stops the group's goroutine; its members stop with it.
func (g *Group) Stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	for s := range g.bySub {
		_ = s.Unsubscribe()
	}
}

// Do runs fn on the group's goroutine and waits for it.
func (g *Group) Do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case g.do <- func() { fn(); close(done) }:
	case <-g.done:
		return errors.New("natsbus: group stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the group's counters (Members and Subscriptions read on its goroutine).
func (g *Group) Stats() GroupStats {
	st := GroupStats{Messages: g.messages.Load(), SlowConsumer: g.slow.Load(), Permission: g.permission.Load(),
		Disconnects: g.disconnects.Load(), Reconnects: g.reconnects.Load()}
	_ = g.Do(context.Background(), func() { st.Members, st.Subscriptions = len(g.members), len(g.bySub) })
	return st
}

func (g *Group) run(ctx context.Context) {
	defer close(g.done)
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		select {
		case m := <-g.msgs:
			g.messages.Add(1)
			if gs := g.bySub[m.Sub]; gs != nil {
				g.dispatch(gs.members, m)
			}
		case o := <-g.own:
			if o.c.joined {
				o.c.handle(o.m)
			}
		case fn := <-g.do:
			fn()
		case <-t.C:
			rec := g.reconnected.Swap(false)
			disc := g.disconnects.Load()
			for _, c := range g.members {
				if rec {
					c.stats.reconnects.Add(1)
					c.reconnects.Store(true)
				}
				if disc != g.seenDisc {
					c.stats.disconnects.Add(disc - g.seenDisc)
					c.lost.Store(true)
				}
				c.tick()
			}
			g.seenDisc = disc
		case <-ctx.Done():
			return
		}
	}
}

// dispatch parses a message once and hands it to the members following its
// subscription; each checks its RptSeq and applies it to its own books. The latency of
// every member is taken after the last one applied it (the later bound).
func (g *Group) dispatch(members []*Consumer, nm *nats.Msg) {
	for _, c := range members {
		c.stats.messages.Add(1)
	}
	m := &g.msg
	if err := ParsePayload(nm.Data, m); err != nil {
		for _, c := range members {
			c.refuse(nm, err)
		}
		return
	}
	if !g.subjects.names(nm.Subject, m.Symbol) {
		for _, c := range members {
			c.mismatch(nm, m)
		}
		return
	}
	channel := g.subjects.channel(nm.Subject)
	slot := g.slot(m.Symbol)
	symbol := string(m.Symbol) // once per message, not per member (on the stack: it does not escape)
	g.applied = g.applied[:0]
	for _, c := range members {
		if c.wanted(symbol, channel) {
			c.deliver(nm, m, channel, slot)
			g.applied = append(g.applied, c)
		}
	}
	if m.PublishTime > 0 && len(g.applied) > 0 {
		// Members sharing a histogram (ConsumerConfig.Latency) next to each other have
		// the same value recorded once with their count.
		now := time.Now().UnixNano()
		lat := now - m.PublishTime
		var h *hdrhistogram.Histogram
		var n int64
		g.lastLatency.Store(lat) // the members' LastLatencyNs: one store per message, not per member
		for _, c := range g.applied {
			if c.cfg.Latency != h {
				recordN(h, lat, n, m)
				h, n = c.cfg.Latency, 0
			}
			n++
		}
		recordN(h, lat, n, m)
	}
	clear(g.applied)
	runtime.Gosched() // a group with a backlog lets the process's other goroutines (the feed) run
}

// maxGroupSlots bounds the symbols a group numbers for its members' instrument caches
// (each member's cache is a slice indexed by the number, at most this long); the members
// look the symbols beyond up by name.
const maxGroupSlots = 1024

// slot returns the symbol's number in the group, -1 beyond maxGroupSlots: one map lookup
// per message instead of one per member (group goroutine).
func (g *Group) slot(symbol []byte) int {
	if s, ok := g.slots[string(symbol)]; ok {
		return int(s)
	}
	if len(g.slots) >= maxGroupSlots {
		return -1
	}
	s := len(g.slots)
	g.slots[string(symbol)] = int32(s)
	return s
}

// recordN records lat n times in h (nil: none), clamped to h's range, for an X.
func recordN(h *hdrhistogram.Histogram, lat, n int64, m *Message) {
	if h != nil && n > 0 && m.Kind == md.KindIncremental {
		_ = h.RecordValues(min(max(lat, 1), h.HighestTrackableValue()), n)
	}
}

// join subscribes c's filters the group does not have yet (group goroutine).
func (g *Group) join(c *Consumer) error {
	for _, prefix := range []string{PrefixMD, PrefixSnap, PrefixStatus} {
		for _, f := range c.filters(prefix) {
			gs := g.byFilter[f]
			if gs == nil {
				sub, err := g.nc.ChanSubscribe(f, g.msgs)
				if err != nil {
					g.leave(c)
					return fmt.Errorf("natsbus: subscribe %s: %w", f, err)
				}
				_ = sub.SetPendingLimits(-1, -1)
				gs = &groupSub{sub: sub}
				g.byFilter[f], g.bySub[sub] = gs, gs
			}
			gs.members = append(gs.members, c)
		}
	}
	g.members = append(g.members, c)
	c.joined = true
	return nil
}

// leave removes c, and the subscriptions no member follows any more (group goroutine).
func (g *Group) leave(c *Consumer) {
	c.joined = false
	g.members = without(g.members, c)
	for f, gs := range g.byFilter {
		gs.members = without(gs.members, c)
		if len(gs.members) == 0 {
			_ = gs.sub.Unsubscribe()
			delete(g.byFilter, f)
			delete(g.bySub, gs.sub)
		}
	}
}

func without(cs []*Consumer, c *Consumer) []*Consumer {
	out := cs[:0]
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	clear(cs[len(out):])
	return out
}
