// Package mdbook is the one adapter between the market-data model (package md) and the
// order books (package book): an incremental entry to a book update, a snapshot's
// entries to book levels, and a book's levels back to snapshot entries. The handler, the
// publisher's simulator and recovery snapshots, and the bus all convert through it, so
// that a trade or an absent value means the same thing everywhere.
//
// Prices and sizes move between md.Decimal (a mantissa at any exponent) and a book's
// int64 mantissas at the book's exponents; a value that has more fractional digits than
// the book keeps, or overflows, is refused with an error, never rounded. Nothing here
// allocates but the errors.
package mdbook

import (
	"errors"
	"fmt"

	"fastfeed/book"
	"fastfeed/md"
)

// EntryType maps MDEntryType: bid, offer and trade, anything else EntryOther.
func EntryType(t md.EntryType) book.EntryType {
	switch t {
	case md.Bid:
		return book.EntryBid
	case md.Offer:
		return book.EntryOffer
	case md.Trade:
		return book.EntryTrade
	}
	return book.EntryOther
}

// SideType maps a book side to the MDEntryType of its levels.
func SideType(s book.Side) md.EntryType {
	if s == book.Ask {
		return md.Offer
	}
	return md.Bid
}

// Changes reports whether an entry of type t changes a book: bids and offers do; trades
// and other entries are reported, not applied.
func Changes(t md.EntryType) bool { return t == md.Bid || t == md.Offer }

// ErrNoPrice is returned for a bid or offer without a price.
var ErrNoPrice = errors.New("mdbook: bid or offer without a price")

// Update converts an incremental entry to a book update at the book's exponents. An
// entry that does not change a book (Changes is false) converts to its type and action
// alone. A bid or offer must have a price; its size and orders may be absent (a delete).
func Update(x *md.Entry, priceExp, sizeExp int8) (book.Update, error) {
	if x.Price.Exp == priceExp && x.Size.Exp == sizeExp && x.Price.Valid && x.Size.Valid && (x.Type == md.Bid || x.Type == md.Offer) {
		// The common case, inlined: a bid or offer at the book's exponents.
		return book.Update{Action: book.Action(x.Action), Type: book.EntryType(x.Type - md.Bid),
			Price: x.Price.Mantissa, Size: x.Size.Mantissa, Orders: int64(x.Orders)}, nil
	}
	return rescale(x, book.Update{Action: book.Action(x.Action), Type: EntryType(x.Type), Orders: int64(x.Orders)}, priceExp, sizeExp)
}

// rescale is Update for the other cases: rescaled values, absent prices, entries that do
// not change a book.
func rescale(x *md.Entry, u book.Update, priceExp, sizeExp int8) (book.Update, error) {
	if !Changes(x.Type) {
		return u, nil
	}
	if !x.Price.Valid {
		return u, ErrNoPrice
	}
	var ok bool
	if u.Price, ok = x.Price.At(priceExp); !ok {
		return u, fmt.Errorf("mdbook: price %d e%d not representable at exponent %d", x.Price.Mantissa, x.Price.Exp, priceExp)
	}
	if x.Size.Valid {
		if u.Size, ok = x.Size.At(sizeExp); !ok {
			return u, fmt.Errorf("mdbook: size %d e%d not representable at exponent %d", x.Size.Mantissa, x.Size.Exp, sizeExp)
		}
	}
	return u, nil
}

// Levels appends a snapshot's bid and offer entries to bids and asks as levels at the
// book's exponents, in the order given (best first); other entries are skipped.
func Levels(bids, asks []book.Level, entries []md.Entry, priceExp, sizeExp int8) ([]book.Level, []book.Level, error) {
	for i := range entries {
		x := &entries[i]
		if !Changes(x.Type) {
			continue
		}
		px, ok1 := x.Price.At(priceExp)
		sz, ok2 := x.Size.At(sizeExp)
		if !ok1 || !ok2 || !x.Price.Valid {
			return bids, asks, fmt.Errorf("mdbook: level %d (%d e%d x %d e%d) not representable at exponents %d, %d",
				i, x.Price.Mantissa, x.Price.Exp, x.Size.Mantissa, x.Size.Exp, priceExp, sizeExp)
		}
		l := book.Level{Price: px, Size: sz, Orders: int64(x.Orders)}
		if x.Type == md.Bid {
			bids = append(bids, l)
		} else {
			asks = append(asks, l)
		}
	}
	return bids, asks, nil
}

// Entries appends v's levels, bids then offers, best first, as snapshot entries at the
// book's exponents. scratch is reused for reading the levels and returned.
func Entries(dst []md.Entry, v book.View, scratch []book.Level) ([]md.Entry, []book.Level) {
	pe, se := int8(v.PriceExp()), int8(v.SizeExp())
	for _, side := range [2]book.Side{book.Bid, book.Ask} {
		t := SideType(side)
		scratch = v.AppendLevels(scratch[:0], side)
		for _, l := range scratch {
			dst = append(dst, md.Entry{Type: t, Price: md.Dec(l.Price, pe), Size: md.Dec(l.Size, se), Orders: uint32(l.Orders)})
		}
	}
	return dst, scratch
}
