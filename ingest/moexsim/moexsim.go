// Package moexsim emulates the Moscow Exchange's side of an ASTS FIX/FAST market for
// tests and demos: fastfeed's market simulator (package publisher) drives order books
// whose changes go out as the exchange sends them, on every feed of a market of the
// exchange's config.xml and on both lines A and B:
//
//   - OLR: order-level incrementals (one order per simulated price level: New, Change,
//     Delete), TLR: trades, MSR: statistics (the traded volume per instrument), each entry
//     with its instrument's RptSeq of that feed;
//   - IDF: instrument definitions (d) in cycles, ISF: statuses (f) and the trading session
//     status (h);
//   - OLS, TLS, MSS: snapshot cycles, one snapshot per instrument in fragments (RouteFirst,
//     LastFragment) with RptSeq and LastMsgSeqNumProcessed;
//   - heartbeats (0) on the incremental feeds while idle, so a lost tail shows;
//   - the TCP historical replay service ([Exchange.ServeReplay]) over the incremental feeds.
//
// Every datagram is [uint32 LE MsgSeqNum][one FAST message], the dictionaries reset per
// message. Loss can be injected on the exchange's side (line A only, both lines, bursts)
// to force each of a receiver's recovery paths. The exchange keeps its ground truth: the
// order books (book.MBO, dumped as `pub --dump-books` does) and the trade list in the
// `ingest --dump-trades` format.
//
// An [Exchange] is driven by Step and Cycle calls on one goroutine; ServeReplay runs
// beside it.
package moexsim

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"fastfeed/book"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
	"fastfeed/ingest/moex"
	"fastfeed/md"
	"fastfeed/publisher"
)

// Output sends one datagram of a line: from src to the line's group.
type Output interface {
	Send(src, dst netip.AddrPort, payload []byte) error
}

// Config configures an Exchange.
type Config struct {
	// Market is the market to emulate, its addresses already mapped where they must be
	// (Market.MapAddresses): FOND or CURR (each with its templates).
	Market *moex.Market
	// Instruments is how many instruments the simulator trades (default 8).
	Instruments int
	// Seed seeds the simulator.
	Seed uint64
	// MinDepth and MaxDepth bound each side's levels (default 2 and 10).
	MinDepth, MaxDepth int
	// FragmentEntries bounds the entries of one snapshot fragment (default 8).
	FragmentEntries int
	// TLSTrades is how many of an instrument's latest trades its TLS snapshot carries
	// (default 16), oldest first, the last with the snapshot's RptSeq.
	TLSTrades int
	// Retention is how many messages of each incremental connection the historical replay
	// service keeps (default 100,000).
	Retention int
	// Loss injects loss on the exchange's side.
	Loss Loss
	// SourcePort is the UDP source port of every datagram (default 40000).
	SourcePort uint16
	// Username and Password, if set, are what the replay service wants at logon.
	Username, Password string
	// BLag delays line B's copies by this many datagrams of their connection, so that a
	// datagram lost on line A leaves a hole until B's copy comes.
	BLag int
	// ReplayDelay delays every answer of the replay service by this long after the
	// request (a slow service); at most 4 s (a client has 5 s in all).
	ReplayDelay time.Duration
}

// Stats count what the exchange sent.
type Stats struct {
	Steps     uint64            `json:"steps"`
	Cycles    uint64            `json:"snapshot_cycles"`
	Messages  map[string]uint64 `json:"messages"`  // per connection
	LostA     map[string]uint64 `json:"lost_a"`    // lost on line A only
	LostBoth  map[string]uint64 `json:"lost_both"` // lost on both lines
	Trades    uint64            `json:"trades"`
	Orders    uint64            `json:"orders"` // OLR entries
	Replays   uint64            `json:"replay_requests"`
	Replayed  uint64            `json:"replay_messages"`
	Refused   uint64            `json:"replay_refused"`
	BadClient uint64            `json:"replay_bad_requests"`
	NewDays   uint64            `json:"new_days"` // trading days started after the first (NewDay)
}

