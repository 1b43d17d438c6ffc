package feed

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/book"
	"fastfeed/gap"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// Engine is the feed handler without sockets: channels, sequence trackers, books and
// subscriptions. Its whole interface is Receive (one datagram, its destination and its
// receive time), DoWork (advance the timers to a time and drain a bounded share of the
// command queue) and the command queue itself, which other goroutines feed through Do,
// Subscribe and the recovery Sink. Receive and DoWork are called from one goroutine, the
// engine's duty cycle: a Handler's receiver, a replay, a benchmark or a test. Create one
// with NewEngine; a Handler makes its own.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	codec *md.Codec
	inj   *injector
	live  bool // driven by a Handler's receiver: stage latencies run on the wall clock

	join     func(netip.AddrPort) (int, error) // a Handler's socket join; nil: only record
	leave    func(int) error                   // a Handler's socket leave; nil: only forget
	channels map[string]*channel
	bySymbol map[string]*instrument
	wanted   map[string]bool  // topics asked for (nil with All)
	sockets  []socketInfo     // by socket index
	addrs    []netip.AddrPort // joined group and port, by socket index
	byAddr   map[uint64]int   // socket index of each joined group and port (addrKey)
	active   []*channel       // channels with an open hole or recovery

	queue   commandQueue
	stats   Stats
	lastErr error                   // the last decode error, for a replay's report
	latency *hdrhistogram.Histogram // tick-to-handler, all channels: stages[StageTotal]
	stages  *Latencies
	split   DecodeSplit // StageDecode cut at the return of recvmmsg
	clock   stageClock
	// pending holds the stamps of the messages applied whose histograms a live engine
	// has not recorded yet (flushStages).
	pending  [pendingStamps]stamp
	npending int

	subsVersion uint64 // counts changes of subs
	subs        []*Subscription

	now        int64        // time of the datagram or cycle being handled
	lastTimers int64        // when the timers last ran
	event      Event        // the event being delivered to subscribers
	bids       []book.Level // scratch for snapshots
	asks       []book.Level
	snapOne    [1]md.Snapshot // a W of a snapshot channel, as applySnapshots takes it

	defsSocket int          // socket index of the definitions channel
	key        *dgauth.Key  // checks every datagram's trailer; nil: the network is trusted (auth.go)
	digest     uint64       // the tag's digest of the datagram authenticated last
	seed       maphash.Seed // of the copy digests without a key
	authLog    rateLog
	copyLog    rateLog
	warm       warmCursor // a busy-polling Run's cache warming (warm.go)
	// lastInc is the body of the incremental decoded last in the current read's batch:
	// it aliases the read's buffer, so the receiving loop clears it before each read's
	// datagrams; warmDecode copies it into warmBody, the engine's own (warm.go).
	lastInc  []byte
	warmBody []byte
}

// socketInfo is what a socket index stands for: a line of a channel, or the
// definitions channel.
type socketInfo struct {
	ch   *channel
	line gap.Source
	defs bool
	snap bool // ch's snapshot channel (snapchan.go)
}

// NewEngine creates an engine for cfg's topics (and the instrument definitions
// channel). It opens no socket: "joining" a group only records its address, so that
// Receive knows the datagrams it would have been sent.
func NewEngine(cfg Config) (*Engine, error) { return newEngine(cfg, nil) }

func newEngine(cfg Config, join func(netip.AddrPort) (int, error)) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := md.NewCodec(cfg.Templates)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		codec:    codec,
		join:     join,
		live:     join != nil,
		byAddr:   map[uint64]int{},
		channels: map[string]*channel{},
		bySymbol: map[string]*instrument{},
		queue:    newCommandQueue(),
		stages:   newLatencies(overallDigits, true), // 1 MiB, once
		split:    newDecodeSplit(),
		seed:     maphash.MakeSeed(),
	}
	if cfg.Key != nil {
		e.key = cfg.Key.Clone() // the caller's may be used on another goroutine
	}
	e.latency = e.stages[StageTotal]
	if cfg.Inject.active() {
		e.inj = newInjector(cfg.Inject)
	}
	i, err := e.joinGroup(netip.AddrPortFrom(cfg.DefinitionsGroup, cfg.Port))
	if err != nil {
		return nil, err
	}
	e.defsSocket = i
	e.setSocket(i, socketInfo{defs: true})
	if !cfg.All {
		e.wanted = map[string]bool{}
		for _, t := range cfg.Topics {
			e.wanted[t] = true
			ch, err := e.channelFor(netip.AddrPortFrom(cfg.Mapping.Group(t), cfg.Port))
			if err != nil {
				return nil, err
			}
			e.addInstrument(t, ch)
		}
	}
	if cfg.Recovery != nil {
		cfg.Recovery.Start(sink{q: &e.queue})
	}
	return e, nil
}

