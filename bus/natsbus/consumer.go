package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

// Defaults of ConsumerConfig.
const (
	DefaultInbound   = 1 << 16 // messages queued between NATS and the consumer's goroutine
	DefaultMaxBuffer = 1 << 12 // Xs buffered per instrument while it waits for a W
	// DefaultMaxInstruments bounds the instruments a consumer follows.
	DefaultMaxInstruments = 1 << 17
	resyncEvery           = 250 * time.Millisecond
)

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Conn *nats.Conn
	// Group, if set, runs the consumer in a Group (sharing its connection, its
	// subscriptions and its goroutine); Conn is then the group's and Inbound unused.
	Group *Group
	// Patterns are the instruments to follow (feed's patterns; default "*"). An exact
	// symbol subscribes to md.*.SYM, a channel to md.CHANNEL.*, "*" to md.>; a prefix
	// "SB*" subscribes to md.> and filters (it needs the permission of md.>).
	Patterns []feed.Pattern
	// Inbound bounds the messages waiting for the consumer's goroutine (default
	// DefaultInbound); beyond it NATS drops them (counted as slow_consumer) and the
	// RptSeq check resynchronises the instruments concerned.
	Inbound int
	// MaxBuffer bounds the Xs an instrument buffers while it waits for a W.
	MaxBuffer int
	// MaxInstruments bounds the instruments followed (default DefaultMaxInstruments);
	// messages about more are dropped and counted.
	MaxInstruments int
	// NoSnapRequests: never ask the publishers for a fresh W (snapreq.>); wait for the
	// periodic one instead.
	NoSnapRequests bool
	// Latency, if set, records the publish-to-apply time of every X (ns; wall clocks of
	// the publisher's and this host), a time beyond its highest trackable value as that
	// value. It is written on the consumer's goroutine: read it through Do. Members of a
	// Group may share one (recorded once per message with their count).
	Latency *hdrhistogram.Histogram
	Logger  *slog.Logger
}

// ConsumerStats are the consumer's counters.
type ConsumerStats struct {
	Messages      uint64 `json:"messages"`             // payloads received
	Entries       uint64 `json:"entries"`              // X entries applied
	Snapshots     uint64 `json:"snapshots"`            // Ws applied
	OldSnapshots  uint64 `json:"old_snapshots"`        // Ws not newer than the book, ignored
	Duplicates    uint64 `json:"duplicates"`           // X entries already in the book
	Gaps          uint64 `json:"gaps"`                 // RptSeq holes
	Resyncs       uint64 `json:"resyncs"`              // books rebuilt from a W after a hole, a stale or a start
	LVCReads      uint64 `json:"lvc_reads"`            // last-value cache messages read
	LVCErrors     uint64 `json:"lvc_errors"`           // reads of the last-value cache that failed (retried)
	SnapRequests  uint64 `json:"snap_requests"`        // fresh Ws asked of the publishers
	Stale         uint64 `json:"stale"`                // stale statuses received
	Buffered      uint64 `json:"buffered"`             // Xs buffered while waiting for a W
	BufferDrops   uint64 `json:"buffer_drops"`         // buffered Xs dropped (buffer full)
	ParseErrors   uint64 `json:"parse_errors"`         // payloads refused
	Mismatches    uint64 `json:"subject_mismatches"`   // payloads about another instrument than their subject's
	TooMany       uint64 `json:"too_many_instruments"` // messages dropped beyond MaxInstruments
	BookErrors    uint64 `json:"book_errors"`          // entries the book refused
	SlowConsumer  uint64 `json:"slow_consumer"`        // NATS dropped messages for us
	Permission    uint64 `json:"permission"`           // permission violations reported by the server
	Reconnects    uint64 `json:"reconnects"`           // connection re-established
	Disconnects   uint64 `json:"disconnects"`          // connection lost
	Instruments   int    `json:"instruments"`          // instruments known
	Synchronised  int    `json:"synchronised"`         // of which whole (W applied, no hole since)
	LastLatencyNs int64  `json:"last_latency_ns"`      // publish-to-apply of the last message (in a Group: of the group's)
}