type conn struct {
	cn  *moex.Connection
	seq uint32
	// retained messages (FAST only, no MsgSeqNum header) of an incremental connection:
	// ret[i] has MsgSeqNum retBase+i.
	ret     [][]byte
	retBase uint32
	late    [][]byte // line B's copies not sent yet (Config.BLag)
}

type instrument struct {
	symbol   []byte
	priceExp int8
	sizeExp  int8
	tick     int64
	olr, tlr int32 // RptSeq per feed
	msr      int32
	volume   int64 // traded size, at sizeExp
	book     *book.MBO
	levels   map[levelKey]string // the order standing for a simulated level
	trades   []tradeRec          // for TLS (the last Config.TLSTrades)
}

type levelKey struct {
	side  md.EntryType
	price int64
}

type tradeRec struct {
	id        string
	px, size  int64
	rpt       int32
	buyerSide byte
}

// Exchange is the emulated exchange.
type Exchange struct {
	cfg   Config
	sim   *publisher.Simulator
	enc   *moexasts.Encoder
	out   Output
	conns map[string]*conn
	ins   []instrument
	ents  []publisher.SimEntry
	buf   []byte
	msg   moexasts.Message

	nextOrder, nextTrade uint64

	mu     sync.Mutex // guards conns' retention and stats for the replay service
	stats  Stats
	trades []byte // --dump-trades lines
	lossOn bool

	// The exchange's clock, for SendingTime: the day's opening (10:00 UTC of
	// 2026-12-07 plus a day per NewDay) plus a millisecond per message sent that day.
	day     int
	daySent int64
}

// New returns an exchange sending through out.
func New(cfg Config, out Output) (*Exchange, error) {
	if cfg.Market == nil {
		return nil, errors.New("moexsim: no market")
	}
	if cfg.Market.ID != "FOND" && cfg.Market.ID != "CURR" {
		return nil, fmt.Errorf("moexsim: market %s: want FOND or CURR (their templates)", cfg.Market.ID)
	}
	if cfg.Instruments <= 0 {
		cfg.Instruments = 8
	}
	if cfg.MinDepth <= 0 {
		cfg.MinDepth = 2
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 10
	}
	if cfg.FragmentEntries <= 0 {
		cfg.FragmentEntries = 8
	}
	if cfg.TLSTrades <= 0 {
		cfg.TLSTrades = 16
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 100_000
	}
	if cfg.SourcePort == 0 {
		cfg.SourcePort = 40000
	}
	ins, err := publisher.GenerateInstruments(cfg.Instruments)
	if err != nil {
		return nil, fmt.Errorf("moexsim: %w", err)
	}
	sim, err := publisher.NewSimulator(ins, cfg.MinDepth, cfg.MaxDepth, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("moexsim: %w", err)
	}
	x := &Exchange{cfg: cfg, sim: sim, enc: moexasts.NewEncoder(), out: out, conns: map[string]*conn{},
		stats: Stats{Messages: map[string]uint64{}, LostA: map[string]uint64{}, LostBoth: map[string]uint64{}}}
	for _, id := range []string{"OLR", "TLR", "MSR", "OLS", "TLS", "MSS", "IDF", "ISF"} {
		cn, ok := cfg.Market.Connection(id)
		if !ok || len(cn.Lines) == 0 {
			return nil, fmt.Errorf("moexsim: market %s has no UDP connection %s", cfg.Market.ID, id)
		}
		x.conns[id] = &conn{cn: cn, retBase: 1}
	}
	for i, in := range ins {
		b, err := book.NewMBO(book.Config{PriceExp: moex.PriceExp, SizeExp: moex.SizeExp})
		if err != nil {
			return nil, err
		}
		x.ins = append(x.ins, instrument{symbol: []byte(sim.Symbol(i)), priceExp: in.PriceExp, sizeExp: in.SizeExp,
			tick: in.Tick, book: b, levels: map[levelKey]string{}})
	}
	return x, nil
}

