// Package localrecovery connects a feed handler to a publisher in the same process,
// through the publisher's recovery hooks instead of a FIX session: the in-process demo and
// tests use it where the FIX round trip is not what they are about.
package localrecovery

import (
	"context"
	"encoding/binary"
	"sync"

	"fastfeed/feed"
	"fastfeed/md"
)

// Hooks is what a publisher offers (package publisher's Publisher implements it).
type Hooks interface {
	Retransmit(ctx context.Context, channel string, beg, end uint32) ([][]byte, error)
	Snapshot(ctx context.Context, channel string, symbols []string) ([]md.Snapshot, error)
}

// Recovery implements feed.Recovery with one worker goroutine serving requests in order.
type Recovery struct {
	ctx   context.Context
	hooks Hooks
	reqs  chan func(feed.Sink)
	once  sync.Once
}

// New returns a Recovery over hooks; it stops working when ctx ends.
func New(ctx context.Context, hooks Hooks) *Recovery {
	return &Recovery{ctx: ctx, hooks: hooks, reqs: make(chan func(feed.Sink), 1024)}
}

// Start implements feed.Recovery.
func (r *Recovery) Start(sink feed.Sink) {
	r.once.Do(func() {
		go func() {
			for {
				select {
				case fn := <-r.reqs:
					fn(sink)
				case <-r.ctx.Done():
					return
				}
			}
		}()
	})
}

// submit queues a request without ever blocking the handler: when the queue is full the
// request is dropped, and the handler's tracker times it out and asks again.
func (r *Recovery) submit(fn func(feed.Sink)) {
	select {
	case r.reqs <- fn:
	default:
	}
}

// Retransmit implements feed.Recovery.
func (r *Recovery) Retransmit(channel string, beg, end uint32) {
	r.submit(func(sink feed.Sink) {
		ds, err := r.hooks.Retransmit(r.ctx, channel, beg, end)
		if err != nil {
			sink.Failed(channel, false, err.Error())
			return
		}
		for _, d := range ds {
			if len(d) < 4 {
				continue
			}
			sink.Retransmitted(channel, binary.LittleEndian.Uint32(d), d[4:])
		}
	})
}

// Snapshot implements feed.Recovery.
func (r *Recovery) Snapshot(channel string, symbols []string) {
	r.submit(func(sink feed.Sink) {
		snaps, err := r.hooks.Snapshot(r.ctx, channel, symbols)
		if err != nil {
			sink.Failed(channel, true, err.Error())
			return
		}
		sink.Snapshots(channel, snaps)
	})
}
