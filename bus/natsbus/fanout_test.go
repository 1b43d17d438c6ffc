package natsbus

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"fastfeed/bus"
	"fastfeed/feed"
)

// BenchmarkFanout measures distribution over NATS the way bus's BenchmarkFanout does
// over the handler's own FIX service: a publisher at 1000 datagrams/s on 8 instruments, a
// handler publishing on an embedded NATS server, and
//   - direct/consumers=N: N Consumers, each on its own connection, following "*";
//   - grouped/consumers=N: N Consumers, 100 to a connection in a Group (one subscription
//     per filter and one goroutine per connection);
//   - gateway/clients=N: one Consumer feeding bus.NewFromSource (a gateway) with N FIX
//     clients subscribed to "*".
//
// Each sub-benchmark measures a 3 s window (b.N is not used): updates/s is X entries
// applied by all consumers (or received by all FIX clients) together per second, p50/p99
// the publish-to-consumer latency (from the handler queueing the event to the consumer
// having parsed and applied it), conflations the publisher's (direct) or the gateway's
// client queues' (gateway) overflows.
func BenchmarkFanout(b *testing.B) {
	c := startChain(b, chainConfig{instruments: 8, rate: 1000})
	var published atomic.Uint64
	c.h.Subscribe(func(ev *feed.Event) {
		if ev.Kind == feed.EventBook || ev.Kind == feed.EventTrade {
			published.Add(1)
		}
	}, "*")
	c.publish()
	window := func(b *testing.B, measure func() (updates uint64, lat *hdrhistogram.Histogram, confl uint64), reset func()) {
		time.Sleep(2 * time.Second) // snapshots, warm-up
		reset()
		u0, _, c0 := measure()
		p0 := published.Load()
		b.ResetTimer()
		t0 := time.Now()
		time.Sleep(3 * time.Second)
		elapsed := time.Since(t0)
		b.StopTimer()
		u1, lat, c1 := measure()
		b.ReportMetric(float64(published.Load()-p0)/elapsed.Seconds(), "published/s")
		b.ReportMetric(float64(u1-u0)/elapsed.Seconds(), "updates/s")
		b.ReportMetric(float64(lat.ValueAtQuantile(50))/1e3, "p50-µs")
		b.ReportMetric(float64(lat.ValueAtQuantile(99))/1e3, "p99-µs")
		b.ReportMetric(float64(c1-c0), "conflations")
	}
	counts := []int{10, 100, 1000}
	if env := os.Getenv("FASTFEED_FANOUT"); env != "" { // e.g. FASTFEED_FANOUT=10,300
		counts = counts[:0]
		for _, f := range strings.Split(env, ",") {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				counts = append(counts, n)
			}
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("direct/consumers=%d", n), func(b *testing.B) {
			conss := make([]*Consumer, n)
			hists := make([]*hdrhistogram.Histogram, n)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16) // connections made 16 at a time
			errs := make(chan error, n)
			for i := range conss {
				hists[i] = hdrhistogram.New(1, int64(10*time.Second), 3)
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					nc, err := ConnConfig{URL: c.url}.Connect(nats.Timeout(10 * time.Second))
					if err != nil {
						errs <- err
						return
					}
					b.Cleanup(nc.Close)
					cons, err := NewConsumer(ConsumerConfig{Conn: nc, Inbound: 4096, Latency: hists[i]})
					if err == nil {
						err = cons.Start(c.ctx)
					}
					if err != nil {
						errs <- err
						return
					}
					conss[i] = cons
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			defer func() {
				for _, cons := range conss {
					cons.Stop()
				}
			}()
			window(b, func() (uint64, *hdrhistogram.Histogram, uint64) {
				all := hdrhistogram.New(1, int64(10*time.Second), 3)
				var u uint64
				for i, cons := range conss {
					u += cons.Stats().Entries
					_ = cons.Do(context.Background(), func() { all.Merge(hists[i]) })
				}
				return u, all, c.pub.Stats().Conflations
			}, func() {
				for i, cons := range conss {
					_ = cons.Do(context.Background(), func() { hists[i].Reset() })
				}
			})
			var gaps uint64
			for _, cons := range conss {
				gaps += cons.Stats().SlowConsumer
			}
			b.ReportMetric(float64(gaps), "slow-consumer-drops")
		})
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("grouped/consumers=%d", n), func(b *testing.B) {
			const perConn = 100
			var groups []*Group
			var hists []*hdrhistogram.Histogram
			conss := make([]*Consumer, n)
			for i := range conss {
				if i%perConn == 0 {
					nc, err := ConnConfig{URL: c.url}.Connect(nats.Timeout(10 * time.Second))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(nc.Close)
					g, err := NewGroup(nc, 0, nil)
					if err != nil {
						b.Fatal(err)
					}
					g.Start(c.ctx)
					b.Cleanup(g.Stop)
					groups = append(groups, g)
					hists = append(hists, hdrhistogram.New(1, int64(10*time.Second), 3))
				}
				cons, err := NewConsumer(ConsumerConfig{Group: groups[i/perConn], Latency: hists[i/perConn]})
				if err == nil {
					err = cons.Start(c.ctx)
				}
				if err != nil {
					b.Fatal(err)
				}
				conss[i] = cons
			}
			window(b, func() (uint64, *hdrhistogram.Histogram, uint64) {
				all := hdrhistogram.New(1, int64(10*time.Second), 3)
				var u uint64
				for _, cons := range conss {
					u += cons.Stats().Entries
				}
				for i, g := range groups {
					_ = g.Do(context.Background(), func() { all.Merge(hists[i]) })
				}
				return u, all, c.pub.Stats().Conflations
			}, func() {
				for i, g := range groups {
					_ = g.Do(context.Background(), func() { hists[i].Reset() })
				}
			})
			var drops uint64
			for _, g := range groups {
				drops += g.Stats().SlowConsumer
			}
			b.ReportMetric(float64(drops), "slow-consumer-drops")
			b.ReportMetric(float64(len(groups)), "connections")
		})
	}
	src := c.consumer(b, ConsumerConfig{}, ConnConfig{})
	gw, err := bus.NewFromSource(src, bus.Config{Listen: "127.0.0.1:0", ChannelOf: src.ChannelOf,
		Users: []bus.User{{Username: "bench", Password: "bench-pw", Entitlements: []feed.Pattern{"*"}}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.Start(c.ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Stop)
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("gateway/clients=%d", n), func(b *testing.B) {
			clients := make([]*bus.Client, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range clients {
				cl, err := bus.NewClient(bus.ClientConfig{Connect: gw.Addr(), SenderCompID: fmt.Sprintf("G%d-%d", n, i), Username: "bench", Password: "bench-pw"})
				if err != nil {
					b.Fatal(err)
				}
				clients[i] = cl
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
					defer cancel()
					if err := cl.Start(ctx); err != nil {
						errs <- err
						return
					}
					if err := cl.Subscribe("all", "*"); err != nil {
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
				for _, cl := range clients {
					cl.Close()
				}
			}()
			window(b, func() (uint64, *hdrhistogram.Histogram, uint64) {
				all := hdrhistogram.New(1, int64(10*time.Second), 3)
				var u, confl uint64
				for _, cl := range clients {
					u += cl.Report().Updates
					all.Merge(cl.Latency())
				}
				for _, cs := range gw.Clients() {
					confl += cs.Conflations
				}
				return u, all, confl
			}, func() {
				for _, cl := range clients {
					cl.ResetLatency()
				}
			})
		})
	}
}
