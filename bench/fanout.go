package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"fastfeed/bus"
	"fastfeed/bus/natsbus"
	"fastfeed/fast"
	"fastfeed/feed"
)

// feedMaxLag is how far the market publisher may fall behind its schedule before it
// skips: a starved feed resumes at its rate instead of replaying the backlog in a burst
// that no row could measure at "the feed's rate".
const feedMaxLag = 50 * time.Millisecond

// FanoutConfig configures Fanout.
type FanoutConfig struct {
	Templates   *fast.Templates
	Instruments int           // default 8
	Rate        float64       // the feed's datagrams per second (default 1000)
	Warmup      time.Duration // before each window (default 2s)
	// Settle bounds the wait after the warm-up for the feed to be back at its rate (the
	// market publisher catches up in bursts when it was starved) and every consumer's
	// books to be whole (default 30s); a row measured unsettled says so.
	Settle    time.Duration
	Window    time.Duration // measured (default 3s)
	Bus       []int         // FIX clients of the handler's own OMS service (default 10, 50)
	Direct    []int         // NATS consumers sharing connections, PerConn on each (default 10, 100, 1000)
	PerConn   int           // NATS consumers per connection in the Direct rows (default 100)
	DirectOwn []int         // NATS consumers, each on its own connection (default 10, 100)
	Gateway   []int         // FIX clients of a gateway fed from NATS (default 10, 50)
	// Capacity are the feed's rates (datagrams/s, ascending) of the capacity steps: for
	// each count of CapacityConsumers (PerConn to a connection), one chain per rate, up
	// to the first rate that fails (see CapacityFailure). Nil: DefaultCapacityRates;
	// empty: no capacity step.
	Capacity          []float64
	CapacityConsumers []int // default 1000
	Progress          func(string)
}

// FanoutRow is one measured configuration.
type FanoutRow struct {
	Mode        string // "FIX bus in the handler", "NATS direct", "NATS + gateway"
	Consumers   int
	Rate        float64       // capacity step: the feed's datagrams/s (0: a row at the feed's rate)
	FeedRate    float64       // capacity step: entries/s the feed published before the consumers
	Window      time.Duration // measured
	Connections int           // NATS connections of the consumers (direct)
	Published   float64       // entries the handler published per second in the window
	Updates     float64       // entries applied by all consumers together per second
	Messages    float64       // NATS messages handled by all consumers together per second (direct; 0: not counted)
	P50, P99    time.Duration
	Conflations uint64
	Drops       uint64                  // messages NATS dropped for slow consumers in the window (direct)
	Skipped     uint64                  // incrementals the market feed skipped in the window (its host starved it)
	Gaps        uint64                  // RptSeq holes the consumers found in the window (direct)
	Note        string                  // what makes the row doubtful (unsettled, clamped latencies)
	Load        float64                 // the host's 1-minute load average at the window's end (Linux; -1: unknown)
	Err         string                  // why the row could not be measured
	Latency     *hdrhistogram.Histogram // publish to consumer, all consumers (ns)
}

