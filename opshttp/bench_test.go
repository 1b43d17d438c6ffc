package opshttp

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"fastfeed/feed"
	"fastfeed/md"
)

var benchSymbols = []string{"SBER", "GAZP", "LKOH", "AAPL", "MSFT", "NVDA", "GMKN", "YNDX", "VTBR", "ROSN", "TATN", "MGNT"}

// benchHandler returns an Engine of the 12 symbols warmed with 1200 datagrams,
// and n more datagrams (one trade in three entries).
func benchHandler(b *testing.B, n int) (*feed.Engine, []datagram) {
	h, err := feed.NewEngine(feed.Config{Topics: benchSymbols, Templates: templates(b), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	ds := newGen(b).levels(benchSymbols, 100+n/len(benchSymbols)+1)
	for i := range ds[:1200] {
		h.Receive(ds[i].dst, ds[i].buf, int64(i))
	}
	h.DoWork(1200)
	return h, ds[1200 : 1200+n]
}

// BenchmarkReceive: the receive path with no page watching, and with a page watching four
// books (the trade subscription's callback runs for their entries).
func BenchmarkReceive(b *testing.B) {
	for _, watched := range []int{0, 4} {
		b.Run(fmt.Sprintf("watched=%d", watched), func(b *testing.B) {
			h, ds := benchHandler(b, b.N)
			s, err := New(Config{Handler: h})
			if err != nil {
				b.Fatal(err)
			}
			if watched > 0 {
				var pats []feed.Pattern
				for _, sym := range benchSymbols[:watched] {
					s.trades[sym] = &lastTrade{}
					pats = append(pats, feed.Pattern(sym))
				}
				h.Subscribe(s.onTrade, pats...)
				h.DoWork(0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range ds {
				h.Receive(ds[i].dst, ds[i].buf, int64(i))
			}
		})
	}
}

// BenchmarkOps is the time one read stops the handler's loop, between batches: the
// counters and channels (/healthz, /metrics, /api/channels), the page's sample (four books
// at depth 10), and one latency histogram's copy (handler-wide, 3 significant figures; a
// channel's, 2), of which /metrics makes 5 + one per channel and the page 5 a second.
func BenchmarkOps(b *testing.B) {
	h, _ := benchHandler(b, 0)
	h.Close() // Do runs its function at once: the stop itself is measured
	ctx := context.Background()
	ch := h.Channels()[0].Channel
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"counters", func() { h.OpsNow(feed.OpsRequest{}) }},
		{"page", func() { h.OpsNow(feed.OpsRequest{Symbols: benchSymbols[:4], Depth: pageDepth}) }},
		{"histogram", func() { h.LatencyCopy(ctx, "", feed.StageTotal) }},
		{"channel-histogram", func() { h.LatencyCopy(ctx, ch, feed.StageTotal) }},
		// What a scrape would stop the loop for with every histogram copied in one read.
		{"all-in-one", func() { h.OpsNow(feed.OpsRequest{Latency: true, ChannelLatency: true}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.fn()
			}
		})
	}
}

// BenchmarkScrape is a whole /metrics request: the reads, the histograms' conversion and
// the text encoding.
func BenchmarkScrape(b *testing.B) {
	h, _ := benchHandler(b, 0)
	d := drive(b, h)
	d.send(newGen(b).entry("SBER", md.New, md.Bid, 1, 1))
	s, err := New(Config{Handler: h})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		b.SetBytes(n)
	}
}
