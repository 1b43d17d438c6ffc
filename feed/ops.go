package feed

import (
	"context"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/book"
	"fastfeed/gap"
)

// This file is what an operator's view (package opshttp) reads of a handler: counters,
// channel states, queue depths, stale books, chosen books and latency histograms, read
// on the handler's goroutine through Do, between batches, so that the receive path
// neither locks nor allocates for it.

// OpsRequest says what an Ops read copies besides the counters and channel states.
type OpsRequest struct {
	Symbols []string // books to copy (unknown symbols are left out); nil: none
	All     bool     // copy every followed book instead of Symbols
	Depth   int      // levels per side copied; 0: all
	Latency bool     // copy the handler-wide stage histograms
	// ChannelLatency copies each channel's stage histograms too.
	ChannelLatency bool
}

// OpsState is a consistent read of a handler at one instant.
type OpsState struct {
	At       time.Time
	Stats    Stats
	Channels []ChannelOps // sorted by channel name
	Queues   []QueueDepth
	Stale    []string  // stale symbols, sorted
	Books    book.Dump // the books asked for, sorted by symbol
	// Latency are the handler-wide stage histograms and ChannelLatency each channel's,
	// by channel name (nanoseconds), when asked for: copies made on the handler's
	// goroutine, to be read anywhere.
	Latency        [NumStages]*hdrhistogram.Snapshot
	ChannelLatency map[string][NumStages]*hdrhistogram.Snapshot
}

// ChannelOps is one channel's sequencing counters and state, for operators.
type ChannelOps struct {
	ChannelStats
	Instruments int // followed instruments on the channel
	Stale       int // of which stale
	Buffered    int // datagrams held ahead of a hole
	OpenHole    bool
}

// QueueDepth is the fill of one of the handler's queues.
type QueueDepth struct {
	Name     string // "commands", or "reorder <channel>"
	Len, Cap int
}

// Ops reads the engine's state through Do. It allocates on the handler's goroutine only
// for the copies it returns, between batches.
func (e *Engine) Ops(ctx context.Context, req OpsRequest) (OpsState, error) {
	var st OpsState
	err := e.Do(ctx, func() { st = e.OpsNow(req) })
	return st, err
}

// OpsNow is Ops for a caller already on the handler's goroutine (inside Do, or between
// calls to Receive and DoWork of a bare Engine).
func (e *Engine) OpsNow(req OpsRequest) OpsState {
	st := OpsState{At: time.Now(), Stats: e.Stats(), Queues: e.Queues()}
	stale := e.StaleByChannel()
	for _, c := range e.Channels() {
		ch := e.channels[c.Channel]
		st.Channels = append(st.Channels, ChannelOps{ChannelStats: c, Instruments: len(ch.instruments),
			Stale: stale[c.Channel], Buffered: ch.tracker.Buffered(), OpenHole: ch.tracker.State() != gap.Live})
	}
	for _, in := range e.bySymbol {
		if in.isStale() {
			st.Stale = append(st.Stale, in.symbol)
		}
	}
	sort.Strings(st.Stale)
	switch {
	case req.All:
		st.Books = e.DumpSymbols(e.Symbols(), req.Depth)
	case len(req.Symbols) > 0:
		st.Books = e.DumpSymbols(req.Symbols, req.Depth)
	}
	if req.Latency {
		for i, hist := range e.stages {
			st.Latency[i] = hist.Export()
		}
	}
	if req.ChannelLatency {
		st.ChannelLatency = make(map[string][NumStages]*hdrhistogram.Snapshot, len(e.channels))
		for name, ch := range e.channels {
			var l [NumStages]*hdrhistogram.Snapshot
			for i, hist := range ch.lat {
				l[i] = hist.Export()
			}
			st.ChannelLatency[name] = l
		}
	}
	return st
}

// Queues returns the depth of the engine's queues: the command queue (recovery results,
// subscription changes, reads of state waiting for a duty cycle), and each channel's
// messages held behind a hole against its window.
// Call it on the handler's goroutine.
func (e *Engine) Queues() []QueueDepth {
	out := []QueueDepth{{Name: "commands", Len: len(e.queue.ch), Cap: cap(e.queue.ch)}}
	window := e.cfg.Gap.Window
	if window <= 0 {
		window = 4096 // gap.Config's default
	}
	names := make([]string, 0, len(e.channels))
	for n := range e.channels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, QueueDepth{Name: "reorder " + n, Len: e.channels[n].tracker.Buffered(), Cap: window})
	}
	return out
}

// StaleByChannel counts the stale books of each channel. Call it on the handler's
// goroutine.
func (e *Engine) StaleByChannel() map[string]int {
	out := make(map[string]int, len(e.channels))
	for name, ch := range e.channels {
		n := 0
		for _, in := range ch.instruments {
			if in.isStale() {
				n++
			}
		}
		out[name] = n
	}
	return out
}

// DumpSymbols returns the dump form of the books of symbols that are followed, sorted by
// symbol, at most depth levels a side (0: all). Call it on the handler's goroutine.
func (e *Engine) DumpSymbols(symbols []string, depth int) book.Dump {
	syms := append([]string(nil), symbols...)
	sort.Strings(syms)
	var d book.Dump
	var empty *book.MBP
	for i, s := range syms {
		if i > 0 && syms[i-1] == s {
			continue
		}
		in := e.bySymbol[s]
		if in == nil {
			continue
		}
		var v book.View = in.book
		if in.book == nil {
			if empty == nil {
				empty, _ = book.NewMBP(book.Config{})
			}
			empty.SetStale(in.isStale())
			v = empty
		}
		d = append(d, book.DumpDepth(s, v, depth))
	}
	return d
}

// Follows reports whether symbol is followed. Call it on the handler's goroutine.
func (e *Engine) Follows(symbol string) bool { return e.bySymbol[symbol] != nil }

// Unheard returns the followed topics that no security definition and no datagram has
// named, sorted: a topic asked for by mistake (a typo, the wrong mapping) would otherwise
// leave an empty book that looks fresh. Call it on the handler's goroutine, or after Run
// returns.
func (e *Engine) Unheard() []string {
	var out []string
	for _, in := range e.bySymbol {
		if !in.defined && !in.started && in.book == nil {
			out = append(out, in.symbol)
		}
	}
	sort.Strings(out)
	return out
}

// LatencyCopy copies one stage histogram through Do: the handler-wide one with channel "",
// else the channel's. Each copy is one short stop of the handler's loop (about 0.1 ms for
// a handler-wide histogram, 0.02 ms for a channel's), so a reader copying many lets the
// receive path run between them. It returns nil for an unknown channel.
func (e *Engine) LatencyCopy(ctx context.Context, channel string, stage Stage) (*hdrhistogram.Snapshot, error) {
	if stage < 0 || stage >= NumStages {
		return nil, nil
	}
	var snap *hdrhistogram.Snapshot
	err := e.Do(ctx, func() {
		if channel == "" {
			snap = e.stages[stage].Export()
		} else if ch := e.channels[channel]; ch != nil {
			snap = ch.lat[stage].Export()
		}
	})
	return snap, err
}
