package publisher

// retention holds the bytes of the datagrams sent, in one circular arena
// shared by all channels, and a ring of records of the sequenced ones (X, d,
// f), the newest Retention of them at most. A record links to the previous
// record of its channel, so a channel's datagrams are found by walking back
// from its newest. A record is evicted when the ring is full or when the
// arena overwrites its bytes; heartbeats and resets take arena space but have
// no record. Offsets and positions are absolute (they only grow); the arena
// index is the offset modulo the arena size, and a datagram never wraps.
type retention struct {
	arena []byte
	head  uint64 // absolute offset of the next datagram
	recs  []record
	next  uint64 // position of the next record
	tail  uint64 // position of the oldest record kept
	// evicted is called for every record evicted, oldest first.
	evicted func(r *record)
}

type record struct {
	off  uint64 // absolute arena offset of the datagram
	prev uint64 // position+1 of the previous record of the channel; 0: none
	n    uint32 // length of the datagram
	seq  uint32
	ch   int32
}

func newRetention(records, bytes int, evicted func(*record)) *retention {
	return &retention{arena: make([]byte, bytes), recs: make([]record, records), evicted: evicted}
}

// end returns the absolute offset just past a datagram of n bytes if it were
// reserved now.
func (r *retention) end(n int) uint64 {
	size := uint64(len(r.arena))
	h := r.head
	if h%size+uint64(n) > size {
		h += size - h%size
	}
	return h + uint64(n)
}

// reserve returns room for a datagram of n bytes (n <= len(arena)) and its
// absolute offset, evicting the records whose bytes it overwrites.
func (r *retention) reserve(n int) ([]byte, uint64) {
	size := uint64(len(r.arena))
	if r.head%size+uint64(n) > size {
		r.head += size - r.head%size
	}
	off := r.head
	r.head += uint64(n)
	if r.head > size {
		for r.tail < r.next && r.recs[r.tail%uint64(len(r.recs))].off < r.head-size {
			r.evict()
		}
	}
	i := off % size
	return r.arena[i : i+uint64(n) : i+uint64(n)], off
}

func (r *retention) evict() {
	rec := &r.recs[r.tail%uint64(len(r.recs))]
	if r.evicted != nil {
		r.evicted(rec)
	}
	r.tail++
}

// add records the datagram of n bytes at off as seq of channel ch, whose
// newest record is at position prev-1 (prev 0: none), and returns the
// record's position+1.
func (r *retention) add(ch int32, seq uint32, off uint64, n int, prev uint64) uint64 {
	if r.next-r.tail == uint64(len(r.recs)) {
		r.evict()
	}
	pos := r.next
	r.recs[pos%uint64(len(r.recs))] = record{off: off, prev: prev, n: uint32(n), seq: seq, ch: ch}
	r.next++
	return pos + 1
}

// at returns the record at position pos, or nil if it is no longer kept.
func (r *retention) at(pos uint64) *record {
	if pos < r.tail || pos >= r.next {
		return nil
	}
	return &r.recs[pos%uint64(len(r.recs))]
}

// bytes returns the datagram of rec, aliasing the arena.
func (r *retention) bytes(rec *record) []byte {
	i := rec.off % uint64(len(r.arena))
	return r.arena[i : i+uint64(rec.n)]
}
