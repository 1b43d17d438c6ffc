package publisher

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"fastfeed/book"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// SimEntry is one entry the simulator produced and the index of its
// instrument. Entry.Symbol aliases the simulator's copy of the symbol, which
// never changes.
type SimEntry struct {
	Instrument int32
	md.Entry
}

// Simulator is a deterministic random walk of market-by-price books: the
// same instruments, depth and seed give the same entries. Every entry it
// returns has already been applied to its instrument's book.MBP (the ground
// truth) and carries the instrument's next RptSeq; trades (MDEntryType 2)
// count in RptSeq but do not change a book.
//
// An event picks an instrument (by weight) and then one of: a new level, a
// change of a level's size, a deletion of a level, or a trade at the best
// level of one side followed by the change or deletion of that level. Bids
// stay below asks, prices on the tick grid and above zero, and each side
// between the minimum and maximum depth (a side short of the minimum gets a
// new level first). A Simulator is not safe for concurrent use; Open and
// Step do not allocate (the books get their full capacity up front) beyond
// growing dst.
type Simulator struct {
	rng      *rand.Rand
	ins      []simInstrument
	alias    []aliasSlot // Walker's alias table of the weights
	minDepth int
	maxDepth int
	levels   []book.Level // scratch
	err      error
}

type simInstrument struct {
	symbol   []byte
	priceExp int8
	sizeExp  int8
	tick     int64
	start    int64
	lot      int64
	book     *book.MBP
	rptSeq   uint32
}

// NewSimulator returns a simulator of the instruments (validated as Config
// does) with sides of minDepth..maxDepth levels, seeded with seed.
func NewSimulator(instruments []Instrument, minDepth, maxDepth int, seed uint64) (*Simulator, error) {
	if minDepth < 1 || maxDepth < minDepth || maxDepth > MaxDepthLimit {
		return nil, fmt.Errorf("publisher: simulator depth %d..%d: want 1 <= min <= max <= %d", minDepth, maxDepth, MaxDepthLimit)
	}
	if len(instruments) == 0 {
		return nil, fmt.Errorf("publisher: simulator: no instruments")
	}
	s := &Simulator{
		rng:      rand.New(rand.NewPCG(seed, seed^0x5ca1ab1e0ddba11)),
		ins:      make([]simInstrument, len(instruments)),
		minDepth: minDepth,
		maxDepth: maxDepth,
		levels:   make([]book.Level, 0, maxDepth+1),
	}
	for i, in := range instruments {
		in.Weight = weightOf(in)
		if err := in.validate(maxDepth); err != nil {
			return nil, fmt.Errorf("publisher: simulator: instrument %d: %w", i, err)
		}
		b, err := book.NewMBP(book.Config{PriceExp: int(in.PriceExp), SizeExp: int(in.SizeExp), MaxLevels: maxDepth})
		if err != nil {
			return nil, fmt.Errorf("publisher: simulator: %s: %w", in.Symbol, err)
		}
		// Give both sides their full capacity now, so that no update
		// allocates later (Replace grows the ladders, Clear keeps them).
		reserve := make([]book.Level, maxDepth)
		for j := range reserve {
			reserve[j] = book.Level{Price: int64(j + 1)}
		}
		if err := b.Replace(reserve, reserve); err != nil {
			return nil, fmt.Errorf("publisher: simulator: %s: %w", in.Symbol, err)
		}
		b.Clear()
		s.ins[i] = simInstrument{symbol: []byte(in.Symbol), priceExp: in.PriceExp, sizeExp: in.SizeExp,
			tick: in.Tick, start: in.StartPrice, lot: lotOf(in), book: b}
	}
	s.alias = newAlias(instruments)
	return s, nil
}

// aliasSlot is a column of an alias table: keep the column's own index with
// probability keep/2^32, else take alias.
type aliasSlot struct {
	keep  uint32
	alias int32
}

// newAlias builds Walker's alias table (Vose's construction) of the
// instruments' weights, for drawing one in constant time.
func newAlias(instruments []Instrument) []aliasSlot {
	n := len(instruments)
	total := 0.0
	for _, in := range instruments {
		total += weightOf(in)
	}
	scaled := make([]float64, n)
	var small, large []int
	for i, in := range instruments {
		scaled[i] = weightOf(in) * float64(n) / total
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	t := make([]aliasSlot, n)
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t[s] = aliasSlot{keep: uint32(scaled[s] * (1 << 32)), alias: int32(l)}
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		t[i] = aliasSlot{keep: math.MaxUint32, alias: int32(i)} // 1 up to rounding
	}
	return t
}

func weightOf(in Instrument) float64 {
	if in.Weight == 0 {
		return 1
	}
	return in.Weight
}