// Fanout measures distribution in one process in the caller's network namespace: a
// market publisher at Rate on Instruments, a handler, its OMS FIX service, and an
// embedded NATS server the handler publishes on; then, one configuration after the
// other, FIX clients of the handler, FIX clients of a gateway fed from NATS, and NATS
// consumers, every consumer following every instrument. Latency is publish to consumer:
// from the handler queueing the event to the consumer having applied it.
func Fanout(ctx context.Context, cfg FanoutConfig) ([]FanoutRow, error) {
	if cfg.Templates == nil {
		return nil, errors.New("bench: fanout: no templates")
	}
	if cfg.Instruments == 0 {
		cfg.Instruments = 8
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1000
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 2 * time.Second
	}
	if cfg.Window == 0 {
		cfg.Window = 3 * time.Second
	}
	if cfg.Settle == 0 {
		cfg.Settle = 30 * time.Second
	}
	if cfg.Bus == nil {
		cfg.Bus = []int{10, 50}
	}
	if cfg.Direct == nil {
		cfg.Direct = []int{10, 100, 1000}
	}
	if cfg.Gateway == nil {
		cfg.Gateway = []int{10, 50}
	}
	if cfg.PerConn == 0 {
		cfg.PerConn = 100
	}
	if cfg.DirectOwn == nil {
		cfg.DirectOwn = []int{10, 100}
	}
	if cfg.Capacity == nil {
		cfg.Capacity = DefaultCapacityRates
	}
	if cfg.CapacityConsumers == nil {
		cfg.CapacityConsumers = []int{1000}
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	rows, err := atFeedRate(ctx, cfg)
	if err != nil {
		return rows, err
	}
	return append(rows, capacity(ctx, cfg)...), nil
}

// atFeedRate measures the rows at the feed's rate (cfg.Rate), on one chain.
func atFeedRate(ctx context.Context, cfg FanoutConfig) ([]FanoutRow, error) {
	progress := cfg.Progress
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := startChain(ctx, cfg, cfg.Rate)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	h, srv, pub := c.h, c.srv, c.pub
	users := []bus.User{{Username: "bench", Password: "bench", Entitlements: []feed.Pattern{"*"}}}
	hb, err := bus.New(h, bus.Config{Listen: "127.0.0.1:0", Users: users})
	if err != nil {
		return nil, err
	}
	if err := hb.Start(ctx); err != nil {
		return nil, err
	}
	defer hb.Stop()
	c.run(ctx, cfg.Warmup)
	var rows []FanoutRow
	window := func(row FanoutRow, pr probe) FanoutRow {
		return c.window(ctx, cfg.Warmup, cfg.Settle, cfg.Window, row, pr)
	}
	fixRow := func(mode, addr string, n int, confl func() uint64) FanoutRow {
		row := FanoutRow{Mode: mode, Consumers: n}
		clients, err := startFIXClients(ctx, addr, n)
		defer func() {
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Add(1)
				go func() { defer wg.Done(); c.Close() }()
			}
			wg.Wait()
		}()
		if err != nil {
			row.Err = err.Error()
			return row
		}
		return window(row, probe{measure: func(lat bool) sample {
			sm := sample{lat: NewHistogram(), conflations: confl()}
			for _, c := range clients {
				sm.updates += c.Report().Updates
				if lat {
					sm.lat.Merge(c.Latency())
				}
			}
			return sm
		}, reset: func() {
			for _, c := range clients {
				c.ResetLatency()
			}
		}})
	}
	busConfl := func(b *bus.Bus) func() uint64 {
		return func() uint64 {
			var n uint64
			for _, cs := range b.Clients() {
				n += cs.Conflations
			}
			return n
		}
	}
	for _, n := range cfg.Bus {
		progress(fmt.Sprintf("fanout: FIX bus in the handler, %d clients", n))
		rows = append(rows, fixRow("FIX bus in the handler", hb.Addr(), n, busConfl(hb)))
	}
	src, gw, err := startGateway(ctx, srv.URL(), users)
	if err != nil {
		return rows, err
	}
	for _, n := range cfg.Gateway {
		progress(fmt.Sprintf("fanout: NATS + gateway, %d FIX clients", n))
		rows = append(rows, fixRow("NATS + gateway", gw.Addr(), n, busConfl(gw)))
	}
	gw.Stop() // not a consumer of the rows that follow
	src.Stop()
	confl := func() uint64 { return pub.Stats().Conflations }
	for _, n := range cfg.DirectOwn {
		progress(fmt.Sprintf("fanout: NATS direct, %d consumers on their own connections", n))
		rows = append(rows, directRow(ctx, srv.URL(), n, 1, window, confl))
	}
	for _, n := range cfg.Direct {
		progress(fmt.Sprintf("fanout: NATS direct, %d consumers, %d per connection", n, cfg.PerConn))
		rows = append(rows, directRow(ctx, srv.URL(), n, cfg.PerConn, window, confl))
	}
	return rows, nil
}

