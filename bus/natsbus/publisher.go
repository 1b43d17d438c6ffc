package natsbus

import (
	"context"
	"errors"
	"fastfeed/internal/spsc"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

// Defaults of PublisherConfig.
const (
	DefaultQueueSize     = 1 << 16
	DefaultMaxBatch      = 32
	DefaultSnapshotEvery = 5 * time.Second
)

// Engine is what the publisher needs of the feed engine: a way to run a function on its
// goroutine, where the books may be read (feed.Handler.Do).
type Engine interface {
	Do(ctx context.Context, fn func()) error
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Conn is the connection to publish on; Connect makes one with the options the
	// publisher wants (no reconnect buffer: while NATS is away, publishing fails fast and
	// the publisher conflates).
	Conn *nats.Conn
	// Engine runs the resynchronisation snapshots on the engine's goroutine.
	Engine Engine
	// ChannelOf returns the channel name of a symbol (the subject's second token).
	ChannelOf func(symbol string) string
	// QueueSize bounds the events queued between the engine and the writer
	// (default DefaultQueueSize). On overflow the instrument is conflated.
	QueueSize int
	// MaxBatch bounds the entries of one X (default DefaultMaxBatch).
	MaxBatch int
	// SnapshotEvery is how often books that changed are written to the last-value cache
	// (default DefaultSnapshotEvery; negative: never).
	SnapshotEvery time.Duration
	// Stream configures the last-value cache stream; nil: DefaultStreamConfig(1, file).
	Stream *StreamConfig
	// NoStream: do not create or check the stream (an operator manages it).
	NoStream bool
	Logger   *slog.Logger
}

// PublisherStats are the publisher's counters.
type PublisherStats struct {
	Messages      uint64 `json:"nats_messages"`       // payloads published
	Bytes         uint64 `json:"nats_bytes"`          // payload bytes published
	Entries       uint64 `json:"nats_entries"`        // incremental entries published
	Snapshots     uint64 `json:"nats_snapshots"`      // Ws published
	Statuses      uint64 `json:"nats_statuses"`       // fs published
	Conflations   uint64 `json:"nats_conflations"`    // an instrument's updates replaced by a later W
	Dropped       uint64 `json:"nats_dropped"`        // events not published because their instrument was conflated
	PublishErrors uint64 `json:"nats_publish_errors"` // publishes refused (NATS away)
	Disconnects   uint64 `json:"nats_disconnects"`
	Reconnects    uint64 `json:"nats_reconnects"`
	Resnapshots   uint64 `json:"nats_resnapshots"`   // Ws published to resynchronise (conflation, reconnect, request)
	SnapRequests  uint64 `json:"nats_snap_requests"` // snapreq messages received
	StreamErrors  uint64 `json:"nats_stream_errors"` // failed checks of the last-value cache stream (JetStream unavailable)
}

// Publisher publishes an engine's events on NATS. Register OnEvent as a feed
// subscription callback for "*"; it runs on the engine's goroutine, copies the event
// into a bounded ring and returns, without allocating or blocking. A writer goroutine
// builds the payloads and publishes them.
//
// When the ring is full, or a publish fails (NATS slow or away), the instrument is
// conflated: its events are dropped and counted until a fresh W is taken on the engine's
// goroutine and published. After a reconnection every instrument gets a fresh W.
type Publisher struct {
	cfg PublisherConfig
	nc  *nats.Conn
	log *slog.Logger

	ring spsc.Ring[item]

	// Engine goroutine only (and Do functions).
	insts map[string]*pubInst
	all   []*pubInst

	parked    atomic.Bool
	wake      chan struct{}
	resync    atomic.Bool // some instrument is dirty
	reconnect atomic.Bool // resnapshot everything
	requested atomic.Bool // snapshot requests arrived
	reqMu     sync.Mutex
	reqs      map[string]bool // subject's symbol token -> requested

	// The stream keeper (keepStream) checks the last-value cache stream on its own
	// goroutine: a JetStream request can wait seconds (a cluster electing a stream
	// leader), and the writer must go on publishing meanwhile.
	streamKick chan struct{} // a reconnection: check the stream now
	refill     atomic.Bool   // the stream is (again) available: write every book's W

	// Writer only.
	buf     []byte
	entries []md.Entry
	pending []*snapshot // resync Ws, sent once the ring's tail reaches barrier
	barrier uint64

	stats struct {
		messages, bytes, entries, snapshots, statuses, conflations, dropped atomic.Uint64
		publishErrors, disconnects, reconnects, resnapshots, snapRequests   atomic.Uint64
		streamErrors                                                        atomic.Uint64
	}
	cancel     context.CancelFunc
	done       chan struct{}
	keeperDone chan struct{}
	sub        *nats.Subscription
}

// pubInst is the publisher's state of one instrument.
type pubInst struct {
	symbol  string
	channel string
	dirty   atomic.Bool // conflated: events dropped until a fresh W

	// Engine goroutine only.
	book    *book.MBP
	stale   bool
	changed bool // since the last W
	started bool // a W was queued

	// Writer only.
	mdSubj, snapSubj, statusSubj string
}

// snapshot is a W to publish.
type snapshot struct {
	inst   *pubInst
	snap   md.Snapshot
	pe, se int8
	stale  bool // publish f stale instead
	at     int64
	resync bool
}

// NewPublisher returns a publisher; Start it.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Conn == nil || cfg.Engine == nil {
		return nil, errors.New("natsbus: publisher needs a connection and an engine")
	}
	if cfg.QueueSize < 0 || cfg.MaxBatch < 0 {
		return nil, errors.New("natsbus: negative QueueSize or MaxBatch")
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	if cfg.ChannelOf == nil {
		cfg.ChannelOf = func(string) string { return "" }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stream == nil {
		sc := DefaultStreamConfig(1, false)
		cfg.Stream = &sc
	}
	return &Publisher{cfg: cfg, nc: cfg.Conn, log: cfg.Logger, ring: spsc.New[item](cfg.QueueSize),
		insts: map[string]*pubInst{}, wake: make(chan struct{}, 1), reqs: map[string]bool{},
		streamKick: make(chan struct{}, 1), buf: make([]byte, 0, 4096)}, nil
}

// Start creates the last-value cache stream (unless NoStream), listens for snapshot
// requests and starts the writer. If the stream cannot be created yet (a forming
// cluster), Start goes on and a keeper goroutine retries; the Ws are published all the
// same (core NATS), and every book's W is written again once the stream is there.
func (p *Publisher) Start(ctx context.Context) error {
	streamOK := true
	if !p.cfg.NoStream {
		sctx, cancel := context.WithTimeout(ctx, streamTimeout)
		if err := EnsureStream(sctx, p.nc, *p.cfg.Stream); err != nil {
			p.stats.streamErrors.Add(1)
			p.log.Warn("NATS last-value cache not ready yet (a forming cluster?); retrying", "err", err)
			streamOK = false
		}
		cancel()
	}
	sub, err := p.nc.Subscribe(PrefixSnapRequest+".>", p.onSnapRequest)
	if err != nil {
		return fmt.Errorf("natsbus: subscribe %s.>: %w", PrefixSnapRequest, err)
	}
	p.sub = sub
	p.nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err == nil {
			return // closed
		}
		p.stats.disconnects.Add(1)
		p.log.Warn("NATS disconnected; conflating until it is back", "err", err)
	})
	p.nc.SetReconnectHandler(func(nc *nats.Conn) {
		p.stats.reconnects.Add(1)
		p.log.Info("NATS reconnected; sending fresh snapshots", "server", nc.ConnectedUrlRedacted())
		p.reconnect.Store(true)
		p.signal()
		select {
		case p.streamKick <- struct{}{}:
		default:
		}
	})
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	p.keeperDone = make(chan struct{})
	go p.run(ctx)
	if p.cfg.NoStream {
		close(p.keeperDone)
	} else {
		go p.keepStream(ctx, streamOK)
	}
	return nil
}

