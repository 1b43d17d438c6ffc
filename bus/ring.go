package bus

// The per-client queue between the handler's goroutine and the client's writer.

import (
	"sync/atomic"

	"fastfeed/md"
)

// itemKind is what a queued item is.
type itemKind uint8

const (
	itemEntry    itemKind = iota // an incremental entry (book or trade)
	itemSnapshot                 // a W (snap)
	itemStale                    // the book went stale
	itemStatus                   // a SecurityStatus from the feed
)

// maxIDLen is the longest MDEntryID a queued entry keeps; longer IDs are cut.
const maxIDLen = 32

// item is one queued event, copied out of the handler's event (which is only valid
// during the callback).
type item struct {
	kind   itemKind
	req    *request
	symbol string // the handler's instrument symbol: stable, not copied
	action md.Action
	typ    md.EntryType
	rptSeq uint32
	orders uint32
	status uint32
	price  md.Decimal
	size   md.Decimal
	idLen  uint8
	id     [maxIDLen]byte
	snap   *md.Snapshot
	at     int64 // wall-clock time queued, ns
}

// ring is a bounded single-producer (the handler's goroutine) single-consumer (the
// client's writer) queue. Only the producer moves head; only the consumer moves tail,
// except in a Handler.Do function, which runs on the producer while the consumer waits.
type ring struct {
	items []item
	mask  uint64
	head  atomic.Uint64
	tail  atomic.Uint64
}

func (r *ring) reserve() *item {
	h := r.head.Load()
	if h-r.tail.Load() >= uint64(len(r.items)) {
		return nil
	}
	return &r.items[h&r.mask]
}

func (r *ring) commit() { r.head.Add(1) }

// len returns the items queued.
func (r *ring) len() int { return int(r.head.Load() - r.tail.Load()) }

// at returns the i-th queued item (i < len).
func (r *ring) at(i int) *item { return &r.items[(r.tail.Load()+uint64(i))&r.mask] }

// pop removes n items.
func (r *ring) pop(n int) {
	t := r.tail.Load()
	for i := range n {
		it := &r.items[(t+uint64(i))&r.mask]
		it.snap, it.req = nil, nil
	}
	r.tail.Store(t + uint64(n))
}

// discard drops every queued item: called on the producer in a Do function while the
// consumer waits for it.
func (r *ring) discard() int {
	h, t := r.head.Load(), r.tail.Load()
	for i := t; i != h; i++ {
		it := &r.items[i&r.mask]
		it.snap, it.req = nil, nil
	}
	r.tail.Store(h)
	return int(h - t)
}
