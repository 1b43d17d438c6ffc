package feed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/book"
	"fastfeed/gap"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// instrument is one followed topic.
type instrument struct {
	symbol   string
	ch       *channel
	book     *book.MBP
	priceExp int8
	sizeExp  int8
	defined  bool // a security definition was seen
	rptSeq   uint32
	started  bool // an entry or snapshot set rptSeq
	stale    bool
	snapSeq  uint32 // the LastMsgSeqNumProcessed of the snapshot being assembled
	haveSnap bool

	subs        []*Subscription // subscribers matching this instrument
	subsVersion uint64          // h.subsVersion when subs was computed
}

// channel is one multicast group and port: its sockets (line A, and B if configured), its
// sequence tracker and the followed instruments on it.
type channel struct {
	name        string
	addr        netip.AddrPort
	tracker     *gap.Tracker
	instruments []*instrument
	polling     bool // in the list of channels whose timers run
	lat         *Latencies
	snapWaiting int      // instruments whose snapshot has not arrived
	copies      copyRing // digests of the copies taken of the last sequence numbers (auth.go)
}

// Handler is a feed handler. Create it with New, start it with Run.
type Handler struct {
	cfg    Config
	codec  *md.Codec
	poller *mcast.Poller
	inj    *injector

	channels   map[string]*channel
	bySymbol   map[string]*instrument
	wanted     map[string]bool        // topics asked for (nil with All)
	sockets    []socketInfo           // by poller socket index
	addrs      []netip.AddrPort       // joined group and port, by socket index
	byAddr     map[netip.AddrPort]int // socket index of each joined group and port
	defsSocket int
	active     []*channel // channels with an open hole or recovery

	recovery chan recoveryEvent
	stats    Stats
	latency  *hdrhistogram.Histogram // tick-to-handler, all channels: stages[StageTotal]
	stages   *Latencies
	clock    stageClock

	subsMu      sync.Mutex
	subsDirty   atomic.Bool
	subsVersion uint64 // counts changes of subs
	pending     []*Subscription
	subs        []*Subscription

	requests chan func()
	exited   chan struct{} // closed when Run has returned
	running  atomic.Bool
	now      int64        // time of the batch being handled
	event    Event        // the event being delivered to subscribers
	bids     []book.Level // scratch for snapshots
	asks     []book.Level

	key     *dgauth.Key  // checks every datagram's trailer; nil: the network is trusted (auth.go)
	digest  uint64       // the tag's digest of the datagram authenticated last
	seed    maphash.Seed // of the copy digests without a key
	authLog rateLog
	copyLog rateLog
}

type socketInfo struct {
	ch   *channel
	line gap.Source
	defs bool
}

// New creates a handler and joins the groups of its topics (and the instrument
// definitions channel). It does not read until Run.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := md.NewCodec(cfg.Templates)
	if err != nil {
		return nil, err
	}
	var poller *mcast.Poller
	if !cfg.Detached {
		poller, err = mcast.NewPoller(mcast.PollerConfig{Interface: cfg.Interface, ReadBuffer: cfg.ReadBuffer, BatchSize: cfg.Batch})
		if err != nil {
			return nil, err
		}
	}
	h := &Handler{
		cfg:      cfg,
		codec:    codec,
		poller:   poller,
		byAddr:   map[netip.AddrPort]int{},
		channels: map[string]*channel{},
		bySymbol: map[string]*instrument{},
		recovery: make(chan recoveryEvent, 4096),
		requests: make(chan func(), 16),
		exited:   make(chan struct{}),
		stages:   newLatencies(overallDigits),
		seed:     maphash.MakeSeed(),
	}
	if cfg.Key != nil {
		h.key = cfg.Key.Clone() // the caller's may be used on another goroutine
	}
	h.latency = h.stages[StageTotal]
	if cfg.Inject.active() {
		h.inj = newInjector(cfg.Inject)
	}
	if h.defsSocket, err = h.join(netip.AddrPortFrom(cfg.DefinitionsGroup, cfg.Port)); err != nil {
		h.closePoller()
		return nil, err
	}
	h.sockets = append(h.sockets, socketInfo{defs: true})
	if !cfg.All {
		h.wanted = map[string]bool{}
		for _, t := range cfg.Topics {
			h.wanted[t] = true
			ch, err := h.channelFor(netip.AddrPortFrom(cfg.Mapping.Group(t), cfg.Port))
			if err != nil {
				h.closePoller()
				return nil, err
			}
			h.addInstrument(t, ch)
		}
	}
	if cfg.Recovery != nil {
		cfg.Recovery.Start(sink{ch: h.recovery, wake: h.wake})
	}
	return h, nil
}

