package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/internal/netns"
	"fastfeed/opshttp"
	"fastfeed/publisher"
)

// natsSide is the demo's NATS side: an embedded server, the handler's publisher and a
// consumer in the same process whose books are checked too.
type natsSide struct {
	srv      *natsbus.Server
	pubConn  *nats.Conn
	pub      *natsbus.Publisher
	sub      interface{ Cancel() }
	consConn *nats.Conn
	cons     *natsbus.Consumer
	url      string
}

// startNATS starts an embedded server on listen and publishes h's books on it.
func startNATS(ctx context.Context, h *feed.Handler, p *publisher.Publisher, listen string, w io.Writer) (*natsSide, error) {
	srv, err := natsbus.StartServer(natsbus.ServerConfig{Listen: listen})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS on %s: %w (fastfeed demo --nats-listen ADDR or --no-nats)", listen, err)
	}
	d := &natsSide{srv: srv, url: srv.URL()}
	ok := false
	defer func() {
		if !ok {
			d.stop()
		}
	}()
	if d.pubConn, err = (natsbus.ConnConfig{URL: d.url, Name: "fastfeed-demo-feed"}).Connect(natsbus.PublisherOptions()...); err != nil {
		return nil, err
	}
	sc := natsbus.DefaultStreamConfig(1, true)
	chOf := func(s string) string { ch, _ := p.ChannelOf(s); return ch }
	if d.pub, err = natsbus.NewPublisher(natsbus.PublisherConfig{Conn: d.pubConn, Engine: h, ChannelOf: chOf,
		SnapshotEvery: time.Second, Stream: &sc}); err != nil {
		return nil, err
	}
	if err := d.pub.Start(ctx); err != nil {
		return nil, err
	}
	d.sub = h.Subscribe(d.pub.OnEvent, "*")
	if d.consConn, err = (natsbus.ConnConfig{URL: d.url, Name: "fastfeed-demo-consumer"}).Connect(); err != nil {
		return nil, err
	}
	if d.cons, err = natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: d.consConn}); err != nil {
		return nil, err
	}
	if err := d.cons.Start(ctx); err != nil {
		return nil, err
	}
	ok = true
	fmt.Fprintf(w, "NATS: embedded nats-server with JetStream at %s; books on md.<channel>.<symbol>, snapshots on snap.>, last-value cache %s\n",
		d.url, natsbus.StreamName)
	if netns.Inside() {
		fmt.Fprintln(w, "      (the demo runs in a private network namespace: to subscribe from another terminal, run it with --no-netns)")
	}
	fmt.Fprintf(w, "      subscribe: fastfeed oms --nats %s --subscribe 'SB*,GAZP'   or   nats sub 'md.>' --server %s\n", d.url, d.url)
	fmt.Fprintf(w, "      FIX gateway: fastfeed gateway --nats %s --serve-fix 127.0.0.1:9871\n\n", d.url)
	return d, nil
}

// sessions describes the demo's two NATS connections for the HTTP view (nil: none yet).
func (d *natsSide) sessions() []opshttp.NATSSession {
	if d == nil {
		return nil
	}
	return []opshttp.NATSSession{
		{Name: "publisher", State: strings.ToLower(d.pubConn.Status().String())},
		{Name: "consumer", State: strings.ToLower(d.consConn.Status().String())},
	}
}

// render adds the NATS counters to the screen.
func (d *natsSide) render(w io.Writer) {
	if d == nil {
		return
	}
	ps, cs := d.pub.Stats(), d.cons.Stats()
	fmt.Fprintf(w, "nats      %8d published  %d snapshots  %d conflations | consumer: %d/%d books whole, %d entries, last publish-to-apply %.1f us\n",
		ps.Messages, ps.Snapshots, ps.Conflations, cs.Synchronised, cs.Instruments, cs.Entries, us(cs.LastLatencyNs))
}

// verdict checks the NATS consumer's books against the publisher's ground truth.
func (d *natsSide) verdict(ctx context.Context, w io.Writer, p *publisher.Publisher) error {
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
			return ErrBooksDiffer
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the consumer, the publisher and the server.
func (d *natsSide) stop() {
	if d == nil {
		return
	}
	if d.cons != nil {
		d.cons.Stop()
	}
	if d.consConn != nil {
		d.consConn.Close()
	}
	if d.sub != nil {
		d.sub.Cancel()
	}
	if d.pub != nil {
		d.pub.Stop()
	}
	if d.pubConn != nil {
		d.pubConn.Close()
	}
	d.srv.Shutdown()
}
