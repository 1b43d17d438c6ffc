package roles

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
)

// OMSNATSStats is what fastfeed oms --nats writes with --stats-out: the consumers'
// counters summed, and how many consumers ended with books different from the first's.
type OMSNATSStats struct {
	natsbus.ConsumerStats
	Clients   int `json:"clients"`
	Differing int `json:"clients_differing"`
}

// omsNATS is fastfeed oms --nats: the books straight from NATS, printed as over FIX.
// With clients > 1 it runs that many consumers, each on its own connection (a load, or
// many subscribers in one process); the first one's books are printed and dumped, and
// every other's must end equal to them.
func omsNATS(ctx context.Context, nf NATSOptions, patterns []string, clients int, duration, interval time.Duration, dumpBooks, statsOut string,
	stdout io.Writer, log *slog.Logger) error {
	if err := nf.check(); err != nil {
		return &UsageError{err.Error()}
	}
	if nf.URL == "embedded" {
		return &UsageError{"oms --nats needs the URL of the servers a feed publishes on"}
	}
	if clients < 1 || clients > 10000 {
		return usagef("--clients %d outside 1..10000", clients)
	}
	runCtx := ctx // the consumers outlive the run, for the dump at the end
	if duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	ps := make([]feed.Pattern, len(patterns))
	for i, p := range patterns {
		ps[i] = feed.Pattern(p)
	}
	conss := make([]*natsbus.Consumer, clients)
	for i := range conss {
		var nc *nats.Conn
		var err error
		if i == 0 {
			nc, _, err = nf.connect("fastfeed-oms", log)
		} else {
			nc, err = nf.conn(nf.URL, fmt.Sprintf("fastfeed-oms-%d", i)).Connect(nats.Timeout(10 * time.Second))
		}
		if err != nil {
			return err
		}
		defer nc.Close()
		cons, err := natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: nc, Patterns: ps, Logger: log})
		if err != nil {
			return err
		}
		if err := cons.Start(ctx); err != nil {
			return err
		}
		defer cons.Stop()
		conss[i] = cons
	}
	log.Info("oms subscribed over NATS", "server", nf.URL, "patterns", patterns, "clients", clients)
	dump := func(c *natsbus.Consumer) book.Dump {
		var d book.Dump
		_ = c.Do(context.Background(), func() { d = c.Dump() })
		return d
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-runCtx.Done():
			done = true
		case <-tick:
			printTops(stdout, dump(conss[0]))
		}
	}
	d := dump(conss[0])
	out := OMSNATSStats{Clients: clients}
	// The clients may lag one another: give them a few seconds to end equal.
	differing := func(final bool) int {
		n := 0
		for i, c := range conss[1:] {
			if diff := book.DiffDumps(dump(c), d); diff != "" {
				n++
				if final {
					log.Warn("oms client's books differ from the first client's", "client", i+1, "diff", diff)
				}
			}
		}
		return n
	}
	for settle := time.Now().Add(10 * time.Second); clients > 1 && differing(false) > 0 && time.Now().Before(settle); {
		time.Sleep(100 * time.Millisecond)
		d = dump(conss[0])
	}
	if clients > 1 {
		out.Differing = differing(true)
	}
	for _, c := range conss {
		sumConsumerStats(&out.ConsumerStats, c.Stats())
	}
	st := out.ConsumerStats
	log.Info("oms stopped", "clients", clients, "differing", out.Differing, "instruments", st.Instruments,
		"synchronised", st.Synchronised, "snapshots", st.Snapshots, "entries", st.Entries, "gaps", st.Gaps,
		"resyncs", st.Resyncs, "lvc_reads", st.LVCReads, "permission_refusals", st.Permission, "reconnects", st.Reconnects)
	if dumpBooks != "" {
		if err := writeFile(dumpBooks, func(w io.Writer) error { _, err := d.WriteTo(w); return err }); err != nil {
			return err
		}
	}
	if statsOut != "" {
		if err := writeFile(statsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(out) }); err != nil {
			return err
		}
	}
	if out.Differing > 0 {
		return fmt.Errorf("%d of %d clients ended with books different from the first's", out.Differing, clients)
	}
	return nil
}

// sumConsumerStats adds b's counters to a (the gauges too: instruments and synchronised
// books of all the clients).
func sumConsumerStats(a *natsbus.ConsumerStats, b natsbus.ConsumerStats) {
	a.Messages += b.Messages
	a.Entries += b.Entries
	a.Snapshots += b.Snapshots
	a.OldSnapshots += b.OldSnapshots
	a.Duplicates += b.Duplicates
	a.Gaps += b.Gaps
	a.Resyncs += b.Resyncs
	a.LVCReads += b.LVCReads
	a.LVCErrors += b.LVCErrors
	a.SnapRequests += b.SnapRequests
	a.Stale += b.Stale
	a.Buffered += b.Buffered
	a.BufferDrops += b.BufferDrops
	a.ParseErrors += b.ParseErrors
	a.Mismatches += b.Mismatches
	a.TooMany += b.TooMany
	a.BookErrors += b.BookErrors
	a.SlowConsumer += b.SlowConsumer
	a.Permission += b.Permission
	a.Reconnects += b.Reconnects
	a.Disconnects += b.Disconnects
	a.Instruments += b.Instruments
	a.Synchronised += b.Synchronised
	a.LastLatencyNs = max(a.LastLatencyNs, b.LastLatencyNs)
}