// join joins addr and returns its socket index. A Detached handler only records it.
func (h *Handler) join(addr netip.AddrPort) (int, error) {
	i := len(h.addrs)
	if h.poller != nil {
		var err error
		if h.cfg.Source.IsValid() {
			i, err = h.poller.JoinSourceSpecificGroup(addr, h.cfg.Source)
		} else {
			i, err = h.poller.JoinGroup(addr)
		}
		if err != nil {
			return 0, err
		}
	}
	for len(h.addrs) <= i {
		h.addrs = append(h.addrs, netip.AddrPort{})
	}
	h.addrs[i] = addr
	h.byAddr[addr] = i
	return i, nil
}

func (h *Handler) closePoller() {
	if h.poller != nil {
		h.poller.Close()
	}
}

// channelFor returns the channel of addr, joining its groups the first time.
func (h *Handler) channelFor(addr netip.AddrPort) (*channel, error) {
	name := mcast.ChannelName(addr)
	if ch := h.channels[name]; ch != nil {
		return ch, nil
	}
	ch := &channel{name: name, addr: addr, tracker: gap.New(h.cfg.Gap), lat: newLatencies(channelDigits)}
	i, err := h.join(addr)
	if err != nil {
		return nil, fmt.Errorf("feed: channel %s: %w", name, err)
	}
	h.setSocket(i, socketInfo{ch: ch, line: gap.LineA})
	if b, ok := h.lineB(addr); ok {
		i, err := h.join(b)
		if err != nil {
			return nil, fmt.Errorf("feed: channel %s line B %v: %w", name, b, err)
		}
		h.setSocket(i, socketInfo{ch: ch, line: gap.LineB})
	}
	h.channels[name] = ch
	h.stats.Channels++
	h.cfg.Logf("joined channel %s", name)
	return ch, nil
}

func (h *Handler) setSocket(i int, s socketInfo) {
	for len(h.sockets) <= i {
		h.sockets = append(h.sockets, socketInfo{})
	}
	h.sockets[i] = s
}

// lineB returns line B's address for a line A channel.
func (h *Handler) lineB(a netip.AddrPort) (netip.AddrPort, bool) {
	if h.cfg.BPort == 0 && !h.cfg.BBase.IsValid() {
		return netip.AddrPort{}, false
	}
	addr, port := a.Addr(), a.Port()
	if h.cfg.BBase.IsValid() {
		off := be32(addr) - be32(h.cfg.Mapping.Base())
		addr = fromBE32(be32(h.cfg.BBase) + off)
	}
	if h.cfg.BPort != 0 {
		port = h.cfg.BPort
	}
	return netip.AddrPortFrom(addr, port), true
}

func be32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func fromBE32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (h *Handler) addInstrument(symbol string, ch *channel) *instrument {
	in := &instrument{symbol: symbol, ch: ch}
	ch.instruments = append(ch.instruments, in)
	h.bySymbol[symbol] = in
	h.stats.Instruments++
	return in
}

// Run reads and applies the feed until ctx ends. It returns ctx's error or a socket error.
func (h *Handler) Run(ctx context.Context) error {
	if h.poller == nil {
		return errors.New("feed: Run on a Detached handler (drive it with Receive and Poll)")
	}
	if !h.running.CompareAndSwap(false, true) {
		return errors.New("feed: Run called twice")
	}
	defer func() {
		h.poller.Close()
		h.serveRequests()
		close(h.exited)
	}()
	msgs := make([]mcast.Message, h.cfg.Batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	lastTimers := time.Now().UnixNano()
	emit := h.emit // bound once: no allocation per datagram
	stop := context.AfterFunc(ctx, h.poller.Wake)
	defer stop()
	for ctx.Err() == nil {
		n, err := h.poller.ReadBatch(msgs, h.pollWait())
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("feed: read: %w", err)
		}
		now := time.Now().UnixNano()
		h.now = now
		for i := range msgs[:n] {
			m := &msgs[i]
			if m.Truncated {
				h.stats.DecodeErrors++
				h.cfg.Logf("datagram from %v truncated (longer than %d bytes)", m.Addr, len(m.Buf))
				continue
			}
			if src := h.cfg.Source; src.IsValid() && m.Addr.Addr().Unmap() != src {
				// Source-specific joins make the kernel filter; this catches a socket
				// another program joined to the group without the filter.
				h.stats.ForeignSource++
				h.cfg.Logf("datagram from %v, not the configured source %v: dropped", m.Addr, src)
				continue
			}
			if h.inj != nil {
				h.inj.apply(m.Group, h.lineOf(m.Group), m.Buf[:m.N], now, &h.stats, emit)
				continue
			}
			h.clock.rx = m.KernelTime
			h.receive(m.Group, m.Buf[:m.N], now)
			h.clock.rx = 0
		}
		if n == 0 && h.inj != nil {
			h.inj.flush(now, emit)
		}
		h.drainRecovery(now)
		if now-lastTimers >= int64(time.Millisecond) || n == 0 {
			h.timers(now)
			lastTimers = now
		}
		h.serveRequests()
	}
	h.finish()
	return ctx.Err()
}

