package feed

import (
	"context"
	"math"
	"sync"

	"fastfeed/md"
)

// The command queue: everything that reaches the engine from another goroutine
// (recovery results, subscription changes, reads of state through Do) is a command in
// one bounded queue, and each duty cycle (DoWork) runs at most CommandsPerCycle of them,
// Aeron-style, so that a burst of recovery answers or of requests cannot stall the
// datagrams behind it. A full queue makes the sender wait: the recovery client, a
// subscriber being added, a Do.
const (
	QueueSize        = 4096 // commands the queue holds
	CommandsPerCycle = 256  // commands one DoWork runs at most
)

type cmdOp uint8

const (
	cmdRetransmitted cmdOp = iota // a message recovered over FIX
	cmdSnapshots                  // snapshots answering a request
	cmdFailed                     // a recovery request failed
	cmdSubscribe                  // add a subscription
	cmdPrune                      // drop cancelled subscriptions
	cmdDo                         // run fn on the engine's goroutine
)

// command is one entry of the queue.
type command struct {
	op       cmdOp
	channel  string
	seq      uint32
	msg      *md.Message
	snaps    []md.Snapshot
	snapshot bool
	reason   string
	sub      *Subscription
	fn       func()
}

// commandQueue is a bounded multi-producer queue drained by the engine's goroutine.
// Stopping closes it (no more commands are queued), drains what it holds and then closes
// stopped: from then on Do runs its function at once.
type commandQueue struct {
	ch      chan command
	wake    func() // tells a Handler's receiver to look; nil for a bare engine
	mu      sync.Mutex
	closed  chan struct{}
	stopped chan struct{}
	done    bool
}

func newCommandQueue() commandQueue {
	return commandQueue{ch: make(chan command, QueueSize), closed: make(chan struct{}), stopped: make(chan struct{})}
}

// post queues c, waiting while the queue is full; false once the queue is closed or ctx
// ended.
func (q *commandQueue) post(ctx context.Context, c command) bool {
	select {
	case q.ch <- c:
		if q.wake != nil {
			q.wake()
		}
		return true
	case <-q.closed:
		return false
	case <-ctx.Done():
		return false
	}
}

// tryPost queues c if there is room.
func (q *commandQueue) tryPost(c command) bool {
	select {
	case q.ch <- c:
		if q.wake != nil {
			q.wake()
		}
		return true
	default:
		return false
	}
}

// close stops queueing; it reports whether this call closed the queue.
func (q *commandQueue) close() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		return false
	}
	q.done = true
	close(q.closed)
	return true
}

// stop closes the queue, runs what it holds and marks the engine stopped; it reports
// whether this call stopped it.
func (e *Engine) stop(now int64) bool {
	if !e.queue.close() {
		return false
	}
	e.drainCommands(now, math.MaxInt)
	close(e.queue.stopped)
	return true
}

// drainCommands runs at most max queued commands and returns how many it ran.
func (e *Engine) drainCommands(now int64, max int) int {
	select {
	case <-e.queue.stopped:
		return 0 // a command left in the queue after the stop is run by its Do
	default:
	}
	if len(e.queue.ch) > 0 {
		e.flushStages() // a command may read the histograms or the counters
	}
	for n := 0; n < max; n++ {
		select {
		case c := <-e.queue.ch:
			e.run(&c, now)
		default:
			return n
		}
	}
	return max
}

// run runs one command on the engine's goroutine.
func (e *Engine) run(c *command, now int64) {
	switch c.op {
	case cmdRetransmitted, cmdSnapshots, cmdFailed:
		e.recovered(c, now)
	case cmdSubscribe:
		e.subs = append(e.subs, c.sub)
		e.pruneSubs()
	case cmdPrune:
		e.pruneSubs()
	case cmdDo:
		c.fn()
	}
}

// Do runs fn on the engine's goroutine (between datagrams, as a command of the queue) and
// waits for it, so that fn may read books and counters consistently. Once the engine has
// stopped (Run returned, or Close), fn runs at once.
func (e *Engine) Do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	if !e.queue.post(ctx, command{op: cmdDo, fn: func() { fn(); close(done) }}) {
		if err := ctx.Err(); err != nil {
			return err
		}
		<-e.queue.stopped // closed: let the last commands run first
		fn()
		return nil
	}
	select {
	case <-done:
		return nil
	case <-e.queue.stopped:
		select {
		case <-done:
		default:
			fn() // queued as the engine stopped: never to be run
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
