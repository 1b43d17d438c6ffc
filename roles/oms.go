package roles

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"fastfeed/book"
	"fastfeed/bus"
	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// OMSOptions are the flags of fastfeed oms.
type OMSOptions struct {
	Common
	Config, Connect, Username, Password, CompID, Subscribe string
	DumpBooks, StatsOut                                    string
	Snapshot                                               bool
	Duration, Interval                                     time.Duration
	NATS                                                   NATSOptions
	Clients                                                int
	TLS                                                    FIXClientTLS
	FIXFile                                                FIXFileOptions
}

// Register adds oms's flags to fs.
func (o *OMSOptions) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Config, "config", "", "JSON config `file`: an object whose keys are these flags' names (flags given win)")
	fs.StringVar(&o.Connect, "connect", fixsession.OMSListen, "the OMS service's `address`")
	fs.StringVar(&o.Username, "username", fixsession.DemoUsername, "login `user`")
	fs.StringVar(&o.Password, "password", fixsession.DemoPassword, "login `password`")
	fs.StringVar(&o.CompID, "comp-id", "", "this client's SenderCompID (default OMS-<pid>)")
	o.TLS.register(fs, "fix-", "OMS service")
	fs.StringVar(&o.Subscribe, "subscribe", "*", "comma-separated `patterns` (symbol, prefix SB*, channel G<group>:<port>, *), one request each")
	fs.BoolVar(&o.Snapshot, "snapshot", false, "ask for snapshots only (263=0) instead of subscribing")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	fs.DurationVar(&o.Interval, "interval", time.Second, "print the books every `D` (0: never)")
	fs.StringVar(&o.DumpBooks, "dump-books", "", "write the rebuilt books to `file` at exit")
	fs.StringVar(&o.StatsOut, "stats-out", "", "write the counters, rejects and latency to `file` at exit (one JSON object)")
	o.NATS.register(fs, false)
	fs.IntVar(&o.Clients, "clients", 1, "with --nats: run `N` consumers, each on its own connection (the first one's books are printed and dumped; the others' must equal them)")
	o.FIXFile.registerFile(fs)
	o.Common.register(fs, "")
}

// Patterns returns the --subscribe patterns, checked with the durations.
func (o *OMSOptions) Patterns() ([]string, error) {
	if o.Duration < 0 || o.Interval < 0 {
		return nil, usagef("--duration and --interval must not be negative")
	}
	var patterns []string
	for _, p := range strings.Split(o.Subscribe, ",") {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	if len(patterns) == 0 {
		return nil, usagef("--subscribe: no patterns")
	}
	return patterns, nil
}

// OMSStats is what fastfeed oms writes with --stats-out.
type OMSStats struct {
	bus.BooksStats
	Updates uint64      `json:"updates"`
	Rejects []OMSReject `json:"rejects"`
	Errors  []string    `json:"errors"`
	Logout  string      `json:"logout"`
	P50us   float64     `json:"latency_p50_us"` // publish-to-client latency of X messages
	P99us   float64     `json:"latency_p99_us"`
}

// OMSReject is a request the service rejected.
type OMSReject struct {
	MDReqID string `json:"mdreqid"`
	Reason  string `json:"reason"`
	Text    string `json:"text"`
}

// OMS is fastfeed oms, a reference OMS client of the handler's FIX distribution
// service: it subscribes, rebuilds the books from what it receives and prints them.
func OMS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("oms", stderr,
		"usage: fastfeed oms [--nats URL | --connect ADDR] [--username U --password P] [--subscribe 'SBER,SB*,*'] [--duration D] [--config FILE]")
	var o OMSOptions
	o.Register(fs)
	cl, err := parse(fs, args, parseOpts{config: "config"})
	if err != nil {
		return err
	}
	cc := bus.ClientConfig{Resubscribe: true}
	if err := o.applyOMSClientFIX(cl.set, &cc); err != nil {
		return err
	}
	log, err := o.Logger(stderr)
	if err != nil {
		return err
	}
	patterns, err := o.Patterns()
	if err != nil {
		return err
	}
	if o.NATS.URL != "" {
		return omsNATS(ctx, o.NATS, patterns, o.Clients, o.Duration, o.Interval, o.DumpBooks, o.StatsOut, stdout, log)
	}
	if o.CompID == "" {
		o.CompID = fmt.Sprintf("OMS-%d", os.Getpid())
	}
	tc, err := o.TLS.Load()
	if err != nil {
		return err
	}
	cc.Connect, cc.SenderCompID, cc.Username, cc.Password, cc.TLS = o.Connect, o.CompID, o.Username, o.Password, tc
	c, err := bus.NewClient(cc)
	if err != nil {
		return err
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	logonCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = c.Start(logonCtx)
	cancel()
	if err != nil {
		c.Close()
		return err
	}
	log.Info("oms logged on", "connect", o.Connect, "compid", o.CompID, "username", o.Username)
	for i, p := range patterns {
		id := "oms-" + strconv.Itoa(i+1)
		if o.Snapshot {
			err = c.Snapshot(id, p)
		} else {
			err = c.Subscribe(id, p)
		}
		if err != nil {
			c.Close()
			return err
		}
		log.Info("oms request sent", "mdreqid", id, "pattern", p, "snapshot", o.Snapshot)
	}
	var tick <-chan time.Time
	if o.Interval > 0 {
		t := time.NewTicker(o.Interval)
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
	if o.DumpBooks != "" {
		if err := writeFile(o.DumpBooks, func(w io.Writer) error { _, err := d.WriteTo(w); return err }); err != nil {
			return err
		}
	}
	if o.StatsOut != "" {
		st := OMSStats{BooksStats: rep.Books, Updates: rep.Updates, Logout: rep.Logout, Rejects: []OMSReject{}, Errors: []string{},
			P50us: us(lat.ValueAtQuantile(50)), P99us: us(lat.ValueAtQuantile(99))}
		for _, r := range rep.Rejects {
			st.Rejects = append(st.Rejects, OMSReject{MDReqID: r.MDReqID, Reason: rejectReason(r.Reason), Text: r.Text})
		}
		for _, e := range rep.Errors {
			st.Errors = append(st.Errors, e.Error())
		}
		if err := writeFile(o.StatsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(st) }); err != nil {
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
