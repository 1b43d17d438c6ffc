package book

import (
	"bytes"
	"hash/maphash"
	"slices"
)

// MaxIDLen is the longest order ID (MDEntryID, tag 278) an MBO book accepts.
const MaxIDLen = 32

// OrderUpdate is one MBO entry of an incremental refresh.
type OrderUpdate struct {
	Action Action
	Type   EntryType
	ID     []byte // MDEntryID (278); not retained: the book copies it
	Price  int64  // ignored by Delete
	Size   int64  // ignored by Delete
}

// OrderID is an order ID held by value; equal IDs compare equal with ==.
type OrderID struct {
	n uint8
	b [MaxIDLen]byte
}

// AppendTo appends the ID's bytes to dst.
func (id OrderID) AppendTo(dst []byte) []byte { return append(dst, id.b[:id.n]...) }

// String returns the ID as a string.
func (id OrderID) String() string { return string(id.b[:id.n]) }

// Order is an order as MBO read-outs give it.
type Order struct {
	ID       OrderID
	Side     Side
	Price    int64
	Size     int64
	Priority uint64 // arrival order in the book: lower came first
}

// order is a slot of the order table; n == 0 marks a free slot.
type order struct {
	price int64
	size  int64
	seq   uint64
	side  Side
	n     uint8
	id    [MaxIDLen]byte
}

// slotRef is an entry of the open-addressing index: the low 32 bits of the
// ID's hash and the order's slot + 1 (0: empty entry).
type slotRef struct {
	tag  uint32
	slot int32
}

// MBO is a market-by-order book: orders keyed by ID in a table the book owns
// (a slice of fixed-size slots indexed by an open-addressing hash table with
// linear probing), and the price levels of those orders kept up to date as
// orders come and go. The zero value is not usable; create books with NewMBO.
type MBO struct {
	sides     [2]ladder
	orders    []order
	free      []int32
	index     []slotRef // len is a power of two, at least twice live
	live      int
	seq       uint64
	seed      maphash.Seed
	maxLevels int
	maxOrders int
	priceExp  int
	sizeExp   int
	rptSeq    int64
	stale     bool
	counters  Counters
}

const minIndex = 16

// NewMBO returns an empty MBO book. It fails if an exponent, MaxLevels or
// MaxOrders is out of range.
func NewMBO(cfg Config) (*MBO, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	return &MBO{
		index:     make([]slotRef, minIndex),
		seed:      maphash.MakeSeed(),
		maxLevels: cfg.MaxLevels,
		maxOrders: cfg.MaxOrders,
		priceExp:  cfg.PriceExp,
		sizeExp:   cfg.SizeExp,
	}, nil
}

// Apply applies one entry. Entry types other than EntryBid and EntryOffer are
// ignored. New adds an order (for an existing ID it replaces the order, which
// loses its priority, and counts a duplicate); Change replaces an order's
// side, price and size (it keeps its priority unless its side or price
// changes); Delete removes an order, whatever the side and price given. On
// error the book is unchanged.
func (b *MBO) Apply(u OrderUpdate) error {
	if u.Type > EntryOffer {
		return nil
	}
	side := Side(u.Type)
	if len(u.ID) == 0 || len(u.ID) > MaxIDLen {
		b.counters.Invalid++
		return ErrBadID
	}
	switch u.Action {
	case ActionNew:
		return b.add(u.ID, side, u.Price, u.Size)
	case ActionChange:
		return b.change(u.ID, side, u.Price, u.Size)
	case ActionDelete:
		return b.delete(u.ID)
	}
	b.counters.Invalid++
	return ErrBadAction
}

// find returns the index position of id and its slot, or the empty position
// where it would go and -1.
func (b *MBO) find(id []byte, tag uint32) (int, int32) {
	mask := len(b.index) - 1
	for i := int(tag) & mask; ; i = (i + 1) & mask {
		e := b.index[i]
		if e.slot == 0 {
			return i, -1
		}
		if e.tag == tag {
			o := &b.orders[e.slot-1]
			if bytes.Equal(o.id[:o.n], id) {
				return i, e.slot - 1
			}
		}
	}
}

func (b *MBO) hash(id []byte) uint32 { return uint32(maphash.Bytes(b.seed, id)) }

