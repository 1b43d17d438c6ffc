package feed

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/book"
	"fastfeed/gap"
)

// Stats returns the counters. Call it after Run returns, or through Do while it runs.
func (e *Engine) Stats() Stats {
	e.flushStages() // ClockSkew and LatencyOverflow are counted as stamps are recorded
	s := e.stats
	var t gap.Counters
	for _, ch := range e.channels {
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
	for _, in := range e.bySymbol {
		if in.isStale() {
			s.StaleBooks++
		}
	}
	return s
}

// Messages returns Stats().Messages, the messages applied, without Stats' walk over
// every channel and instrument: cheap enough to poll through Do while a busy handler
// receives (the walk holds its loop for tens of microseconds with hundreds of channels).
func (e *Engine) Messages() uint64 { return e.stats.Messages }

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
func (e *Engine) Channels() []ChannelStats {
	out := make([]ChannelStats, 0, len(e.channels))
	for _, ch := range e.channels {
		c := ch.tracker.Counters()
		out = append(out, ChannelStats{Channel: ch.name, State: ch.tracker.State().String(), Next: ch.tracker.Next(),
			Gaps: c.Gaps, Missing: c.Missing, Duplicates: c.Duplicates, RecoveredAB: c.RecoveredAB,
			RecoveredFIX: c.RecoveredFIX, Skipped: c.Skipped})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// Dump returns the followed books in the --dump-books form, sorted by symbol. Books with
// no data yet are included empty. Call it through Do while Run runs.
func (e *Engine) Dump() book.Dump {
	syms := make([]string, 0, len(e.bySymbol))
	for s := range e.bySymbol {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	var d book.Dump
	empty, _ := book.NewMBP(book.Config{})
	for _, s := range syms {
		in := e.bySymbol[s]
		var v book.View = in.book
		if in.book == nil {
			empty.SetStale(in.isStale())
			v = empty
		}
		d = append(d, book.DumpOf(s, v))
	}
	return d
}

// WriteDump writes Dump to w.
func (e *Engine) WriteDump(w io.Writer) error {
	_, err := e.Dump().WriteTo(w)
	return err
}

// Symbols returns the followed symbols, sorted.
func (e *Engine) Symbols() []string {
	out := make([]string, 0, len(e.bySymbol))
	for s := range e.bySymbol {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ChannelStates describes each channel's recovery state, for operators.
func (e *Engine) ChannelStates() string {
	var b strings.Builder
	names := make([]string, 0, len(e.channels))
	for n := range e.channels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ch := e.channels[n]
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
func (e *Engine) Sockets() []Socket {
	var out []Socket
	for i := range e.addrs {
		s := Socket{Group: e.addrs[i], Line: "A"}
		if i < len(e.sockets) {
			si := e.sockets[i]
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
func (e *Engine) BookSnapshot(ctx context.Context, symbol string) (BookSnapshot, error) {
	var snap BookSnapshot
	var err error
	if derr := e.Do(ctx, func() {
		in := e.bySymbol[symbol]
		if in == nil {
			err = fmt.Errorf("feed: %s is not followed", symbol)
			return
		}
		snap = BookSnapshot{Symbol: symbol, RptSeq: in.rptSeq, Stale: in.isStale()}
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

// Latency returns the tick-to-handler latency histogram (nanoseconds). Read it after Run
// returns, or through Do.
func (e *Engine) Latency() *hdrhistogram.Histogram {
	e.flushStages()
	return e.latency
}
