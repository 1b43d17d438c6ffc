package publisher

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

// Tuning of the publishing loop.
const (
	maxTickDatagrams = 256  // incremental datagrams opened per send tick, at most
	sendBatch        = 512  // datagrams (A and B) queued before a sendmmsg
	defsPerIteration = 64   // definitions of a cycle sent per loop iteration
	copyBudget       = 256  // retained datagrams copied per loop iteration
	walkBudget       = 4096 // retention records walked per loop iteration
	snapshotBudget   = 16   // instrument snapshots per loop iteration
	maxQueued        = 1024 // requests accepted and not yet finished
	minEntryBytes    = 4    // no entry encodes in fewer bytes
	statusOpen       = 17   // SecurityTradingStatus: ready to trade (start of session)
)

// batchWriter is what the loop needs of an mcast.Sender.
type batchWriter interface {
	WriteBatch(ms []mcast.Message) (int, error)
}

// Publisher runs the simulator and publishes its entries, sequenced per
// channel, with heartbeats and instrument definitions; see the package
// documentation. Create it with New, run it with Run (once); the hooks
// (Retransmit, Snapshot, Channels, Recovery, ...) may be called from any
// goroutine.
type Publisher struct {
	cfg   Config
	log   *slog.Logger
	codec *md.Codec
	sim   *Simulator

	chans    []channel // the instrument channels, then the definitions channel
	defs     int       // index of the definitions channel
	byName   map[string]int
	bySymbol map[string]int
	insChan  []int32 // instrument -> channel
	insDefs  []md.Definition
	infos    []ChannelInfo
	hasB     bool

	ret        *retention
	w          batchWriter
	out        []mcast.Message
	stampAt    []int16 // offset of each queued datagram's SendingTime, or -1 (stamp.go)
	sealN      []int32 // length before the trailer of each queued datagram to seal, or -1 (auth.go)
	key        *dgauth.Key
	nout       int
	unsentFrom uint64   // arena offset of the oldest queued datagram, if nout > 0
	err        error    // first send or encoding error; stops the loop
	dump       *os.File // the --dump-books file, from the start of Run to the end of the data

	// The current send tick.
	tick         []SimEntry
	sorted       []md.Entry
	touched      []int32
	maxEntries   int // entries tried in one incremental
	entryBytes16 int // bytes per entry of recent incrementals, times 16
	scratch      []byte
	inc          md.Incremental
	now          time.Duration // of the current iteration, since epoch
	wall         int64         // SendingTime of the current iteration

	defCursor int // next definition of a running cycle; -1: none running
	st        Stats

	state    atomic.Int32
	reqs     chan *request
	queue    []*request
	stopped  chan struct{}
	dataDone chan struct{}
	shared   sharedStats
}

