package publisher

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastfeed/mcast/dgauth"
)

func testKey(t testing.TB) *dgauth.Key {
	t.Helper()
	k, err := dgauth.ParseKey("test key", []byte(strings.Repeat("5a", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealedFeed runs the loop with a key and a B line: every datagram on both lines
// carries a trailer that opens with its channel's line A address (and not with the B
// address), the opened feed is the feed of DESIGN.md (checkFeed rebuilds the dumped
// books from it), and a retransmission serves the FAST message without the trailer.
func TestSealedFeed(t *testing.T) {
	key := testKey(t)
	p := newPublisher(t, Config{
		Instruments: generate(t, 12), Mapping: mustMapping(t, "239.192.0.1", 4), B: BLine{Port: 30002},
		Count: 1500, Seed: 3, Heartbeat: 20 * time.Millisecond, DefinitionsInterval: 10 * time.Millisecond,
		Key: key, Linger: time.Minute,
	})
	w := &captureWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.state.Store(stateRunning)
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, w) }()
	<-p.DataDone()
	lineA := map[netip.AddrPort]netip.AddrPort{}
	for _, ci := range p.Channels() {
		lineA[ci.Group] = ci.Group
		lineA[ci.B] = ci.Group
	}
	var opened []datagram
	for _, d := range w.datagrams() {
		a, ok := lineA[d.addr]
		if !ok {
			t.Fatalf("datagram to %v, not a channel", d.addr)
		}
		m, err := key.Open(a, d.data)
		if err != nil {
			t.Fatalf("datagram to %v (line A %v) does not open: %v", d.addr, a, err)
		}
		if a != d.addr {
			if _, err := key.Open(d.addr, d.data); err == nil {
				t.Fatalf("a line B datagram opens with the B address %v", d.addr)
			}
		}
		opened = append(opened, datagram{d.addr, m})
	}
	r := checkFeed(t, p, opened)
	ch := p.Channels()[0].Name
	seqd := r.sequenced[ch]
	got, err := p.Retransmit(ctx, ch, 1, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if !bytes.Equal(m, seqd[i]) {
			t.Fatalf("retransmitted %d: %x, want the datagram sent without its trailer %x", i+1, m, seqd[i])
		}
	}
	if st := p.Stats(); st.Datagrams == 0 || st.Bytes < st.Datagrams*uint64(4+dgauth.Overhead) {
		t.Errorf("stats %+v: bytes should count the trailers", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSealedHotPathNoAllocs: with a key, a send tick still allocates nothing.
func TestSealedHotPathNoAllocs(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 50), Retention: 200, RetentionBytes: MinRetentionBytes,
		B: BLine{Port: 30002}, Key: testKey(t)})
	p.w = discardWriter{}
	epoch := time.Now()
	p.clock(epoch)
	p.startup(context.Background())
	for range 500 {
		p.produce(maxTickDatagrams)
		p.send()
	}
	if allocs := testing.AllocsPerRun(50, func() {
		p.clock(epoch)
		p.produce(7)
		p.heartbeats()
		p.send()
	}); allocs != 0 {
		t.Errorf("sealed tick: %v allocations", allocs)
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
}

func TestSealedPayloadLimit(t *testing.T) {
	_, err := New(Config{Instruments: generate(t, 1), Templates: loadTemplates(t), PayloadLimit: MaxPayloadLimit, Key: testKey(t)})
	if err == nil || !strings.Contains(err.Error(), "trailer") {
		t.Errorf("payload limit %d with a key: %v, want an error about the trailer", MaxPayloadLimit, err)
	}
}
