package book

import (
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchMBP returns a book with depth levels a side: bids 10000, 9999, ...
// and asks 10001, 10002, ... (tick 1).
func benchMBP(b *testing.B, depth int) *MBP {
	bk := mustMBP(b, Config{PriceExp: -2, MaxLevels: depth + 8})
	for i := range depth {
		bk.Apply(Update{Action: ActionNew, Type: EntryBid, Price: 10000 - int64(i), Size: 100, Orders: 1})
		bk.Apply(Update{Action: ActionNew, Type: EntryOffer, Price: 10001 + int64(i), Size: 100, Orders: 1})
	}
	return bk
}

// BenchmarkMBPChange changes the size of one level at a given depth.
func BenchmarkMBPChange(b *testing.B) {
	for _, tc := range []struct {
		name         string
		depth, level int
	}{
		{"top/depth=20", 20, 0},
		{"level=3/depth=20", 20, 3},
		{"level=10/depth=20", 20, 10},
		{"bottom/depth=20", 20, 19},
		{"top/depth=1000", 1000, 0},
		{"level=500/depth=1000", 1000, 500},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bk := benchMBP(b, tc.depth)
			u := Update{Action: ActionChange, Type: EntryBid, Price: 10000 - int64(tc.level), Orders: 2}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				u.Size = int64(i & 1023)
				if err := bk.Apply(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMBPNewDelete adds a level inside the book and deletes it again:
// two updates per op.
func BenchmarkMBPNewDelete(b *testing.B) {
	for _, tc := range []struct {
		name  string
		depth int
		price int64 // bid prices are 10000 - level
	}{
		{"top/depth=20", 20, 10001},          // a new best bid
		{"level=2/depth=20", 20, 9998},       // the level is deleted first
		{"level=10/depth=20", 20, 9990},      // the level is deleted first
		{"level=500/depth=1000", 1000, 9500}, // the level is deleted first
	} {
		b.Run(tc.name, func(b *testing.B) {
			bk := benchMBP(b, tc.depth)
			if tc.price <= 10000 {
				bk.Apply(Update{Action: ActionDelete, Type: EntryBid, Price: tc.price})
			}
			add := Update{Action: ActionNew, Type: EntryBid, Price: tc.price, Size: 5, Orders: 1}
			del := Update{Action: ActionDelete, Type: EntryBid, Price: tc.price}
			b.ReportAllocs()
			for b.Loop() {
				if err := bk.Apply(add); err != nil {
					b.Fatal(err)
				}
				if err := bk.Apply(del); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMBPApplyMixed applies a random stream of updates to a depth-20
// book, concentrated near the top as a feed's are (the level is geometric,
// half at the best level): 80% changes, 20% deletes each followed by a New
// of the same level. One update per op.
func BenchmarkMBPApplyMixed(b *testing.B) {
	bk := benchMBP(b, 20)
	rng := rand.New(rand.NewPCG(1, 2))
	var ups []Update
	for len(ups) < 1<<16 {
		lvl := int64(0)
		for lvl < 19 && rng.IntN(2) == 0 {
			lvl++
		}
		typ := EntryType(rng.IntN(2))
		price := 10000 - lvl
		if typ == EntryOffer {
			price = 10001 + lvl
		}
		if rng.IntN(10) < 8 {
			ups = append(ups, Update{Action: ActionChange, Type: typ, Price: price, Size: rng.Int64N(1000), Orders: 1})
			continue
		}
		ups = append(ups,
			Update{Action: ActionDelete, Type: typ, Price: price},
			Update{Action: ActionNew, Type: typ, Price: price, Size: 1, Orders: 1})
	}
	ups = ups[:1<<16]
	if ups[len(ups)-1].Action == ActionDelete {
		ups[len(ups)-1].Action = ActionChange
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := bk.Apply(ups[i&(1<<16-1)]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchMBO returns a book of n orders a side over 20 levels a side.
func benchMBO(b *testing.B, n int) (*MBO, [][]byte) {
	bk := mustMBO(b, Config{PriceExp: -2})
	var ids [][]byte
	for i := range 2 * n {
		id := strconv.AppendUint(nil, 1_000_000_000+uint64(i)*7919, 10)
		ids = append(ids, id)
		typ := EntryType(i & 1)
		price := int64(10000 - i/2%20)
		if typ == EntryOffer {
			price = 10001 + int64(i/2%20)
		}
		if err := bk.Apply(OrderUpdate{Action: ActionNew, Type: typ, ID: id, Price: price, Size: 10}); err != nil {
			b.Fatal(err)
		}
	}
	return bk, ids
}

// BenchmarkMBOAddDelete adds an order at the second level of a book of 1000
// orders a side and deletes it: two updates per op.
func BenchmarkMBOAddDelete(b *testing.B) {
	bk, _ := benchMBO(b, 1000)
	id := []byte("9999999999")
	add := OrderUpdate{Action: ActionNew, Type: EntryBid, ID: id, Price: 9999, Size: 3}
	del := OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: id}
	b.ReportAllocs()
	for b.Loop() {
		if err := bk.Apply(add); err != nil {
			b.Fatal(err)
		}
		if err := bk.Apply(del); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMBOChange changes the size of existing orders, cycling through all
// 2000 of them (one update per op).
func BenchmarkMBOChange(b *testing.B) {
	bk, ids := benchMBO(b, 1000)
	ups := make([]OrderUpdate, len(ids))
	for i, id := range ids {
		o, _ := bk.Lookup(id)
		ups[i] = OrderUpdate{Action: ActionChange, Type: EntryType(o.Side), ID: id, Price: o.Price}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := &ups[i%len(ups)]
		u.Size = int64(i&63) + 1
		if err := bk.Apply(*u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendLevels(b *testing.B) {
	bk := benchMBP(b, 20)
	buf := make([]Level, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = bk.AppendLevels(buf[:0], Bid)
	}
}

func BenchmarkFormatDecimal(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = FormatDecimal(buf[:0], 1012500+int64(i&1023), -4)
	}
}

func BenchmarkWriteDump(b *testing.B) {
	var books []Named
	for i := range 100 {
		books = append(books, Named{"S" + strconv.Itoa(i), benchMBP(b, 20)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteDump(io.Discard, books); err != nil {
			b.Fatal(err)
		}
	}
}