type channel struct {
	name        []byte
	a, b        netip.AddrPort
	seq         uint32 // last sequence number sent
	oldest      uint32 // oldest sequence number retained (seq+1 if none)
	last        uint64 // position+1 of the newest retained record; 0: none
	lastSend    time.Duration
	count       int32 // entries in the current tick
	fill        int32 // next slot in sorted
	instruments []int32
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// New checks cfg and prepares a Publisher: instruments, channels, the
// simulator and the retention arena (allocated here). It opens no socket.
func New(cfg Config) (*Publisher, error) {
	cfg.Instruments = append([]Instrument(nil), cfg.Instruments...)
	cfg.Recovery.Users = append([]User(nil), cfg.Recovery.Users...)
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := md.NewCodec(cfg.Templates)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	sim, err := NewSimulator(cfg.Instruments, cfg.MinDepth, cfg.MaxDepth, cfg.Seed)
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:       cfg,
		log:       cfg.Logger,
		codec:     codec,
		sim:       sim,
		byName:    make(map[string]int),
		bySymbol:  make(map[string]int, len(cfg.Instruments)),
		insChan:   make([]int32, len(cfg.Instruments)),
		out:       make([]mcast.Message, sendBatch),
		stampAt:   make([]int16, sendBatch),
		sealN:     make([]int32, sendBatch),
		defCursor: -1,
		reqs:      make(chan *request, 64),
		stopped:   make(chan struct{}),
		dataDone:  make(chan struct{}),
	}
	if err := p.buildChannels(); err != nil {
		return nil, err
	}
	if cfg.Key != nil {
		p.key = cfg.Key.Clone() // the loop's own: a Key is used by one goroutine
	}
	p.ret = newRetention(cfg.Retention, cfg.RetentionBytes, p.evicted)
	p.maxEntries = max(1, cfg.PayloadLimit/minEntryBytes)
	p.entryBytes16 = 16 * 16
	maxTickEntries := 2*(2*maxTickDatagrams+8) + 2*cfg.MaxDepth + 16
	p.tick = make([]SimEntry, 0, maxTickEntries)
	p.sorted = make([]md.Entry, maxTickEntries)
	p.touched = make([]int32, 0, len(p.chans))
	p.scratch = make([]byte, 4, 4+p.maxEntries*(48+MaxSymbolLen)+1024)
	if err := p.prepareDefinitions(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Publisher) buildChannels() error {
	cfg := &p.cfg
	bMap, bPort, bDefs, err := bLine(cfg)
	if err != nil {
		return err
	}
	p.hasB = cfg.B.Enabled()
	byAddr := make(map[netip.AddrPort]int)
	for i, in := range cfg.Instruments {
		a := netip.AddrPortFrom(cfg.Mapping.Group(in.Symbol), cfg.Port)
		ch, ok := byAddr[a]
		if !ok {
			ch = len(p.chans)
			byAddr[a] = ch
			c := channel{name: mcast.AppendChannelName(nil, a), a: a, oldest: 1}
			if p.hasB {
				c.b = netip.AddrPortFrom(bMap.Group(in.Symbol), bPort)
			}
			p.chans = append(p.chans, c)
		}
		p.chans[ch].instruments = append(p.chans[ch].instruments, int32(i))
		p.insChan[i] = int32(ch)
		p.bySymbol[in.Symbol] = i
	}
	defs := netip.AddrPortFrom(cfg.DefinitionsGroup, cfg.Port)
	if err := checkGroup(defs.Addr()); err != nil {
		return fmt.Errorf("publisher: config: definitions group: %w", err)
	}
	if ch, ok := byAddr[defs]; ok {
		return fmt.Errorf("publisher: config: the definitions channel %v is also the channel of %s: choose another definitions group or group base",
			defs, cfg.Instruments[p.chans[ch].instruments[0]].Symbol)
	}
	p.defs = len(p.chans)
	p.chans = append(p.chans, channel{name: mcast.AppendChannelName(nil, defs), a: defs, b: netip.AddrPortFrom(bDefs, bPort), oldest: 1})
	if p.hasB {
		byB := make(map[netip.AddrPort]int, len(p.chans))
		for i := range p.chans {
			if _, clash := byAddr[p.chans[i].b]; clash || p.chans[i].b == defs {
				return fmt.Errorf("publisher: config: B line channel %v of %s is also an A line channel: choose another B port or group base",
					p.chans[i].b, p.chans[i].name)
			}
			if j, dup := byB[p.chans[i].b]; dup {
				return fmt.Errorf("publisher: config: B line channel %v carries both %s and %s", p.chans[i].b, p.chans[j].name, p.chans[i].name)
			}
			byB[p.chans[i].b] = i
		}
	}
	for i := range p.chans {
		c := &p.chans[i]
		p.byName[string(c.name)] = i
		info := ChannelInfo{Name: string(c.name), Group: c.a, Definitions: i == p.defs}
		if p.hasB {
			info.B = c.b
		}
		for _, in := range c.instruments {
			info.Instruments = append(info.Instruments, cfg.Instruments[in].Symbol)
		}
		p.infos = append(p.infos, info)
	}
	return nil
}

// bLine resolves the B line's mapping, port and definitions group.
func bLine(cfg *Config) (mcast.Mapping, uint16, netip.Addr, error) {
	b := cfg.B
	if !b.Enabled() {
		return mcast.Mapping{}, 0, netip.Addr{}, nil
	}
	port := b.Port
	if port == 0 {
		port = cfg.Port
	}
	m := cfg.Mapping
	if b.GroupBase.IsValid() {
		var err error
		if cfg.Mapping.Single() {
			m, err = mcast.SingleGroupMapping(b.GroupBase)
		} else {
			m, err = mcast.NewMapping(b.GroupBase, cfg.Mapping.Size())
		}
		if err != nil {
			return m, 0, netip.Addr{}, fmt.Errorf("publisher: config: B line: %w", err)
		}
	}
	if port == cfg.Port && m == cfg.Mapping {
		return m, 0, netip.Addr{}, errors.New("publisher: config: the B line is the A line: give it another port or group base")
	}
	defs := b.DefinitionsGroup
	switch {
	case defs.IsValid():
	case port != cfg.Port:
		defs = cfg.DefinitionsGroup
	default:
		defs = m.Base().Prev()
	}
	if err := checkGroup(defs); err != nil {
		return m, 0, netip.Addr{}, fmt.Errorf("publisher: config: B line definitions group (set it explicitly): %w", err)
	}
	return m, port, defs, nil
}

func checkGroup(a netip.Addr) error {
	switch {
	case !a.Is4() || !a.IsMulticast():
		return fmt.Errorf("%v is not an IPv4 multicast address", a)
	case a.IsLinkLocalMulticast():
		return fmt.Errorf("%v is in 224.0.0.0/24, reserved for local network control", a)
	}
	return nil
}

// prepareDefinitions builds each instrument's SecurityDefinition and checks
// that it fits in a datagram.
func (p *Publisher) prepareDefinitions() error {
	p.insDefs = make([]md.Definition, len(p.cfg.Instruments))
	for i, in := range p.cfg.Instruments {
		p.insDefs[i] = md.Definition{
			TotNumReports: uint32(len(p.cfg.Instruments)),
			Symbol:        []byte(in.Symbol),
			SecurityID:    uint64(i + 1),
			SecurityType:  []byte(in.SecurityType),
			Currency:      []byte(in.Currency),
			Description:   []byte(in.Description),
			Tick:          md.Dec(in.Tick, in.PriceExp),
			PriceExp:      in.PriceExp,
			SizeExp:       in.SizeExp,
			BookType:      md.PriceDepth,
			MarketDepth:   uint32(p.cfg.MaxDepth),
			Channel:       p.chans[p.insChan[i]].name,
		}
		d := p.insDefs[i]
		d.Header = md.Header{SeqNum: 1 << 31, SendingTime: 1 << 62}
		b, err := p.codec.AppendDefinition(p.scratch[:4], &d)
		if err != nil {
			return fmt.Errorf("publisher: security definition of %s: %w", in.Symbol, err)
		}
		if len(b)-4 > p.cfg.PayloadLimit {
			return fmt.Errorf("publisher: config: the security definition of %s is %d bytes, over the payload limit of %d (shorten its description)",
				in.Symbol, len(b)-4, p.cfg.PayloadLimit)
		}
	}
	// Warm the codec up to the largest incremental it may be asked for.
	e := make([]md.Entry, p.maxEntries)
	for i := range e {
		e[i] = md.Entry{Type: md.Offer, Symbol: p.insDefs[0].Symbol, RptSeq: uint32(i), Price: md.Dec(int64(i), -2), Size: md.Dec(1, 0), Orders: 1}
	}
	p.inc.Entries = e
	_, err := p.codec.AppendIncremental(p.scratch[:4], &p.inc)
	p.inc.Entries = nil
	return err
}

// evicted notes that a channel's oldest retained datagram is gone.
func (p *Publisher) evicted(r *record) { p.chans[r.ch].oldest = r.seq + 1 }

// DataDone is closed when the data has stopped, the last incrementals and
// the end-of-data heartbeats are sent and the dump (if any) is written. The
// books do not change after it.
func (p *Publisher) DataDone() <-chan struct{} { return p.dataDone }

// Done is closed when Run has returned.
func (p *Publisher) Done() <-chan struct{} { return p.stopped }

// WriteDump writes the ground-truth books (book.WriteDump). Call it after
// DataDone is closed; it fails before.
func (p *Publisher) WriteDump(w io.Writer) error {
	select {
	case <-p.dataDone:
		return p.sim.WriteDump(w)
	default:
		return errors.New("publisher: write dump: the data has not stopped yet")
	}
}

// Run publishes until the data stops (Duration, Count or ctx), writes the
// dump, lingers (Config.Linger) unless ctx is done, and returns. It sends on
// an mcast.Sender on Config.Interface (loopback by default). It returns nil
// when it stopped as configured or because ctx was cancelled, and the error
// of a failed send or dump otherwise. Run may be called once.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("publisher: Run called twice")
	}
	s, err := mcast.NewSender(mcast.SenderConfig{Interface: p.cfg.Interface, WriteBuffer: p.cfg.SendBuffer})
	if err != nil {
		p.finish()
		return fmt.Errorf("publisher: %w", err)
	}
	defer s.Close()
	return p.run(ctx, s)
}