// lotOf picks a size unit from the price: round lots of 100 for cheap
// instruments, of 1 for dear ones.
func lotOf(in Instrument) int64 {
	price := float64(in.StartPrice) * math.Pow10(int(in.PriceExp))
	switch {
	case price >= 1000:
		return 1
	case price >= 50:
		return 10
	}
	return 100
}

// Len returns the number of instruments.
func (s *Simulator) Len() int { return len(s.ins) }

// Book returns the ground-truth book of instrument i.
func (s *Simulator) Book(i int) *book.MBP { return s.ins[i].book }

// Symbol returns the symbol of instrument i.
func (s *Simulator) Symbol(i int) string { return string(s.ins[i].symbol) }

// RptSeq returns the RptSeq of the last entry of instrument i (0 before any).
func (s *Simulator) RptSeq(i int) uint32 { return s.ins[i].rptSeq }

// Err returns the first internal inconsistency met (an entry its own book
// refused), which would be a bug of the simulator; nil normally.
func (s *Simulator) Err() error { return s.err }

// WriteDump writes the ground-truth books with book.WriteDump.
func (s *Simulator) WriteDump(w io.Writer) error {
	books := make([]book.Named, len(s.ins))
	for i := range s.ins {
		books[i] = book.Named{Symbol: string(s.ins[i].symbol), Book: s.ins[i].book}
	}
	return book.WriteDump(w, books)
}

// Open appends the opening book of instrument i (minDepth to about half
// way to maxDepth levels a side around its start price, spread of at least
// two ticks) as New entries, bids then asks, best first.
func (s *Simulator) Open(dst []SimEntry, i int) []SimEntry {
	in := &s.ins[i]
	depth := s.minDepth + s.rng.IntN((s.maxDepth-s.minDepth)/2+1)
	p := in.start
	for range depth {
		p -= in.tick * (1 + s.rng.Int64N(2))
		if p < in.tick {
			break
		}
		dst = s.emit(dst, i, md.New, md.Bid, p, s.size(in), 0)
	}
	p = in.start
	for range depth {
		p += in.tick * (1 + s.rng.Int64N(2))
		dst = s.emit(dst, i, md.New, md.Offer, p, s.size(in), 0)
	}
	return dst
}

// Step runs one event and appends its one or two entries to dst.
func (s *Simulator) Step(dst []SimEntry) []SimEntry {
	i := s.pick()
	b := s.ins[i].book
	nb, na := b.Depth(book.Bid), b.Depth(book.Ask)
	if nb < s.minDepth || na < s.minDepth {
		side := book.Bid
		if na < nb {
			side = book.Ask
		}
		return s.newLevel(dst, i, side)
	}
	side := book.Side(s.rng.IntN(2))
	switch u := s.rng.IntN(100); {
	case u < 35:
		if b.Depth(side) >= s.maxDepth {
			return s.deleteLevel(dst, i, side, b.Depth(side)-1)
		}
		return s.newLevel(dst, i, side)
	case u < 65:
		return s.changeLevel(dst, i, side)
	case u < 85:
		if b.Depth(side) <= s.minDepth {
			return s.newLevel(dst, i, side)
		}
		return s.deleteLevel(dst, i, side, s.levelIndex(b.Depth(side)))
	}
	return s.trade(dst, i)
}

// pick draws an instrument by weight: the high half of one random number
// picks a column (multiply-shift), the low half keeps it or takes its alias.
func (s *Simulator) pick() int {
	r := s.rng.Uint64()
	i := int((r >> 32) * uint64(len(s.alias)) >> 32)
	if uint32(r) < s.alias[i].keep {
		return i
	}
	return int(s.alias[i].alias)
}

// levelIndex draws a depth index below n, biased to the top of the book.
func (s *Simulator) levelIndex(n int) int { return min(s.rng.IntN(n), s.rng.IntN(n)) }

func (s *Simulator) size(in *simInstrument) int64 {
	return (1 + s.rng.Int64N(8)) * (1 + s.rng.Int64N(20)) * in.lot
}

// hasLevel reports whether the side in s.levels has a level at price.
func (s *Simulator) hasLevel(price int64) bool {
	for _, l := range s.levels {
		if l.Price == price {
			return true
		}
	}
	return false
}

