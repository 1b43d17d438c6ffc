package publisher_test

import (
	"context"
	"fmt"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/md"
	"fastfeed/publisher"
)

func ExampleSimulator() {
	ins, err := publisher.GenerateInstruments(3) // SBER, GAZP, LKOH
	if err != nil {
		panic(err)
	}
	sim, err := publisher.NewSimulator(ins, 5, 20, 42)
	if err != nil {
		panic(err)
	}
	var entries []publisher.SimEntry
	for i := range sim.Len() {
		entries = sim.Open(entries, i)
	}
	fmt.Println("opening entries:", len(entries))
	for range 3 {
		entries = sim.Step(entries[:0])
		for _, e := range entries {
			line := fmt.Sprintf("%s rptseq %d: %s %s %s", e.Symbol, e.RptSeq, [...]string{"new", "change", "delete"}[e.Action],
				map[md.EntryType]string{md.Bid: "bid", md.Offer: "offer", md.Trade: "trade"}[e.Type],
				book.FormatDecimal(nil, e.Price.Mantissa, int(e.Price.Exp)))
			if e.Size.Valid {
				line += " x " + string(book.FormatDecimal(nil, e.Size.Mantissa, int(e.Size.Exp)))
			}
			fmt.Println(line)
		}
	}
	// Output:
	// opening entries: 32
	// SBER rptseq 13: new trade 285.41 x 20
	// SBER rptseq 14: change offer 285.41 x 50
	// SBER rptseq 15: new trade 285.41 x 50
	// SBER rptseq 16: delete offer 285.41
	// SBER rptseq 17: new trade 285.38 x 490
	// SBER rptseq 18: delete bid 285.38
}

// ExamplePublisher publishes on loopback (here inside the tests' private
// network namespace), then, while lingering, fetches the first datagram of
// SBER's channel from the retention ring and decodes it.
func ExamplePublisher() {
	ts, err := fast.LoadFile("../fixtures/templates.xml")
	if err != nil {
		panic(err)
	}
	ins, err := publisher.GenerateInstruments(5)
	if err != nil {
		panic(err)
	}
	p, err := publisher.New(publisher.Config{Instruments: ins, Templates: ts, Rate: 5000, Count: 500, Linger: time.Minute})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.DataDone()

	ch, _ := p.ChannelOf("SBER")
	dgs, err := p.Retransmit(ctx, ch, 1, 2)
	if err != nil {
		panic(err)
	}
	c, err := md.NewCodec(p.Templates())
	if err != nil {
		panic(err)
	}
	for _, d := range dgs {
		seq, kind, err := publisher.DecodeDatagram(c, d)
		if err != nil {
			panic(err)
		}
		switch kind {
		case md.KindStatus:
			fmt.Println(ch, seq, kind, string(c.Status.Symbol), c.Status.TradingStatus)
		case md.KindIncremental:
			fmt.Println(ch, seq, kind, len(c.Incremental.Entries) > 0)
		}
	}
	cancel()
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// G239.137.173.234:30001 1 SecurityStatus SBER 17
	// G239.137.173.234:30001 2 IncrementalRefresh true
}
