package book_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"fastfeed/book"
)

func ExampleMBP() {
	// SBER: prices in hundredths (exponent -2), sizes in lots (exponent 0).
	b, err := book.NewMBP(book.Config{PriceExp: -2})
	if err != nil {
		panic(err)
	}
	for _, u := range []book.Update{
		{Action: book.ActionNew, Type: book.EntryBid, Price: 10125, Size: 300, Orders: 3},
		{Action: book.ActionNew, Type: book.EntryBid, Price: 10120, Size: 100, Orders: 1},
		{Action: book.ActionNew, Type: book.EntryOffer, Price: 10130, Size: 50, Orders: 1},
		{Action: book.ActionChange, Type: book.EntryBid, Price: 10120, Size: 150, Orders: 2},
		{Action: book.ActionNew, Type: book.EntryTrade, Price: 10130, Size: 10}, // ignored
	} {
		if err := b.Apply(u); err != nil {
			fmt.Println("error:", err)
		}
	}
	err = b.Apply(book.Update{Action: book.ActionDelete, Type: book.EntryOffer, Price: 10140})
	fmt.Println("delete missing:", err, "counted:", b.Counters().DeleteMissing)

	var levels []book.Level // reuse across calls: no allocation once grown
	var buf []byte
	levels = b.AppendLevels(levels[:0], book.Bid)
	for _, l := range levels {
		buf = book.FormatDecimal(buf[:0], l.Price, b.PriceExp())
		fmt.Printf("bid %s x %d (%d orders)\n", buf, l.Size, l.Orders)
	}
	// Output:
	// delete missing: book: no level at that price counted: 1
	// bid 101.25 x 300 (3 orders)
	// bid 101.2 x 150 (2 orders)
}

func ExampleMBO() {
	b, err := book.NewMBO(book.Config{PriceExp: -1})
	if err != nil {
		panic(err)
	}
	var id []byte
	for i, px := range []int64{1505, 1505, 1500} {
		id = strconv.AppendInt(id[:0], int64(100+i), 10) // a uint64 ID, formatted without allocating
		b.Apply(book.OrderUpdate{Action: book.ActionNew, Type: book.EntryBid, ID: id, Price: px, Size: 10})
	}
	b.Apply(book.OrderUpdate{Action: book.ActionDelete, Type: book.EntryBid, ID: []byte("100")})
	for _, l := range b.AppendLevels(nil, book.Bid) {
		fmt.Printf("%s: size %d, %d orders\n", book.FormatDecimal(nil, l.Price, b.PriceExp()), l.Size, l.Orders)
	}
	// Output:
	// 150.5: size 10, 1 orders
	// 150: size 10, 1 orders
}

func ExampleWriteDump() {
	b, _ := book.NewMBP(book.Config{PriceExp: -2})
	b.Apply(book.Update{Action: book.ActionNew, Type: book.EntryBid, Price: 10125, Size: 300, Orders: 3})
	b.Apply(book.Update{Action: book.ActionNew, Type: book.EntryOffer, Price: 10130, Size: 50, Orders: 1})
	b.SetRptSeq(812)
	empty, _ := book.NewMBP(book.Config{})
	empty.SetStale(true)
	if err := book.WriteDump(os.Stdout, []book.Named{{Symbol: "SBER", Book: b}, {Symbol: "GAZP", Book: empty}}); err != nil {
		panic(err)
	}
	// Output:
	// {"symbol":"GAZP","rptseq":0,"stale":true,"bids":[],"asks":[]}
	// {"symbol":"SBER","rptseq":812,"stale":false,"bids":[["101.25","300",3]],"asks":[["101.3","50",1]]}
}

func ExampleDiffDumps() {
	truth, err := book.ReadDump(strings.NewReader(
		`{"symbol":"SBER","rptseq":812,"stale":false,"bids":[["101.25","300",3],["101.2","10",1]],"asks":[]}` + "\n"))
	if err != nil {
		panic(err)
	}
	handler, err := book.ReadDump(strings.NewReader(
		`{"symbol":"SBER","rptseq":812,"stale":false,"bids":[["101.25","300",3],["101.2","20",2]],"asks":[]}` + "\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(book.DiffDumps(truth, handler))
	// Output:
	// 1 of 1 symbols differ (a: 1 books, b: 1 books)
	// SBER: bids[1] (0 = best): a ["101.2","10",1], b ["101.2","20",2]
}
