package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DefaultCapacityRates are the feed's rates (datagrams/s) of the capacity steps.
var DefaultCapacityRates = []float64{1000, 1500, 2000, 3000, 4000, 6000, 8000}

// notRun starts the error of a capacity step not run because a lower rate failed.
const notRun = "not run: "

// maxSkipped is the share of a window's datagrams the market publisher may skip in a
// passing capacity step: it stands for the exchange, and shares the host's CPU with what
// is measured; a hiccup of 50 ms on a shared host is not the distribution's failure, a
// feed starved of more is.
const maxSkipped = 0.01

// capacitySettle bounds a capacity step's wait for the feed and the books: a step that
// cannot settle in it fails anyway.
const capacitySettle = 10 * time.Second

// capacity measures, for each count of cfg.CapacityConsumers, NATS direct consumers
// (cfg.PerConn to a connection) on a fresh chain per rate of cfg.Capacity, from the
// lowest, up to the first rate that fails (CapacityFailure); the rates above it are rows
// that say they were not run. The highest passing rate is the chain's capacity: what
// nats bench's maximum rate compares with, since at the feed's own rate the workload,
// not the distribution, bounds the messages a consumer can receive.
func capacity(ctx context.Context, cfg FanoutConfig) []FanoutRow {
	var rows []FanoutRow
	for _, n := range cfg.CapacityConsumers {
		failed := ""
		for _, rate := range cfg.Capacity {
			row := FanoutRow{Consumers: n, Rate: rate}
			if failed == "" && ctx.Err() != nil {
				failed = "cancelled"
			}
			if failed != "" {
				row.Mode = capacityMode(n, cfg.PerConn)
				row.Err = notRun + failed
				rows = append(rows, row)
				continue
			}
			cfg.Progress(fmt.Sprintf("fanout: capacity, %d NATS consumers, %d per connection, feed at %.0f datagrams/s", n, cfg.PerConn, rate))
			row = capacityStep(ctx, cfg, n, rate)
			rows = append(rows, row)
			if why := CapacityFailure(row); why != "" {
				failed = fmt.Sprintf("%.0f datagrams/s failed", rate)
			}
		}
	}
	return rows
}

func capacityMode(n, perConn int) string {
	perConn = max(1, min(perConn, n))
	if perConn == 1 {
		return "NATS direct, own connection"
	}
	return fmt.Sprintf("NATS direct, %d per connection", perConn)
}

// capacityStep measures n consumers on a chain of its own whose feed runs at rate.
func capacityStep(ctx context.Context, cfg FanoutConfig, n int, rate float64) FanoutRow {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := startChain(ctx, cfg, rate)
	if err != nil {
		return FanoutRow{Mode: capacityMode(n, cfg.PerConn), Consumers: n, Rate: rate, Err: err.Error()}
	}
	defer c.stop()
	c.run(ctx, cfg.Warmup)
	settleFor := min(cfg.Settle, capacitySettle)
	window := func(row FanoutRow, pr probe) FanoutRow {
		return c.window(ctx, cfg.Warmup, settleFor, cfg.Window, row, pr)
	}
	row := directRow(ctx, c.srv.URL(), n, cfg.PerConn, window, func() uint64 { return c.pub.Stats().Conflations })
	row.Rate, row.FeedRate = rate, c.feedRate
	return row
}

// CapacityFailure returns why a capacity step does not count as sustained, or "": it
// was measured and settled, its p99 is within TargetP99, the handler's NATS publisher
// conflated nothing, NATS dropped nothing and the consumers found no RptSeq hole (no
// conflation at all, bounded or not), and the feed held its rate (it skipped at most
// maxSkipped of the window's datagrams, reached the rate in entries before the consumers,
// and each consumer received at least 90% of the rate in messages, about one a datagram;
// entries are not compared in the window: how many a datagram carries varies with how
// late the market publisher wakes).
func CapacityFailure(r FanoutRow) string {
	if r.Err != "" {
		return "not measured: " + r.Err
	}
	var why []string
	if strings.Contains(r.Note, "unsettled") {
		why = append(why, "unsettled")
	}
	if r.P99 > TargetP99 {
		why = append(why, fmt.Sprintf("p99 %s > %s", r.P99.Round(time.Microsecond), TargetP99))
	}
	if r.Conflations > 0 {
		why = append(why, fmt.Sprintf("%d conflations", r.Conflations))
	}
	if r.Drops > 0 {
		why = append(why, fmt.Sprintf("%d messages dropped by NATS", r.Drops))
	}
	if r.Gaps > 0 {
		why = append(why, fmt.Sprintf("%d RptSeq holes", r.Gaps))
	}
	if float64(r.Skipped) > maxSkipped*r.Rate*r.Window.Seconds() {
		why = append(why, fmt.Sprintf("the feed skipped %d datagrams (starved)", r.Skipped))
	}
	if r.FeedRate < 0.9*r.Rate {
		why = append(why, fmt.Sprintf("the feed reached %.0f entries/s of %.0f datagrams/s before the consumers", r.FeedRate, r.Rate))
	}
	if r.Consumers > 0 && r.Messages/float64(r.Consumers) < 0.9*r.Rate {
		why = append(why, fmt.Sprintf("the consumers received %.0f msgs/s each of %.0f datagrams/s", r.Messages/float64(r.Consumers), r.Rate))
	}
	return strings.Join(why, ", ")
}

// Capacity returns, per count of consumers in rows' capacity steps (in order of first
// appearance), the step with the highest rate that passed (CapacityFailure ""), or a row
// with Rate 0 when none passed.
func Capacity(rows []FanoutRow) []FanoutRow {
	var out []FanoutRow
	idx := map[int]int{}
	for _, r := range rows {
		if r.Rate == 0 {
			continue
		}
		i, ok := idx[r.Consumers]
		if !ok {
			i = len(out)
			idx[r.Consumers] = i
			out = append(out, FanoutRow{Mode: r.Mode, Consumers: r.Consumers})
		}
		if CapacityFailure(r) == "" && r.Rate > out[i].Rate {
			out[i] = r
		}
	}
	return out
}
