package roles

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
)

// omsNATS is fastfeed oms --nats: the books straight from NATS, printed as over FIX.
func omsNATS(ctx context.Context, nf NATSOptions, patterns []string, duration, interval time.Duration, dumpBooks, statsOut string,
	stdout io.Writer, log *slog.Logger) error {
	if err := nf.check(); err != nil {
		return &UsageError{err.Error()}
	}
	if nf.URL == "embedded" {
		return &UsageError{"oms --nats needs the URL of the servers a feed publishes on"}
	}
	nc, _, err := nf.connect("fastfeed-oms", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	runCtx := ctx // the consumer outlives the run, for the dump at the end
	if duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	ps := make([]feed.Pattern, len(patterns))
	for i, p := range patterns {
		ps[i] = feed.Pattern(p)
	}
	cons, err := natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: nc, Patterns: ps, Logger: log})
	if err != nil {
		return err
	}
	if err := cons.Start(ctx); err != nil {
		return err
	}
	defer cons.Stop()
	log.Info("oms subscribed over NATS", "server", nc.ConnectedUrlRedacted(), "patterns", patterns)
	dump := func() book.Dump {
		var d book.Dump
		_ = cons.Do(context.Background(), func() { d = cons.Dump() })
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
			printTops(stdout, dump())
		}
	}
	d := dump()
	st := cons.Stats()
	log.Info("oms stopped", "instruments", st.Instruments, "synchronised", st.Synchronised, "snapshots", st.Snapshots,
		"entries", st.Entries, "gaps", st.Gaps, "resyncs", st.Resyncs, "lvc_reads", st.LVCReads,
		"permission_refusals", st.Permission, "reconnects", st.Reconnects)
	if dumpBooks != "" {
		if err := writeFile(dumpBooks, func(w io.Writer) error { _, err := d.WriteTo(w); return err }); err != nil {
			return err
		}
	}
	if statsOut != "" {
		return writeFile(statsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(st) })
	}
	return nil
}