func (b *MBO) add(id []byte, side Side, price, size int64) error {
	if size < 0 {
		b.counters.Invalid++
		return ErrNegative
	}
	tag := b.hash(id)
	pos, slot := b.find(id, tag)
	if slot >= 0 {
		b.counters.Duplicates++
		return b.modify(slot, side, price, size, true)
	}
	if b.live >= b.maxOrders {
		b.counters.Full++
		return ErrFull
	}
	key := keyOf(side, price)
	if err := b.sides[side].addOrder(key, size, b.maxLevels); err != nil {
		b.count(err)
		return err
	}
	if (b.live+1)*2 > len(b.index) {
		b.grow()
		pos, _ = b.find(id, tag)
	}
	if n := len(b.free); n > 0 {
		slot = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		slot = int32(len(b.orders))
		b.orders = append(b.orders, order{})
	}
	b.seq++
	o := &b.orders[slot]
	o.price, o.size, o.seq, o.side = price, size, b.seq, side
	o.id = [MaxIDLen]byte{} // zero the tail, so that OrderIDs compare with ==
	o.n = uint8(copy(o.id[:], id))
	b.index[pos] = slotRef{tag: tag, slot: slot + 1}
	b.live++
	return nil
}

func (b *MBO) change(id []byte, side Side, price, size int64) error {
	if size < 0 {
		b.counters.Invalid++
		return ErrNegative
	}
	_, slot := b.find(id, b.hash(id))
	if slot < 0 {
		b.counters.ChangeMissing++
		return ErrNoOrder
	}
	return b.modify(slot, side, price, size, false)
}

// modify moves the order in slot to side, price and size; requeue gives it a
// new priority, which it also gets when its side or price changes.
func (b *MBO) modify(slot int32, side Side, price, size int64, requeue bool) error {
	o := &b.orders[slot]
	if o.side == side && o.price == price {
		l := &b.sides[side]
		i, _ := l.search(keyOf(side, price))
		v := &l.lv[i]
		if d := size - o.size; d > 0 && v.size > maxInt64-d {
			b.counters.Invalid++
			return ErrOverflow
		}
		v.size += size - o.size
		o.size = size
	} else {
		oldKey := keyOf(o.side, o.price)
		b.sides[o.side].removeOrder(oldKey, o.size)
		if err := b.sides[side].addOrder(keyOf(side, price), size, b.maxLevels); err != nil {
			// Put the order back where it was: this cannot fail, the
			// removal just made room for it.
			_ = b.sides[o.side].addOrder(oldKey, o.size, b.maxLevels)
			b.count(err)
			return err
		}
		o.side, o.price, o.size = side, price, size
		requeue = true
	}
	if requeue {
		b.seq++
		o.seq = b.seq
	}
	return nil
}

const maxInt64 = 1<<63 - 1

func (b *MBO) delete(id []byte) error {
	pos, slot := b.find(id, b.hash(id))
	if slot < 0 {
		b.counters.DeleteMissing++
		return ErrNoOrder
	}
	o := &b.orders[slot]
	b.sides[o.side].removeOrder(keyOf(o.side, o.price), o.size)
	o.n = 0
	b.free = append(b.free, slot)
	b.live--
	b.unindex(pos)
	return nil
}

// unindex empties index position i and shifts back the entries of its probe
// run that would become unreachable (deletion without tombstones).
func (b *MBO) unindex(i int) {
	mask := len(b.index) - 1
	for {
		b.index[i] = slotRef{}
		j := i
		for {
			j = (j + 1) & mask
			e := b.index[j]
			if e.slot == 0 {
				return
			}
			// e stays if its home position k lies cyclically in (i, j].
			k := int(e.tag) & mask
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			b.index[i] = e
			i = j
			break
		}
	}
}

// grow doubles the index and re-inserts every entry.
func (b *MBO) grow() {
	old := b.index
	b.index = make([]slotRef, 2*len(old))
	mask := len(b.index) - 1
	for _, e := range old {
		if e.slot == 0 {
			continue
		}
		i := int(e.tag) & mask
		for b.index[i].slot != 0 {
			i = (i + 1) & mask
		}
		b.index[i] = e
	}
}

func (b *MBO) count(err error) {
	if err == ErrFull {
		b.counters.Full++
	} else {
		b.counters.Invalid++
	}
}

// Clear removes every order and level. The stale flag, RptSeq and counters
// are kept; the memory is kept for reuse.
func (b *MBO) Clear() {
	clear(b.index)
	b.orders = b.orders[:0]
	b.free = b.free[:0]
	b.live = 0
	b.sides[Bid].lv = b.sides[Bid].lv[:0]
	b.sides[Ask].lv = b.sides[Ask].lv[:0]
}

