package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/internal/netns"
	"fastfeed/publisher"
)

// demoNATS is the demo's NATS side: an embedded server, the handler's publisher and a
// consumer in the same process whose books are checked too.
type demoNATS struct {
	np   *natsPublisher
	nc   *nats.Conn
	cons *natsbus.Consumer
	url  string
}

// startDemoNATS starts the embedded server on listen and publishes h's books on it.
func startDemoNATS(ctx context.Context, h *feed.Handler, p *publisher.Publisher, listen string, w io.Writer) (*demoNATS, error) {
	quiet := slog.New(slog.DiscardHandler)
	nf := natsFlags{url: "embedded", listen: listen, snapshotEvery: time.Second, replicas: 1, memory: true}
	chOf := func(s string) string { ch, _ := p.ChannelOf(s); return ch }
	np, err := startNATSPublisher(ctx, nf, h, chOf, quiet)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS on %s: %w (give --nats-listen ADDR or --no-nats)", listen, err)
	}
	d := &demoNATS{np: np, url: np.srv.URL()}
	if d.nc, err = (natsbus.ConnConfig{URL: d.url, Name: "fastfeed-demo-consumer"}).Connect(); err == nil {
		if d.cons, err = natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: d.nc}); err == nil {
			err = d.cons.Start(ctx)
		}
	}
	if err != nil {
		d.Stop()
		return nil, err
	}
	fmt.Fprintf(w, "NATS: embedded nats-server with JetStream at %s; books on md.<channel>.<symbol>, snapshots on snap.>, last-value cache %s\n",
		d.url, natsbus.StreamName)
	if netns.Inside() {
		fmt.Fprintln(w, "      (the demo runs in a private network namespace: to subscribe from another terminal, run it with --no-netns)")
	}
	fmt.Fprintf(w, "      subscribe: fastfeed oms --nats %s --subscribe 'SB*,GAZP'   or   nats sub 'md.>' --server %s\n", d.url, d.url)
	fmt.Fprintf(w, "      FIX gateway: fastfeed gateway --nats %s --serve-fix 127.0.0.1:9871\n\n", d.url)
	return d, nil
}

// render adds the NATS counters to the demo's screen.
func (d *demoNATS) render(w io.Writer) {
	if d == nil {
		return
	}
	ps, cs := d.np.Stats(), d.cons.Stats()
	fmt.Fprintf(w, "nats      %8d published  %d snapshots  %d conflations | consumer: %d/%d books whole, %d entries, last publish-to-apply %.1f us\n",
		ps.Messages, ps.Snapshots, ps.Conflations, cs.Synchronised, cs.Instruments, cs.Entries, us(cs.LastLatencyNs))
	fmt.Fprintf(w, "          %s\n", d.url)
}

// verdict checks the NATS consumer's books against the publisher's ground truth.
func (d *demoNATS) verdict(ctx context.Context, w io.Writer, p *publisher.Publisher) error {
	if d == nil {
		return nil
	}
	var truth bytes.Buffer
	if err := p.WriteDump(&truth); err != nil {
		return err
	}
	want, err := book.ReadDump(&truth)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got book.Dump
		if err := d.cons.Do(ctx, func() { got = d.cons.Dump() }); err != nil {
			return err
		}
		diff := book.DiffDumps(got, want)
		if diff == "" {
			st := d.cons.Stats()
			fmt.Fprintf(w, "all %d books received over NATS equal the publisher's ground truth (%d messages, %d RptSeq holes resynchronised)\n",
				len(got), st.Messages, st.Gaps)
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(w, "books over NATS DIFFER from the publisher's ground truth:\n%s\n", diff)
			return fmt.Errorf("demo: books over NATS differ from ground truth")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the consumer, the publisher and the server.
func (d *demoNATS) Stop() {
	if d == nil {
		return
	}
	if d.cons != nil {
		d.cons.Stop()
	}
	if d.nc != nil {
		d.nc.Close()
	}
	d.np.Stop(slog.New(slog.DiscardHandler))
}
