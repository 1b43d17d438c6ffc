// Package demo is fastfeed's demonstration system as a library: a publisher and a feed
// handler in one process on loopback, the handler recovering the loss it injects over a
// real FIX session to the publisher's recovery service, its books, rates, recovery
// counters and latency drawn in a terminal, and at the end its books compared with the
// publisher's ground truth. "fastfeed demo" runs it in a private network namespace.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
	"fastfeed/gap"
	"fastfeed/internal/fixsession"
	"fastfeed/opshttp"
	"fastfeed/publisher"
)

// Options configure Run.
type Options struct {
	Templates   *fast.Templates // required
	Duration    time.Duration   // how long the market runs (default 15 s)
	Instruments int             // instruments simulated (default 12)
	Rate        float64         // incremental datagrams per second (0: as fast as possible)
	Loss        float64         // receive-path loss injected in the handler, 0..0.5
	Show        int             // instruments shown (default 6)
	Seed        uint64          // the simulator's seed (0: from the clock)
	Out         io.Writer       // the screen (default os.Stdout); redrawn in place on a terminal
	// HTTP, when set, serves the operator's view of the handler (package opshttp: the
	// live page, /metrics, /api) on this listener, whose address Run prints.
	HTTP net.Listener
	// NATSListen is where the embedded NATS server the books are published on listens
	// (default 127.0.0.1:4222); NoNATS leaves NATS out.
	NATSListen string
	NoNATS     bool
}

// ErrBooksDiffer is returned when the handler's books end different from the publisher's.
var ErrBooksDiffer = errors.New("demo: books differ from ground truth")

// Run runs the demo until the data is over and the handler has settled, or ctx ends. It
// opens multicast sockets on loopback: call it in a private network namespace when one
// is to be had. It returns nil when every book equals the publisher's ground truth.
func Run(ctx context.Context, o Options) error {
	if o.Templates == nil {
		return errors.New("demo: no templates")
	}
	if o.Duration == 0 {
		o.Duration = 15 * time.Second
	}
	if o.Instruments == 0 {
		o.Instruments = 12
	}
	if o.Show == 0 {
		o.Show = 6
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Duration < 0 || o.Instruments < 0 || o.Rate < 0 || !(o.Loss >= 0 && o.Loss <= 0.5) {
		return fmt.Errorf("demo: need --duration > 0, --instruments > 0, --rate >= 0, 0 <= --loss <= 0.5")
	}
	ins, err := publisher.GenerateInstruments(o.Instruments)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := publisher.New(publisher.Config{Instruments: ins, Templates: o.Templates, Rate: o.Rate, Duration: o.Duration,
		Linger: time.Hour, Seed: o.Seed,
		Recovery: publisher.RecoveryConfig{Users: []publisher.User{{Username: fixsession.DemoUsername, Password: fixsession.DemoPassword}}}})
	if err != nil {
		return err
	}
	var symbols []string
	for _, in := range ins {
		symbols = append(symbols, in.Symbol)
	}
	rec, ready, how, err := recovery(ctx, p)
	if err != nil {
		return err
	}
	h, err := feed.New(feed.Config{Topics: symbols, Templates: o.Templates, Recovery: rec,
		Gap: gap.Config{GapWait: 2 * time.Millisecond}, Inject: feed.Inject{Loss: o.Loss, Seed: 42}})
	if err != nil {
		return err
	}
	pageLine := ""
	var natsUp atomic.Pointer[natsSide] // the HTTP view's NATS gauges, once NATS is up
	if o.HTTP != nil {
		cfg := opshttp.Config{Role: "demo", Handler: h, FIXSessions: func() int {
			if ready() {
				return 1
			}
			return 0
		}}
		if !o.NoNATS {
			cfg.NATS = func() []opshttp.NATSSession { return natsUp.Load().sessions() }
		}
		web, err := opshttp.New(cfg)
		if err != nil {
			return err
		}
		web.Serve(ctx, o.HTTP)
		defer web.Close()
		pageLine = "live page: " + web.URL() + "\n"
		fmt.Fprint(o.Out, pageLine)
	}
	var ns *natsSide
	if !o.NoNATS {
		if o.NATSListen == "" {
			o.NATSListen = "127.0.0.1:4222"
		}
		if ns, err = startNATS(ctx, h, p, o.NATSListen, o.Out); err != nil {
			return err
		}
		natsUp.Store(ns)
		defer ns.stop()
	}
	feedDone := make(chan error, 1)
	go func() { feedDone <- h.Run(ctx) }()
	// Start the market once the handler's recovery session is up (a FIX logon takes a
	// second or two), so that the demo shows live recovery rather than a late join.
	for deadline := time.Now().Add(10 * time.Second); !ready() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	pubDone := make(chan error, 1)
	go func() { pubDone <- p.Run(ctx) }()

	tty := isTerminal(o.Out)
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last feed.Stats
	lastAt := start
	shown := symbols[:min(o.Show, len(symbols))]
	dataDone := p.DataDone()
	var settleUntil time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pubDone:
			return fmt.Errorf("publisher: %w", err)
		case err := <-feedDone:
			return fmt.Errorf("handler: %w", err)
		case <-dataDone:
			dataDone = nil
			settleUntil = time.Now().Add(time.Second) // let recovery finish the tail
		case now := <-tick.C:
			var screen bytes.Buffer
			var st feed.Stats
			if err := h.Do(ctx, func() { st = h.Stats(); render(&screen, h, shown, st, last, now.Sub(lastAt), now.Sub(start), how) }); err != nil {
				return err
			}
			last, lastAt = st, now
			ns.render(&screen)
			if tty {
				fmt.Fprint(o.Out, "\033[H\033[2J")
				o.Out.Write(screen.Bytes())
				fmt.Fprint(o.Out, pageLine)
			} else if int(now.Sub(start)/time.Second)%3 == 0 {
				fmt.Fprintf(o.Out, "t=%4.1fs datagrams=%d messages=%d gaps=%d recovered_ab=%d recovered_fix=%d snapshots=%d stale=%d\n",
					now.Sub(start).Seconds(), st.Datagrams, st.Messages, st.Gaps, st.RecoveredAB, st.RecoveredFIX, st.SnapshotsDone, st.StaleBooks)
			}
			if !settleUntil.IsZero() && now.After(settleUntil) {
				if err := verdict(ctx, o.Out, p, h); err != nil {
					return err
				}
				return ns.verdict(ctx, o.Out, p)
			}
		}
	}
}

