package publisher

import (
	"context"
	"errors"
	"fastfeed/internal/passhash"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
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
	users *passhash.Users // the recovery service's logins
	cfg   Config
	log   *slog.Logger
	codec *md.Codec
	sim   *Simulator // the simulator; nil with a Config.Source
	src   Source     // the external source; nil for the simulator
	books truth      // the ground-truth books: the simulator's or the source's (extBooks)
	ext   *extBooks  // with a Config.Source

	// mu guards what the hooks read from other goroutines and a Source may extend while
	// the loop runs (AddInstrument): cfg.Instruments, chans' instruments, byName,
	// bySymbol, insChan and infos. The loop, their only writer, reads them unlocked.
	mu sync.RWMutex

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
	snap      snapState
	st        Stats
	// lag is how far behind its schedule the paced sending is now (ns; 0 on time, or
	// with no rate): the recovery service serves what the multicast leaves (Behind).
	lag atomic.Int64

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
	closed      bool  // a Source's channel not yet opened (no SequenceReset sent)
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
	var sim *Simulator
	var books truth
	var ext *extBooks
	if cfg.Source == nil {
		if sim, err = NewSimulator(cfg.Instruments, cfg.MinDepth, cfg.MaxDepth, cfg.Seed); err != nil {
			return nil, err
		}
		books = sim
	} else {
		if ext, err = newExtBooks(cfg.Instruments); err != nil {
			return nil, err
		}
		books = ext
	}
	logins := make(map[string]string, len(cfg.Recovery.Users))
	for _, u := range cfg.Recovery.Users {
		logins[u.Username] = u.Password
	}
	users, err := passhash.NewUsers(logins)
	if err != nil {
		return nil, fmt.Errorf("publisher: recovery %w", err)
	}
	p := &Publisher{
		users:     users,
		cfg:       cfg,
		log:       cfg.Logger,
		codec:     codec,
		sim:       sim,
		src:       cfg.Source,
		books:     books,
		ext:       ext,
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
	if err := p.buildSnapshotChannels(); err != nil {
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

// evicted notes that a channel's oldest retained datagram is gone.
func (p *Publisher) evicted(r *record) { p.chans[r.ch].oldest = r.seq + 1 }

// DataDone is closed when the data has stopped, the last incrementals and
// the end-of-data heartbeats are sent and the dump (if any) is written. The
// books do not change after it.
func (p *Publisher) DataDone() <-chan struct{} { return p.dataDone }

// Done is closed when Run has returned.
func (p *Publisher) Done() <-chan struct{} { return p.stopped }

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
	var err error
	if p.src != nil {
		err = p.loopSource(ctx)
	} else {
		err = p.loop(ctx)
	}
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

// begin starts the clock at epoch, sends what goes out before the data (startup) and
// logs the start; both loops begin with it.
func (p *Publisher) begin(ctx context.Context, epoch time.Time) error {
	p.clock(epoch)
	p.startup(ctx)
	p.send()
	if p.err != nil {
		return p.err
	}
	p.clock(epoch)
	p.logStart()
	return nil
}

func (p *Publisher) loop(ctx context.Context) error {
	cfg := &p.cfg
	epoch := time.Now()
	if err := p.begin(ctx, epoch); err != nil {
		return err
	}

	dataStart := p.now
	p.snap.start = p.now
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
			p.lag.Store(0)
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
				lagNow := time.Duration(0)
				if want > 0 {
					due := dataStart + time.Duration(float64(paced+1)/cfg.Rate*float64(time.Second)) // the oldest unsent
					if lag := p.now - due; cfg.MaxLag > 0 && lag > cfg.MaxLag {
						// Skip what was due before now-MaxLag: the schedule resumes there.
						skip := min(want, int64(float64(lag-cfg.MaxLag)/float64(time.Second)*cfg.Rate)+1)
						paced += skip
						want -= skip
						p.st.Skipped += uint64(skip)
					}
					lagNow = max(0, p.now-due)
					if cfg.MaxLag > 0 {
						lagNow = min(lagNow, cfg.MaxLag) // what was due before was skipped
					}
					if lag := p.now - due; lag > p.st.MaxLag {
						p.st.MaxLag = lag
						if lag > max(50*time.Millisecond, 2*lagLogged) { // a growing lag logs a few lines, not one per loop
							lagLogged = lag
							p.log.Warn("sending behind schedule", "lag", lag, "queued_requests", len(p.queue))
						}
					}
				}
				p.lag.Store(int64(lagNow))
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
		if due := p.snapshotsDue(); due > 0 {
			p.snapshots(int(min(due, snapsPerIteration)))
			behind = behind || due > snapsPerIteration
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
		if len(p.snap.chans) > 0 {
			wake = min(wake, p.snapshotWake())
		}
		if d := wake - time.Since(epoch); dataOn && d < cfg.SpinWait {
			p.spin(ctx, d)
		} else {
			p.sleep(ctx, timer, d)
		}
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

// spin waits for d as sleep does, without sleeping (Config.SpinWait): it reads the
// clock until d has passed, a request comes or ctx ends.
func (p *Publisher) spin(ctx context.Context, d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return
		case r := <-p.reqs:
			p.queue = append(p.queue, r)
			return
		default:
		}
	}
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
	if p.sim != nil && p.sim.err != nil && p.err == nil {
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

// compile-time check that the book types satisfy what the dump needs.
var _ book.View = (*book.MBP)(nil)