// Dumper is an engine that lists its books (feed.Handler): the publisher then starts
// with a W of every book, so that the last-value cache names every instrument before
// the data flows.
type Dumper interface {
	Dump() book.Dump
}

// initial queues a W of every book of the engine (the writer, first).
func (p *Publisher) initial(ctx context.Context, d Dumper) {
	now := time.Now().UnixNano()
	err := p.cfg.Engine.Do(ctx, func() {
		for _, b := range d.Dump() {
			if p.insts[b.Symbol] != nil {
				continue
			}
			in := &pubInst{symbol: b.Symbol, channel: p.cfg.ChannelOf(b.Symbol), started: true, stale: b.Stale}
			p.insts[b.Symbol] = in
			p.all = append(p.all, in)
			p.pending = append(p.pending, snapshotOfDump(in, &b, now))
		}
		p.barrier = p.ring.Committed()
	})
	if err != nil {
		p.log.Warn("NATS publisher: no initial snapshots", "err", err)
	}
}

// snapshotOfDump converts a dump line into a W at the finest exponents of its values.
func snapshotOfDump(in *pubInst, b *book.DumpBook, at int64) *snapshot {
	s := &snapshot{inst: in, at: at, stale: b.Stale}
	s.snap.Symbol = []byte(b.Symbol)
	s.snap.RptSeq = uint32(b.RptSeq)
	for _, side := range []struct {
		t      md.EntryType
		levels []book.DumpLevel
	}{{md.Bid, b.Bids}, {md.Offer, b.Asks}} {
		for _, l := range side.levels {
			price, err1 := md.ParseFIXDecimal([]byte(l.Price))
			size, err2 := md.ParseFIXDecimal([]byte(l.Size))
			if err1 != nil || err2 != nil {
				continue
			}
			s.snap.Entries = append(s.snap.Entries, md.Entry{Type: side.t, Price: price, Size: size, Orders: uint32(l.Orders)})
		}
	}
	s.pe, s.se = finestExp(s.snap.Entries)
	for i := range s.snap.Entries {
		e := &s.snap.Entries[i]
		if m, ok := e.Price.At(s.pe); ok {
			e.Price = md.Dec(m, s.pe)
		}
		if m, ok := e.Size.At(s.se); ok {
			e.Size = md.Dec(m, s.se)
		}
	}
	return s
}