// Timer granularity of Run: with a hole open, a recovery out or faults holding
// datagrams, the loop wakes every millisecond; otherwise only for datagrams and for work
// handed to it (Do, recovery answers, the end of its context), which call wake, and
// at idleWait at the latest. An idle handler costs next to no CPU.
const (
	busyWait = time.Millisecond
	idleWait = 250 * time.Millisecond
)

func (h *Handler) pollWait() time.Duration {
	if len(h.active) > 0 || (h.inj != nil && h.inj.nh > 0) {
		return busyWait
	}
	return idleWait
}

// wake makes Run look at its requests and recovery answers now.
func (h *Handler) wake() {
	if h.poller != nil {
		h.poller.Wake()
	}
}

// Receive hands a Detached handler one datagram as the network would deliver it: dst is
// the group and port it was sent to, at its receive time in nanoseconds (the handler's
// clock for gap timers; a capture's timestamps when replaying). It reports whether the
// handler has joined dst; a datagram for any other group is ignored, as a socket would
// never have received it. payload is not kept after Receive returns. Like Poll, Receive
// must be called from one goroutine, and does not allocate once warm.
func (h *Handler) Receive(dst netip.AddrPort, payload []byte, at int64) bool {
	i, ok := h.byAddr[dst]
	if !ok || h.poller != nil {
		return false
	}
	h.now = at
	if h.inj != nil {
		h.inj.apply(i, h.lineOf(i), payload, at, &h.stats, h.emit)
		return true
	}
	h.receive(i, payload, at)
	return true
}

// Poll runs a Detached handler's work between datagrams at time now (the clock of
// Receive): recovery results queued since the last call, the channels' gap and
// recovery timers, and requests from Do and Subscribe.
func (h *Handler) Poll(now int64) {
	h.now = now
	if h.inj != nil {
		h.inj.flush(now, h.emit)
	}
	h.drainRecovery(now)
	h.timers(now)
	h.serveRequests()
}

// Close ends a Detached handler: queued requests are served, and Do runs its function
// at once from then on. It does nothing to a handler that has sockets (Run closes them).
func (h *Handler) Close() {
	if h.poller != nil || !h.running.CompareAndSwap(false, true) {
		return
	}
	h.serveRequests()
	close(h.exited)
}

// Recovering reports whether a channel waits for a FIX retransmission or snapshots. A
// replay that is not paced by its capture's timestamps waits while it does, so that the
// answers come in before the capture's clock has run past their timeouts. Without a
// Recovery it is always false.
func (h *Handler) Recovering() bool {
	if h.cfg.Recovery == nil {
		return false
	}
	for _, ch := range h.active {
		if st := ch.tracker.State(); st == gap.Recovering || st == gap.Snapshot || ch.snapWaiting > 0 {
			return true
		}
	}
	return false
}

// DecodeErrors returns the count of malformed datagrams so far, cheaply: a replay
// compares it around Receive to report a bad payload with its capture packet number.
// Call it from the goroutine of Receive and Poll.
func (h *Handler) DecodeErrors() uint64 { return h.stats.DecodeErrors }

// lineOf returns the line of socket i (the definitions channel's is A).
func (h *Handler) lineOf(i int) gap.Source {
	if i < 0 || i >= len(h.sockets) {
		return gap.LineA
	}
	return h.sockets[i].line
}

// emit hands a datagram that passed the injected faults to receive at h.now.
func (h *Handler) emit(group int, b []byte) { h.receive(group, b, h.now) }