// Consumer follows books over NATS: it subscribes to md, snap and status subjects,
// reads the last-value cache, applies Ws and the Xs whose RptSeq follows, and on a
// RptSeq hole reads the snapshot again. It is also a source of feed events for package
// bus (Subscribe, Do, Dump), so that a FIX gateway serves what it receives.
type Consumer struct {
	cfg ConsumerConfig
	nc  *nats.Conn
	log *slog.Logger

	msgs chan *nats.Msg
	do   chan func()
	subs []*nats.Subscription

	// Consumer goroutine only.
	insts    map[string]*cInst // by symbol
	bySlot   []*cInst          // by the group's number of the symbol (Group.slot)
	subjects subjectCache
	order    []*cInst
	msg      Message
	event    feed.Event
	levels   []book.Level
	fsubs    []*fsub
	version  uint64

	subMu      sync.Mutex
	newSubs    []*fsub
	subsDirty  atomic.Bool
	chMu       sync.RWMutex
	channels   map[string]string // symbol -> channel name
	stats      consumerCounters
	reconnects atomic.Bool
	lost       atomic.Bool // disconnected since the last tick: the books are not whole
	lvcLoading atomic.Bool // a read of the last-value cache runs
	lvcAgain   atomic.Bool // read the cache again when the running read ends
	lvcFailed  atomic.Bool // the last read of the cache failed: the tick retries it
	lvcAt      time.Time   // consumer goroutine: when the tick last started a read

	group     *Group
	groupDone chan struct{} // the group's done, nil if none
	joined    bool          // a member of group (group goroutine)
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
}

type consumerCounters struct {
	messages, entries, snapshots, oldSnapshots, duplicates, gaps, resyncs, lvcReads atomic.Uint64
	lvcErrors                                                                       atomic.Uint64
	snapRequests, stale, buffered, bufferDrops, parseErrors, bookErrors             atomic.Uint64
	slowConsumer, permission, reconnects, disconnects, subjectMismatch, tooMany     atomic.Uint64
	instruments, synced                                                             atomic.Int64
	lastLatency                                                                     atomic.Int64
}

// fsub is a feed-event subscription of the consumer (Subscribe).
type fsub struct {
	patterns  []feed.Pattern
	fn        func(*feed.Event)
	cancelled atomic.Bool
}

func (s *fsub) Cancel() { s.cancelled.Store(true) }

// cInst is one instrument.
type cInst struct {
	symbol, channel string
	book            *book.MBP
	rptSeq          uint32
	synced          bool // a W was applied and no hole since
	stale           bool // the publisher said stale
	suspect         bool // the connection dropped since: maybe behind until a W or a following X
	buf             [][]byte
	askedAt         time.Time // last resync request
	snapSubj        string

	subs        []*fsub
	subsVersion uint64

	lastPx, lastSize md.Decimal // the last trade
	trades           uint64
}

// NewConsumer returns a consumer; Start it.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Group != nil {
		cfg.Conn = cfg.Group.nc
	}
	if cfg.Conn == nil {
		return nil, errors.New("natsbus: consumer needs a connection")
	}
	if len(cfg.Patterns) == 0 {
		cfg.Patterns = []feed.Pattern{"*"}
	}
	for _, p := range cfg.Patterns {
		if p == "" {
			return nil, errors.New("natsbus: empty pattern")
		}
	}
	if cfg.Inbound <= 0 {
		cfg.Inbound = DefaultInbound
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = DefaultMaxBuffer
	}
	if cfg.MaxInstruments <= 0 {
		cfg.MaxInstruments = DefaultMaxInstruments
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{cfg: cfg, nc: cfg.Conn, log: cfg.Logger, group: cfg.Group, do: make(chan func()), insts: map[string]*cInst{}, channels: map[string]string{}}
	if c.group == nil {
		c.msgs = make(chan *nats.Msg, cfg.Inbound)
	} else {
		c.do = c.group.do
	}
	return c, nil
}