// Stop stops the writer after publishing what is queued (bounded by a second), and
// flushes the connection.
func (p *Publisher) Stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	<-p.keeperDone
	if p.sub != nil {
		_ = p.sub.Unsubscribe()
	}
	_ = p.nc.FlushTimeout(time.Second)
}

// Stats returns the counters.
func (p *Publisher) Stats() PublisherStats {
	s := &p.stats
	return PublisherStats{Messages: s.messages.Load(), Bytes: s.bytes.Load(), Entries: s.entries.Load(),
		Snapshots: s.snapshots.Load(), Statuses: s.statuses.Load(), Conflations: s.conflations.Load(),
		Dropped: s.dropped.Load(), PublishErrors: s.publishErrors.Load(), Disconnects: s.disconnects.Load(),
		Reconnects: s.reconnects.Load(), Resnapshots: s.resnapshots.Load(), SnapRequests: s.snapRequests.Load(),
		StreamErrors: s.streamErrors.Load()}
}

// OnEvent is the feed subscription callback (engine goroutine): it queues the event.
func (p *Publisher) OnEvent(ev *feed.Event) {
	in := p.insts[ev.Symbol]
	if in == nil {
		in = &pubInst{symbol: ev.Symbol, channel: p.cfg.ChannelOf(ev.Symbol)}
		p.insts[ev.Symbol] = in
		p.all = append(p.all, in)
	}
	if ev.Book != nil {
		in.book = ev.Book
	}
	switch ev.Kind {
	case feed.EventStale:
		in.stale = true
	case feed.EventFresh:
		in.stale = false
	}
	if in.dirty.Load() {
		p.stats.dropped.Add(1)
		return
	}
	switch ev.Kind {
	case feed.EventBook, feed.EventTrade:
		if !in.started {
			// The first event of the instrument: the book as it is now, entry included.
			p.pushSnapshot(in, uint32(ev.Entry.RptSeq))
			return
		}
		it := p.reserve(in)
		if it == nil {
			return
		}
		e := ev.Entry
		it.kind, it.inst = itemEntry, in
		it.action, it.typ, it.rptSeq, it.orders = e.Action, e.Type, e.RptSeq, e.Orders
		it.price, it.size = e.Price, e.Size
		it.idLen = uint8(copy(it.id[:], e.ID))
		it.at = time.Now().UnixNano()
		p.commit()
		in.changed = true
	case feed.EventStale:
		if it := p.reserve(in); it != nil {
			it.kind, it.inst, it.at = itemStale, in, time.Now().UnixNano()
			p.commit()
		}
	case feed.EventFresh:
		if it := p.reserve(in); it != nil {
			it.kind, it.inst, it.at = itemReady, in, time.Now().UnixNano()
			p.commit()
			var seq uint32
			if ev.Book != nil {
				seq = uint32(ev.Book.RptSeq())
			}
			p.pushSnapshot(in, seq)
		}
	case feed.EventStatus:
		if it := p.reserve(in); it != nil {
			it.kind, it.inst, it.status, it.at = itemStatus, in, ev.Status, time.Now().UnixNano()
			p.commit()
		}
	}
}