// receive handles one datagram from socket group.
func (h *Handler) receive(group int, b []byte, now int64) {
	h.stats.Datagrams++
	if group < 0 || group >= len(h.sockets) {
		return
	}
	si := h.sockets[group]
	b, ok := h.authenticate(si, b)
	if !ok {
		return
	}
	if len(b) < 4 {
		h.stats.DecodeErrors++
		h.cfg.Logf("datagram of %d bytes: shorter than the sequence preamble", len(b))
		return
	}
	seq := binary.LittleEndian.Uint32(b)
	body := b[4:]
	if si.defs {
		h.definition(body)
		return
	}
	ch := si.ch
	kind, ok := h.codec.Peek(body)
	if !ok {
		h.stats.DecodeErrors++
		h.cfg.Logf("channel %s seq %d: not a fastfeed message", ch.name, seq)
		return
	}
	switch kind {
	case md.KindHeartbeat:
		// Decoded, not only recognised: a corrupt datagram that looks like a heartbeat
		// must not tell the tracker that numbers up to its preamble were sent.
		if _, err := h.codec.Decode(body); err != nil {
			h.decodeError(ch, seq, err)
			return
		}
		h.stats.Heartbeats++
		ch.tracker.Heartbeat(seq, now)
		h.activate(ch)
		return
	case md.KindReset:
		if _, err := h.codec.Decode(body); err != nil {
			h.decodeError(ch, seq, err)
			return
		}
		h.reset(ch, h.codec.Reset.NewSeqNo)
		return
	}
	// A datagram that does not decode must not take its sequence number: the copy on
	// the other line, or a retransmission, is the real one. A copy of a number already
	// applied is left to the tracker undecoded.
	fresh := int32(seq-ch.tracker.Next()) >= 0
	if fresh {
		var err error
		if kind, err = h.codec.Decode(body); err != nil {
			h.decodeError(ch, seq, err)
			return
		}
	}
	sum := h.datagramDigest(b)
	if !h.sameCopy(ch, si.line, seq, sum, now) {
		return
	}
	switch ch.tracker.Offer(seq, si.line, body, now) {
	case gap.Deliver:
		ch.copies.add(seq, sum)
		if fresh {
			h.applyDecoded(ch, kind)
		} else {
			h.apply(ch, seq, body)
		}
		h.drain(ch)
	case gap.Buffered:
		ch.copies.add(seq, sum)
		h.activate(ch)
	}
}

// drain applies what became deliverable on ch.
func (h *Handler) drain(ch *channel) {
	for {
		seq, body, ok := ch.tracker.Pop()
		if !ok {
			return
		}
		h.apply(ch, seq, body)
	}
}

func (h *Handler) activate(ch *channel) {
	if !ch.polling {
		ch.polling = true
		h.active = append(h.active, ch)
	}
}

func (h *Handler) decodeError(ch *channel, seq uint32, err error) {
	h.stats.DecodeErrors++
	h.cfg.Logf("channel %s seq %d: %v", ch.name, seq, err)
}

// apply applies one in-sequence message of ch.
func (h *Handler) apply(ch *channel, seq uint32, body []byte) {
	kind, err := h.codec.Decode(body)
	if err != nil {
		// The number is consumed but its content is lost: the channel's books cannot be
		// trusted until a snapshot.
		h.decodeError(ch, seq, err)
		h.staleChannel(ch, "undecodable message")
		h.requestSnapshot(ch)
		return
	}
	h.applyDecoded(ch, kind)
}

// applyDecoded applies the in-sequence message of ch the codec has just decoded.
func (h *Handler) applyDecoded(ch *channel, kind md.Kind) {
	h.stats.Messages++
	switch kind {
	case md.KindIncremental:
		h.beginStages()
		entries := h.codec.Incremental.Entries
		for i := range entries {
			h.clock.last = i == len(entries)-1 && h.clock.decodedNs != 0 // time its hand-off
			h.entry(ch, &entries[i])
		}
		h.clock.last = false
		h.recordLatency(ch, h.codec.Incremental.SendingTime)
	case md.KindStatus:
		if in := h.bySymbol[string(h.codec.Status.Symbol)]; in != nil {
			h.publish(in, Event{Kind: EventStatus, Symbol: in.symbol, Status: h.codec.Status.TradingStatus})
		}
	case md.KindDefinition:
		h.learn(&h.codec.Definition)
	}
}

// recordLatency records tick-to-handler latency: from the publisher's SendingTime to now,
// when the message's entries have been applied and published.
// The stages are recorded too (latency.go).
func (h *Handler) recordLatency(ch *channel, sent int64) {
	if sent == 0 {
		return
	}
	now := h.now // a Detached handler's clock: the datagram's (capture) time
	if h.poller != nil {
		now = time.Now().UnixNano()
	}
	d := now - sent
	if d < 0 {
		h.stats.ClockSkew++ // the publisher's clock is ahead of ours
		d = 0
	}
	_ = h.latency.RecordValue(d) // values beyond the range are clamped by the error check below
	if d > h.latency.HighestTrackableValue() {
		h.stats.LatencyOverflow++
	}
	h.recordStages(ch, sent, now)
}

// Latency returns the tick-to-handler latency histogram (nanoseconds). Read it after Run
// returns, or through Do.
func (h *Handler) Latency() *hdrhistogram.Histogram { return h.latency }

