package feed

import (
	"context"
	"strings"
	"sync/atomic"

	"fastfeed/book"
	"fastfeed/md"
)

// EventKind is what happened to an instrument.
type EventKind uint8

// Event kinds.
const (
	EventBook   EventKind = iota // a book entry was applied
	EventTrade                   // a trade was reported
	EventStale                   // the book can no longer be trusted
	EventFresh                   // the book was rebuilt and is trusted again
	EventStatus                  // a security status arrived
)

// Event is delivered to subscribers on the engine's goroutine. Entry and Book are valid
// only during the callback: copy what must outlive it.
type Event struct {
	Kind   EventKind
	Symbol string
	Entry  *md.Entry // EventBook, EventTrade
	Book   *book.MBP // the instrument's book (nil before its first entry)
	Status uint32    // EventStatus: SecurityTradingStatus
}

// Pattern selects instruments: an exact symbol ("SBER", one-to-one), a prefix ending in
// '*' ("SB*", one-to-group), a channel name ("G239.1.2.3:30001", one-to-group) or "*"
// (one-to-many).
type Pattern string

// Match reports whether the instrument symbol on channel matches p.
func (p Pattern) Match(symbol, channel string) bool {
	s := string(p)
	switch {
	case s == "*":
		return true
	case strings.HasSuffix(s, "*"):
		return strings.HasPrefix(symbol, s[:len(s)-1])
	case strings.HasPrefix(s, "G") && strings.Contains(s, ":") && s == channel:
		return true
	}
	return s == symbol
}

// Subscription is a registered callback.
type Subscription struct {
	patterns  []Pattern
	fn        func(*Event)
	cancelled atomic.Bool
	q         *commandQueue
}

// Cancel stops the subscription's callbacks at once; the engine forgets it at its next
// cycle.
func (s *Subscription) Cancel() {
	s.cancelled.Store(true)
	if s.q != nil {
		s.q.tryPost(command{op: cmdPrune}) // if the queue is full, the next change prunes it
	}
}

// Subscribe registers fn for events of instruments matching any of patterns, from the
// engine's next cycle on (the subscription is a command of its queue; Subscribe waits
// while the queue is full). fn runs on the engine's goroutine and must return quickly: a
// slow subscriber slows the engine, so anything slow (a network client) queues the event
// and returns (package bus does).
func (e *Engine) Subscribe(fn func(*Event), patterns ...Pattern) *Subscription {
	s := &Subscription{patterns: patterns, fn: fn, q: &e.queue}
	e.queue.post(context.Background(), command{op: cmdSubscribe, sub: s})
	return s
}

// pruneSubs drops cancelled subscriptions and makes the instruments match again.
func (e *Engine) pruneSubs() {
	live := e.subs[:0]
	for _, s := range e.subs {
		if !s.cancelled.Load() {
			live = append(live, s)
		}
	}
	clear(e.subs[len(live):])
	e.subs = live
	e.subsVersion++
}

// publish calls the subscribers whose patterns match the event's instrument. The match
// is computed once per instrument and subscription change, not per event.
func (e *Engine) publish(in *instrument, ev Event) {
	if len(e.subs) == 0 {
		return
	}
	if in.subsVersion != e.subsVersion {
		in.subs = in.subs[:0]
		for _, s := range e.subs {
			for _, p := range s.patterns {
				if p.Match(in.symbol, in.ch.name) {
					in.subs = append(in.subs, s)
					break
				}
			}
		}
		in.subsVersion = e.subsVersion
	}
	timed := len(in.subs) > 0 && e.beginHandOff() // the hand-off stage (latency.go)
	for _, s := range in.subs {
		if s.cancelled.Load() {
			continue
		}
		e.event = ev // a field, so that the pointer handed out does not escape per call
		s.fn(&e.event)
	}
	if timed {
		e.endHandOff()
	}
}
