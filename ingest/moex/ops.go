package moex

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// This file is how another goroutine (the operator's HTTP view) reads an engine that
// RunCapture or RunLive is feeding: through Do, a command queue that the run loop looks
// at between batches of datagrams. The per-datagram path neither locks nor allocates for
// it: the run loop loads one atomic counter per batch.

// opsQueueSize bounds the reads waiting for the run loop; a Do beyond it waits.
const opsQueueSize = 64

// opsBatch is how many datagrams RunCapture takes between two looks at the queue.
const opsBatch = 64

type opsCmd struct {
	fn   func()
	done chan struct{}
}

// opsQueue holds the functions waiting to run on the engine's goroutine. While no run
// loop serves it (before RunCapture or RunLive, after they return), Do runs its function
// itself, under mu, so that readers stay serialised.
type opsQueue struct {
	mu      sync.Mutex
	serving bool         // a run loop serves ch (under mu)
	wake    func()       // wakes the run loop's poll, or nil (under mu)
	pending atomic.Int32 // commands in ch
	ch      chan opsCmd
}

var errEngineBusy = errors.New("moex: engine read refused: the run loop did not take it")

// Do runs fn on the goroutine that feeds the engine, between two batches of datagrams,
// and waits for it; while the engine is not being fed by RunCapture or RunLive, it runs fn
// at once (the caller must then not call Datagram concurrently). fn may read anything of
// the engine; it must not keep references to the books past its return.
func (e *Engine) Do(ctx context.Context, fn func()) error {
	q := &e.ops
	q.mu.Lock()
	if !q.serving {
		defer q.mu.Unlock()
		fn()
		return nil
	}
	if q.ch == nil {
		q.ch = make(chan opsCmd, opsQueueSize)
	}
	c := opsCmd{fn: fn, done: make(chan struct{})}
	q.pending.Add(1)
	select {
	case q.ch <- c:
	default:
		q.pending.Add(-1)
		q.mu.Unlock()
		return errEngineBusy
	}
	wake := q.wake
	q.mu.Unlock()
	if wake != nil {
		wake()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		// fn still runs when the loop gets to it; the caller no longer waits.
		return ctx.Err()
	}
}

// serve runs the queued functions (the run loop, between batches). It costs one atomic
// load when nothing waits.
func (e *Engine) serve() {
	q := &e.ops
	if q.pending.Load() == 0 {
		return
	}
	for {
		select {
		case c := <-q.ch:
			q.pending.Add(-1)
			c.fn()
			close(c.done)
		default:
			return
		}
	}
}

// startServing marks the start of a run loop; wake, if not nil, interrupts its wait for
// datagrams.
func (e *Engine) startServing(wake func()) {
	q := &e.ops
	q.mu.Lock()
	q.serving, q.wake = true, wake
	if q.ch == nil {
		q.ch = make(chan opsCmd, opsQueueSize)
	}
	q.mu.Unlock()
}

// stopServing ends a run loop's service: the functions already queued run now, later Do
// calls run theirs themselves.
func (e *Engine) stopServing() {
	q := &e.ops
	q.mu.Lock()
	q.serving, q.wake = false, nil
	q.mu.Unlock()
	for q.pending.Load() != 0 {
		e.serve()
	}
}

// ConnectionOps is one UDP connection's sequencing state, for operators.
type ConnectionOps struct {
	ID       string // OLR, TLR, ...
	FeedType string
	ChannelStats
	Next   uint32 // next MsgSeqNum expected; 0 before the first datagram
	Held   int    // datagrams held behind a hole, waiting for the other line
	Window int    // at most this many are held (Options.GapWindow)
	// InFlight counts the historical replay requests out (at most Options.ReplayInFlight).
	InFlight int
}

// Connections returns each UDP connection's state, in the configuration's order. Call it
// on the engine's goroutine (through Do).
func (e *Engine) Connections() []ConnectionOps {
	out := make([]ConnectionOps, len(e.chans))
	for i, c := range e.chans {
		out[i] = ConnectionOps{ID: c.conn.ID, FeedType: c.conn.FeedType, ChannelStats: c.stats, Next: c.next,
			Held: len(c.held), Window: e.opts.GapWindow, InFlight: c.inflight}
	}
	return out
}

// BookCounts returns how many instruments have a book and the stale ones, sorted,
// without listing the others. Call it on the engine's goroutine (through Do).
func (e *Engine) BookCounts() (books int, stale []string) {
	for _, in := range e.inst {
		if in.Book == nil {
			continue
		}
		books++
		if in.Book.Stale() {
			stale = append(stale, in.Symbol)
		}
	}
	slices.Sort(stale)
	return books, stale
}

// BookSymbols returns the symbols of the instruments that have a book, sorted. Call it on
// the engine's goroutine (through Do).
func (e *Engine) BookSymbols() []string {
	out := make([]string, 0, len(e.inst))
	for _, in := range e.inst {
		if in.Book != nil {
			out = append(out, in.Symbol)
		}
	}
	slices.Sort(out)
	return out
}