// joinGroup joins addr (through the Handler's sockets, if any) and returns its socket
// index.
func (e *Engine) joinGroup(addr netip.AddrPort) (int, error) {
	key, ok := addrKey(addr)
	if !ok {
		return 0, fmt.Errorf("feed: group %v is not an IPv4 address", addr)
	}
	i := len(e.addrs)
	if e.join != nil {
		var err error
		if i, err = e.join(addr); err != nil {
			return 0, err
		}
	}
	for len(e.addrs) <= i {
		e.addrs = append(e.addrs, netip.AddrPort{})
	}
	e.addrs[i] = addr
	e.byAddr[key] = i
	return i, nil
}

// addrKey packs an IPv4 group and port into the key of byAddr: a uint64 hashes in a
// fraction of the time of a netip.AddrPort, which Receive would hash per datagram.
func addrKey(a netip.AddrPort) (uint64, bool) {
	ip := a.Addr()
	if !ip.Is4() {
		return 0, false
	}
	b := ip.As4()
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(a.Port()), true
}

// socketOf returns the socket index of group and port dst, if joined.
func (e *Engine) socketOf(dst netip.AddrPort) (int, bool) {
	key, ok := addrKey(dst)
	if !ok {
		return 0, false
	}
	i, ok := e.byAddr[key]
	return i, ok
}

// channelFor returns the channel of addr, joining its groups the first time.
func (e *Engine) channelFor(addr netip.AddrPort) (*channel, error) {
	name := mcast.ChannelName(addr)
	if ch := e.channels[name]; ch != nil {
		return ch, nil
	}
	ch := &channel{name: name, addr: addr, tracker: gap.NewSequencer[*md.Message](e.cfg.Gap), lat: newLatencies(channelDigits, e.cfg.BusyPoll)}
	i, err := e.joinGroup(addr)
	if err != nil {
		return nil, fmt.Errorf("feed: channel %s: %w", name, err)
	}
	e.setSocket(i, socketInfo{ch: ch, line: gap.LineA})
	if b, ok := e.lineB(addr); ok {
		i, err := e.joinGroup(b)
		if err != nil {
			return nil, fmt.Errorf("feed: channel %s line B %v: %w", name, b, err)
		}
		e.setSocket(i, socketInfo{ch: ch, line: gap.LineB})
	}
	e.channels[name] = ch
	e.stats.Channels++
	e.log.Debug("joined channel", "channel", name)
	return ch, nil
}

func (e *Engine) setSocket(i int, s socketInfo) {
	for len(e.sockets) <= i {
		e.sockets = append(e.sockets, socketInfo{})
	}
	e.sockets[i] = s
}

// lineB returns line B's address for a line A channel.
func (e *Engine) lineB(a netip.AddrPort) (netip.AddrPort, bool) {
	if e.cfg.BPort == 0 && !e.cfg.BBase.IsValid() {
		return netip.AddrPort{}, false
	}
	addr, port := a.Addr(), a.Port()
	if e.cfg.BBase.IsValid() {
		off := be32(addr) - be32(e.cfg.Mapping.Base())
		addr = fromBE32(be32(e.cfg.BBase) + off)
	}
	if e.cfg.BPort != 0 {
		port = e.cfg.BPort
	}
	return netip.AddrPortFrom(addr, port), true
}

func be32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func fromBE32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (e *Engine) addInstrument(symbol string, ch *channel) *instrument {
	in := &instrument{symbol: symbol, ch: ch}
	ch.instruments = append(ch.instruments, in)
	e.bySymbol[symbol] = in
	e.stats.Instruments++
	return in
}

// Receive hands the engine one datagram as the network would deliver it: dst is the
// group and port it was sent to, at is its receive time in nanoseconds (the engine's
// clock for gap timers; a capture's timestamps when replaying). It reports whether the
// engine has joined dst; a datagram for any other group is ignored, as a socket would
// never have received it. payload is not kept after Receive returns. Receive is called
// from the engine's goroutine (that of DoWork), and does not allocate once warm.
func (e *Engine) Receive(dst netip.AddrPort, payload []byte, at int64) bool {
	i, ok := e.socketOf(dst)
	if !ok {
		return false
	}
	e.now = at
	if e.inj != nil {
		e.inj.apply(i, e.lineOf(i), payload, at, &e.stats, e.emit)
		return true
	}
	e.receive(i, payload, at)
	e.lastInc = nil // payload is the caller's again (warm.go)
	return true
}