// run is Run with the writer given; tests and benchmarks inject one.
func (p *Publisher) run(ctx context.Context, w batchWriter) error {
	p.state.Store(stateRunning)
	defer p.finish()
	p.w = w
	if p.cfg.DumpBooks != "" {
		// Create the dump now, so that a bad path fails before the data.
		f, err := os.Create(p.cfg.DumpBooks)
		if err != nil {
			return fmt.Errorf("publisher: dump books: %w", err)
		}
		p.dump = f
		defer func() {
			if p.dump != nil {
				p.dump.Close()
			}
		}()
	}
	err := p.loop(ctx)
	p.send()
	p.shared.publish(&p.st)
	s := p.Stats()
	p.log.Info("stopped", "datagrams", s.Datagrams, "bytes", s.Bytes, "incrementals", s.Incrementals,
		"entries", s.Entries, "heartbeats", s.Heartbeats, "definitions", s.Definitions, "error", err)
	return err
}

func (p *Publisher) finish() {
	// Requests still queued are left unfinished: their callers, woken by
	// stopped, finish them on the frozen state.
	p.state.Store(stateStopped)
	p.queue = nil
	close(p.stopped)
}

// clock sets the time of the current iteration.
func (p *Publisher) clock(epoch time.Time) {
	t := time.Now()
	p.now = t.Sub(epoch)
	p.wall = t.UnixNano()
}

