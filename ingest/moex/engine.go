package moex

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"
	"slices"

	"fastfeed/book"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
)

// Book exponents: every MBO book keeps prices as mantissas at 10^PriceExp and sizes at
// 10^SizeExp, whatever the exponents on the wire (a finer value is counted in
// Stats.Precision and its entry skipped).
const (
	PriceExp = -8
	SizeExp  = -6
)

// Options tune an Engine. The zero value gives the defaults.
type Options struct {
	// GapWindow bounds the datagrams a connection holds while a hole waits for the other
	// line (default 64); when full, the hole is a gap.
	GapWindow int
	// GapWait is how long (in the datagrams' clock, nanoseconds) a hole waits for the other
	// line before it is a gap (default 5ms).
	GapWait int64
	// MaxSnapshotEntries bounds the orders of one assembled snapshot (default 1<<18).
	MaxSnapshotEntries int
	// MaxInstruments bounds the instruments kept (default 100,000); entries of a new
	// symbol beyond it are counted in Stats.InstrumentsRefused and dropped.
	MaxInstruments int
	// Replay, if set, is asked for the MsgSeqNums of a hole of an incremental connection
	// (OLR, TLR, MSR) that line B did not fill within GapWait, when the hole is at most
	// MaxReplayGap long: the MOEX TCP historical replay service ([ReplayClient]). Only a
	// live run (RunLive) asks it, off the receive path: the engine issues the request,
	// a worker goroutine of the connection does the exchange, and the answer is applied
	// on the engine's goroutine between two batches of datagrams; the datagrams that come
	// meanwhile are received and held behind the hole. A capture never asks.
	Replay Replayer
	// MaxReplayGap is the longest hole asked of Replay (default 100; MOEX answers at most
	// 1000 messages a request). A longer hole is left to the snapshot feed.
	MaxReplayGap int
	// ReplayInFlight bounds the requests of one connection at the replay service at once
	// (default 2; as many worker goroutines per incremental connection). A hole that
	// finds them all busy waits for one, or is a gap when its window is full.
	ReplayInFlight int
	// ReplayWindow bounds the datagrams a connection holds while the hole before them is
	// asked of the replay service (default 16,384; GapWindow bounds them otherwise); when
	// full, the hole is a gap (the late answer is counted in ChannelStats.ReplayLate).
	ReplayWindow int
	// MaxQueued bounds the OLR entries held per instrument while its book waits for a
	// snapshot (default 1<<14); beyond it the oldest are dropped (Stats.QueueDropped).
	MaxQueued int
}

// Replayer fetches the messages beg..end of an incremental connection (the historical
// replay service) and gives each to deliver with its MsgSeqNum, in order; msg (one FAST
// message, no MsgSeqNum header) is valid only during the call. It must give up when ctx
// ends. The engine calls it from several goroutines at once (its workers).
type Replayer interface {
	Replay(ctx context.Context, conn string, beg, end uint32, deliver func(seq uint32, msg []byte)) error
}

// Trade is one TLR entry, passed to Engine.OnTrade. Its byte slices are valid only during
// the call.
type Trade struct {
	Seq       uint32 // the channel's MsgSeqNum
	Symbol    []byte
	RptSeq    int32
	HasRptSeq bool
	ID        []byte // MDEntryID, nil if absent
	Type      []byte // MDEntryType
	Action    uint32
	HasAction bool
	Px, Size  fastrt.Decimal
	HasPx     bool
	HasSize   bool
}

// Stat is one statistic (an MSR entry) kept per instrument and MDEntryType.
type Stat struct {
	Type          string
	Px, Size      fastrt.Decimal
	HasPx, HasSz  bool
	RptSeq        int32
	ChannelSeqNum uint32
}

// Instrument is what the engine knows of one symbol.
type Instrument struct {
	Symbol string
	Book   *book.MBO // nil until an OLR entry or OLS snapshot for it

	// Definition (IDF d), if one was seen.
	Defined           bool
	SecurityID        string
	Currency          string
	MinPriceIncrement fastrt.Decimal
	// Status (ISF f): SecurityTradingStatus and TradingSessionID, if seen.
	HasStatus        bool
	TradingStatus    int32
	TradingSessionID string

	Stats []Stat // MSR statistics by MDEntryType

	// The last trade (TLR entry with a price and an RptSeq) and how many there were.
	LastPx, LastSize fastrt.Decimal
	HasLastSize      bool
	Trades           uint64

	// pub is the instrument's index in a Republisher's publisher, plus one; 0: not yet
	// published, -1: refused.
	pub int32

	// SnapshotLastMsgSeqNum is the LastMsgSeqNumProcessed of the OLS snapshot that last
	// replaced the book: the OLR MsgSeqNum it includes.
	SnapshotLastMsgSeqNum uint32

	// queue holds the OLR entries that came while the book was stale (waiting for a
	// snapshot), in RptSeq order; the snapshot's successors are applied from it.
	queue []queued

	// TradesStale: a hole in the TLR RptSeq that nothing filled: its trades (wait.tholes)
	// wait for a TLS snapshot (the trades after it are delivered as they come).
	// TradesLost counts the trades of holes that no TLS snapshot carried any more.
	TradesStale bool
	TradesLost  uint64
	// StatsStale: a hole in the MSR RptSeq that nothing filled; the later entries are
	// held (wait.squeue) until an MSS snapshot replaces the statistics.
	StatsStale bool
	// wait holds what waits for TLS and MSS, made at the first hole.
	wait *snapWaits

	// Per connection family (OLR, TLR, MSR): last RptSeq applied, and holes.
	rpt     [3]int32
	started [3]bool
	// Gaps counts holes in the instrument's RptSeq per family; Missed the RptSeqs lost.
	Gaps   [3]uint64
	Missed [3]uint64
}