// receiveOn takes one datagram of socket i, received by the kernel at rx (0: unknown)
// and returned by the read (recvmmsg) at at, through the injected faults if any.
func (e *Engine) receiveOn(i int, payload []byte, at, rx int64) {
	e.now = at
	if e.inj != nil {
		e.inj.apply(i, e.lineOf(i), payload, at, &e.stats, e.emit)
		return
	}
	e.clock.rx, e.clock.recv = rx, at
	e.receive(i, payload, at)
	e.clock.rx, e.clock.recv = 0, 0
}

// DoWork is one duty cycle of the engine's work between datagrams, at time now (the
// clock of Receive): at most CommandsPerCycle commands from the queue (recovery results,
// subscription changes, Do), then the channels' gap and recovery timers. It returns how
// many commands it ran, so that a caller can tell an idle engine. Under a Handler, which
// calls it after every recvmmsg batch, the timers run at most once per millisecond:
// their granularity, and the cost of polling many open channels at every batch.
func (e *Engine) DoWork(now int64) int {
	e.now = now
	if e.inj != nil && !e.live {
		e.inj.flush(now, e.emit)
	}
	n := e.drainCommands(now, CommandsPerCycle)
	if !e.live || now-e.lastTimers >= int64(timerEvery) || now < e.lastTimers {
		e.timers(now)
		e.lastTimers = now
	}
	return n
}

// timerEvery is the live engine's timer granularity.
const timerEvery = time.Millisecond

// TimerWait returns how long the engine's timers can wait from now (Unix ns), at most
// max: until the earliest time a channel's tracker has something to do (gap.Sequencer
// NextPoll). A channel waiting for answers, with no deadline before max, needs no timer:
// the answers wake the handler as commands. Call it from the engine's goroutine.
func (e *Engine) TimerWait(now int64, max time.Duration) time.Duration {
	wait := int64(max)
	for _, ch := range e.active {
		at, ok := ch.tracker.NextPoll(now)
		if !ok {
			continue
		}
		wait = min(wait, at-now)
	}
	return time.Duration(wait)
}

// Close ends an engine that no Handler runs: the commands queued are run, and Do runs its
// function at once from then on.
func (e *Engine) Close() { e.stop(e.now) }

// Recovering reports whether a channel waits for a FIX retransmission or snapshots. A
// replay that is not paced by its capture's timestamps waits while it does, so that the
// answers come in before the capture's clock has run past their timeouts. Without a
// Recovery it is always false.
func (e *Engine) Recovering() bool {
	if e.cfg.Recovery == nil {
		return false
	}
	for _, ch := range e.active {
		if st := ch.tracker.State(); st == gap.Recovering || st == gap.Snapshot || ch.snapWaiting > 0 {
			return true
		}
	}
	return false
}

// DecodeErrors returns the count of malformed datagrams so far, cheaply: a replay
// compares it around Receive to report a bad payload with its capture packet number.
// Call it from the engine's goroutine.
func (e *Engine) DecodeErrors() uint64 { return e.stats.DecodeErrors }

// LastDecodeError returns the last decode error (nil if none), with the channel and
// sequence number it names. Call it from the engine's goroutine.
func (e *Engine) LastDecodeError() error { return e.lastErr }

// lineOf returns the line of socket i (the definitions channel's is A).
func (e *Engine) lineOf(i int) gap.Source {
	if i < 0 || i >= len(e.sockets) {
		return gap.LineA
	}
	return e.sockets[i].line
}

// emit hands a datagram that passed the injected faults to receive at e.now.
func (e *Engine) emit(group int, b []byte) { e.receive(group, b, e.now) }

// finish releases what the injected faults still hold. A channel that stops with a hole
// open (numbers known to be missing, not yet recovered) has books behind what was
// sent: they are marked stale, so that the final dump and counters do not show them as
// current.
func (e *Engine) finish(now int64) {
	e.flushStages()
	if e.inj != nil {
		e.now = now
		e.inj.flush(math.MaxInt64, e.emit) // everything held, delayed or not
	}
	for _, ch := range e.channels {
		if s := ch.tracker.State(); s == gap.Gap || s == gap.Recovering {
			e.log.Info("stopped with sequence numbers missing: books marked stale", "channel", ch.name, "next", ch.tracker.Next(), "state", s.String())
			e.staleChannel(ch, "stopped with sequence numbers missing")
		}
	}
}