// pushSnapshot queues a W of the instrument's book (engine goroutine). It allocates: it
// is the path of first sight and recovery, not the steady state.
func (p *Publisher) pushSnapshot(in *pubInst, rptSeq uint32) {
	it := p.reserve(in)
	if it == nil {
		return
	}
	s := snapshotOf(in, rptSeq)
	it.kind, it.inst, it.snap, it.at = itemSnapshot, in, s, s.at
	p.commit()
	in.started, in.changed = true, false
}

// snapshotOf copies the instrument's book into a W (engine goroutine).
func snapshotOf(in *pubInst, rptSeq uint32) *snapshot {
	s := &snapshot{inst: in, at: time.Now().UnixNano(), stale: in.stale}
	s.snap.Symbol = []byte(in.symbol)
	s.snap.RptSeq = rptSeq
	v := in.book
	if v == nil {
		return s
	}
	s.pe, s.se = int8(v.PriceExp()), int8(v.SizeExp())
	var levels []book.Level
	for _, side := range [2]book.Side{book.Bid, book.Ask} {
		t := md.Bid
		if side == book.Ask {
			t = md.Offer
		}
		levels = v.AppendLevels(levels[:0], side)
		for _, l := range levels {
			s.snap.Entries = append(s.snap.Entries, md.Entry{Type: t, Price: md.Dec(l.Price, s.pe),
				Size: md.Dec(l.Size, s.se), Orders: uint32(l.Orders)})
		}
	}
	return s
}

// reserve returns a free slot, or nil after conflating the instrument.
func (p *Publisher) reserve(in *pubInst) *item {
	it := p.ring.Reserve()
	if it == nil {
		p.conflate(in)
	}
	return it
}

func (p *Publisher) conflate(in *pubInst) {
	if !in.dirty.Swap(true) {
		p.stats.conflations.Add(1)
	}
	p.stats.dropped.Add(1)
	p.resync.Store(true)
	p.signal()
}

func (p *Publisher) commit() {
	p.ring.Commit()
	p.signal()
}

func (p *Publisher) signal() {
	if p.parked.Load() {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// onSnapRequest records a consumer's request for a fresh W (NATS goroutine).
func (p *Publisher) onSnapRequest(m *nats.Msg) {
	p.stats.snapRequests.Add(1)
	_, _, sym, err := SplitSubject(m.Subject)
	if err != nil {
		return
	}
	p.reqMu.Lock()
	if len(p.reqs) < 1<<16 {
		p.reqs[sym] = true
	}
	p.reqMu.Unlock()
	p.requested.Store(true)
	p.signal()
}