func (p *Publisher) loop(ctx context.Context) error {
	cfg := &p.cfg
	epoch := time.Now()
	p.clock(epoch)
	p.startup()
	p.send()
	if p.err != nil {
		return p.err
	}
	p.logStart()

	dataStart := p.now
	var dataEnd, lingerEnd time.Duration
	dataOn := true
	defNext := p.now + cfg.DefinitionsInterval
	hbEvery := max(cfg.Heartbeat/4, time.Millisecond)
	hbNext := p.now + hbEvery
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var paced int64             // incrementals sent at the paced rate
	var lagLogged time.Duration // the last lag behind schedule logged
	for {
		p.clock(epoch)
		if dataOn && (ctx.Err() != nil || (cfg.Duration > 0 && p.now-dataStart >= cfg.Duration) ||
			(cfg.Count > 0 && int64(p.st.Incrementals) >= cfg.Count)) {
			dataOn = false
			dataEnd = p.now
			if err := p.stopData(dataEnd - dataStart); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			lingerEnd = p.now + cfg.Linger
		}
		if !dataOn && (p.now >= lingerEnd || ctx.Err() != nil) {
			return p.err
		}
		behind := false
		if dataOn {
			want := int64(maxTickDatagrams)
			if cfg.Rate > 0 {
				want = int64(cfg.Rate*(p.now-dataStart).Seconds()) - paced
				if want > 0 {
					due := dataStart + time.Duration(float64(paced+1)/cfg.Rate*float64(time.Second)) // the oldest unsent
					if lag := p.now - due; lag > p.st.MaxLag {
						p.st.MaxLag = lag
						if lag > max(50*time.Millisecond, 2*lagLogged) { // a growing lag logs a few lines, not one per loop
							lagLogged = lag
							p.log.Warn("sending behind schedule", "lag", lag, "queued_requests", len(p.queue))
						}
					}
				}
			}
			if want > 0 {
				before := p.st.Incrementals
				p.produce(int(min(want, maxTickDatagrams)))
				paced += int64(p.st.Incrementals - before)
				behind = want > maxTickDatagrams || cfg.Rate == 0
			}
		}
		if p.defCursor < 0 && p.now >= defNext {
			p.defCursor = 0
		}
		if p.defCursor >= 0 {
			p.definitions(defsPerIteration)
			if p.defCursor < 0 {
				defNext = p.now + cfg.DefinitionsInterval
			}
		}
		if p.now >= hbNext {
			p.heartbeats()
			hbNext = p.now + hbEvery
		}
		p.send()
		p.serve()
		p.shared.publish(&p.st)
		if p.err != nil {
			return p.err
		}
		if behind || len(p.queue) > 0 || p.defCursor >= 0 || (dataOn && cfg.Count > 0 && int64(p.st.Incrementals) >= cfg.Count) {
			continue
		}
		wake := min(hbNext, defNext)
		if dataOn {
			if cfg.Rate > 0 {
				wake = min(wake, dataStart+time.Duration(float64(paced+1)/cfg.Rate*float64(time.Second)))
			}
			if cfg.Duration > 0 {
				wake = min(wake, dataStart+cfg.Duration)
			}
		} else {
			wake = min(wake, lingerEnd)
		}
		p.sleep(ctx, timer, wake-time.Since(epoch))
	}
}

