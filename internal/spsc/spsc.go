// Package spsc is a bounded single-producer single-consumer queue of values stored in
// place: no lock, no allocation after New. The producer reserves a slot, fills it and
// commits it; the consumer reads slots in order and pops them. It carries events from a
// feed handler's goroutine to a writer (the OMS clients' queues, the NATS publisher).
package spsc

import "sync/atomic"

// Ring is the queue. Only the producer moves head; only the consumer moves tail, except
// in Discard, which the producer may call while the consumer is known to wait.
type Ring[T any] struct {
	items []T
	mask  uint64
	head  atomic.Uint64
	tail  atomic.Uint64
}

// New returns a ring of at least size slots (rounded up to a power of two, at least 1).
func New[T any](size int) Ring[T] {
	n := 1
	for n < size {
		n <<= 1
	}
	return Ring[T]{items: make([]T, n), mask: uint64(n - 1)}
}

// Committed returns how many slots have ever been committed: a position in the stream
// that a consumer can wait for with Popped.
func (r *Ring[T]) Committed() uint64 { return r.head.Load() }

// Popped returns how many slots have ever been popped or discarded.
func (r *Ring[T]) Popped() uint64 { return r.tail.Load() }

// Cap returns the number of slots.
func (r *Ring[T]) Cap() int { return len(r.items) }

// Reserve returns the next free slot for the producer to fill, or nil when the ring is
// full. The slot is queued only when Commit is called.
func (r *Ring[T]) Reserve() *T {
	h := r.head.Load()
	if h-r.tail.Load() >= uint64(len(r.items)) {
		return nil
	}
	return &r.items[h&r.mask]
}

// Commit queues the slot last reserved.
func (r *Ring[T]) Commit() { r.head.Add(1) }

// Len returns the number of queued slots.
func (r *Ring[T]) Len() int { return int(r.head.Load() - r.tail.Load()) }

// At returns the i-th queued slot (i < Len).
func (r *Ring[T]) At(i int) *T { return &r.items[(r.tail.Load()+uint64(i))&r.mask] }

// Pop removes the first n queued slots, zeroing them so that they keep nothing alive.
func (r *Ring[T]) Pop(n int) {
	var zero T
	t := r.tail.Load()
	for i := range n {
		r.items[(t+uint64(i))&r.mask] = zero
	}
	r.tail.Store(t + uint64(n))
}

// Discard drops every queued slot and returns how many there were. It runs on the
// producer while the consumer waits (it moves tail).
func (r *Ring[T]) Discard() int {
	h, t := r.head.Load(), r.tail.Load()
	var zero T
	for i := t; i != h; i++ {
		r.items[i&r.mask] = zero
	}
	r.tail.Store(h)
	return int(h - t)
}
