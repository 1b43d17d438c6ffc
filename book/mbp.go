package book

import "slices"

// Update is one MBP entry of an incremental refresh.
type Update struct {
	Action Action
	Type   EntryType
	Price  int64 // MDEntryPx (270) mantissa at the book's price exponent
	Size   int64 // MDEntrySize (271) mantissa at the book's size exponent; ignored by Delete
	Orders int64 // NumberOfOrders (346), 0 when absent; ignored by Delete
}

// MBP is a market-by-price book: levels keyed by side and price, held in
// sorted slices. The zero value is not usable; create books with NewMBP.
type MBP struct {
	sides     [2]ladder
	maxLevels int
	priceExp  int
	sizeExp   int
	rptSeq    int64
	stale     bool
	counters  Counters
}

// NewMBP returns an empty MBP book. It fails if an exponent or MaxLevels is
// out of range.
func NewMBP(cfg Config) (*MBP, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	return &MBP{maxLevels: cfg.MaxLevels, priceExp: cfg.PriceExp, sizeExp: cfg.SizeExp}, nil
}

// Apply applies one entry. Entry types other than EntryBid and EntryOffer are
// ignored. New adds a level (on an existing price it replaces the level and
// counts a duplicate); Change replaces a level's size and order count; Delete
// removes a level. On error the book is unchanged.
func (b *MBP) Apply(u Update) error {
	if u.Type > EntryOffer {
		return nil
	}
	side := Side(u.Type)
	switch u.Action {
	case ActionNew:
		return b.set(side, u.Price, u.Size, u.Orders, true)
	case ActionChange:
		return b.set(side, u.Price, u.Size, u.Orders, false)
	case ActionDelete:
		return b.remove(side, u.Price)
	}
	b.counters.Invalid++
	return ErrBadAction
}

func (b *MBP) set(side Side, price, size, orders int64, isNew bool) error {
	if size < 0 || orders < 0 {
		b.counters.Invalid++
		return ErrNegative
	}
	l := &b.sides[side]
	key := keyOf(side, price)
	i, ok := l.search(key)
	if ok {
		if isNew {
			b.counters.Duplicates++
		}
		v := &l.lv[i]
		v.size, v.orders = size, orders
		return nil
	}
	if !isNew {
		b.counters.ChangeMissing++
		return ErrNoLevel
	}
	if len(l.lv) >= b.maxLevels {
		b.counters.Full++
		return ErrFull
	}
	l.insertAt(i, level{key: key, size: size, orders: orders})
	return nil
}

func (b *MBP) remove(side Side, price int64) error {
	l := &b.sides[side]
	i, ok := l.search(keyOf(side, price))
	if !ok {
		b.counters.DeleteMissing++
		return ErrNoLevel
	}
	l.removeAt(i)
	return nil
}

// Clear removes every level. The stale flag, RptSeq and counters are kept.
func (b *MBP) Clear() {
	b.sides[Bid].lv = b.sides[Bid].lv[:0]
	b.sides[Ask].lv = b.sides[Ask].lv[:0]
}

// Replace replaces the whole book with a snapshot's levels, in any order. A
// price given twice on a side keeps its last level and counts a duplicate. It
// fails, leaving the book unchanged, if a side has more than MaxLevels levels
// or a size or order count is negative.
func (b *MBP) Replace(bids, asks []Level) error {
	for _, in := range [2][]Level{bids, asks} {
		if len(in) > b.maxLevels {
			b.counters.Full++
			return ErrFull
		}
		for _, v := range in {
			if v.Size < 0 || v.Orders < 0 {
				b.counters.Invalid++
				return ErrNegative
			}
		}
	}
	b.fill(Bid, bids)
	b.fill(Ask, asks)
	return nil
}

func (b *MBP) fill(side Side, in []Level) {
	l := &b.sides[side]
	lv := l.lv[:0]
	for _, v := range in {
		lv = append(lv, level{key: keyOf(side, v.Price), size: v.Size, orders: v.Orders})
	}
	slices.SortStableFunc(lv, cmpKey)
	// Keep the last of each run of equal keys.
	n := 0
	for i := range lv {
		if i+1 < len(lv) && lv[i+1].key == lv[i].key {
			b.counters.Duplicates++
			continue
		}
		lv[n] = lv[i]
		n++
	}
	l.lv = lv[:n]
}

func cmpKey(a, b level) int {
	switch {
	case a.key < b.key:
		return -1
	case a.key > b.key:
		return 1
	}
	return 0
}

// Touch reads the book's levels, the best first, so that they are in the CPU's cache
// when the next update comes; it changes nothing. A busy-polling receiver calls it between
// datagrams (package feed, warm.go). The result means nothing: it only keeps the reads
// from being optimized away.
func (b *MBP) Touch() int64 {
	s := b.rptSeq
	for i := range b.sides {
		lv := b.sides[i].lv
		for j := len(lv) - 1; j >= 0; j-- {
			s += lv[j].key
		}
	}
	return s
}

// Depth returns the number of levels on a side.
func (b *MBP) Depth(side Side) int {
	if side > Ask {
		return 0
	}
	return len(b.sides[side].lv)
}

// At returns the level at depth i of a side, 0 being the best. It panics if i
// is out of [0, Depth(side)), like a slice index.
func (b *MBP) At(side Side, i int) Level {
	lv := b.sides[side].lv
	v := &lv[len(lv)-1-i]
	return Level{Price: keyOf(side, v.key), Size: v.size, Orders: v.orders}
}

// Best returns the best level of a side, if any.
func (b *MBP) Best(side Side) (Level, bool) {
	if b.Depth(side) == 0 {
		return Level{}, false
	}
	return b.At(side, 0), true
}

// AppendLevels appends the levels of a side to dst, best first, and returns
// the extended slice; it allocates only if dst lacks capacity.
func (b *MBP) AppendLevels(dst []Level, side Side) []Level {
	if side > Ask {
		return dst
	}
	return b.sides[side].appendLevels(dst, side)
}

// PriceExp returns the price exponent.
func (b *MBP) PriceExp() int { return b.priceExp }

// SizeExp returns the size exponent.
func (b *MBP) SizeExp() int { return b.sizeExp }

// RptSeq returns the RptSeq last recorded with SetRptSeq.
func (b *MBP) RptSeq() int64 { return b.rptSeq }

// SetRptSeq records the RptSeq (tag 83) of the last entry applied.
func (b *MBP) SetRptSeq(seq int64) { b.rptSeq = seq }

// Stale reports whether the book is marked stale.
func (b *MBP) Stale() bool { return b.stale }

// SetStale marks the book stale (e.g. on a gap) or fresh (after recovery).
func (b *MBP) SetStale(stale bool) { b.stale = stale }

// Counters returns the anomaly counters.
func (b *MBP) Counters() Counters { return b.counters }

// ResetCounters sets the anomaly counters to zero.
func (b *MBP) ResetCounters() { b.counters = Counters{} }

// Level returns the level of a side at price, if any.
func (b *MBP) Level(side Side, price int64) (Level, bool) {
	if side > Ask {
		return Level{}, false
	}
	return b.sides[side].at(side, price)
}