// sleep waits for d, a request or the end of ctx.
func (p *Publisher) sleep(ctx context.Context, timer *time.Timer, d time.Duration) {
	if d <= 0 {
		return
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
	case r := <-p.reqs:
		p.queue = append(p.queue, r)
	case <-timer.C:
	}
	timer.Stop()
}

// startup sends a SequenceReset on every channel, every security
// definition, the security statuses and the opening books.
func (p *Publisher) startup() {
	for ch := range p.chans {
		p.reset(ch)
	}
	p.defCursor = 0
	p.definitions(len(p.insDefs))
	if !p.cfg.NoStatus {
		for i := range p.cfg.Instruments {
			p.status(i)
		}
	}
	for i := range p.cfg.Instruments {
		if len(p.tick)+2*p.cfg.MaxDepth > cap(p.tick) {
			p.flushTick()
		}
		n := len(p.tick)
		p.tick = p.sim.Open(p.tick, i)
		p.account(n)
	}
	p.flushTick()
}

// produce runs one send tick: events until want incremental datagrams are
// opened (events of a channel already opened in the tick join its
// datagram) or 2*want+8 events have run, then encodes and queues them.
func (p *Publisher) produce(want int) {
	events := 0
	opened := len(p.touched)
	for opened < want && events < 2*want+8 {
		n := len(p.tick)
		p.tick = p.sim.Step(p.tick)
		events++
		if p.account(n) {
			opened++
		}
	}
	p.st.Events += uint64(events)
	p.flushTick()
}

// account counts the entries of p.tick from index from (one instrument's)
// in their channel and reports whether the channel is new in the tick.
func (p *Publisher) account(from int) bool {
	if from < 0 || from >= len(p.tick) {
		return false
	}
	ch := p.insChan[p.tick[from].Instrument]
	c := &p.chans[ch]
	first := c.count == 0
	if first {
		p.touched = append(p.touched, ch)
	}
	c.count += int32(len(p.tick) - from)
	return first
}