// filters returns the subject filters under prefix for the patterns, without repeats.
func (c *Consumer) filters(prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range c.cfg.Patterns {
		f, _ := Filter(prefix, p)
		if f == prefix+".>" {
			return []string{f}
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// wanted reports whether symbol on channel matches the consumer's patterns.
func (c *Consumer) wanted(symbol, channel string) bool {
	for _, p := range c.cfg.Patterns {
		if p.Match(symbol, channel) {
			return true
		}
	}
	return false
}

// Start subscribes, starts the consumer's goroutine and reads the last-value cache. A
// subscription refused by the server's permissions is reported by Stats().Permission and
// the log, not here (the server answers asynchronously).
func (c *Consumer) Start(ctx context.Context) error {
	if c.group != nil {
		return c.startInGroup(ctx)
	}
	c.nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		switch {
		case errors.Is(err, nats.ErrSlowConsumer):
			c.stats.slowConsumer.Add(1)
		case strings.Contains(strings.ToLower(err.Error()), "permissions violation"):
			c.stats.permission.Add(1)
			c.log.Warn("NATS permission refused", "err", err)
		default:
			c.log.Warn("NATS", "err", err)
		}
	})
	c.nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err == nil {
			return // closed
		}
		c.stats.disconnects.Add(1)
		c.lost.Store(true)
		c.log.Warn("NATS disconnected; the books are stale until fresh Ws", "err", err)
	})
	c.nc.SetReconnectHandler(func(nc *nats.Conn) {
		c.stats.reconnects.Add(1)
		c.log.Info("NATS reconnected; reading the last-value cache again", "server", nc.ConnectedUrlRedacted())
		c.reconnects.Store(true)
	})
	for _, prefix := range []string{PrefixMD, PrefixSnap, PrefixStatus} {
		for _, f := range c.filters(prefix) {
			sub, err := c.nc.ChanSubscribe(f, c.msgs)
			if err != nil {
				c.unsubscribe()
				return fmt.Errorf("natsbus: subscribe %s: %w", f, err)
			}
			_ = sub.SetPendingLimits(-1, -1)
			c.subs = append(c.subs, sub)
		}
	}
	if err := c.nc.Flush(); err != nil {
		c.unsubscribe()
		return fmt.Errorf("natsbus: subscribe: %w", err)
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.ctx = ctx
	c.done = make(chan struct{})
	go c.run(ctx)
	c.loadLVC(ctx)
	return nil
}

// startInGroup joins the group (its subscriptions, then the last-value cache).
func (c *Consumer) startInGroup(ctx context.Context) error {
	if c.group.done == nil {
		return errors.New("natsbus: the consumer's group is not started")
	}
	c.groupDone = c.group.done
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	var err error
	if derr := c.group.Do(ctx, func() { err = c.group.join(c) }); derr != nil {
		err = fmt.Errorf("natsbus: join group: %w", derr)
	}
	if err == nil {
		if err = c.nc.Flush(); err != nil {
			c.stopInGroup()
			err = fmt.Errorf("natsbus: subscribe: %w", err)
		}
	}
	if err != nil {
		c.cancel()
		c.cancel = nil
		return err
	}
	c.loadLVC(c.ctx)
	return nil
}

func (c *Consumer) stopInGroup() {
	_ = c.group.Do(context.Background(), func() { c.group.leave(c) })
}

func (c *Consumer) unsubscribe() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
	c.subs = nil
}

