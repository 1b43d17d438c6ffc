package moex

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/publisher"
	"fastfeed/replay"
)

// TestLiveRepublish: TestLive's exchange datagrams (A and B, losses on one line and on
// both, snapshots at the end) joined live by a LiveSource and republished: the bus's
// datagrams rebuild the publisher's dump, which equals the exchange's books level for
// level; the books the lost datagram left stale were announced so and whole again.
func TestLiveRepublish(t *testing.T) {
	if !netns.Inside() {
		t.Fatal("not inside a private network namespace")
	}
	src := netip.MustParseAddr("127.0.0.2")
	m := fond(t).MapSources(map[netip.Addr]netip.Addr{netip.MustParseAddr("10.50.129.200"): src})
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 12)
	x.bLag = 3
	x.drop = func(conn string, seq uint32, line int) bool {
		if conn == "OLR" && seq == 40 {
			return true
		}
		return line == 0 && seq%5 == 2
	}
	syms := []string{"SBER", "GAZP", "LKOH"}
	for i := range 150 {
		x.orderStep(syms, 1+i%2)
		if i%7 == 0 {
			x.trade(syms[i%3], 20000+int64(i), 5)
		}
	}
	for _, s := range syms {
		x.snapshot(s, 4)
	}
	x.close()

	// A hole waits 20ms for line B: the one on both lines is given up while the sender
	// pauses halfway, so its instruments go stale until the snapshots at the end.
	e, err := NewEngine(m, Options{GapWait: int64(20 * time.Millisecond), GapWindow: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := NewLiveSource(e, LiveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ts, err := fast.LoadFile(busTemplates)
	if err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(publisher.Config{Templates: ts, Source: ls, RetentionBytes: publisher.MinRetentionBytes})
	if err != nil {
		t.Fatal(err)
	}
	rep := NewRepublisher(p)
	e.Listener = rep
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	s, err := mcast.NewSender(mcast.SenderConfig{Interface: src})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := replay.NewReader(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d replay.Datagram
	sent := 0
	for r.Next(&d) == nil {
		if err := s.WriteTo(d.Payload, d.Dst); err != nil {
			t.Fatal(err)
		}
		if sent++; sent%50 == 0 {
			time.Sleep(time.Millisecond)
		}
		if sent == 150 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Datagrams != uint64(sent) || st.DecodeErrors != 0 || st.InstrumentGaps == 0 {
		t.Fatalf("sent %d, stats %+v %+v", sent, st, e.Channels())
	}
	var pub bytes.Buffer
	if err := p.WriteDump(&pub); err != nil {
		t.Fatal(err)
	}
	want := readDump(t, pub.String())
	got, statuses, _ := busRead(t, p)
	if d := book.DiffDumps(got, want); d != "" {
		t.Fatalf("the bus's datagrams give other books than the publisher's dump:\n%s", d)
	}
	if d := book.DiffDumps(levelsOnly(want), levelsOnly(readDump(t, x.wantBooks()))); d != "" {
		t.Fatalf("the republished books differ from the exchange's:\n%s", d)
	}
	announced := 0
	for _, b := range want {
		if b.Stale || len(statuses[b.Symbol])%2 == 0 {
			t.Errorf("%s stale at the end: statuses %q", b.Symbol, statuses[b.Symbol])
		}
		announced += len(statuses[b.Symbol]) / 2
	}
	if announced == 0 {
		t.Errorf("no book announced stale: %q", statuses)
	}
	if rs := rep.Stats(); rs != (RepublishStats{Instruments: uint64(len(syms))}) {
		t.Errorf("republisher %+v", rs)
	}
}

// TestLiveRepublishReplay: the same exchange with the OLR datagram lost on both lines
// asked of a replay service that answers 200 ms late, while the LiveSource keeps
// reading and the bus keeps publishing: the hole is filled (no instrument gap, no book
// announced stale) and the republished books equal the exchange's.
func TestLiveRepublishReplay(t *testing.T) {
	if !netns.Inside() {
		t.Fatal("not inside a private network namespace")
	}
	src := netip.MustParseAddr("127.0.0.2")
	m := fond(t).MapSources(map[netip.Addr]netip.Addr{netip.MustParseAddr("10.50.129.200"): src})
	syms := []string{"SBER", "GAZP", "LKOH"}
	write := func(drop func(conn string, seq uint32, line int) bool) (*exchange, []byte) {
		var buf bytes.Buffer
		x := newExchange(t, m, &buf, 12)
		x.bLag = 3
		x.drop = drop
		for i := range 150 {
			x.orderStep(syms, 1+i%2)
			if i%7 == 0 {
				x.trade(syms[i%3], 20000+int64(i), 5)
			}
		}
		x.close()
		return x, buf.Bytes()
	}
	_, all := write(func(string, uint32, int) bool { return false })
	fr := &fakeReplay{msgs: map[uint32][]byte{}, gate: make(chan struct{})}
	for seq, p := range olrPayloads(t, m, all) {
		fr.msgs[seq] = p[4:]
	}
	x, capture := write(func(conn string, seq uint32, line int) bool {
		return (conn == "OLR" && seq == 40) || (line == 0 && seq%5 == 2)
	})
	time.AfterFunc(200*time.Millisecond, func() { close(fr.gate) })

	e, err := NewEngine(m, Options{GapWait: int64(20 * time.Millisecond), GapWindow: 1024, Replay: fr})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := NewLiveSource(e, LiveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ts, err := fast.LoadFile(busTemplates)
	if err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(publisher.Config{Templates: ts, Source: ls, RetentionBytes: publisher.MinRetentionBytes})
	if err != nil {
		t.Fatal(err)
	}
	rep := NewRepublisher(p)
	e.Listener = rep
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	s, err := mcast.NewSender(mcast.SenderConfig{Interface: src})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := replay.NewReader(bytes.NewReader(capture), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d replay.Datagram
	sent := 0
	for r.Next(&d) == nil {
		if err := s.WriteTo(d.Payload, d.Dst); err != nil {
			t.Fatal(err)
		}
		if sent++; sent%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(400 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c := e.Channels()["OLR"]
	if st := e.Stats(); st.Datagrams != uint64(sent) || st.DecodeErrors != 0 || st.InstrumentGaps != 0 ||
		c.RecoveredReplay != 1 || c.ReplayMessages != 1 || c.Gaps != 0 {
		t.Fatalf("sent %d, stats %+v OLR %+v", sent, st, c)
	}
	var pub bytes.Buffer
	if err := p.WriteDump(&pub); err != nil {
		t.Fatal(err)
	}
	want := readDump(t, pub.String())
	got, statuses, _ := busRead(t, p)
	if d := book.DiffDumps(got, want); d != "" {
		t.Fatalf("the bus's datagrams give other books than the publisher's dump:\n%s", d)
	}
	if d := book.DiffDumps(levelsOnly(want), levelsOnly(readDump(t, x.wantBooks()))); d != "" {
		t.Fatalf("the republished books differ from the exchange's:\n%s", d)
	}
	for _, sym := range syms {
		if len(statuses[sym]) != 1 { // the opening status only: never stale
			t.Errorf("%s: statuses %q", sym, statuses[sym])
		}
	}
}