// flushTick groups the tick's entries by channel (a counting sort, stable)
// and sends each channel's as incrementals.
func (p *Publisher) flushTick() {
	if p.sim.err != nil && p.err == nil {
		p.err = p.sim.err
	}
	if len(p.tick) > len(p.sorted) {
		p.sorted = make([]md.Entry, cap(p.tick)) // only if a caller overfilled the tick
	}
	off := int32(0)
	for _, ch := range p.touched {
		c := &p.chans[ch]
		c.fill = off
		off += c.count
	}
	for i := range p.tick {
		c := &p.chans[p.insChan[p.tick[i].Instrument]]
		p.sorted[c.fill] = p.tick[i].Entry
		c.fill++
	}
	for _, ch := range p.touched {
		c := &p.chans[ch]
		p.incremental(int(ch), p.sorted[c.fill-c.count:c.fill])
		c.count = 0
	}
	p.touched = p.touched[:0]
	p.tick = p.tick[:0]
}

// incremental sends entries as one incremental refresh, or as several when
// they do not fit in the payload limit: each part then has its own sequence
// number and all but the last are marked Continued.
func (p *Publisher) incremental(ch int, entries []md.Entry) {
	c := &p.chans[ch]
	limit := p.cfg.PayloadLimit
	for len(entries) > 0 && p.err == nil {
		// Guess from the bytes per entry of the last incremental, with a
		// margin, so that one encoding is usually enough.
		k := min(len(entries), p.maxEntries, max(1, limit*15/p.entryBytes16))
		var b []byte
		for {
			p.inc.Header = md.Header{SeqNum: c.seq + 1, SendingTime: p.wall}
			p.inc.Continued = k < len(entries)
			p.inc.Entries = entries[:k]
			var err error
			b, err = p.codec.AppendIncremental(p.scratch[:4], &p.inc)
			if err != nil {
				p.fail(fmt.Errorf("publisher: encode incremental on %s: %w", c.name, err))
				return
			}
			p.scratch = b[:4] // keep any growth
			n := len(b) - 4
			if n <= limit {
				break
			}
			if k == 1 {
				p.fail(fmt.Errorf("publisher: one entry of %s encodes in %d bytes, over the payload limit of %d", entries[0].Symbol, n, limit))
				return
			}
			k = max(1, min(k-1, k*limit/n-1))
		}
		p.entryBytes16 = max(1, (3*p.entryBytes16+16*(len(b)-4)/k)/4)
		p.inc.Entries = nil
		c.seq++
		p.st.Incrementals++
		p.st.Entries += uint64(k)
		if k < len(entries) {
			p.st.Splits++
		}
		p.emit(ch, b, c.seq, true)
		entries = entries[k:]
	}
}

// definitions sends up to n SecurityDefinitions of the running cycle.
func (p *Publisher) definitions(n int) {
	c := &p.chans[p.defs]
	for ; n > 0 && p.defCursor < len(p.insDefs); n-- {
		d := &p.insDefs[p.defCursor]
		d.Header = md.Header{SeqNum: c.seq + 1, SendingTime: p.wall}
		b, err := p.codec.AppendDefinition(p.scratch[:4], d)
		if err != nil {
			p.fail(fmt.Errorf("publisher: encode security definition of %s: %w", d.Symbol, err))
			return
		}
		c.seq++
		p.st.Definitions++
		p.emit(p.defs, b, c.seq, true)
		p.defCursor++
	}
	if p.defCursor >= len(p.insDefs) {
		p.defCursor = -1
	}
}

// status sends the SecurityStatus (open) of instrument i.
func (p *Publisher) status(i int) {
	ch := int(p.insChan[i])
	c := &p.chans[ch]
	m := md.Status{Header: md.Header{SeqNum: c.seq + 1, SendingTime: p.wall}, Symbol: p.insDefs[i].Symbol, TradingStatus: statusOpen}
	b, err := p.codec.AppendStatus(p.scratch[:4], &m)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode security status of %s: %w", m.Symbol, err))
		return
	}
	c.seq++
	p.st.Statuses++
	p.emit(ch, b, c.seq, true)
}

// reset sends a SequenceReset (NewSeqNo = the next number) with preamble 0.
func (p *Publisher) reset(ch int) {
	c := &p.chans[ch]
	m := md.Reset{Header: md.Header{SendingTime: p.wall}, NewSeqNo: c.seq + 1}
	b, err := p.codec.AppendReset(p.scratch[:4], &m)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode sequence reset on %s: %w", c.name, err))
		return
	}
	p.st.Resets++
	p.emit(ch, b, 0, false)
}

