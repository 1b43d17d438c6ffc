package bus

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/quickfixgo/quickfix"

	"fastfeed/book"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// Books rebuilds price-level books from the messages an OMS client receives from the
// bus: W replaces a book, X entries change it, an f with StaleTradingStatus marks it
// stale. It is the client side of the bus's contract, for fastfeed oms and the tests;
// it is not safe for concurrent use.
//
// An X entry whose RptSeq is not after the book's is a duplicate (two overlapping
// subscriptions deliver the same instrument twice) and is skipped; one beyond the next
// RptSeq is applied and counted as a gap.
type Books struct {
	books map[string]*clientBook
	stats BooksStats

	inc  md.Incremental
	snap md.Snapshot
	st   md.Status
}

// BooksStats are what Books has seen.
type BooksStats struct {
	Snapshots  uint64 `json:"snapshots"`
	Entries    uint64 `json:"entries"`
	Duplicates uint64 `json:"duplicates"`
	Gaps       uint64 `json:"gaps"`
	Stale      uint64 `json:"stale"`
	Statuses   uint64 `json:"statuses"`
}

type clientBook struct {
	rptSeq     uint32
	stale      bool
	bids, asks map[string]clientLevel // by canonical price
}

type clientLevel struct {
	price, size md.Decimal
	orders      uint32
}

// NewBooks returns an empty set of books.
func NewBooks() *Books { return &Books{books: map[string]*clientBook{}} }

// Stats returns the counters.
func (b *Books) Stats() BooksStats { return b.stats }

func (b *Books) get(symbol string) *clientBook {
	cb := b.books[symbol]
	if cb == nil {
		cb = &clientBook{bids: map[string]clientLevel{}, asks: map[string]clientLevel{}}
		b.books[symbol] = cb
	}
	return cb
}

// Apply applies one market-data message (W, X or f) and returns its kind and MDReqID.
// Other messages are an error.
func (b *Books) Apply(msg *quickfix.Message) (md.Kind, string, error) {
	k, err := md.KindOfFIX(msg)
	if err != nil {
		return 0, "", err
	}
	switch k {
	case md.KindSnapshot:
		appl, err := md.SnapshotFromFIX(msg, &b.snap)
		if err != nil {
			return k, "", err
		}
		cb := b.get(string(b.snap.Symbol))
		clear(cb.bids)
		clear(cb.asks)
		for _, e := range b.snap.Entries {
			cb.set(e.Type, clientLevel{price: e.Price, size: e.Size, orders: e.Orders})
		}
		cb.rptSeq, cb.stale = b.snap.RptSeq, false
		b.stats.Snapshots++
		return k, appl.MDReqID, nil
	case md.KindIncremental:
		appl, err := md.IncrementalFromFIX(msg, &b.inc)
		if err != nil {
			return k, "", err
		}
		for _, e := range b.inc.Entries {
			cb := b.get(string(e.Symbol))
			switch {
			case int32(e.RptSeq-cb.rptSeq) <= 0:
				b.stats.Duplicates++
				continue
			case e.RptSeq != cb.rptSeq+1:
				b.stats.Gaps++
			}
			cb.rptSeq = e.RptSeq
			b.stats.Entries++
			if !mdbook.Changes(e.Type) {
				continue
			}
			if e.Action == md.Delete {
				cb.remove(e.Type, e.Price)
				continue
			}
			cb.set(e.Type, clientLevel{price: e.Price, size: e.Size, orders: e.Orders})
		}
		return k, appl.MDReqID, nil
	case md.KindStatus:
		appl, err := md.StatusFromFIX(msg, &b.st)
		if err != nil {
			return k, "", err
		}
		b.stats.Statuses++
		if b.st.TradingStatus == StaleTradingStatus && string(b.st.Text) == StaleText {
			b.get(string(b.st.Symbol)).stale = true
			b.stats.Stale++
		}
		return k, appl.MDReqID, nil
	}
	return k, "", fmt.Errorf("bus: books: unexpected %v", k)
}

func priceKey(d md.Decimal) string { return string(book.FormatDecimal(nil, d.Mantissa, int(d.Exp))) }

func (cb *clientBook) side(t md.EntryType) map[string]clientLevel {
	if t == md.Bid {
		return cb.bids
	}
	return cb.asks
}

func (cb *clientBook) set(t md.EntryType, l clientLevel) {
	if t == md.Bid || t == md.Offer {
		cb.side(t)[priceKey(l.price)] = l
	}
}

func (cb *clientBook) remove(t md.EntryType, price md.Decimal) {
	delete(cb.side(t), priceKey(price))
}

// compareDec compares two decimals exactly when both fit at the smaller exponent.
func compareDec(a, b md.Decimal) int {
	e := min(a.Exp, b.Exp)
	am, ok1 := a.At(e)
	bm, ok2 := b.At(e)
	if ok1 && ok2 {
		return cmp.Compare(am, bm)
	}
	return cmp.Compare(float64(a.Mantissa)*pow10(a.Exp), float64(b.Mantissa)*pow10(b.Exp))
}

func pow10(e int8) float64 {
	f := 1.0
	for ; e > 0; e-- {
		f *= 10
	}
	for ; e < 0; e++ {
		f /= 10
	}
	return f
}

// Dump returns the books in the --dump-books form, sorted by symbol, best levels first.
func (b *Books) Dump() book.Dump {
	syms := make([]string, 0, len(b.books))
	for s := range b.books {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	var d book.Dump
	for _, s := range syms {
		cb := b.books[s]
		d = append(d, book.DumpBook{Symbol: s, RptSeq: int64(cb.rptSeq), Stale: cb.stale,
			Bids: dumpLevels(cb.bids, true), Asks: dumpLevels(cb.asks, false)})
	}
	return d
}

func dumpLevels(m map[string]clientLevel, bids bool) []book.DumpLevel {
	ls := make([]clientLevel, 0, len(m))
	for _, l := range m {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(x, y clientLevel) int {
		if bids {
			return compareDec(y.price, x.price)
		}
		return compareDec(x.price, y.price)
	})
	out := make([]book.DumpLevel, 0, len(ls))
	for _, l := range ls {
		out = append(out, book.DumpLevel{Price: priceKey(l.price), Size: priceKey(l.size), Orders: int64(l.orders)})
	}
	return out
}