func startFIXClients(ctx context.Context, addr string, n int) ([]*bus.Client, error) {
	clients := make([]*bus.Client, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		c, err := bus.NewClient(bus.ClientConfig{Connect: addr, SenderCompID: fmt.Sprintf("FAN%d-%d", n, i), Username: "bench", Password: "bench"})
		if err != nil {
			return clients, err
		}
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := c.Start(cctx); err != nil {
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
		return clients, err
	}
	return clients, nil
}

// directRow measures n NATS consumers following every instrument: each on its own
// connection and goroutine (perConn 1), or perConn to a connection in a natsbus.Group
// (one subscription per subject filter and one goroutine per connection).
func directRow(ctx context.Context, url string, n, perConn int, window func(FanoutRow, probe) FanoutRow,
	confl func() uint64) FanoutRow {
	perConn = max(1, min(perConn, n))
	nconn := (n + perConn - 1) / perConn
	row := FanoutRow{Mode: "NATS direct, own connection", Consumers: n, Connections: nconn}
	if perConn > 1 {
		row.Mode = fmt.Sprintf("NATS direct, %d per connection", perConn)
	}
	conss := make([]*natsbus.Consumer, n)
	hists := make([]*hdrhistogram.Histogram, nconn) // one per connection: its consumers share it
	conns := make([]*nats.Conn, nconn)
	var groups []*natsbus.Group
	defer func() {
		var wg sync.WaitGroup
		for _, c := range conss {
			if c != nil {
				wg.Add(1)
				go func() { defer wg.Done(); c.Stop() }()
			}
		}
		wg.Wait()
		for _, g := range groups {
			g.Stop()
		}
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	for i := range conns {
		nc, err := natsbus.ConnConfig{URL: url}.Connect(nats.Timeout(10 * time.Second))
		if err != nil {
			row.Err = err.Error()
			return row
		}
		conns[i] = nc
		if perConn > 1 {
			g, err := natsbus.NewGroup(nc, 0, nil)
			if err != nil {
				row.Err = err.Error()
				return row
			}
			g.Start(ctx)
			groups = append(groups, g)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range hists {
		hists[i] = NewHistogram()
	}
	for i := range conss {
		cfg := natsbus.ConsumerConfig{Conn: conns[i/perConn], Inbound: 4096, Latency: hists[i/perConn]}
		if perConn > 1 {
			cfg.Group = groups[i/perConn]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cons, err := natsbus.NewConsumer(cfg)
			if err == nil {
				err = cons.Start(ctx)
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
		row.Err = err.Error()
		return row
	}
	return window(row, probe{measure: func(lat bool) sample {
		sm := sample{lat: NewHistogram(), conflations: confl()}
		for i, c := range conss {
			st := c.Stats()
			sm.updates += st.Entries
			sm.messages += st.Messages
			sm.drops += st.SlowConsumer
			sm.gaps += st.Gaps
			sm.books += st.Instruments
			sm.whole += st.Synchronised
			if lat && i%perConn == 0 {
				_ = c.Do(ctx, func() { sm.lat.Merge(hists[i/perConn]) })
			}
		}
		for _, g := range groups {
			sm.drops += g.Stats().SlowConsumer
		}
		sm.consumers = len(conss)
		return sm
	}, reset: func() {
		for i, c := range conss {
			if i%perConn == 0 {
				_ = c.Do(ctx, func() { hists[i/perConn].Reset() })
			}
		}
	}})
}

// sample is what a row's consumers have counted so far.
type sample struct {
	updates, conflations, drops, gaps uint64
	messages                          uint64 // NATS consumers only
	lat                               *hdrhistogram.Histogram
	consumers, books, whole           int // NATS consumers: books known and whole (0: not counted)
}

// probe reads a row's consumers.
type probe struct {
	measure func(lat bool) sample // lat: merge the latency histograms too
	reset   func()                // the latency histograms, before the window
}

// row fills r with the window from s0 to s (el seconds); nothing delivered is an error
// that says what the consumers were doing, never a row of zeros.
func (s sample) row(r FanoutRow, s0 sample, published, el float64) FanoutRow {
	r.Published = published
	r.Updates = float64(s.updates-s0.updates) / el
	r.Messages = float64(s.messages-s0.messages) / el
	r.Conflations = s.conflations - s0.conflations
	r.Drops = s.drops - s0.drops
	r.Gaps = s.gaps - s0.gaps
	if s.updates == s0.updates || s.lat.TotalCount() == 0 {
		r.Err = fmt.Sprintf("delivered nothing in %.1f s (feed %.0f entries/s", el, published)
		if s.consumers > 0 {
			r.Err += fmt.Sprintf("; %d of %d books whole; %d messages dropped by NATS, %d RptSeq holes", s.whole, s.books, r.Drops, r.Gaps)
		}
		r.Err += ")"
		return r
	}
	r.P50 = time.Duration(s.lat.ValueAtQuantile(50))
	r.P99 = time.Duration(s.lat.ValueAtQuantile(99))
	r.Latency = s.lat
	if top := s.lat.HighestTrackableValue(); s.lat.Max() >= top || s.lat.ValueAtQuantile(99) >= top {
		r.Note = strings.TrimPrefix(r.Note+"; latencies beyond "+time.Duration(top).String()+" counted as "+time.Duration(top).String(), "; ")
	}
	return r
}

// settle waits, at most limit, until the feed publishes at its rate again (within 1.5
// times feedRate) and, for NATS consumers, every book is whole; it returns what did not
// settle, or "".
func settle(ctx context.Context, limit time.Duration, feedRate float64, published *atomic.Uint64, pr probe) string {
	const step = 500 * time.Millisecond
	deadline := time.Now().Add(limit)
	var rate float64
	var sm sample
	for {
		p0 := published.Load()
		select {
		case <-ctx.Done():
			return "cancelled"
		case <-time.After(step):
		}
		rate = float64(published.Load()-p0) / step.Seconds()
		sm = pr.measure(false)
		caughtUp := rate <= 1.5*feedRate+50
		whole := sm.consumers == 0 || (sm.books > 0 && sm.whole == sm.books)
		if caughtUp && whole {
			return ""
		}
		if time.Now().After(deadline) {
			break
		}
	}
	var why []string
	if rate > 1.5*feedRate+50 {
		why = append(why, fmt.Sprintf("feed catching up (%.0f entries/s, its rate %.0f)", rate, feedRate))
	}
	if sm.consumers > 0 && (sm.books == 0 || sm.whole != sm.books) {
		why = append(why, fmt.Sprintf("%d of %d books whole", sm.whole, sm.books))
	}
	return fmt.Sprintf("unsettled after %v: %s", limit, strings.Join(why, ", "))
}

func startGateway(ctx context.Context, url string, users []bus.User) (*natsbus.Consumer, *bus.Bus, error) {
	nc, err := natsbus.ConnConfig{URL: url}.Connect()
	if err != nil {
		return nil, nil, err
	}
	src, err := natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: nc})
	if err == nil {
		err = src.Start(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	gw, err := bus.NewFromSource(src, bus.Config{Listen: "127.0.0.1:0", ChannelOf: src.ChannelOf, Users: users})
	if err == nil {
		err = gw.Start(ctx)
	}
	if err != nil {
		src.Stop()
		nc.Close()
		return nil, nil, err
	}
	return src, gw, nil
}