// heartbeat sends a Heartbeat carrying the last sequence number sent in its
// preamble, MsgSeqNum and LastMsgSeqNumProcessed.
func (p *Publisher) heartbeat(ch int) {
	c := &p.chans[ch]
	m := md.Heartbeat{Header: md.Header{SeqNum: c.seq, SendingTime: p.wall}, LastSeqNum: c.seq}
	b, err := p.codec.AppendHeartbeat(p.scratch[:4], &m)
	if err != nil {
		p.fail(fmt.Errorf("publisher: encode heartbeat on %s: %w", c.name, err))
		return
	}
	p.st.Heartbeats++
	p.emit(ch, b, c.seq, false)
}

// heartbeats sends a heartbeat on every channel idle for the interval.
func (p *Publisher) heartbeats() {
	for ch := range p.chans {
		if p.now-p.chans[ch].lastSend >= p.cfg.Heartbeat {
			p.heartbeat(ch)
		}
	}
}

// emit finishes the datagram in b (4 bytes of room for the preamble, then
// the FAST message): it writes the preamble, copies it into the retention
// arena, records it if it is sequenced and queues it on both lines.
func (p *Publisher) emit(ch int, b []byte, preamble uint32, sequenced bool) {
	p.scratch = b[:4] // keep any growth
	binary.LittleEndian.PutUint32(b, preamble)
	n := len(b)
	size := n // on the wire: with the trailer, sealed in send (auth.go)
	if p.key != nil {
		size += dgauth.Overhead
	}
	if p.nout > 0 && p.ret.end(size) > p.unsentFrom+uint64(len(p.ret.arena)) {
		p.send() // the arena would overwrite datagrams not yet sent
	}
	dst, off := p.ret.reserve(size)
	copy(dst, b)
	if p.nout == 0 {
		p.unsentFrom = off
	}
	c := &p.chans[ch]
	if sequenced {
		c.last = p.ret.add(int32(ch), preamble, off, n, c.last)
	}
	c.lastSend = p.now
	at := stampOffset(dst, p.wall)
	p.out[p.nout], p.stampAt[p.nout], p.sealN[p.nout] = mcast.Message{Buf: dst, Addr: c.a}, at, p.sealLen(n)
	p.nout++
	if p.hasB {
		// The same bytes: sealed once, with line A's address, through the A copy.
		p.out[p.nout], p.stampAt[p.nout], p.sealN[p.nout] = mcast.Message{Buf: dst, Addr: c.b}, at, -1
		p.nout++
	}
	p.st.Datagrams++
	p.st.Bytes += uint64(size)
	if p.nout+2 > len(p.out) {
		p.send()
	}
}

// send hands the queued datagrams to the kernel.
func (p *Publisher) send() {
	if p.nout == 0 {
		return
	}
	p.restamp(time.Now().UnixNano()) // SendingTime = now, just before the kernel has them
	p.seal()                         // after the last change to the bytes
	n, err := p.w.WriteBatch(p.out[:p.nout])
	if err != nil {
		p.fail(fmt.Errorf("publisher: sent %d of %d datagrams: %w", n, p.nout, err))
	}
	p.nout = 0
}

func (p *Publisher) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// stopData ends the data phase: it sends what is queued and a heartbeat on
// every channel (so that handlers see the last sequence numbers at once),
// writes the dump and closes DataDone.
func (p *Publisher) stopData(elapsed time.Duration) error {
	p.flushTick()
	for ch := range p.chans {
		p.heartbeat(ch)
	}
	p.send()
	p.st.DataTime = elapsed
	p.shared.publish(&p.st)
	if p.err != nil {
		return p.err
	}
	s := p.Stats()
	secs := max(elapsed.Seconds(), 1e-9)
	p.log.Info("data stopped",
		"datagrams", s.Datagrams, "incrementals", s.Incrementals, "splits", s.Splits, "definitions", s.Definitions,
		"statuses", s.Statuses, "heartbeats", s.Heartbeats, "entries", s.Entries, "events", s.Events, "bytes", s.Bytes,
		"seconds", fmt.Sprintf("%.3f", elapsed.Seconds()), "max_lag", s.MaxLag,
		"incrementals_per_s", fmt.Sprintf("%.0f", float64(s.Incrementals)/secs),
		"entries_per_s", fmt.Sprintf("%.0f", float64(s.Entries)/secs),
		"mbit_per_s", fmt.Sprintf("%.2f", float64(s.Bytes)*8/secs/1e6))
	if p.dump != nil {
		if err := p.writeDumpFile(); err != nil {
			return err
		}
		p.log.Info("books dumped", "file", p.cfg.DumpBooks, "books", p.sim.Len())
	}
	close(p.dataDone)
	return nil
}

