package natsbus

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestStreamUnavailable: JetStream does not answer (a cluster electing the stream's
// leader, for seconds): the publisher goes on publishing on core NATS, a consumer's
// books follow the ground truth, and the failed checks are counted. The stream was once
// checked on the writer's goroutine, two seconds per check, and the books froze.
func TestStreamUnavailable(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	// A black hole for the JetStream API: every request waits for its timeout.
	hole, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hole.Close)
	if _, err := hole.Subscribe("$JS.API.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := hole.Flush(); err != nil {
		t.Fatal(err)
	}
	c := startChainOn(t, chainConfig{instruments: 8, rate: 1000, count: 4000, conn: ConnConfig{URL: srv.ClientURL()}}, nil)
	cons := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	c.publish()
	c.waitData(t)
	waitBooks(t, "consumer", cons, c.truth(t, nil))
	ps := c.pub.Stats()
	if ps.StreamErrors < 2 {
		t.Errorf("the unanswered stream checks are not counted: %+v", ps)
	}
	if ps.Conflations != 0 || ps.Dropped != 0 {
		t.Errorf("the publisher conflated while only JetStream was unavailable: %+v", ps)
	}
}
