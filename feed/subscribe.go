package feed

import (
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

// Event is delivered to subscribers on the handler's goroutine. Entry and Book are valid
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
}

// Cancel stops the subscription's callbacks (from the next batch on).
func (s *Subscription) Cancel() { s.cancelled.Store(true) }

// Subscribe registers fn for events of instruments matching any of patterns. fn runs on
// the handler's goroutine and must return quickly: a slow subscriber slows the handler,
// so anything slow (a network client) queues the event and returns (package bus does).
func (h *Handler) Subscribe(fn func(*Event), patterns ...Pattern) *Subscription {
	s := &Subscription{patterns: patterns, fn: fn}
	h.subsMu.Lock()
	h.pending = append(h.pending, s)
	h.subsMu.Unlock()
	h.subsDirty.Store(true) // Run picks it up between batches
	return s
}

// publish calls the subscribers whose patterns match the event's instrument. The match
// is computed once per instrument and subscription change, not per event.
func (h *Handler) publish(in *instrument, ev Event) {
	if len(h.subs) == 0 {
		return
	}
	if in.subsVersion != h.subsVersion {
		in.subs = in.subs[:0]
		for _, s := range h.subs {
			for _, p := range s.patterns {
				if p.Match(in.symbol, in.ch.name) {
					in.subs = append(in.subs, s)
					break
				}
			}
		}
		in.subsVersion = h.subsVersion
	}
	timed := len(in.subs) > 0 && h.beginHandOff() // the hand-off stage (latency.go)
	for _, s := range in.subs {
		if s.cancelled.Load() {
			continue
		}
		h.event = ev // a field, so that the pointer handed out does not escape per call
		s.fn(&h.event)
	}
	if timed {
		h.endHandOff()
	}
}