// entry applies one incremental entry.
func (h *Handler) entry(ch *channel, e *md.Entry) {
	var in *instrument
	if len(ch.instruments) == 1 && string(e.Symbol) == ch.instruments[0].symbol {
		in = ch.instruments[0] // most channels carry one topic: no map lookup
	} else {
		in = h.bySymbol[string(e.Symbol)]
	}
	if in == nil || in.ch != ch {
		h.stats.Filtered++
		return
	}
	if in.started && int32(e.RptSeq-in.rptSeq) <= 0 {
		// Already in the book: a snapshot of this instrument was taken after this entry
		// (snapshots of one channel may be valid at different sequence numbers).
		h.stats.SkippedEntries++
		return
	}
	if in.started && e.RptSeq != in.rptSeq+1 {
		h.stats.RptSeqGaps++
		h.cfg.Logf("%s: RptSeq %d after %d", in.symbol, e.RptSeq, in.rptSeq)
		if !in.stale {
			h.markStale(in, "RptSeq gap")
			h.requestSnapshot(ch)
		}
	}
	in.rptSeq, in.started = e.RptSeq, true
	if in.book == nil && !h.createBook(in, e.Price.Exp, e.Size.Exp) {
		return
	}
	in.book.SetRptSeq(int64(e.RptSeq))
	if e.Type == md.Trade {
		if !in.stale {
			h.publish(in, Event{Kind: EventTrade, Symbol: in.symbol, Entry: e, Book: in.book})
		}
		return
	}
	u := book.Update{Action: book.Action(e.Action), Type: entryType(e.Type)}
	var ok bool
	if u.Price, ok = e.Price.At(in.priceExp); !ok {
		h.bookError(in, fmt.Errorf("price %d e%d not representable at exponent %d", e.Price.Mantissa, e.Price.Exp, in.priceExp))
		return
	}
	if e.Size.Valid {
		if u.Size, ok = e.Size.At(in.sizeExp); !ok {
			h.bookError(in, fmt.Errorf("size %d e%d not representable at exponent %d", e.Size.Mantissa, e.Size.Exp, in.sizeExp))
			return
		}
	}
	u.Orders = int64(e.Orders)
	if err := in.book.Apply(u); err != nil {
		h.bookError(in, err)
		return
	}
	if !in.stale {
		h.publish(in, Event{Kind: EventBook, Symbol: in.symbol, Entry: e, Book: in.book})
	}
}

func entryType(t md.EntryType) book.EntryType {
	switch t {
	case md.Bid:
		return book.EntryBid
	case md.Offer:
		return book.EntryOffer
	case md.Trade:
		return book.EntryTrade
	}
	return book.EntryOther
}

func (h *Handler) bookError(in *instrument, err error) {
	h.stats.BookErrors++
	h.cfg.Logf("%s: book refused an entry: %v", in.symbol, err)
	if !in.stale {
		h.markStale(in, "book error")
		h.requestSnapshot(in.ch)
	}
}

func (h *Handler) createBook(in *instrument, priceExp, sizeExp int8) bool {
	if in.defined {
		priceExp, sizeExp = in.priceExp, in.sizeExp
	}
	b, err := book.NewMBP(book.Config{PriceExp: int(priceExp), SizeExp: int(sizeExp)})
	if err != nil {
		h.bookError(in, err)
		return false
	}
	in.book, in.priceExp, in.sizeExp = b, priceExp, sizeExp
	in.book.SetStale(in.stale)
	return true
}

// definition handles a datagram of the instrument definitions channel. Definitions are
// idempotent and cycled, so they are applied as they come, without sequencing.
func (h *Handler) definition(body []byte) {
	kind, err := h.codec.Decode(body)
	if err != nil {
		h.stats.DecodeErrors++
		h.cfg.Logf("definitions channel: %v", err)
		return
	}
	if kind == md.KindDefinition {
		h.learn(&h.codec.Definition)
	}
}

// learn records an instrument's definition; with All it starts following it.
func (h *Handler) learn(d *md.Definition) {
	h.stats.Definitions++
	in := h.bySymbol[string(d.Symbol)]
	if in == nil {
		if !h.cfg.All {
			return
		}
		addr, err := mcast.ParseChannelName(string(d.Channel))
		if err != nil {
			h.stats.DecodeErrors++
			h.cfg.Logf("definition of %s: channel %q: %v", d.Symbol, d.Channel, err)
			return
		}
		ch, err := h.channelFor(addr)
		if err != nil {
			h.cfg.Logf("definition of %s: %v", d.Symbol, err)
			return
		}
		in = h.addInstrument(string(d.Symbol), ch)
	}
	if in.defined {
		return
	}
	in.defined = true
	if in.book != nil && (int8(in.book.PriceExp()) != d.PriceExp || int8(in.book.SizeExp()) != d.SizeExp) {
		// The book was created from entries before the definition came; rebuild it at the
		// defined exponents from a snapshot.
		in.book = nil
		in.priceExp, in.sizeExp = d.PriceExp, d.SizeExp
		h.markStale(in, "exponent changed by definition")
		h.requestSnapshot(in.ch)
		return
	}
	in.priceExp, in.sizeExp = d.PriceExp, d.SizeExp
}

