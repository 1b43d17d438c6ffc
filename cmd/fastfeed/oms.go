package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"fastfeed/book"
	"fastfeed/bus"
	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// omsStats is what fastfeed oms writes with --stats-out.
type omsStats struct {
	bus.BooksStats
	Updates uint64      `json:"updates"`
	Rejects []omsReject `json:"rejects"`
	Errors  []string    `json:"errors"`
	Logout  string      `json:"logout"`
	P50us   float64     `json:"latency_p50_us"` // publish-to-client latency of X messages
	P99us   float64     `json:"latency_p99_us"`
}

type omsReject struct {
	MDReqID string `json:"mdreqid"`
	Reason  string `json:"reason"`
	Text    string `json:"text"`
}

// runOMS is a reference OMS client of the handler's FIX distribution service: it
// subscribes, rebuilds the books from what it receives and prints them.
func runOMS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("oms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	connect := fs.String("connect", fixsession.OMSListen, "the OMS service's `address`")
	username := fs.String("username", fixsession.DemoUsername, "login `user`")
	password := fs.String("password", fixsession.DemoPassword, "login `password`")
	compID := fs.String("comp-id", "", "this client's SenderCompID (default OMS-<pid>)")
	subscribe := fs.String("subscribe", "*", "comma-separated `patterns` (symbol, prefix SB*, channel G<group>:<port>, *), one request each")
	snapshot := fs.Bool("snapshot", false, "ask for snapshots only (263=0) instead of subscribing")
	duration := fs.Duration("duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	interval := fs.Duration("interval", time.Second, "print the books every `D` (0: never)")
	dumpBooks := fs.String("dump-books", "", "write the rebuilt books to `file` at exit")
	statsOut := fs.String("stats-out", "", "write the counters, rejects and latency to `file` at exit (one JSON object)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed oms [--connect ADDR] [--username U --password P] [--subscribe 'SBER,SB*,*'] [--duration D]")
		fs.PrintDefaults()
	}
	if _, err := parseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	if *duration < 0 || *interval < 0 {
		return &usageError{"--duration and --interval must not be negative"}
	}
	var patterns []string
	for _, p := range strings.Split(*subscribe, ",") {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	if len(patterns) == 0 {
		return &usageError{"--subscribe: no patterns"}
	}
	if *compID == "" {
		*compID = fmt.Sprintf("OMS-%d", os.Getpid())
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c, err := bus.NewClient(bus.ClientConfig{Connect: *connect, SenderCompID: *compID, Username: *username, Password: *password})
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	logonCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = c.Start(logonCtx)
	cancel()
	if err != nil {
		c.Close()
		return err
	}
	log.Info("oms logged on", "connect", *connect, "compid", *compID, "username", *username)
	for i, p := range patterns {
		id := "oms-" + strconv.Itoa(i+1)
		if *snapshot {
			err = c.Snapshot(id, p)
		} else {
			err = c.Subscribe(id, p)
		}
		if err != nil {
			c.Close()
			return err
		}
		log.Info("oms request sent", "mdreqid", id, "pattern", p, "snapshot", *snapshot)
	}
	var tick <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	seenRejects := 0
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick:
			var d book.Dump
			c.Books(func(b *bus.Books) { d = b.Dump() })
			printTops(stdout, d)
		}
		rep := c.Report()
		for _, r := range rep.Rejects[seenRejects:] {
			log.Warn("oms request rejected", "mdreqid", r.MDReqID, "reason", rejectReason(r.Reason), "text", r.Text)
		}
		seenRejects = len(rep.Rejects)
	}
	rep := c.Report()
	c.Close()
	lat := c.Latency()
	log.Info("oms stopped", "snapshots", rep.Books.Snapshots, "entries", rep.Books.Entries, "duplicates", rep.Books.Duplicates,
		"gaps", rep.Books.Gaps, "stale", rep.Books.Stale, "rejects", len(rep.Rejects), "logout", rep.Logout,
		"latency_p50_us", us(lat.ValueAtQuantile(50)), "latency_p99_us", us(lat.ValueAtQuantile(99)))
	var d book.Dump
	c.Books(func(b *bus.Books) { d = b.Dump() })
	if *dumpBooks != "" {
		if err := writeFile(*dumpBooks, func(w io.Writer) error { _, err := d.WriteTo(w); return err }); err != nil {
			return err
		}
	}
	if *statsOut != "" {
		st := omsStats{BooksStats: rep.Books, Updates: rep.Updates, Logout: rep.Logout, Rejects: []omsReject{}, Errors: []string{},
			P50us: us(lat.ValueAtQuantile(50)), P99us: us(lat.ValueAtQuantile(99))}
		for _, r := range rep.Rejects {
			st.Rejects = append(st.Rejects, omsReject{MDReqID: r.MDReqID, Reason: rejectReason(r.Reason), Text: r.Text})
		}
		for _, e := range rep.Errors {
			st.Errors = append(st.Errors, e.Error())
		}
		if err := writeFile(*statsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(st) }); err != nil {
			return err
		}
	}
	return nil
}

// rejectReason names an MDReqRejReason (281).
func rejectReason(r byte) string {
	switch r {
	case 0:
		return ""
	case md.RejectUnknownSymbol:
		return "0 unknown symbol"
	case md.RejectDuplicateMDReqID:
		return "1 duplicate MDReqID"
	case md.RejectInsufficientPermissions:
		return "3 insufficient permissions"
	case md.RejectUnsupportedSubscriptionRequestType:
		return "4 unsupported SubscriptionRequestType"
	case md.RejectUnsupportedMarketDepth:
		return "5 unsupported MarketDepth"
	}
	return string(r)
}

// printTops prints each book's best levels.
func printTops(w io.Writer, d book.Dump) {
	for _, b := range d {
		bid, ask := "-", "-"
		if len(b.Bids) > 0 {
			bid = b.Bids[0].Size + " @ " + b.Bids[0].Price
		}
		if len(b.Asks) > 0 {
			ask = b.Asks[0].Price + " @ " + b.Asks[0].Size
		}
		state := ""
		if b.Stale {
			state = " STALE"
		}
		fmt.Fprintf(w, "%-14s rptseq %-8d %22s | %-22s levels %d/%d%s\n", b.Symbol, b.RptSeq, bid, ask, len(b.Bids), len(b.Asks), state)
	}
	if len(d) > 0 {
		fmt.Fprintln(w)
	}
}
