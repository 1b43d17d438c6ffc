package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/gap"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/netns"
	"fastfeed/publisher"
)

// runDemo runs a publisher and a handler in one process on loopback for a bounded time and
// shows books, rates, recovery and latency updating in the terminal. It runs in a private
// network namespace when it can, so nothing reaches a real interface, and on plain
// loopback (IP_MULTICAST_IF 127.0.0.1) otherwise.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 15*time.Second, "how long the market runs")
	instruments := fs.Int("instruments", 12, "instruments to simulate")
	rate := fs.Float64("rate", 5000, "incremental datagrams per second")
	loss := fs.Float64("loss", 0.01, "receive-path loss injected in the handler, to show recovery")
	show := fs.Int("show", 6, "instruments shown")
	templates := fs.String("templates", defaultTemplates, "FAST template XML `file`")
	hostLoopback := fs.Bool("no-netns", false, "run on the host's loopback instead of a private network namespace")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if *duration <= 0 || *duration > time.Hour || *instruments <= 0 || *rate < 0 || *loss < 0 || *loss > 0.5 {
		return &usageError{"need 0 < --duration <= 1h, --instruments > 0, --rate >= 0, 0 <= --loss <= 0.5"}
	}
	if !*hostLoopback {
		// Outside a namespace this runs the demo again inside one; inside, it brings lo up.
		handled, code, err := netns.Reexec(ctx, append([]string{"demo"}, args...))
		switch {
		case err == nil && handled:
			if code != 0 {
				return fmt.Errorf("demo exited with status %d", code)
			}
			return nil
		case err != nil:
			fmt.Fprintf(stderr, "fastfeed demo: no private network namespace (%v); using the host's loopback\n", err)
		}
	}
	ts, err := loadTemplates(*templates, *templates != defaultTemplates)
	if err != nil {
		return err
	}
	ins, err := publisher.GenerateInstruments(*instruments)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := publisher.New(publisher.Config{Instruments: ins, Templates: ts, Rate: *rate, Duration: *duration,
		Linger: time.Hour, Seed: uint64(time.Now().UnixNano()),
		Recovery: publisher.RecoveryConfig{Users: []publisher.User{{Username: fixsession.DemoUsername, Password: fixsession.DemoPassword}}}})
	if err != nil {
		return err
	}
	var symbols []string
	for _, in := range ins {
		symbols = append(symbols, in.Symbol)
	}
	rec, ready, how, err := demoRecovery(ctx, p)
	if err != nil {
		return err
	}
	h, err := feed.New(feed.Config{Topics: symbols, Templates: ts, Recovery: rec,
		Gap: gap.Config{GapWait: 2 * time.Millisecond}, Inject: feed.Inject{Loss: *loss, Seed: 42}})
	if err != nil {
		return err
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

	tty := isTerminal(stdout)
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last feed.Stats
	lastAt := start
	shown := symbols[:min(*show, len(symbols))]
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
			if err := h.Do(ctx, func() { st = h.Stats(); renderDemo(&screen, h, shown, st, last, now.Sub(lastAt), now.Sub(start), how) }); err != nil {
				return err
			}
			last, lastAt = st, now
			if tty {
				fmt.Fprint(stdout, "\033[H\033[2J")
				stdout.Write(screen.Bytes())
			} else if int(now.Sub(start)/time.Second)%3 == 0 {
				fmt.Fprintf(stdout, "t=%4.1fs datagrams=%d messages=%d gaps=%d recovered_ab=%d recovered_fix=%d snapshots=%d stale=%d\n",
					now.Sub(start).Seconds(), st.Datagrams, st.Messages, st.Gaps, st.RecoveredAB, st.RecoveredFIX, st.SnapshotsDone, st.StaleBooks)
			}
			if !settleUntil.IsZero() && now.After(settleUntil) {
				return demoVerdict(ctx, stdout, p, h)
			}
		}
	}
}

// demoVerdict compares the handler's books with the publisher's ground truth.
func demoVerdict(ctx context.Context, w io.Writer, p *publisher.Publisher, h *feed.Handler) error {
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
		return errors.New("demo: books differ from ground truth")
	}
	fmt.Fprintf(w, "all %d books equal the publisher's ground truth\n", len(got))
	return nil
}

func renderDemo(w io.Writer, h *feed.Handler, shown []string, st, last feed.Stats, dt, elapsed time.Duration, how string) {
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