// SetLoss turns the configured loss on or off (off for the opening and the tail, so
// that a test knows every loss has a later datagram that shows it).
func (x *Exchange) SetLoss(on bool) { x.lossOn = on }

// Stats returns the exchange's counters.
func (x *Exchange) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.stats
	s.Messages, s.LostA, s.LostBoth = clone(s.Messages), clone(s.LostA), clone(s.LostBoth)
	return s
}

func clone(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Open sends the trading session status, the definitions, the statuses and every
// instrument's opening book.
func (x *Exchange) Open() error {
	h := &moexasts.Message{ID: moexasts.IDH}
	h.H.TradSesStatus, h.H.TradingSessionID = 2, []byte("TQBR") // open
	if err := x.send("ISF", h); err != nil {
		return err
	}
	if err := x.Definitions(); err != nil {
		return err
	}
	if err := x.statuses(); err != nil {
		return err
	}
	for i := range x.ins {
		x.ents = x.sim.Open(x.ents[:0], i)
		if err := x.entries(x.ents); err != nil {
			return err
		}
	}
	return x.sim.Err()
}

// NewDay starts a new trading day as MOEX does at a new session: every feed's MsgSeqNum
// starts again at 1 (the replay service forgets the day before), every instrument's
// RptSeqs of OLR, TLR and MSR start again, the day's orders are gone (the books empty)
// and its statistics and trades with them; then the session opens: the session status,
// the definitions, the statuses, and each instrument's standing price levels entered
// again as new orders (OLR, RptSeq 1 on). Line B's delayed copies of the day before
// are sent first (FlushLate).
func (x *Exchange) NewDay() error {
	if err := x.FlushLate(); err != nil {
		return err
	}
	x.mu.Lock()
	for _, c := range x.conns {
		c.seq, c.ret, c.retBase, c.late = 0, nil, 1, nil
	}
	x.stats.NewDays++
	x.mu.Unlock()
	x.day++
	x.daySent = 0
	for i := range x.ins {
		in := &x.ins[i]
		in.olr, in.tlr, in.msr, in.volume, in.trades = 0, 0, 0, 0, nil
		in.book.Clear()
		in.book.SetRptSeq(0)
		clear(in.levels)
	}
	h := &moexasts.Message{ID: moexasts.IDH}
	h.H.TradSesStatus, h.H.TradingSessionID = 2, []byte("TQBR")
	if err := x.send("ISF", h); err != nil {
		return err
	}
	if err := x.Definitions(); err != nil {
		return err
	}
	if err := x.statuses(); err != nil {
		return err
	}
	for i := range x.ins {
		x.ents = x.ents[:0]
		b := x.sim.Book(i)
		for _, side := range []book.Side{book.Bid, book.Ask} {
			typ := md.Bid
			if side == book.Ask {
				typ = md.Offer
			}
			for _, l := range b.AppendLevels(nil, side) {
				x.ents = append(x.ents, publisher.SimEntry{Instrument: int32(i), Entry: md.Entry{Action: md.New, Type: typ,
					Price: md.Dec(l.Price, x.ins[i].priceExp), Size: md.Dec(l.Size, x.ins[i].sizeExp)}})
			}
		}
		if err := x.entries(x.ents); err != nil {
			return err
		}
	}
	return nil
}

// statuses sends every instrument's status (f) on ISF.
func (x *Exchange) statuses() error {
	for i := range x.ins {
		f := &moexasts.Message{ID: moexasts.IDF}
		f.F.Symbol, f.F.SecurityTradingStatus, f.F.HasSecurityTradingStatus = x.ins[i].symbol, 17, true
		f.F.TradingSessionID, f.F.HasTradingSessionID = []byte("TQBR"), true
		if err := x.send("ISF", f); err != nil {
			return err
		}
	}
	return nil
}

// Definitions sends one IDF cycle: a d per instrument.
func (x *Exchange) Definitions() error {
	for i := range x.ins {
		in := &x.ins[i]
		m := &moexasts.Message{ID: moexasts.IDD}
		d := &m.D
		d.MessageEncoding = []byte("UTF-8")
		d.TotNumReports, d.HasTotNumReports = int32(len(x.ins)), true
		d.Symbol, d.HasSymbol = in.symbol, true
		d.SecurityID, d.HasSecurityID = in.symbol, true
		d.SecurityIDSource, d.HasSecurityIDSource = []byte("4"), true
		d.Currency, d.HasCurrency = []byte("RUB"), true
		d.MinPriceIncrement, d.HasMinPriceIncrement = dec(in.tick, in.priceExp), true
		if err := x.send("IDF", m); err != nil {
			return err
		}
	}
	return nil
}

// Step runs one simulator event and sends what it did.
func (x *Exchange) Step() error {
	x.ents = x.sim.Step(x.ents[:0])
	x.stats.Steps++
	if err := x.entries(x.ents); err != nil {
		return err
	}
	return x.sim.Err()
}

// entries sends the simulator's entries of one event: the trade (TLR, then MSR) first,
// then the order changes in one OLR message.
func (x *Exchange) entries(es []publisher.SimEntry) error {
	var olr moexasts.Message
	olr.ID = moexasts.IDXOLRFOND
	for _, se := range es {
		in := &x.ins[se.Instrument]
		e := &se.Entry
		px := e.Price.Mantissa
		if e.Type == md.Trade {
			if err := x.trade(in, px, e.Size.Mantissa); err != nil {
				return err
			}
			continue
		}
		k := levelKey{e.Type, px}
		g := moexasts.XOLRFONDGroupMDEntries{HasMDUpdateAction: true, MDUpdateAction: uint32(e.Action),
			MDEntryType: []byte{byte(e.Type)}, HasMDEntryType: true, Symbol: in.symbol, HasSymbol: true,
			HasMDEntryID: true}
		u := book.OrderUpdate{Action: book.Action(e.Action), Type: book.EntryType(e.Type - '0')}
		switch e.Action {
		case md.New:
			x.nextOrder++
			id := strconv.FormatUint(x.nextOrder, 10)
			in.levels[k] = id
			g.MDEntryID = []byte(id)
		case md.Change:
			g.MDEntryID = []byte(in.levels[k])
		case md.Delete:
			g.MDEntryID = []byte(in.levels[k])
			delete(in.levels, k)
		}
		if len(g.MDEntryID) == 0 {
			return fmt.Errorf("moexsim: %s: %v of an unknown level %d", in.symbol, e.Action, px)
		}
		if e.Action != md.Delete {
			g.MDEntryPx, g.HasMDEntryPx = dec(px, in.priceExp), true
			g.MDEntrySize, g.HasMDEntrySize = dec(e.Size.Mantissa, in.sizeExp), true
			u.Price = scale(px, in.priceExp, moex.PriceExp)
			u.Size = scale(e.Size.Mantissa, in.sizeExp, moex.SizeExp)
		}
		in.olr++
		g.RptSeq, g.HasRptSeq = in.olr, true
		u.ID = g.MDEntryID
		if err := in.book.Apply(u); err != nil {
			return fmt.Errorf("moexsim: %s ground truth: %w", in.symbol, err)
		}
		in.book.SetRptSeq(int64(in.olr))
		olr.XOLRFOND.GroupMDEntries = append(olr.XOLRFOND.GroupMDEntries, g)
		x.stats.Orders++
	}
	if len(olr.XOLRFOND.GroupMDEntries) == 0 {
		return nil
	}
	return x.send("OLR", &olr)
}

func scale(m int64, from, to int8) int64 {
	for ; from > to; from-- {
		m *= 10
	}
	return m
}

// trade sends a TLR trade and the MSR volume statistic it changes, and records the trade.
func (x *Exchange) trade(in *instrument, px, size int64) error {
	x.nextTrade++
	in.tlr++
	id := []byte("T" + strconv.FormatUint(x.nextTrade, 10))
	g := moexasts.XTLRFONDGroupMDEntries{MDUpdateAction: 0, HasMDUpdateAction: true, MDEntryType: []byte("z"),
		MDEntryID: id, HasMDEntryID: true, Symbol: in.symbol, HasSymbol: true, RptSeq: in.tlr, HasRptSeq: true,
		MDEntryPx: dec(px, in.priceExp), HasMDEntryPx: true, MDEntrySize: dec(size, in.sizeExp), HasMDEntrySize: true}
	m := &moexasts.Message{ID: moexasts.IDXTLRFOND}
	m.XTLRFOND.GroupMDEntries = []moexasts.XTLRFONDGroupMDEntries{g}
	if err := x.send("TLR", m); err != nil {
		return err
	}
	x.stats.Trades++
	x.trades = moex.AppendTrade(x.trades, &moex.Trade{Seq: x.conns["TLR"].seq, Symbol: in.symbol, RptSeq: in.tlr, HasRptSeq: true,
		ID: id, Type: g.MDEntryType, Action: 0, HasAction: true, Px: g.MDEntryPx, HasPx: true, Size: g.MDEntrySize, HasSize: true})
	in.trades = append(in.trades, tradeRec{id: string(id), px: px, size: size, rpt: in.tlr})
	if len(in.trades) > x.cfg.TLSTrades {
		n := copy(in.trades, in.trades[1:])
		in.trades = in.trades[:n]
	}
	in.volume += size
	in.msr++
	s := &moexasts.Message{ID: moexasts.IDXMSRFOND}
	s.XMSRFOND.GroupMDEntries = []moexasts.XMSRFONDGroupMDEntries{{MDUpdateAction: 0, HasMDUpdateAction: true,
		MDEntryType: []byte("B"), HasMDEntryType: true, Symbol: in.symbol, HasSymbol: true, RptSeq: in.msr, HasRptSeq: true,
		MDEntrySize: dec(in.volume, in.sizeExp), HasMDEntrySize: true}}
	return x.send("MSR", s)
}

// Heartbeat sends a heartbeat (0) on every incremental connection: it takes a MsgSeqNum,
// so a receiver sees a hole at the tail of a burst.
func (x *Exchange) Heartbeat() error {
	for _, id := range []string{"OLR", "TLR", "MSR"} {
		if err := x.send(id, &moexasts.Message{ID: moexasts.IDX0}); err != nil {
			return err
		}
	}
	return nil
}

// Cycle sends one snapshot cycle on OLS, TLS and MSS: every instrument's snapshot in
// fragments, with its RptSeq of the feed and the incremental's LastMsgSeqNumProcessed.
func (x *Exchange) Cycle() error {
	x.stats.Cycles++
	per := x.cfg.FragmentEntries
	for i := range x.ins {
		in := &x.ins[i]
		var ents []moexasts.WOLSFONDGroupMDEntries
		for _, side := range []book.Side{book.Bid, book.Ask} {
			for _, o := range in.book.AppendOrders(nil, side) {
				typ := byte('0')
				if side == book.Ask {
					typ = '1'
				}
				ents = append(ents, moexasts.WOLSFONDGroupMDEntries{MDEntryType: []byte{typ}, HasMDEntryType: true,
					MDEntryID: []byte(o.ID.String()), HasMDEntryID: true,
					MDEntryPx: dec(o.Price, moex.PriceExp), HasMDEntryPx: true, MDEntrySize: dec(o.Size, moex.SizeExp), HasMDEntrySize: true})
			}
		}
		if len(ents) == 0 {
			ents = append(ents, moexasts.WOLSFONDGroupMDEntries{MDEntryType: []byte("J"), HasMDEntryType: true})
		}
		frags := (len(ents) + per - 1) / per
		for f := range frags {
			m := &moexasts.Message{ID: moexasts.IDWOLSFOND}
			w := &m.WOLSFOND
			w.Symbol, w.RptSeq = in.symbol, in.olr
			w.LastMsgSeqNumProcessed, w.HasLastMsgSeqNumProcessed = x.conns["OLR"].seq, true
			w.HasLastFragment, w.HasRouteFirst = true, true
			if f == 0 {
				w.RouteFirst = 1
			}
			if f == frags-1 {
				w.LastFragment = 1
			}
			w.GroupMDEntries = ents[f*per : min(len(ents), (f+1)*per)]
			if err := x.send("OLS", m); err != nil {
				return err
			}
		}
		// TLS: the latest trades, oldest first, in fragments (one J entry: none yet).
		tents := []moexasts.WTLSFONDGroupMDEntries{{MDEntryType: []byte("J")}}
		if len(in.trades) > 0 {
			tents = tents[:0]
		}
		for _, tr := range in.trades {
			tents = append(tents, moexasts.WTLSFONDGroupMDEntries{MDEntryType: []byte("z"),
				MDEntryID: []byte(tr.id), HasMDEntryID: true, MDEntryPx: dec(tr.px, in.priceExp), HasMDEntryPx: true,
				MDEntrySize: dec(tr.size, in.sizeExp), HasMDEntrySize: true})
		}
		frags = (len(tents) + per - 1) / per
		for f := range frags {
			t := &moexasts.Message{ID: moexasts.IDWTLSFOND}
			w := &t.WTLSFOND
			w.Symbol, w.RptSeq = in.symbol, in.tlr
			w.LastMsgSeqNumProcessed, w.HasLastMsgSeqNumProcessed = x.conns["TLR"].seq, true
			w.HasLastFragment, w.HasRouteFirst = true, true
			if f == 0 {
				w.RouteFirst = 1
			}
			if f == frags-1 {
				w.LastFragment = 1
			}
			w.GroupMDEntries = tents[f*per : min(len(tents), (f+1)*per)]
			if err := x.send("TLS", t); err != nil {
				return err
			}
		}
		s := &moexasts.Message{ID: moexasts.IDWGeneric}
		w := &s.WGeneric
		w.Symbol, w.RptSeq = in.symbol, in.msr
		w.LastMsgSeqNumProcessed, w.HasLastMsgSeqNumProcessed = x.conns["MSR"].seq, true
		w.LastFragment, w.HasLastFragment, w.RouteFirst, w.HasRouteFirst = 1, true, 1, true
		w.GroupMDEntries = []moexasts.WGenericGroupMDEntries{{
			MDEntryType: []byte("B"), HasMDEntryType: true, MDEntrySize: dec(in.volume, in.sizeExp), HasMDEntrySize: true}}
		if err := x.send("MSS", s); err != nil {
			return err
		}
	}
	return nil
}

// WriteBooks writes the ground-truth order books as --dump-books JSON lines.
func (x *Exchange) WriteBooks(w io.Writer) error {
	named := make([]book.Named, len(x.ins))
	for i := range x.ins {
		named[i] = book.Named{Symbol: string(x.ins[i].symbol), Book: x.ins[i].book}
	}
	return book.WriteDump(w, named)
}

// Volumes returns each instrument's traded volume, the statistic (MDEntryType B) its
// MSR entries and MSS snapshots carry, by symbol.
func (x *Exchange) Volumes() map[string]fastrt.Decimal {
	out := make(map[string]fastrt.Decimal, len(x.ins))
	for i := range x.ins {
		out[string(x.ins[i].symbol)] = dec(x.ins[i].volume, x.ins[i].sizeExp)
	}
	return out
}

// Trades returns the trade list as --dump-trades JSON lines, in the order sent.
func (x *Exchange) Trades() []byte { return x.trades }
