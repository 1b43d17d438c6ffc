package publisher

// An external data source in place of the simulator (Config.Source): a ticker plant
// republishing an exchange's feed (ingest --republish) drives the same channels,
// sequencing, retention, heartbeats, definitions, snapshot channels and recovery hooks as
// pub's simulator.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// Source is a Publisher's external data source (Config.Source). The publishing loop
// calls Poll, between its own duties (heartbeats, definition cycles, snapshot channels,
// recovery requests); during the call, on the loop's goroutine, the source publishes
// through the Publisher's source methods: AddInstrument, SetLevel, ReplaceBook, Trade
// and SetStale. What a Poll publishes is sent when it returns (one incremental per
// channel touched, split if too large).
type Source interface {
	// Poll takes the input that is ready, waiting at most wait for some, and publishes
	// it. done reports that the input has ended: the data phase stops as it does at
	// Config.Duration (dump, DataDone, then Linger). An error stops the publisher.
	// Once ctx is done, Poll takes what is left (what it holds, what its sockets
	// hold) and reports done; the loop calls it again if it did not.
	Poll(ctx context.Context, p *Publisher, wait time.Duration) (done bool, err error)
	// Wake makes a Poll that waits return soon. It is called from other goroutines
	// (a recovery request waiting for the loop).
	Wake()
}

// Status values of SetStale's SecurityStatus (f), as on NATS (DESIGN.md).
const (
	StatusStale = 20 // SecurityTradingStatus with Text "stale": the source's book cannot be trusted
	StatusReady = 17 // with Text "ready": whole again
)

var (
	textStale = []byte("stale")
	textReady = []byte("ready")
)

// truth is what the loop reads of the ground-truth books: the simulator's, or the ones a
// Source's entries are applied to (extBooks).
type truth interface {
	Book(i int) *book.MBP
	RptSeq(i int) uint32
	WriteDump(w io.Writer) error
	Len() int
}

// extBooks are the books of a Source's instruments: exactly what has been published.
type extBooks struct {
	open    []bool // the instrument's status sent and its channel opened
	books   []*book.MBP
	rptSeq  []uint32
	symbols []string
	levels  []book.Level // ReplaceBook's scratch
}

