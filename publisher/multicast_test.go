package publisher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
)

// receiver joins every channel of p (lines A and B, the definitions channel
// included) and collects what arrives.
type receiver struct {
	p    *mcast.Poller
	mu   sync.Mutex
	got  []datagram
	stop chan struct{}
	done chan error
}

func newReceiver(t *testing.T, p *Publisher) *receiver {
	t.Helper()
	poller, err := mcast.NewPoller(mcast.PollerConfig{ReadBuffer: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { poller.Close() })
	for _, ci := range p.Channels() {
		if _, err := poller.JoinGroup(ci.Group); err != nil {
			t.Fatal(err)
		}
		if ci.B.IsValid() {
			if _, err := poller.JoinGroup(ci.B); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := &receiver{p: poller, stop: make(chan struct{}), done: make(chan error, 1)}
	go r.loop()
	return r
}

func (r *receiver) loop() {
	ms := make([]mcast.Message, 64)
	for i := range ms {
		ms[i].Buf = make([]byte, 65536)
	}
	stopping := false
	for {
		select {
		case <-r.stop:
			stopping = true
		default:
		}
		timeout := 20 * time.Millisecond
		if stopping {
			timeout = 0 // loopback delivery is done when the sender returns
		}
		n, err := r.p.ReadBatch(ms, timeout)
		if err != nil {
			r.done <- err
			return
		}
		if n == 0 && stopping {
			r.done <- nil
			return
		}
		r.mu.Lock()
		for _, m := range ms[:n] {
			if m.Truncated {
				r.mu.Unlock()
				r.done <- fmt.Errorf("datagram of more than %d bytes", len(m.Buf))
				return
			}
			r.got = append(r.got, datagram{r.p.Membership(m.Group).Group, bytes.Clone(m.Buf[:m.N])})
		}
		r.mu.Unlock()
	}
}

// finish stops the receiver after draining the sockets and returns what
// arrived.
func (r *receiver) finish(t *testing.T) []datagram {
	t.Helper()
	close(r.stop)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	return r.got
}

// drops describes the kernel's drop counts of every socket.
func (r *receiver) drops(t *testing.T) string {
	var sb strings.Builder
	total := uint64(0)
	for i := range r.p.Len() {
		d, err := r.p.KernelDrops(i)
		if err != nil {
			t.Error(err)
		}
		m := r.p.Membership(i)
		if d > 0 {
			fmt.Fprintf(&sb, " %v: %d dropped (SO_RCVBUF %d);", m.Group, d, m.ReadBuffer)
		}
		total += d
	}
	return fmt.Sprintf("kernel drops: %d in all;%s", total, sb.String())
}

// TestMulticast publishes 20 instruments on loopback multicast inside the
// test's private network namespace, receives every channel's groups (A and
// B lines and the definitions channel) on raw sockets and checks the feed:
// groups, sequence numbers, decoding, heartbeats, the B line, the dumped
// books rebuilt from the datagrams, a snapshot taken mid-run, and
// retransmissions during the linger.
func TestMulticast(t *testing.T) {
	netns.Require(t)
	dir := t.TempDir()
	dump := filepath.Join(dir, "books.jsonl")
	p := newPublisher(t, Config{
		Instruments:         generate(t, 20),
		B:                   BLine{Port: 30002},
		Rate:                8000,
		Count:               4000,
		Seed:                11,
		Heartbeat:           40 * time.Millisecond,
		DefinitionsInterval: 150 * time.Millisecond,
		Linger:              400 * time.Millisecond,
		DumpBooks:           dump,
	})
	rx := newReceiver(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// A snapshot of a busy channel in the middle of the data.
	sberCh, _ := p.ChannelOf("SBER")
	for p.Stats().Incrementals < 2000 {
		select {
		case <-p.DataDone():
			t.Fatal("the data stopped before 2000 incrementals")
		case <-time.After(2 * time.Millisecond):
		}
	}
	mid, err := p.Snapshot(ctx, sberCh, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-p.DataDone()
	// Retransmissions while lingering, compared below with what arrived.
	type retrans struct {
		ch       string
		beg, end uint32
		got      [][]byte
	}
	var rts []retrans
	for _, ci := range p.Channels() {
		rt := retrans{ch: ci.Name, beg: 1, end: 3}
		if rt.got, err = p.Retransmit(ctx, ci.Name, rt.beg, rt.end); err != nil {
			t.Fatal(err)
		}
		rts = append(rts, rt)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := rx.finish(t)

	st := p.Stats()
	if want := 2 * st.Datagrams; uint64(len(got)) != want {
		t.Fatalf("received %d datagrams, sent %d (lines A and B); %s", len(got), want, rx.drops(t))
	}
	r := checkFeed(t, p, got, channelSymbols(p, sberCh)...)
	if r.incrementals < 4000 || r.definitions < 2*len(p.cfg.Instruments) {
		t.Errorf("%d incrementals, %d definitions (want >= 4000, two cycles at least)", r.incrementals, r.definitions)
	}
	if r.heartbeats <= len(p.Channels()) {
		t.Errorf("%d heartbeats: want idle ones during the linger besides the one per channel at the end of data", r.heartbeats)
	}

	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := readDumpFile(t, data)
	if len(want) != 20 {
		t.Fatalf("dump of %d books", len(want))
	}
	if d := book.DiffDumps(dumpOf(t, r.books), want); d != "" {
		t.Fatalf("books rebuilt from the multicast differ from the publisher's dump:\n%s", d)
	}

	// The mid-run snapshot plus the later incrementals is the final book.
	for _, s := range mid {
		sym := string(s.Symbol)
		b := snapshotBook(t, p, &s)
		in := p.cfg.Instruments[p.bySymbol[sym]]
		applied := 0
		for _, ea := range r.entries[sym] {
			if ea.seq <= s.LastMsgSeqNumProcessed {
				continue
			}
			if applied == 0 && ea.e.RptSeq != s.RptSeq+1 {
				t.Errorf("%s: snapshot at seq %d has RptSeq %d, the next entry %d", sym, s.LastMsgSeqNumProcessed, s.RptSeq, ea.e.RptSeq)
			}
			applied++
			u, err := toUpdate(&ea.e, in.PriceExp, in.SizeExp)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Apply(u); err != nil {
				t.Fatalf("%s: snapshot + entry %d: %v", sym, ea.e.RptSeq, err)
			}
			b.SetRptSeq(int64(ea.e.RptSeq))
		}
		line, _ := want.Lookup(sym)
		if d := book.DiffDumps(book.Dump{book.DumpOf(sym, b)}, book.Dump{line}); d != "" {
			t.Errorf("%s: snapshot at seq %d + %d entries differs from the final book:\n%s", sym, s.LastMsgSeqNumProcessed, applied, d)
		}
		if applied == 0 {
			t.Errorf("%s: no entries after the snapshot at %d", sym, s.LastMsgSeqNumProcessed)
		}
	}

	for _, rt := range rts {
		for i, d := range rt.got {
			if !bytes.Equal(d, r.sequenced[rt.ch][int(rt.beg)-1+i]) {
				t.Errorf("%s: retransmitted %d differs from the datagram received", rt.ch, int(rt.beg)+i)
			}
		}
	}
	if _, err := p.Retransmit(ctx, sberCh, 1, r.lastSeq[sberCh]+1); !errors.Is(err, ErrBeyondRetention) {
		t.Errorf("retransmit past the last number: %v", err)
	}
	if t.Failed() {
		t.Log(rx.drops(t))
	}
}

func channelSymbols(p *Publisher, ch string) []string {
	for _, ci := range p.Channels() {
		if ci.Name == ch {
			return ci.Instruments
		}
	}
	return nil
}