// Families of per-instrument RptSeq.
const (
	FamOrders = iota // OLR/OLS
	FamTrades        // TLR/TLS
	FamStats         // MSR/MSS
)

// ChannelStats are the counters of one connection (both lines).
type ChannelStats struct {
	Datagrams   [2]uint64 `json:"datagrams"`    // per line (A, B)
	Messages    uint64    `json:"messages"`     // messages used (first copies)
	Duplicates  uint64    `json:"duplicates"`   // second copies (the other line's) and replays
	Gaps        uint64    `json:"gaps"`         // holes given up on after waiting for the other line
	Missed      uint64    `json:"missed"`       // MsgSeqNums lost in those holes
	RecoveredAB uint64    `json:"recovered_ab"` // holes filled by a later datagram (the other line)
	// RecoveredReplay counts holes filled by the historical replay service, ReplayFailed
	// requests that did not fill their hole (the hole is then a gap).
	RecoveredReplay uint64 `json:"recovered_replay"`
	ReplayFailed    uint64 `json:"replay_failed"`
	ReplayMessages  uint64 `json:"replay_messages"` // messages used from replay answers
	// ReplayRequests counts the requests issued; ReplayLate the answers that came when
	// their hole was no longer waiting (filled by line B, given up when the window was
	// full, or before a reset); ReplayBusy the times a hole found every worker busy.
	ReplayRequests uint64 `json:"replay_requests"`
	ReplayLate     uint64 `json:"replay_late"`
	ReplayBusy     uint64 `json:"replay_busy"`
	// SnapshotGaps counts the gaps of OLR, TLR and MSR left to the snapshot feeds (OLS,
	// TLS, MSS).
	SnapshotGaps uint64 `json:"snapshot_gaps"`
	// Snapshot feeds: on TLS, TLSRecoveredTrades counts the trades of TLR holes taken
	// from TLS snapshots and TradesLost those no TLS snapshot carried any more; on MSS,
	// MSSRecovered counts the instruments whose statistics an MSS snapshot made whole.
	TLSRecoveredTrades uint64 `json:"tls_recovered_trades,omitempty"`
	TradesLost         uint64 `json:"trades_lost,omitempty"`
	MSSRecovered       uint64 `json:"mss_recovered,omitempty"`
	// Resets counts MsgSeqNum restarts at 1 (a new trading day, or the exchange's restart).
	Resets uint64 `json:"resets"`
}