func newExtBooks(ins []Instrument) (*extBooks, error) {
	x := &extBooks{}
	for _, in := range ins {
		if err := x.add(in); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (x *extBooks) add(in Instrument) error {
	b, err := book.NewMBP(book.Config{PriceExp: int(in.PriceExp), SizeExp: int(in.SizeExp)})
	if err != nil {
		return fmt.Errorf("publisher: %s: %w", in.Symbol, err)
	}
	x.books = append(x.books, b)
	x.open = append(x.open, false)
	x.rptSeq = append(x.rptSeq, 0)
	x.symbols = append(x.symbols, in.Symbol)
	return nil
}

func (x *extBooks) Book(i int) *book.MBP { return x.books[i] }
func (x *extBooks) RptSeq(i int) uint32  { return x.rptSeq[i] }
func (x *extBooks) Len() int             { return len(x.books) }
func (x *extBooks) WriteDump(w io.Writer) error {
	named := make([]book.Named, len(x.books))
	for i, b := range x.books {
		named[i] = book.Named{Symbol: x.symbols[i], Book: b}
	}
	return book.WriteDump(w, named)
}

// InstrumentIndex returns the index of symbol's instrument, for the source methods.
func (p *Publisher) InstrumentIndex(symbol string) (int, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.bySymbol[symbol]
	return i, ok
}

// AddInstrument adds an instrument of the Source (Symbol, PriceExp, SizeExp and Tick
// are required; the simulator's StartPrice and Weight are not used) and returns its
// index. Its SecurityDefinition goes out at once on the definitions channel (and in
// every later cycle); its channel, if new, is opened with a SequenceReset, and its
// SecurityStatus (open, unless Config.NoStatus) sent, just before its first entry or
// status: a receiver that joins the channel when the definition names it (feed --all)
// has it from its first datagram when the source defines instruments ahead of their
// data. Its book starts empty. Call it from Source.Poll only. It allocates (tables
// grow): not a per-message call.
func (p *Publisher) AddInstrument(in Instrument) (int, error) {
	if p.ext == nil {
		return 0, fmt.Errorf("publisher: AddInstrument: the publisher runs its simulator, not a Source")
	}
	if err := in.validateSourced(0); err != nil {
		return 0, fmt.Errorf("publisher: instrument %s: %w", in.Symbol, err)
	}
	if _, dup := p.InstrumentIndex(in.Symbol); dup {
		return 0, fmt.Errorf("publisher: instrument %s: already published", in.Symbol)
	}
	cfg := &p.cfg
	a := netip.AddrPortFrom(cfg.Mapping.Group(in.Symbol), cfg.Port)
	if a == p.chans[p.defs].a {
		return 0, fmt.Errorf("publisher: instrument %s: its group %v is the definitions channel's: choose another group base", in.Symbol, a)
	}
	ch := -1
	for i := range p.chans {
		if p.chans[i].a == a && i != p.defs {
			ch = i
			break
		}
	}
	var c channel
	if ch < 0 {
		c = channel{name: mcast.AppendChannelName(nil, a), a: a, oldest: 1, closed: true}
		if p.hasB {
			bMap, bPort, _, err := bLine(cfg)
			if err != nil {
				return 0, err
			}
			c.b = netip.AddrPortFrom(bMap.Group(in.Symbol), bPort)
			for i := range p.chans {
				if p.chans[i].a == c.b || p.chans[i].b == c.b || p.chans[i].b == a {
					return 0, fmt.Errorf("publisher: instrument %s: its B line channel %v clashes with channel %s", in.Symbol, c.b, p.chans[i].name)
				}
			}
		}
	}
	var snap netip.AddrPort
	if cfg.SnapshotChannels && ch < 0 {
		var err error
		if snap, err = mcast.SnapshotChannel(a, cfg.SnapshotPortOffset); err != nil {
			return 0, fmt.Errorf("publisher: instrument %s: %w", in.Symbol, err)
		}
	}
	if err := p.ext.add(in); err != nil {
		return 0, err
	}
	p.mu.Lock()
	i := len(cfg.Instruments)
	cfg.Instruments = append(cfg.Instruments, in)
	if ch < 0 {
		ch = len(p.chans)
		p.chans = append(p.chans, c)
		p.byName[string(c.name)] = ch
		info := ChannelInfo{Name: string(c.name), Group: c.a}
		if p.hasB {
			info.B = c.b
		}
		p.infos = append(p.infos, info)
		if cfg.SnapshotChannels {
			for len(p.snap.chans) <= ch {
				p.snap.chans = append(p.snap.chans, snapChannel{})
			}
			p.snap.chans[ch].a = snap
		}
	}
	p.chans[ch].instruments = append(p.chans[ch].instruments, int32(i))
	p.insChan = append(p.insChan, int32(ch))
	p.bySymbol[in.Symbol] = i
	p.infos[ch].Instruments = append(p.infos[ch].Instruments, in.Symbol)
	p.mu.Unlock()
	if err := p.addDefinition(i); err != nil {
		p.fail(err) // cannot be undone now: the tables have it
		return 0, err
	}
	if p.state.Load() == stateRunning {
		p.definition(i)
	}
	return i, nil
}

// open sends, before instrument i's first entry or status, the SequenceReset of its
// channel if the channel has not sent one, and its SecurityStatus (open).
func (p *Publisher) open(i int) {
	p.flushTick() // what the poll queued goes first
	c := &p.chans[p.insChan[i]]
	if c.closed {
		c.closed = false
		p.reset(int(p.insChan[i]))
	}
	if !p.cfg.NoStatus {
		p.status(i)
	}
	p.ext.open[i] = true
}

// SetLevel states that instrument i's side has, at price, a level of size with orders
// orders (mantissas at the instrument's exponents); size 0 means no level. It publishes
// the New, Change or Delete entry that brings the book there, with the instrument's
// next RptSeq, and nothing if the book already is there. It reports whether it
// published. Call it from Source.Poll only; it does not allocate once the book has
// grown to its depth.
func (p *Publisher) SetLevel(i int, side book.Side, price, size, orders int64) bool {
	b := p.ext.books[i]
	old, had := b.Level(side, price)
	var action md.Action
	switch {
	case size == 0 && !had:
		return false
	case size == 0:
		action = md.Delete
	case !had:
		action = md.New
	case old.Size == size && old.Orders == orders:
		return false
	default:
		action = md.Change
	}
	u := book.Update{Action: book.Action(action), Type: book.EntryType(side), Price: price, Size: size, Orders: orders}
	if err := b.Apply(u); err != nil {
		p.st.SourceErrors++ // a book beyond its capacity: not published
		return false
	}
	in := &p.cfg.Instruments[i]
	e := md.Entry{Action: action, Type: mdbook.SideType(side), Price: md.Dec(price, in.PriceExp)}
	if action != md.Delete {
		e.Size = md.Dec(size, in.SizeExp)
		e.Orders = uint32(orders)
	}
	p.queueEntry(i, e)
	return true
}

// Trade publishes a trade (MDEntryType 2) of instrument i at price for size, with the
// instrument's next RptSeq; the book does not change. Call it from Source.Poll only.
func (p *Publisher) Trade(i int, price, size int64) {
	in := &p.cfg.Instruments[i]
	p.queueEntry(i, md.Entry{Action: md.New, Type: md.Trade, Price: md.Dec(price, in.PriceExp), Size: md.Dec(size, in.SizeExp)})
}

// ReplaceBook states instrument i's whole book (each side best first, mantissas at its
// exponents) and publishes the entries that bring the published book there: a Delete
// for every level gone, a New or Change for every level new or different. Call it from
// Source.Poll only.
func (p *Publisher) ReplaceBook(i int, bids, asks []book.Level) {
	x := p.ext
	for side, want := range [2][]book.Level{bids, asks} {
		s := book.Side(side)
		x.levels = x.books[i].AppendLevels(x.levels[:0], s)
		old := x.levels
		better := func(a, b int64) bool { return a > b }
		if s == book.Ask {
			better = func(a, b int64) bool { return a < b }
		}
		j, k := 0, 0
		for j < len(old) || k < len(want) {
			switch {
			case k == len(want) || (j < len(old) && better(old[j].Price, want[k].Price)):
				p.SetLevel(i, s, old[j].Price, 0, 0)
				j++
			case j == len(old) || better(want[k].Price, old[j].Price):
				p.SetLevel(i, s, want[k].Price, want[k].Size, want[k].Orders)
				k++
			default:
				p.SetLevel(i, s, want[k].Price, want[k].Size, want[k].Orders)
				j++
				k++
			}
		}
	}
}

// SetStale marks instrument i's book stale (the source lost entries of it) or whole
// again, and on a change publishes a SecurityStatus (f) on its channel: trading status
// StatusStale with Text "stale", or StatusReady with Text "ready" (the statuses of
// DESIGN.md's NATS status subjects). The entries queued before it go out before it.
// Call it from Source.Poll only.
func (p *Publisher) SetStale(i int, stale bool) {
	b := p.ext.books[i]
	if b.Stale() == stale {
		return
	}
	if !p.ext.open[i] {
		p.open(i)
	}
	b.SetStale(stale)
	p.flushTick()
	if stale {
		p.statusText(i, StatusStale, textStale)
	} else {
		p.statusText(i, StatusReady, textReady)
	}
}

// queueEntry numbers e with instrument i's next RptSeq and queues it in the current
// tick; a full tick is sent.
func (p *Publisher) queueEntry(i int, e md.Entry) {
	x := p.ext
	if !x.open[i] {
		p.open(i)
	}
	x.rptSeq[i]++
	e.RptSeq = x.rptSeq[i]
	e.Symbol = p.insDefs[i].Symbol
	x.books[i].SetRptSeq(int64(e.RptSeq))
	if len(p.tick) == cap(p.tick) {
		p.flushTick()
	}
	n := len(p.tick)
	p.tick = append(p.tick, SimEntry{Instrument: int32(i), Entry: e})
	p.account(n)
	p.st.Events++
}

// loopSource is the loop of a publisher with a Source: poll it for data between the
// heartbeats, definition cycles, snapshot channels and requests, until it is done or ctx
// ends; then linger.
func (p *Publisher) loopSource(ctx context.Context) error {
	cfg := &p.cfg
	epoch := time.Now()
	if err := p.begin(ctx, epoch); err != nil {
		return err
	}
	dataStart := p.now
	p.snap.start = p.now
	var lingerEnd time.Duration
	dataOn := true
	defNext := p.now + cfg.DefinitionsInterval
	hbEvery := max(cfg.Heartbeat/4, time.Millisecond)
	hbNext := p.now + hbEvery
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.clock(epoch)
		if !dataOn && (p.now >= lingerEnd || ctx.Err() != nil) {
			return p.err
		}
		wake := min(hbNext, defNext)
		if len(p.snap.chans) > 0 {
			wake = min(wake, p.snapshotWake())
		}
		if !dataOn {
			wake = min(wake, lingerEnd)
		}
		wait := max(0, wake-p.now)
		if len(p.queue) > 0 || p.defCursor >= 0 || len(p.reqs) > 0 {
			wait = 0
		}
		if dataOn {
			done, err := p.src.Poll(ctx, p, wait)
			if err == nil && !done && ctx.Err() != nil {
				done, err = p.src.Poll(ctx, p, 0) // the last: what the source still holds
			}
			p.flushTick()
			p.clock(epoch)
			if err != nil {
				p.fail(fmt.Errorf("publisher: source: %w", err))
				return p.err
			}
			if done || ctx.Err() != nil {
				dataOn = false
				if err := p.stopData(p.now - dataStart); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
				lingerEnd = p.now + cfg.Linger
			}
		} else {
			p.sleep(ctx, timer, wait)
			p.clock(epoch)
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
	}
}

// SourceExponents returns instrument i's price and size exponents. Call it from
// Source.Poll only.
func (p *Publisher) SourceExponents(i int) (priceExp, sizeExp int8) {
	in := &p.cfg.Instruments[i]
	return in.PriceExp, in.SizeExp
}