// reset applies a SequenceReset: the publisher restarted, so its books start empty.
func (h *Handler) reset(ch *channel, newSeqNo uint32) {
	h.stats.Resets++
	ch.tracker.Reset(newSeqNo)
	ch.copies.clear()
	for _, in := range ch.instruments {
		if in.book != nil {
			in.book.Clear()
			in.book.SetRptSeq(0)
		}
		in.rptSeq, in.started, in.haveSnap = 0, false, false
		h.markFresh(in)
	}
	ch.snapWaiting = 0
	h.cfg.Logf("channel %s: sequence reset to %d", ch.name, newSeqNo)
}

func (h *Handler) markStale(in *instrument, why string) {
	if in.stale {
		return
	}
	in.stale = true
	h.stats.StaleEvents++
	if in.book != nil {
		in.book.SetStale(true)
	}
	h.cfg.Logf("%s: stale (%s)", in.symbol, why)
	h.publish(in, Event{Kind: EventStale, Symbol: in.symbol, Book: in.book})
}

func (h *Handler) markFresh(in *instrument) {
	if !in.stale {
		return
	}
	in.stale = false
	if in.book != nil {
		in.book.SetStale(false)
	}
	h.publish(in, Event{Kind: EventFresh, Symbol: in.symbol, Book: in.book})
}

func (h *Handler) staleChannel(ch *channel, why string) {
	for _, in := range ch.instruments {
		h.markStale(in, why)
	}
}

// requestSnapshot asks for snapshots of ch's instruments unless a request is out.
func (h *Handler) requestSnapshot(ch *channel) {
	if ch.snapWaiting > 0 {
		return
	}
	h.staleChannel(ch, "snapshot requested")
	if h.cfg.Recovery == nil {
		return
	}
	symbols := make([]string, 0, len(ch.instruments))
	for _, in := range ch.instruments {
		symbols = append(symbols, in.symbol)
		in.haveSnap = false
	}
	ch.snapWaiting = len(symbols)
	h.stats.Snapshots++
	h.cfg.Recovery.Snapshot(ch.name, symbols)
}

// timers runs the trackers' timers of the channels that have something open.
func (h *Handler) timers(now int64) {
	keep := h.active[:0]
	for _, ch := range h.active {
		a := ch.tracker.Poll(now)
		switch a.Kind {
		case gap.Retransmit:
			h.cfg.Logf("channel %s: %s: requesting retransmission", ch.name, a.Reason)
			h.stats.Retransmits++
			h.cfg.Recovery.Retransmit(ch.name, a.Beg, a.End)
		case gap.Resnapshot:
			h.cfg.Logf("channel %s: %s: requesting snapshots", ch.name, a.Reason)
			ch.snapWaiting = 0 // a new request supersedes one that never came
			h.requestSnapshot(ch)
		}
		if ch.tracker.State() == gap.Live && ch.snapWaiting == 0 {
			ch.polling = false
			continue
		}
		keep = append(keep, ch)
	}
	h.active = keep
}

// drainRecovery applies recovery results queued since the last batch.
func (h *Handler) drainRecovery(now int64) {
	for {
		select {
		case ev := <-h.recovery:
			h.recovered(ev, now)
		default:
			return
		}
	}
}

func (h *Handler) recovered(ev recoveryEvent, now int64) {
	ch := h.channels[ev.channel]
	if ch == nil {
		return
	}
	switch {
	case ev.failed:
		h.stats.RecoveryFails++
		h.cfg.Logf("channel %s: recovery failed: %s", ch.name, ev.reason)
		if ev.snapshot {
			ch.snapWaiting = 0 // the tracker's timer asks again
			return
		}
		if a := ch.tracker.RecoveryFailed(now); a.Kind == gap.Resnapshot {
			h.requestSnapshot(ch)
		}
	case ev.snapshot:
		h.applySnapshots(ch, ev.snaps)
	default:
		kind, err := h.codec.Decode(ev.payload)
		if err != nil {
			h.decodeError(ch, ev.seq, fmt.Errorf("retransmitted: %w", err))
			return // the number stays missing: the recovery timeout falls back to snapshots
		}
		switch ch.tracker.Offer(ev.seq, gap.Recovery, ev.payload, now) {
		case gap.Deliver:
			h.applyDecoded(ch, kind)
			h.drain(ch)
		}
	}
	h.activate(ch)
}

