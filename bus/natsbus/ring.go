package natsbus

import (
	"sync/atomic"

	"fastfeed/md"
)

// itemKind is what a queued item is.
type itemKind uint8

const (
	itemEntry    itemKind = iota // a book entry or a trade
	itemSnapshot                 // a W taken on the engine's goroutine
	itemStale                    // the book went stale (f 20 "stale")
	itemReady                    // the book is whole again (f 17 "ready"; a W follows)
	itemStatus                   // a trading status from the feed
)

// maxIDLen is the longest MDEntryID an entry keeps; longer IDs are cut.
const maxIDLen = 32

// item is one queued event, copied out of the engine's event.
type item struct {
	kind   itemKind
	inst   *pubInst
	action md.Action
	typ    md.EntryType
	idLen  uint8
	rptSeq uint32
	orders uint32
	status uint32
	price  md.Decimal
	size   md.Decimal
	id     [maxIDLen]byte
	snap   *snapshot
	at     int64 // wall-clock ns when queued
}

// ring is a bounded single-producer (the engine's goroutine) single-consumer (the
// writer) queue: no lock, no allocation.
type ring struct {
	items []item
	mask  uint64
	head  atomic.Uint64
	tail  atomic.Uint64
}

func newRing(size int) ring {
	n := 1
	for n < size {
		n <<= 1
	}
	return ring{items: make([]item, n), mask: uint64(n - 1)}
}

func (r *ring) reserve() *item {
	h := r.head.Load()
	if h-r.tail.Load() >= uint64(len(r.items)) {
		return nil
	}
	return &r.items[h&r.mask]
}

func (r *ring) commit()  { r.head.Add(1) }
func (r *ring) len() int { return int(r.head.Load() - r.tail.Load()) }
func (r *ring) at(i int) *item {
	return &r.items[(r.tail.Load()+uint64(i))&r.mask]
}

func (r *ring) pop(n int) {
	t := r.tail.Load()
	for i := range n {
		it := &r.items[(t+uint64(i))&r.mask]
		it.snap, it.inst = nil, nil
	}
	r.tail.Store(t + uint64(n))
}