// Stop unsubscribes and stops the consumer's goroutine.
func (c *Consumer) Stop() {
	if c.group != nil {
		if c.cancel != nil {
			c.cancel()
			c.stopInGroup()
			close(c.done)
			c.cancel = nil
		}
		return
	}
	c.unsubscribe()
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

func (c *Consumer) queue(m *nats.Msg) {
	if c.group != nil {
		select {
		case c.group.own <- owned{c, m}:
		default:
			c.stats.slowConsumer.Add(1)
		}
		return
	}
	select {
	case c.msgs <- m:
	default:
		c.stats.slowConsumer.Add(1)
	}
}

// Do runs fn on the consumer's goroutine and waits for it.
func (c *Consumer) Do(ctx context.Context, fn func()) error {
	select {
	case <-c.done: // a stopped member's group still takes functions
		return errors.New("natsbus: consumer stopped")
	default:
	}
	done := make(chan struct{})
	select {
	case c.do <- func() { fn(); close(done) }:
	case <-c.done:
		return errors.New("natsbus: consumer stopped")
	case <-c.groupDone:
		return errors.New("natsbus: consumer's group stopped")
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

// Subscribe registers fn for events of instruments matching patterns; fn runs on the
// consumer's goroutine (package bus's Source).
func (c *Consumer) Subscribe(fn func(*feed.Event), patterns ...feed.Pattern) interface{ Cancel() } {
	s := &fsub{patterns: patterns, fn: fn}
	c.subMu.Lock()
	c.newSubs = append(c.newSubs, s)
	c.subMu.Unlock()
	c.subsDirty.Store(true)
	return s
}

// ChannelOf returns the channel of a symbol seen, or "".
func (c *Consumer) ChannelOf(symbol string) string {
	c.chMu.RLock()
	defer c.chMu.RUnlock()
	return c.channels[symbol]
}

// Stats returns the counters.
func (c *Consumer) Stats() ConsumerStats {
	s := &c.stats
	return ConsumerStats{Messages: s.messages.Load(), Entries: s.entries.Load(), Snapshots: s.snapshots.Load(),
		OldSnapshots: s.oldSnapshots.Load(), Duplicates: s.duplicates.Load(), Gaps: s.gaps.Load(),
		Resyncs: s.resyncs.Load(), LVCReads: s.lvcReads.Load(), LVCErrors: s.lvcErrors.Load(), SnapRequests: s.snapRequests.Load(),
		Stale: s.stale.Load(), Buffered: s.buffered.Load(), BufferDrops: s.bufferDrops.Load(),
		ParseErrors: s.parseErrors.Load(), Mismatches: s.subjectMismatch.Load(), TooMany: s.tooMany.Load(), BookErrors: s.bookErrors.Load(), SlowConsumer: s.slowConsumer.Load(),
		Permission: s.permission.Load(), Reconnects: s.reconnects.Load(), Disconnects: s.disconnects.Load(),
		Instruments: int(s.instruments.Load()), Synchronised: int(s.synced.Load()), LastLatencyNs: c.lastLatency()}
}

// lastLatency is the publish-to-apply time of the last message; in a Group, of the last
// message any member applied (the group records it once per message, not per member).
func (c *Consumer) lastLatency() int64 {
	if c.group != nil {
		if v := c.group.lastLatency.Load(); v != 0 {
			return v
		}
	}
	return c.stats.lastLatency.Load()
}

// Dump returns the books in the --dump-books form, sorted by symbol; a book that is not
// whole is dumped stale. Call it through Do while the consumer runs.
func (c *Consumer) Dump() book.Dump {
	insts := append([]*cInst(nil), c.order...)
	sort.Slice(insts, func(i, j int) bool { return insts[i].symbol < insts[j].symbol })
	d := make(book.Dump, 0, len(insts))
	empty, _ := book.NewMBP(book.Config{})
	for _, in := range insts {
		var v book.View = in.book
		if in.book == nil {
			empty.SetStale(true)
			v = empty
		}
		line := book.DumpOf(in.symbol, v)
		line.RptSeq = int64(in.rptSeq)
		line.Stale = !in.whole()
		d = append(d, line)
	}
	return d
}

// run is the consumer's goroutine.
func (c *Consumer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		select {
		case m := <-c.msgs:
			c.handle(m)
		case fn := <-c.do:
			fn()
		case <-t.C:
			c.tick()
		case <-ctx.Done():
			return
		}
	}
}

// tick marks the books stale after a disconnection, reads the cache again after a
// reconnection (or a failed read) and asks again for the Ws of instruments still
// waiting (the consumer's goroutine, every resyncEvery).
func (c *Consumer) tick() {
	if c.lost.Swap(false) {
		// What was published while the connection was down is lost to us, and a
		// quiet instrument would show no RptSeq hole: every book is stale until a W
		// at least as new, or an X that follows it, shows it whole.
		for _, in := range c.order {
			c.suspect(in)
		}
	}
	if c.reconnects.Swap(false) || c.lvcFailed.Load() && time.Since(c.lvcAt) >= lvcRetryEvery {
		c.lvcAt = time.Now()
		go c.loadLVC(c.ctx)
	}
	c.retry()
}

// retry asks again for the Ws of instruments still waiting.
func (c *Consumer) retry() {
	now := time.Now()
	for _, in := range c.order {
		if (!in.synced || in.suspect) && now.Sub(in.askedAt) >= 4*resyncEvery {
			c.askSnapshot(in)
		}
	}
}
