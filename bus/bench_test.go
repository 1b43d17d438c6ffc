package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/feed"
)

// BenchmarkFanout measures distribution over real FIX sessions: a publisher at 1000
// datagrams/s on 8 instruments, a handler, the bus, and 1, 10 or 50 clients each
// subscribed to "*", in one process on the private namespace's loopback. Each
// sub-benchmark measures a 3 s window (b.N is not used): updates/s is X entries received
// by all clients together per second, p50/p99 the publish-to-client latency (from the
// handler queueing the event to the client having parsed and applied the X), and
// conflations the overflows of the clients' queues.
func BenchmarkFanout(b *testing.B) {
	m := startMarket(b, 8, 1000, 0, Config{Users: users(User{Username: "bench", Entitlements: []feed.Pattern{"*"}})})
	var published atomic.Uint64 // entries the handler publishes, for reference
	m.h.Subscribe(func(ev *feed.Event) {
		if ev.Kind == feed.EventBook || ev.Kind == feed.EventTrade {
			published.Add(1)
		}
	}, "*")
	m.publish()
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			clients := make([]*Client, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range clients {
				c, err := NewClient(ClientConfig{Connect: m.b.Addr(), SenderCompID: fmt.Sprintf("B%d-%d", n, i), Username: "bench", Password: "bench-pw"})
				if err != nil {
					b.Fatal(err)
				}
				clients[i] = c
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
					defer cancel()
					if err := c.Start(ctx); err != nil {
						errs <- err
						return
					}
					if err := c.Subscribe("all", "*"); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			defer func() {
				var wg sync.WaitGroup
				for _, c := range clients {
					wg.Add(1)
					go func() { defer wg.Done(); c.Close() }()
				}
				wg.Wait()
			}()
			time.Sleep(2 * time.Second) // snapshots, warm-up, the publisher back to its rate
			conflBefore := conflations(m)
			start := make([]uint64, n)
			for i, c := range clients {
				c.ResetLatency()
				start[i] = c.Report().Updates
			}
			pub0 := published.Load()
			b.ResetTimer()
			t0 := time.Now()
			time.Sleep(3 * time.Second)
			elapsed := time.Since(t0)
			b.StopTimer()
			pub := published.Load() - pub0
			var updates uint64
			all := hdrhistogram.New(1, int64(10*time.Second), 3)
			for i, c := range clients {
				updates += c.Report().Updates - start[i]
				all.Merge(c.Latency())
			}
			b.ReportMetric(float64(pub)/elapsed.Seconds(), "published/s")
			b.ReportMetric(float64(updates)/elapsed.Seconds(), "updates/s")
			b.ReportMetric(float64(all.ValueAtQuantile(50))/1e3, "p50-µs")
			b.ReportMetric(float64(all.ValueAtQuantile(99))/1e3, "p99-µs")
			b.ReportMetric(float64(conflations(m)-conflBefore), "conflations")
			st := m.stats(b)
			if st.Gaps != 0 {
				b.Errorf("handler gaps: %d", st.Gaps)
			}
		})
	}
}

func conflations(m *market) uint64 {
	var n uint64
	for _, cs := range m.b.Clients() {
		n += cs.Conflations
	}
	return n
}