// newLevel adds a level on side: one to two ticks inside the spread now and
// then, else a few ticks behind the best at the first free price. Where no
// price fits (a bid side pressed against zero), it changes a level instead.
func (s *Simulator) newLevel(dst []SimEntry, i int, side book.Side) []SimEntry {
	in := &s.ins[i]
	b := in.book
	if b.Depth(side) >= s.maxDepth {
		return s.changeLevel(dst, i, side)
	}
	s.levels = b.AppendLevels(s.levels[:0], side)
	own, hasOwn := b.Best(side)
	opp, hasOpp := b.Best(1 - side)
	dir := int64(-1) // away from the spread: down for bids, up for asks
	if side == book.Ask {
		dir = 1
	}
	var price int64
	switch {
	case hasOwn && hasOpp && (opp.Price-own.Price)*-dir >= 2*in.tick && s.rng.IntN(4) == 0:
		spread := (opp.Price - own.Price) * -dir / in.tick
		price = own.Price - dir*in.tick*(1+s.rng.Int64N(min(spread-1, 2)))
	case hasOwn:
		price = own.Price + dir*in.tick*(1+s.rng.Int64N(int64(len(s.levels))+2))
		for s.hasLevel(price) {
			price += dir * in.tick
		}
	case hasOpp:
		price = opp.Price + dir*in.tick*(1+s.rng.Int64N(3))
	default:
		price = in.start + dir*in.tick
	}
	if price < in.tick || price > maxPrice {
		if hasOwn {
			return s.changeLevel(dst, i, side)
		}
		if hasOpp {
			return s.changeLevel(dst, i, 1-side)
		}
		price = in.start // an empty book: cannot happen after Open
	}
	return s.emit(dst, i, md.New, mdbook.SideType(side), price, s.size(in), 0)
}

func (s *Simulator) changeLevel(dst []SimEntry, i int, side book.Side) []SimEntry {
	in := &s.ins[i]
	d := in.book.Depth(side)
	if d == 0 {
		return s.newLevel(dst, i, side)
	}
	l := in.book.At(side, s.levelIndex(d))
	orders := max(1, l.Orders+s.rng.Int64N(3)-1)
	size := orders * (1 + s.rng.Int64N(20)) * in.lot
	return s.emit(dst, i, md.Change, mdbook.SideType(side), l.Price, size, orders)
}

func (s *Simulator) deleteLevel(dst []SimEntry, i int, side book.Side, idx int) []SimEntry {
	l := s.ins[i].book.At(side, idx)
	return s.emit(dst, i, md.Delete, mdbook.SideType(side), l.Price, 0, 0)
}

// trade hits the best level of one side: a buyer takes the best offer, a
// seller the best bid. Buyers grow scarcer as the price rises above the start
// price (and sellers as it falls), which keeps the walk near its start.
func (s *Simulator) trade(dst []SimEntry, i int) []SimEntry {
	in := &s.ins[i]
	b := in.book
	bid, _ := b.Best(book.Bid)
	ask, _ := b.Best(book.Ask)
	dev := float64((bid.Price+ask.Price)/2-in.start) / float64(in.start)
	buy := s.rng.Float64() < 0.5-max(-0.25, min(0.25, dev*5))
	side := book.Bid // the side hit
	if buy {
		side = book.Ask
	}
	l, ok := b.Best(side)
	if !ok {
		return s.newLevel(dst, i, side)
	}
	qty := l.Size
	if units := l.Size / in.lot; units > 1 && s.rng.IntN(10) >= 3 {
		qty = in.lot * (1 + s.rng.Int64N(units-1))
	}
	dst = s.emit(dst, i, md.New, md.Trade, l.Price, qty, 0)
	if qty == l.Size {
		return s.emit(dst, i, md.Delete, mdbook.SideType(side), l.Price, 0, 0)
	}
	orders := max(1, min(l.Orders-s.rng.Int64N(2), l.Size-qty))
	return s.emit(dst, i, md.Change, mdbook.SideType(side), l.Price, l.Size-qty, orders)
}

// emit numbers an entry, applies it to the ground-truth book and appends it.
func (s *Simulator) emit(dst []SimEntry, i int, action md.Action, typ md.EntryType, price, size, orders int64) []SimEntry {
	in := &s.ins[i]
	if orders == 0 && typ != md.Trade && action != md.Delete {
		orders = 1 + s.rng.Int64N(max(1, min(10, size/in.lot)))
	}
	in.rptSeq++
	e := md.Entry{Action: action, Type: typ, Symbol: in.symbol, RptSeq: in.rptSeq, Price: md.Dec(price, in.priceExp)}
	if action != md.Delete {
		e.Size = md.Dec(size, in.sizeExp)
		e.Orders = uint32(orders)
	}
	if typ != md.Trade {
		u := book.Update{Action: book.Action(action), Type: mdbook.EntryType(typ), Price: price, Size: size, Orders: orders}
		if err := in.book.Apply(u); err != nil && s.err == nil {
			s.err = fmt.Errorf("publisher: simulator bug: %s entry %d (%+v): %w", in.symbol, in.rptSeq, u, err)
		}
	}
	in.book.SetRptSeq(int64(in.rptSeq))
	return append(dst, SimEntry{Instrument: int32(i), Entry: e})
}