// recovery starts the publisher's FIX recovery service on a free loopback port and
// connects the handler to it over a real FIX session, as separate processes would.
// ready reports when the session has logged on.
func recovery(ctx context.Context, p *publisher.Publisher) (rec feed.Recovery, ready func() bool, how string, err error) {
	svc, err := publisher.NewRecoveryService(p, publisher.RecoveryOptions{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, "", err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, nil, "", err
	}
	go func() { <-ctx.Done(); svc.Stop() }()
	c, err := fixrecovery.New(fixrecovery.Config{Connect: svc.Addr(), SenderCompID: "FFDEMO",
		Username: fixsession.DemoUsername, Password: fixsession.DemoPassword, Templates: p.Templates()})
	if err != nil {
		return nil, nil, "", err
	}
	go func() { <-ctx.Done(); c.Close() }()
	return c, c.LoggedOn, "FIX session to " + svc.Addr(), nil
}

// verdict compares the handler's books with the publisher's ground truth.
func verdict(ctx context.Context, w io.Writer, p *publisher.Publisher, h *feed.Handler) error {
	var truth bytes.Buffer
	if err := p.WriteDump(&truth); err != nil {
		return err
	}
	want, err := book.ReadDump(&truth)
	if err != nil {
		return err
	}
	var got book.Dump
	var st feed.Stats
	if err := h.Do(ctx, func() { got, st = h.Dump(), h.Stats() }); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d datagrams, %d messages, %d gaps: %d filled by line A/B, %d by FIX retransmission, %d snapshot recoveries\n",
		st.Datagrams, st.Messages, st.Gaps, st.RecoveredAB, st.RecoveredFIX, st.SnapshotsDone)
	if d := book.DiffDumps(got, want); d != "" {
		fmt.Fprintf(w, "books DIFFER from the publisher's ground truth:\n%s\n", d)
		return ErrBooksDiffer
	}
	fmt.Fprintf(w, "all %d books equal the publisher's ground truth\n", len(got))
	return nil
}

func render(w io.Writer, h *feed.Handler, shown []string, st, last feed.Stats, dt, elapsed time.Duration, how string) {
	fmt.Fprintf(w, "fastfeed demo  %5.1fs   publisher -> FAST/UDP multicast -> handler (%d channels), recovery: %s\n\n",
		elapsed.Seconds(), st.Channels, how)
	fmt.Fprintf(w, "%-14s %6s %14s %14s  %-14s %-14s %s\n", "symbol", "rptseq", "bid size", "bid", "ask", "ask size", "")
	dump := h.Dump()
	for _, s := range shown {
		b, ok := dump.Lookup(s)
		if !ok {
			continue
		}
		bid, bsz, ask, asz := "-", "", "-", ""
		if len(b.Bids) > 0 {
			bid, bsz = b.Bids[0].Price, b.Bids[0].Size
		}
		if len(b.Asks) > 0 {
			ask, asz = b.Asks[0].Price, b.Asks[0].Size
		}
		state := ""
		if b.Stale {
			state = "STALE"
		}
		fmt.Fprintf(w, "%-14s %6d %14s %14s  %-14s %-14s %s\n", s, b.RptSeq, bsz, bid, ask, asz, state)
	}
	secs := dt.Seconds()
	if secs <= 0 {
		secs = 1
	}
	fmt.Fprintf(w, "\nrate      %8.0f datagrams/s  %8.0f messages/s\n", float64(st.Datagrams-last.Datagrams)/secs, float64(st.Messages-last.Messages)/secs)
	fmt.Fprintf(w, "injected  %8d lost  (the handler drops them on purpose)\n", st.InjectedLoss)
	fmt.Fprintf(w, "gaps      %8d  filled by A/B %d  by FIX %d  snapshots %d  stale books %d\n",
		st.Gaps, st.RecoveredAB, st.RecoveredFIX, st.SnapshotsDone, st.StaleBooks)
	fmt.Fprintf(w, "errors    %8d decode  %d book  %d kernel drops\n", st.DecodeErrors, st.BookErrors, st.KernelDrops)
	lat := h.Latency()
	fmt.Fprintf(w, "latency   publisher send -> book updated, microseconds: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (n=%d)\n",
		us(lat.ValueAtQuantile(50)), us(lat.ValueAtQuantile(90)), us(lat.ValueAtQuantile(99)), us(lat.ValueAtQuantile(99.9)), us(lat.Max()), lat.TotalCount())
	fmt.Fprintln(w, strings.Repeat("-", 100))
}

func us(ns int64) float64 { return float64(ns) / 1000 }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
