package mdbook

import (
	"errors"
	"testing"

	"fastfeed/book"
	"fastfeed/md"
)

func TestUpdate(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    md.Entry
		want book.Update
		err  bool
	}{
		{"bid at the book's exponents", md.Entry{Action: md.New, Type: md.Bid, Price: md.Dec(10125, -2), Size: md.Dec(7, 0), Orders: 3},
			book.Update{Action: book.ActionNew, Type: book.EntryBid, Price: 10125, Size: 7, Orders: 3}, false},
		{"offer rescaled", md.Entry{Action: md.Change, Type: md.Offer, Price: md.Dec(1013, -1), Size: md.Dec(5, 1)},
			book.Update{Action: book.ActionChange, Type: book.EntryOffer, Price: 10130, Size: 50}, false},
		{"delete without a size", md.Entry{Action: md.Delete, Type: md.Bid, Price: md.Dec(10125, -2)},
			book.Update{Action: book.ActionDelete, Type: book.EntryBid, Price: 10125}, false},
		{"trade: type alone", md.Entry{Action: md.New, Type: md.Trade, Price: md.Dec(1, -5), Size: md.Dec(3, 0)},
			book.Update{Action: book.ActionNew, Type: book.EntryTrade}, false},
		{"other entry type", md.Entry{Type: 'x'}, book.Update{Type: book.EntryOther}, false},
		{"too many decimals", md.Entry{Type: md.Bid, Price: md.Dec(101251, -3), Size: md.Dec(1, 0)}, book.Update{}, true},
		{"no price", md.Entry{Type: md.Offer, Size: md.Dec(1, 0)}, book.Update{}, true},
	} {
		u, err := Update(&tc.x, -2, 0)
		if (err != nil) != tc.err || (!tc.err && u != tc.want) {
			t.Errorf("%s: %+v, %v; want %+v (error %v)", tc.name, u, err, tc.want, tc.err)
		}
	}
	if _, err := Update(&md.Entry{Type: md.Bid, Size: md.Dec(1, 0)}, -2, 0); !errors.Is(err, ErrNoPrice) {
		t.Errorf("no price: %v", err)
	}
}

// TestRoundTrip: a book's levels as snapshot entries, and back into levels, are the same
// levels; entries that are not levels are skipped.
func TestRoundTrip(t *testing.T) {
	b, err := book.NewMBP(book.Config{PriceExp: -2})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []book.Update{
		{Action: book.ActionNew, Type: book.EntryBid, Price: 10000, Size: 5, Orders: 1},
		{Action: book.ActionNew, Type: book.EntryBid, Price: 9990, Size: 7, Orders: 2},
		{Action: book.ActionNew, Type: book.EntryOffer, Price: 10010, Size: 3, Orders: 1},
	} {
		if err := b.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := Entries(nil, b, nil)
	entries = append(entries, md.Entry{Type: md.Trade, Price: md.Dec(1, 0)})
	bids, asks, err := Levels(nil, nil, entries, -2, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [2][]book.Level{b.AppendLevels(nil, book.Bid), b.AppendLevels(nil, book.Ask)}
	if len(bids) != 2 || len(asks) != 1 || bids[0] != want[0][0] || bids[1] != want[0][1] || asks[0] != want[1][0] {
		t.Errorf("levels %v %v, want %v", bids, asks, want)
	}
	if _, _, err := Levels(nil, nil, []md.Entry{{Type: md.Bid, Price: md.Dec(1, -3), Size: md.Dec(1, 0)}}, -2, 0); err == nil {
		t.Error("a level with more decimals than the book keeps was accepted")
	}
}