// Stats are the engine's counters.
type Stats struct {
	Datagrams          uint64 `json:"datagrams"`
	Unrouted           uint64 `json:"unrouted"`     // destination not a line of the market
	WrongSource        uint64 `json:"wrong_source"` // source differs from the line's src-ip
	Short              uint64 `json:"short"`        // datagram shorter than the 4-byte MsgSeqNum plus one byte
	Truncated          uint64 `json:"truncated"`    // live: a datagram longer than the read buffer
	KernelDrops        uint64 `json:"kernel_drops"` // live: datagrams the kernel dropped (full receive buffers), at the run's end
	DecodeErrors       uint64 `json:"decode_errors"`
	Trailing           uint64 `json:"trailing"`        // bytes left after the message
	SeqMismatch        uint64 `json:"seq_mismatch"`    // MsgSeqNum field differs from the datagram's header
	OtherTemplates     uint64 `json:"other_templates"` // templates the engine does not use
	Heartbeats         uint64 `json:"heartbeats"`
	Orders             uint64 `json:"orders"`        // OLR entries applied to books
	BookErrors         uint64 `json:"book_errors"`   // OLR entries a book refused (missing order, full, bad ID...)
	Precision          uint64 `json:"precision"`     // a price or size finer than the book's exponent, or out of range
	BadEntries         uint64 `json:"bad_entries"`   // an entry missing its symbol, RptSeq, type or ID
	StaleEntries       uint64 `json:"stale_entries"` // entries at or below the instrument's RptSeq (already applied)
	InstrumentGaps     uint64 `json:"instrument_gaps"`
	InstrumentsRefused uint64 `json:"instruments_refused"` // new symbols beyond Options.MaxInstruments
	Trades             uint64 `json:"trades"`
	Statistics         uint64 `json:"statistics"`
	Definitions        uint64 `json:"definitions"`
	Statuses           uint64 `json:"statuses"`
	SessionStatuses    uint64 `json:"session_statuses"`
	Snapshots          uint64 `json:"snapshots"`        // complete snapshots (OLS, TLS, MSS)
	SnapshotsUsed      uint64 `json:"snapshots_used"`   // OLS snapshots that replaced a book
	SnapshotsBroken    uint64 `json:"snapshots_broken"` // fragments without their start, or cut by a gap
	EmptyBooks         uint64 `json:"empty_books"`      // MDEntryType J entries
	// Snapshot recovery: SnapshotWaits counts books that went stale and waited for the
	// snapshot feed, BooksRecovered the ones a snapshot made whole again (with the held
	// entries that follow it applied), SnapshotsOld complete snapshots too old for a
	// waiting book (the next cycle is waited for), QueuedEntries the OLR entries held
	// meanwhile and QueueDropped those dropped from a full queue.
	SnapshotWaits  uint64 `json:"snapshot_waits"`
	BooksRecovered uint64 `json:"books_recovered"`
	SnapshotsOld   uint64 `json:"snapshots_old"`
	QueuedEntries  uint64 `json:"queued_entries"`
	QueueDropped   uint64 `json:"queue_dropped"`
	// The same for trades (TLR holes waiting for TLS) and statistics (MSR holes waiting
	// for MSS): TradeWaits and StatsWaits count the instruments that went stale,
	// TradesRecovered and StatsRecovered those a snapshot made whole, TradesLost the
	// trades no TLS snapshot carried any more.
	TradeWaits      uint64 `json:"trade_waits"`
	TradesRecovered uint64 `json:"trades_recovered"`
	TradesLost      uint64 `json:"trades_lost"`
	StatsWaits      uint64 `json:"stats_waits"`
	StatsRecovered  uint64 `json:"stats_recovered"`
}

// Engine decodes the datagrams of one market's connections and keeps its instruments.
// It is not safe for concurrent use: another goroutine reads it through Do.
type Engine struct {
	// OnTrade, if set, is called for every new trade (TLR entry), in order.
	OnTrade func(*Trade)
	// Listener, if set, hears every change to the instruments as it is made
	// (republish.go).
	Listener Listener

	market *Market
	opts   Options
	routes map[netip.AddrPort]route
	chans  []*channel
	inst   map[string]*Instrument
	dec    *moexasts.Decoder
	msg    moexasts.Message
	trade  Trade
	// incr is each family's incremental connection (OLR, TLR, MSR), nil if none.
	incr [3]*channel
	// statSpare holds the statistics an MSS snapshot replaces (their types reused).
	statSpare []Stat
	stats     Stats
	session   struct {
		Has    bool
		Status int32
		ID     string
	}
	ops opsQueue // reads of the engine from other goroutines (Do)
	rep replayWorkers
	now int64 // the latest datagram's or Tick's time
}

type route struct {
	ch   int
	line int
	src  netip.Addr
}

type pending struct {
	seq  uint32
	line int
	at   int64
	data []byte
}

type channel struct {
	conn *Connection
	fam  int    // the RptSeq family of an incremental connection; -1 otherwise
	sfam int    // the family of a snapshot connection (OLS, TLS, MSS); -1 otherwise
	next uint32 // next MsgSeqNum expected; 0 before the first
	// first is the CRC-32 of the datagram with MsgSeqNum 1 used, if any: another
	// datagram 1 later is a reset (a new day), the same one a late copy.
	first    uint32
	hasFirst bool
	held     []pending
	spare    [][]byte
	stats    ChannelStats

	// snapshot assembly
	snapOn     bool
	snapSym    []byte
	snapRpt    int32
	snapLast   uint32
	snapEnts   []book.OrderUpdate
	snapArena  []byte
	snapBroken bool
	snapOther  []snapItem // TLS trades, MSS statistics (their IDs and types in snapArena)

	// historical replay: the ranges asked (in flight, or failed: their hole is then a
	// gap when it comes first), at most Options.ReplayInFlight; the requests the
	// connection's workers have; gen counts resets (an answer of an older one is late);
	// scanned is the MsgSeqNum up to which the held datagrams' holes were looked at.
	reqs     []replayRange
	inflight int
	gen      uint32
	scanned  uint32
	busy     uint32 // the hole last counted in ReplayBusy
}

type replayRange struct {
	beg, end uint32
	failed   bool
}