// Replace replaces the whole book with a snapshot's orders: it clears the
// book and applies every entry as a New (whatever its Action), so an ID given
// twice keeps its last order and counts a duplicate, and entry types other
// than EntryBid and EntryOffer are skipped. If the snapshot has more orders
// than MaxOrders, an invalid ID or a negative size, Replace fails before
// changing anything; if it would exceed MaxLevels or overflow a level, it
// fails and leaves the book empty.
func (b *MBO) Replace(entries []OrderUpdate) error {
	n := 0
	for _, e := range entries {
		if e.Type > EntryOffer {
			continue
		}
		n++
		switch {
		case len(e.ID) == 0 || len(e.ID) > MaxIDLen:
			b.counters.Invalid++
			return ErrBadID
		case e.Size < 0:
			b.counters.Invalid++
			return ErrNegative
		}
	}
	if n > b.maxOrders {
		b.counters.Full++
		return ErrFull
	}
	b.Clear()
	for _, e := range entries {
		if e.Type > EntryOffer {
			continue
		}
		if err := b.add(e.ID, Side(e.Type), e.Price, e.Size); err != nil {
			b.Clear()
			return err
		}
	}
	return nil
}

// Len returns the number of orders.
func (b *MBO) Len() int { return b.live }

// Lookup returns the order with the given ID, if any.
func (b *MBO) Lookup(id []byte) (Order, bool) {
	if len(id) == 0 || len(id) > MaxIDLen {
		return Order{}, false
	}
	_, slot := b.find(id, b.hash(id))
	if slot < 0 {
		return Order{}, false
	}
	return b.orders[slot].export(), true
}

func (o *order) export() Order {
	return Order{ID: OrderID{n: o.n, b: o.id}, Side: o.side, Price: o.price, Size: o.size, Priority: o.seq}
}

// AppendOrders appends the orders of a side to dst in priority order (best
// price first, then earliest first) and returns the extended slice; it
// allocates only if dst lacks capacity. It sorts, so it costs
// O(n log n) in the number of orders on the side: a read-out, not a hot path.
func (b *MBO) AppendOrders(dst []Order, side Side) []Order {
	if side > Ask {
		return dst
	}
	start := len(dst)
	for i := range b.orders {
		o := &b.orders[i]
		if o.n != 0 && o.side == side {
			dst = append(dst, o.export())
		}
	}
	if side == Bid {
		slices.SortFunc(dst[start:], cmpBidOrders)
	} else {
		slices.SortFunc(dst[start:], cmpAskOrders)
	}
	return dst
}

func cmpBidOrders(a, b Order) int {
	switch {
	case a.Price != b.Price:
		if a.Price > b.Price {
			return -1
		}
		return 1
	case a.Priority < b.Priority:
		return -1
	case a.Priority > b.Priority:
		return 1
	}
	return 0
}

func cmpAskOrders(a, b Order) int {
	switch {
	case a.Price != b.Price:
		if a.Price < b.Price {
			return -1
		}
		return 1
	case a.Priority < b.Priority:
		return -1
	case a.Priority > b.Priority:
		return 1
	}
	return 0
}

// Depth returns the number of price levels on a side.
func (b *MBO) Depth(side Side) int {
	if side > Ask {
		return 0
	}
	return len(b.sides[side].lv)
}

// AppendLevels appends the price levels of a side, aggregated from its
// orders (Size the sum of their sizes, Orders their count), to dst, best
// first. The levels are maintained as orders change, so this is a copy; it
// allocates only if dst lacks capacity.
func (b *MBO) AppendLevels(dst []Level, side Side) []Level {
	if side > Ask {
		return dst
	}
	return b.sides[side].appendLevels(dst, side)
}

// PriceExp returns the price exponent.
func (b *MBO) PriceExp() int { return b.priceExp }

// SizeExp returns the size exponent.
func (b *MBO) SizeExp() int { return b.sizeExp }

// RptSeq returns the RptSeq last recorded with SetRptSeq.
func (b *MBO) RptSeq() int64 { return b.rptSeq }

// SetRptSeq records the RptSeq (tag 83) of the last entry applied.
func (b *MBO) SetRptSeq(seq int64) { b.rptSeq = seq }

// Stale reports whether the book is marked stale.
func (b *MBO) Stale() bool { return b.stale }

// SetStale marks the book stale (e.g. on a gap) or fresh (after recovery).
func (b *MBO) SetStale(stale bool) { b.stale = stale }

// Counters returns the anomaly counters.
func (b *MBO) Counters() Counters { return b.counters }

// ResetCounters sets the anomaly counters to zero.
func (b *MBO) ResetCounters() { b.counters = Counters{} }

// Level returns the price level of a side at price (its orders aggregated), if any.
func (b *MBO) Level(side Side, price int64) (Level, bool) {
	if side > Ask {
		return Level{}, false
	}
	return b.sides[side].at(side, price)
}
