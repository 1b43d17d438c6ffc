package bench

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/publisher"
)

// chain is the distribution chain a fan-out row measures: a market publisher at a rate,
// the handler, an embedded NATS server and the handler's NATS publisher.
type chain struct {
	p         *publisher.Publisher
	h         *feed.Handler
	srv       *natsbus.Server
	pub       *natsbus.Publisher
	published atomic.Uint64 // book and trade entries the handler published
	feedRate  float64       // entries/s before any consumer (run)
	rate      float64       // the market publisher's datagrams/s
	cancel    context.CancelFunc
	done      []chan struct{} // the handler's and the market publisher's goroutines
	closers   []func()
}

// startChain starts the handler, the NATS server and the handler's NATS publisher, and
// builds the market publisher at rate datagrams/s; run starts the market.
func startChain(ctx context.Context, cfg FanoutConfig, rate float64) (c *chain, err error) {
	c = &chain{rate: rate}
	ctx, c.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			c.stop()
			c = nil
		}
	}()
	ins, err := publisher.GenerateInstruments(cfg.Instruments)
	if err != nil {
		return c, err
	}
	c.p, err = publisher.New(publisher.Config{Instruments: ins, Templates: cfg.Templates, Rate: rate, Seed: 7, Linger: time.Hour,
		MaxLag: feedMaxLag})
	if err != nil {
		return c, err
	}
	var symbols []string
	for _, in := range ins {
		symbols = append(symbols, in.Symbol)
	}
	if c.h, err = feed.New(feed.Config{Topics: symbols, Templates: cfg.Templates}); err != nil {
		return c, err
	}
	c.goDone(func() { _ = c.h.Run(ctx) })
	c.h.Subscribe(func(ev *feed.Event) {
		if ev.Kind == feed.EventBook || ev.Kind == feed.EventTrade {
			c.published.Add(1)
		}
	}, "*")
	if c.srv, err = natsbus.StartServer(natsbus.ServerConfig{}); err != nil {
		return c, err
	}
	c.closers = append(c.closers, c.srv.Shutdown)
	pnc, err := natsbus.ConnConfig{URL: c.srv.URL()}.Connect(natsbus.PublisherOptions()...)
	if err != nil {
		return c, err
	}
	c.closers = append(c.closers, pnc.Close)
	chOf := func(s string) string { ch, _ := c.p.ChannelOf(s); return ch }
	if c.pub, err = natsbus.NewPublisher(natsbus.PublisherConfig{Conn: pnc, Engine: c.h, ChannelOf: chOf}); err != nil {
		return c, err
	}
	if err := c.pub.Start(ctx); err != nil {
		return c, err
	}
	c.closers = append(c.closers, c.pub.Stop)
	c.h.Subscribe(c.pub.OnEvent, "*")
	return c, nil
}

func (c *chain) goDone(fn func()) {
	done := make(chan struct{})
	c.done = append(c.done, done)
	go func() { defer close(done); fn() }()
}

// run starts the market publisher and measures the feed's rate after warm-up, before any
// consumer: the reference a row's window waits for.
func (c *chain) run(ctx context.Context, warmup time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	c.closers = append(c.closers, cancel)
	c.goDone(func() { _ = c.p.Run(ctx) })
	time.Sleep(warmup)
	p0 := c.published.Load()
	time.Sleep(time.Second)
	c.feedRate = float64(c.published.Load() - p0)
}

// stop stops everything the chain started, in the reverse order, and waits for the
// handler and the market publisher to end (the next chain reuses their groups).
func (c *chain) stop() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
	c.cancel()
	for _, d := range c.done {
		<-d
	}
	c.done = nil
}

// window measures a row: warm-up, then until the feed is at its rate and the books whole
// (at most settleFor), then the window.
func (c *chain) window(ctx context.Context, warmup, settleFor, win time.Duration, row FanoutRow, pr probe) FanoutRow {
	time.Sleep(warmup)
	row.Note = settle(ctx, settleFor, c.feedRate, &c.published, pr)
	pr.reset()
	s0 := pr.measure(false)
	p0, k0 := c.published.Load(), c.p.Stats().Skipped
	t0 := time.Now()
	time.Sleep(win)
	row.Window = time.Since(t0)
	el := row.Window.Seconds()
	row.Load = loadAverage()
	s1 := pr.measure(true)
	row.Skipped = c.p.Stats().Skipped - k0
	if row.Skipped > 0 {
		row.Note = strings.TrimPrefix(row.Note+fmt.Sprintf("; the feed skipped %d incrementals (starved)", row.Skipped), "; ")
	}
	return s1.row(row, s0, float64(c.published.Load()-p0)/el, el)
}