// NewEngine returns an engine for market m's UDP connections.
func NewEngine(m *Market, opts Options) (*Engine, error) {
	if opts.GapWindow <= 0 {
		opts.GapWindow = 64
	}
	if opts.GapWait <= 0 {
		opts.GapWait = 5e6
	}
	if opts.MaxSnapshotEntries <= 0 {
		opts.MaxSnapshotEntries = 1 << 18
	}
	if opts.MaxInstruments <= 0 {
		opts.MaxInstruments = 100_000
	}
	if opts.MaxReplayGap <= 0 {
		opts.MaxReplayGap = 100
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = 1 << 14
	}
	if opts.ReplayInFlight <= 0 {
		opts.ReplayInFlight = 2
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = 1 << 14
	}
	e := &Engine{market: m, opts: opts, routes: map[netip.AddrPort]route{},
		inst: map[string]*Instrument{}, dec: moexasts.NewDecoder()}
	for i := range m.Connections {
		cn := &m.Connections[i]
		if len(cn.Lines) == 0 {
			continue
		}
		ch := &channel{conn: cn, fam: family(cn.ID), sfam: snapFamily(cn.ID)}
		for li, l := range cn.Lines {
			if li > 1 {
				break
			}
			if r, dup := e.routes[l.Group]; dup {
				return nil, fmt.Errorf("moex: market %s: %s line %s and %s share %s", m.ID, cn.ID, l.ID, e.chans[r.ch].conn.ID, l.Group)
			}
			e.routes[l.Group] = route{ch: len(e.chans), line: li, src: l.Src}
		}
		e.chans = append(e.chans, ch)
		if ch.fam >= 0 {
			e.incr[ch.fam] = ch
		}
	}
	if len(e.chans) == 0 {
		return nil, fmt.Errorf("moex: market %s has no UDP connection", m.ID)
	}
	return e, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

// Channels returns each UDP connection's ID and counters.
func (e *Engine) Channels() map[string]ChannelStats {
	out := make(map[string]ChannelStats, len(e.chans))
	for _, c := range e.chans {
		out[c.conn.ID] = c.stats
	}
	return out
}

// Instruments returns the instruments seen, sorted by symbol.
func (e *Engine) Instruments() []*Instrument {
	out := make([]*Instrument, 0, len(e.inst))
	for _, in := range e.inst {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b *Instrument) int {
		switch {
		case a.Symbol < b.Symbol:
			return -1
		case a.Symbol > b.Symbol:
			return 1
		}
		return 0
	})
	return out
}

// Instrument returns the instrument with the given symbol.
func (e *Engine) Instrument(sym string) (*Instrument, bool) {
	in, ok := e.inst[sym]
	return in, ok
}

// Datagram takes one UDP datagram sent from src to dst at time now (nanoseconds, any
// monotonic clock: capture time for a capture).
func (e *Engine) Datagram(src, dst netip.AddrPort, payload []byte, now int64) {
	e.stats.Datagrams++
	e.now = now
	r, ok := e.routes[dst]
	if !ok {
		e.stats.Unrouted++
		return
	}
	if r.src.IsValid() && src.Addr() != r.src {
		e.stats.WrongSource++
		return
	}
	ch := e.chans[r.ch]
	ch.stats.Datagrams[r.line]++
	if len(payload) < 5 {
		e.stats.Short++
		return
	}
	seq := binary.LittleEndian.Uint32(payload)
	if seq == 1 && ch.next > 1 && (!ch.hasFirst || crc32.ChecksumIEEE(payload) != ch.first) {
		e.reset(ch)
	}
	switch {
	case ch.next == 0:
		ch.next = seq
	case seq < ch.next:
		ch.stats.Duplicates++
		e.expire(ch, now)
		return
	}
	if seq == ch.next {
		if len(ch.held) > 0 {
			ch.stats.RecoveredAB++ // a hole filled by a later datagram: the other line
		}
		e.use(ch, seq, payload)
		e.drain(ch)
		e.expire(ch, now)
		return
	}
	// A hole before seq: hold the datagram for the other line to fill it (in MsgSeqNum
	// order; most come after the last one held).
	i := len(ch.held)
	if i > 0 && ch.held[i-1].seq >= seq {
		var dup bool
		if i, dup = slices.BinarySearchFunc(ch.held, seq, cmpSeq); dup {
			ch.stats.Duplicates++
			e.expire(ch, now)
			return
		}
	}
	var buf []byte
	if n := len(ch.spare); n > 0 {
		buf, ch.spare = ch.spare[n-1][:0], ch.spare[:n-1]
	}
	buf = append(buf, payload...)
	ch.held = slices.Insert(ch.held, i, pending{seq: seq, line: r.line, at: now, data: buf})
	e.overflow(ch)
	e.expire(ch, now)
}