// applySnapshots replaces the books of ch's instruments. When every instrument of the
// channel has its snapshot, the tracker resumes after their common sequence number.
func (h *Handler) applySnapshots(ch *channel, snaps []md.Snapshot) {
	var last uint32
	for i := range snaps {
		s := &snaps[i]
		in := h.bySymbol[string(s.Symbol)]
		if in == nil || in.ch != ch {
			continue
		}
		if in.book == nil {
			var pe, se int8
			if len(s.Entries) > 0 {
				pe, se = s.Entries[0].Price.Exp, s.Entries[0].Size.Exp
			}
			if !h.createBook(in, pe, se) {
				continue
			}
		}
		h.bids = h.bids[:0]
		h.asks = h.asks[:0]
		ok := true
		for j := range s.Entries {
			e := &s.Entries[j]
			px, ok1 := e.Price.At(in.priceExp)
			sz, ok2 := e.Size.At(in.sizeExp)
			if !ok1 || !ok2 {
				ok = false
				break
			}
			l := book.Level{Price: px, Size: sz, Orders: int64(e.Orders)}
			if e.Type == md.Bid {
				h.bids = append(h.bids, l)
			} else if e.Type == md.Offer {
				h.asks = append(h.asks, l)
			}
		}
		if !ok {
			h.bookError(in, fmt.Errorf("snapshot price or size not representable at the book's exponents"))
			continue
		}
		if err := in.book.Replace(h.bids, h.asks); err != nil {
			h.bookError(in, err)
			continue
		}
		in.book.SetRptSeq(int64(s.RptSeq))
		in.rptSeq, in.started = s.RptSeq, true
		in.snapSeq, in.haveSnap = s.LastMsgSeqNumProcessed, true
		last = s.LastMsgSeqNumProcessed
	}
	// Resume the channel once every followed instrument has its snapshot, from the
	// oldest of their sequence numbers; entries an instrument's snapshot already holds are
	// then skipped by their RptSeq.
	first := true
	for _, in := range ch.instruments {
		if !in.haveSnap {
			return
		}
		if first || int32(in.snapSeq-last) < 0 {
			last, first = in.snapSeq, false
		}
	}
	ch.snapWaiting = 0
	h.stats.SnapshotsDone++
	ch.tracker.SnapshotApplied(last)
	for _, in := range ch.instruments {
		in.haveSnap = false
		h.markFresh(in)
	}
	h.cfg.Logf("channel %s: books rebuilt from snapshots at %d", ch.name, last)
	h.drain(ch)
}

// serveRequests runs functions queued by other goroutines (book reads, subscriptions).
func (h *Handler) serveRequests() {
	if h.subsDirty.Load() {
		h.subsMu.Lock()
		h.subs = append(h.subs, h.pending...)
		h.pending = h.pending[:0]
		live := h.subs[:0]
		for _, s := range h.subs {
			if !s.cancelled.Load() {
				live = append(live, s)
			}
		}
		h.subs = live
		h.subsVersion++
		h.subsDirty.Store(false)
		h.subsMu.Unlock()
	}
	for {
		select {
		case fn := <-h.requests:
			fn()
		default:
			return
		}
	}
}

func (h *Handler) finish() {
	if h.inj != nil {
		h.now = time.Now().UnixNano()
		h.inj.flush(math.MaxInt64, h.emit) // everything held, delayed or not

	}
}

// Stats returns the counters. Call it after Run returns, or through Do while it runs.
func (h *Handler) Stats() Stats {
	s := h.stats
	var t gap.Counters
	for _, ch := range h.channels {
		c := ch.tracker.Counters()
		t.Duplicates += c.Duplicates
		t.Gaps += c.Gaps
		t.Missing += c.Missing
		t.RecoveredAB += c.RecoveredAB
		t.LineBFirst += c.LineBFirst
		t.RecoveredFIX += c.RecoveredFIX
		t.Skipped += c.Skipped
		t.Dropped += c.Dropped
	}
	s.Duplicates, s.Gaps, s.Missing = t.Duplicates, t.Gaps, t.Missing
	s.RecoveredAB, s.RecoveredFIX, s.Skipped, s.Dropped = t.RecoveredAB, t.RecoveredFIX, t.Skipped, t.Dropped
	s.LineBFirst = t.LineBFirst
	s.StaleBooks = 0
	for _, in := range h.bySymbol {
		if in.stale {
			s.StaleBooks++
		}
	}
	if h.poller != nil {
		for i := 0; i < h.poller.Len(); i++ {
			s.KernelDrops += h.poller.Drops(i)
		}
	}
	return s
}

