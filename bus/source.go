package bus

import (
	"context"
	"errors"

	"fastfeed/book"
	"fastfeed/feed"
)

// Canceler ends a subscription of a Source.
type Canceler = interface{ Cancel() }

// Source is where the bus's books and events come from: the in-process feed handler
// (HandlerSource), or books received over NATS (natsbus.Consumer) in a gateway. Every
// callback and every function given to Do runs on the source's one goroutine, so that a
// Dump taken in Do and the events after it are consistent.
type Source interface {
	// Subscribe registers fn for the events of instruments matching any of patterns.
	Subscribe(fn func(*feed.Event), patterns ...feed.Pattern) Canceler
	// Do runs fn on the source's goroutine and waits for it.
	Do(ctx context.Context, fn func()) error
	// Dump returns the books, sorted by symbol; called only in Do.
	Dump() book.Dump
}

// HandlerSource is a feed handler as a Source.
type HandlerSource struct{ H *feed.Handler }

// Subscribe implements Source.
func (s HandlerSource) Subscribe(fn func(*feed.Event), patterns ...feed.Pattern) Canceler {
	return s.H.Subscribe(fn, patterns...)
}

// Do implements Source.
func (s HandlerSource) Do(ctx context.Context, fn func()) error { return s.H.Do(ctx, fn) }

// Dump implements Source.
func (s HandlerSource) Dump() book.Dump { return s.H.Dump() }

// New returns a bus serving h's books with cfg.
func New(h *feed.Handler, cfg Config) (*Bus, error) {
	if h == nil {
		return nil, errors.New("bus: nil handler")
	}
	return NewFromSource(HandlerSource{H: h}, cfg)
}