// writeDumpFile writes the books to the dump file created by run.
func (p *Publisher) writeDumpFile() error {
	f := p.dump
	p.dump = nil
	w := bufio.NewWriter(f)
	err := p.sim.WriteDump(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("publisher: dump books to %s: %w", p.cfg.DumpBooks, err)
	}
	return nil
}

func (p *Publisher) logStart() {
	cfg := &p.cfg
	iface := cfg.Interface
	if !iface.IsValid() {
		iface = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	rate := "max"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("%g/s", cfg.Rate)
	}
	args := []any{"instruments", len(cfg.Instruments), "channels", len(p.chans) - 1, "mapping", cfg.Mapping.String(),
		"port", cfg.Port, "definitions", string(p.chans[p.defs].name), "iface", iface.String(), "rate", rate,
		"payload_limit", cfg.PayloadLimit, "heartbeat", cfg.Heartbeat.String()}
	if p.hasB {
		args = append(args, "b_definitions", p.chans[p.defs].b.String(), "b_first", p.chans[0].b.String())
	}
	p.log.Info("publishing", args...)
	for _, c := range p.infos {
		p.log.Debug("channel", "name", c.Name, "b", c.B, "instruments", c.Instruments)
	}
}

// Stats counts what a Publisher has sent. Datagrams and Bytes count line A
// only (line B repeats them).
type Stats struct {
	Datagrams    uint64 // datagrams of every kind, preamble included in Bytes
	Bytes        uint64
	Incrementals uint64 // X messages (one per datagram)
	Splits       uint64 // incrementals marked Continued (parts of a split update)
	Entries      uint64 // MD entries in the incrementals
	Events       uint64 // simulator events after the opening books
	Definitions  uint64
	Statuses     uint64
	Heartbeats   uint64
	Resets       uint64
	DataTime     time.Duration // length of the data phase, once it ended
	// MaxLag is the most the paced sending fell behind its schedule (with a rate):
	// how late the latest datagram due went out. Recovery requests are served on the
	// sending goroutine between batches; this is what shows whether they stall it.
	MaxLag time.Duration
}

// sharedStats is Stats as atomics, published by the loop once per iteration.
type sharedStats struct {
	v [12]atomic.Uint64
}

func (s *sharedStats) publish(st *Stats) {
	for i, x := range [...]uint64{st.Datagrams, st.Bytes, st.Incrementals, st.Splits, st.Entries, st.Events,
		st.Definitions, st.Statuses, st.Heartbeats, st.Resets, uint64(st.DataTime), uint64(st.MaxLag)} {
		s.v[i].Store(x)
	}
}

// Stats returns the counters as of the last loop iteration.
func (p *Publisher) Stats() Stats {
	v := &p.shared.v
	return Stats{Datagrams: v[0].Load(), Bytes: v[1].Load(), Incrementals: v[2].Load(), Splits: v[3].Load(),
		Entries: v[4].Load(), Events: v[5].Load(), Definitions: v[6].Load(), Statuses: v[7].Load(),
		Heartbeats: v[8].Load(), Resets: v[9].Load(), DataTime: time.Duration(v[10].Load()),
		MaxLag: time.Duration(v[11].Load())}
}

// compile-time check that the book types satisfy what the dump needs.
var _ book.View = (*book.MBP)(nil)