// ChannelStats are one channel's sequencing counters and state.
type ChannelStats struct {
	Channel      string // "G<group>:<port>"
	State        string // live, gap, recovering or snapshot
	Next         uint32 // next sequence number expected
	Gaps         uint64 // holes detected
	Missing      uint64 // sequence numbers found missing
	Duplicates   uint64
	RecoveredAB  uint64
	RecoveredFIX uint64
	Skipped      uint64 // numbers superseded by a snapshot
}

// Channels returns each channel's counters, sorted by channel name. Call it after Run
// returns, through Do, or between calls to Receive and Poll.
func (h *Handler) Channels() []ChannelStats {
	out := make([]ChannelStats, 0, len(h.channels))
	for _, ch := range h.channels {
		c := ch.tracker.Counters()
		out = append(out, ChannelStats{Channel: ch.name, State: ch.tracker.State().String(), Next: ch.tracker.Next(),
			Gaps: c.Gaps, Missing: c.Missing, Duplicates: c.Duplicates, RecoveredAB: c.RecoveredAB,
			RecoveredFIX: c.RecoveredFIX, Skipped: c.Skipped})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// Do runs fn on the handler's goroutine (between batches) and waits for it, so that fn
// may read books and counters consistently. After Run has returned, fn runs at once.
func (h *Handler) Do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	req := func() { fn(); close(done) }
	select {
	case h.requests <- req:
		h.wake()
	case <-h.exited:
		fn()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-h.exited:
		select {
		case <-done:
		default:
			fn() // Run returned without serving it
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dump returns the followed books in the --dump-books form, sorted by symbol. Books with
// no data yet are included empty. Call it through Do while Run runs.
func (h *Handler) Dump() book.Dump {
	syms := make([]string, 0, len(h.bySymbol))
	for s := range h.bySymbol {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	var d book.Dump
	empty, _ := book.NewMBP(book.Config{})
	for _, s := range syms {
		in := h.bySymbol[s]
		var v book.View = in.book
		if in.book == nil {
			empty.SetStale(in.stale)
			v = empty
		}
		d = append(d, book.DumpOf(s, v))
	}
	return d
}

// WriteDump writes Dump to w.
func (h *Handler) WriteDump(w io.Writer) error {
	_, err := h.Dump().WriteTo(w)
	return err
}

// Symbols returns the followed symbols, sorted.
func (h *Handler) Symbols() []string {
	out := make([]string, 0, len(h.bySymbol))
	for s := range h.bySymbol {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ChannelStates describes each channel's recovery state, for operators.
func (h *Handler) ChannelStates() string {
	var b strings.Builder
	names := make([]string, 0, len(h.channels))
	for n := range h.channels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ch := h.channels[n]
		fmt.Fprintf(&b, "%s %v next=%d buffered=%d\n", n, ch.tracker.State(), ch.tracker.Next(), ch.tracker.Buffered())
	}
	return b.String()
}

// Socket describes one joined socket, for operators.
type Socket struct {
	Channel    string // "G<group>:<port>", or "definitions"
	Line       string // "A" or "B"
	Group      netip.AddrPort
	ReadBuffer int // SO_RCVBUF the kernel granted, bytes
}

// Sockets describes the joined sockets. Call it before Run or through Do.
func (h *Handler) Sockets() []Socket {
	var out []Socket
	for i := range h.addrs {
		s := Socket{Group: h.addrs[i], Line: "A"}
		if h.poller != nil {
			s.ReadBuffer = h.poller.Membership(i).ReadBuffer
		}
		if i < len(h.sockets) {
			si := h.sockets[i]
			switch {
			case si.defs:
				s.Channel = "definitions"
			case si.ch != nil:
				s.Channel = si.ch.name
				if si.line == gap.LineB {
					s.Line = "B"
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// BookSnapshot returns a consistent copy of symbol's book, read on the handler's
// goroutine between batches: prices and sizes as decimal.Decimal for API users.
func (h *Handler) BookSnapshot(ctx context.Context, symbol string) (BookSnapshot, error) {
	var snap BookSnapshot
	var err error
	if derr := h.Do(ctx, func() {
		in := h.bySymbol[symbol]
		if in == nil {
			err = fmt.Errorf("feed: %s is not followed", symbol)
			return
		}
		snap = BookSnapshot{Symbol: symbol, RptSeq: in.rptSeq, Stale: in.stale}
		if in.book != nil {
			snap.Bids = book.DecimalLevels(in.book, book.Bid)
			snap.Asks = book.DecimalLevels(in.book, book.Ask)
		}
	}); derr != nil {
		return BookSnapshot{}, derr
	}
	return snap, err
}

// BookSnapshot is a copy of one book, best levels first.
type BookSnapshot struct {
	Symbol     string
	RptSeq     uint32
	Stale      bool
	Bids, Asks []book.DecimalLevel
}
