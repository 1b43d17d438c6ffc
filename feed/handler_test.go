package feed

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/gap"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
	"fastfeed/mdbook"
)

func TestMain(m *testing.M) { netns.RunTests(m) }

const port = 30001

func templates(t testing.TB) *fast.Templates {
	t.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "fixtures", "templates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// script is a tiny publisher driven by the test: one channel per symbol (default mapping),
// ground-truth books, every datagram kept by sequence number so tests can drop, reorder
// and retransmit them.
type script struct {
	mu     sync.Mutex // update and snapshot may run on different goroutines
	t      *testing.T
	codec  *md.Codec
	sender *mcast.Sender
	seq    map[string]uint32 // channel -> last sequence number
	rpt    map[string]uint32 // symbol -> RptSeq
	truth  map[string]*book.MBP
	sent   map[string]map[uint32][]byte // channel -> seq -> datagram
	snapAt map[string]md.Snapshot       // symbol -> snapshot taken by takeSnapshot
	key    *dgauth.Key                  // seals what send sends (sent keeps the datagrams unsealed)
}

func newScript(t *testing.T) *script {
	ts := templates(t)
	c, err := md.NewCodec(ts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mcast.NewSender(mcast.SenderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &script{t: t, codec: c, sender: s, seq: map[string]uint32{}, rpt: map[string]uint32{},
		truth: map[string]*book.MBP{}, sent: map[string]map[uint32][]byte{}}
}

func channelOf(symbol string) netip.AddrPort {
	return netip.AddrPortFrom(mcast.DefaultMapping().Group(symbol), port)
}

// update makes the next incremental of symbol's channel with one entry and returns its
// sequence number; nothing is sent.
func (s *script) update(symbol string, action md.Action, typ md.EntryType, px, size int64) uint32 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := mcast.ChannelName(channelOf(symbol))
	s.seq[ch]++
	s.rpt[symbol]++
	e := md.Entry{Action: action, Type: typ, Symbol: []byte(symbol), RptSeq: s.rpt[symbol], Price: md.Dec(px, -2)}
	if action != md.Delete {
		e.Size, e.Orders = md.Dec(size, 0), 1
	}
	b := s.truth[symbol]
	if b == nil {
		b, _ = book.NewMBP(book.Config{PriceExp: -2})
		s.truth[symbol] = b
	}
	if err := b.Apply(book.Update{Action: book.Action(action), Type: mdbook.EntryType(typ), Price: px, Size: size, Orders: 1}); err != nil {
		s.t.Fatalf("ground truth: %v", err)
	}
	b.SetRptSeq(int64(s.rpt[symbol]))
	payload := binary.LittleEndian.AppendUint32(nil, s.seq[ch])
	payload, err := s.codec.AppendIncremental(payload, &md.Incremental{Header: md.Header{SeqNum: s.seq[ch]}, Entries: []md.Entry{e}})
	if err != nil {
		s.t.Fatal(err)
	}
	if s.sent[ch] == nil {
		s.sent[ch] = map[uint32][]byte{}
	}
	s.sent[ch][s.seq[ch]] = payload
	return s.seq[ch]
}

// message decodes datagram seq of channel into a message of its own, as a recovery
// client would hand it over.
func (s *script) message(channel string, seq uint32) (*md.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.sent[channel][seq]
	if !ok {
		return nil, fmt.Errorf("no datagram %d", seq)
	}
	if _, err := s.codec.Decode(d[4:]); err != nil {
		return nil, err
	}
	m := new(md.Message)
	m.CopyFrom(&s.codec.Message)
	return m, nil
}

// send multicasts datagram seq of symbol's channel, on line B if b.
func (s *script) send(symbol string, seq uint32, lineB bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	addr := channelOf(symbol)
	ch := mcast.ChannelName(addr)
	if lineB {
		addr = netip.AddrPortFrom(addr.Addr(), port+1)
	}
	d := s.sent[ch][seq]
	if s.key != nil {
		d = s.key.Seal(nil, channelOf(symbol), d) // line A's address on both lines
	}
	if err := s.sender.WriteTo(d, addr); err != nil {
		s.t.Fatal(err)
	}
}

func (s *script) heartbeat(symbol string) {
	s.t.Helper()
	addr := channelOf(symbol)
	last := s.seq[mcast.ChannelName(addr)]
	payload := binary.LittleEndian.AppendUint32(nil, last)
	payload, err := s.codec.AppendHeartbeat(payload, &md.Heartbeat{LastSeqNum: last})
	if err != nil {
		s.t.Fatal(err)
	}
	if s.key != nil {
		payload = s.key.Seal(nil, addr, payload)
	}
	if err := s.sender.WriteTo(payload, addr); err != nil {
		s.t.Fatal(err)
	}
}

// snapshot returns symbol's ground-truth snapshot at its channel's current sequence.
func (s *script) snapshot(symbol string) md.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.truth[symbol]
	snap := md.Snapshot{Symbol: []byte(symbol), RptSeq: s.rpt[symbol], LastMsgSeqNumProcessed: s.seq[mcast.ChannelName(channelOf(symbol))]}
	for _, side := range []book.Side{book.Bid, book.Ask} {
		typ := md.Bid
		if side == book.Ask {
			typ = md.Offer
		}
		for _, l := range b.AppendLevels(nil, side) {
			snap.Entries = append(snap.Entries, md.Entry{Type: typ, Price: md.Dec(l.Price, -2), Size: md.Dec(l.Size, 0), Orders: uint32(l.Orders)})
		}
	}
	return snap
}

func (s *script) truthDump(symbols ...string) book.Dump {
	var d book.Dump
	for _, sym := range symbols {
		d = append(d, book.DumpOf(sym, s.truth[sym]))
	}
	return d
}

// fakeRecovery serves retransmissions from the script's record and snapshots from a
// function, unless told to refuse.
type fakeRecovery struct {
	mu           sync.Mutex
	s            *script
	sink         Sink
	refuseRetx   bool
	snapshots    func(symbols []string) []md.Snapshot
	retransmits  [][2]uint32
	snapRequests int
}

func (f *fakeRecovery) Start(sink Sink) { f.sink = sink }

func (f *fakeRecovery) Retransmit(channel string, beg, end uint32) {
	f.mu.Lock()
	f.retransmits = append(f.retransmits, [2]uint32{beg, end})
	refuse := f.refuseRetx
	f.mu.Unlock()
	go func() {
		if refuse {
			f.sink.Failed(channel, false, "refused by the test")
			return
		}
		for seq := beg; seq <= end; seq++ {
			m, err := f.s.message(channel, seq)
			if err != nil {
				f.sink.Failed(channel, false, err.Error())
				return
			}
			f.sink.Retransmitted(channel, seq, m)
		}
	}()
}

func (f *fakeRecovery) Snapshot(channel string, symbols []string) {
	f.mu.Lock()
	f.snapRequests++
	snaps := f.snapshots(symbols)
	f.mu.Unlock()
	go f.sink.Snapshots(channel, snaps)
}

func startHandler(t *testing.T, cfg Config) (*Handler, func() Stats) {
	t.Helper()
	cfg.Templates = templates(t)
	cfg.Port = port
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	var stats Stats
	stop := func() Stats {
		once.Do(func() {
			cancel()
			if err := <-done; err != context.Canceled {
				t.Errorf("Run: %v", err)
			}
			stats = h.Stats()
		})
		return stats
	}
	t.Cleanup(func() { stop() })
	return h, stop
}

// eventually polls cond on the handler goroutine until it holds or the deadline passes.
func eventually(t *testing.T, h *Handler, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ok := false
		if err := h.Do(context.Background(), func() { ok = cond() }); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; channels:\n%s", what, h.ChannelStates())
}

func dumpEqual(t *testing.T, h *Handler, want book.Dump) {
	t.Helper()
	var got book.Dump
	eventually(t, h, "books equal to ground truth", func() bool {
		got = h.Dump()
		return book.DiffDumps(got, want) == ""
	})
}

func TestInOrderReorderDuplicatesLineB(t *testing.T) {
	s := newScript(t)
	h, stop := startHandler(t, Config{Topics: []string{"SBER", "GAZP"}, BPort: port + 1, Gap: gap.Config{GapWait: 200 * time.Millisecond}})
	// SBER: 1, 3 (hole), 2 on line B fills it; every datagram also copied on line B.
	for _, p := range []int64{28450, 28440, 28430} {
		s.update("SBER", md.New, md.Bid, p, 100)
	}
	s.update("GAZP", md.New, md.Offer, 16000, 5)
	s.update("GAZP", md.Change, md.Offer, 16000, 7)
	s.send("SBER", 1, false)
	s.send("SBER", 3, false)
	s.send("SBER", 2, true)
	s.send("SBER", 3, true)
	s.send("GAZP", 1, false)
	s.send("GAZP", 1, true)
	s.send("GAZP", 2, true)
	s.send("GAZP", 2, false)
	dumpEqual(t, h, s.truthDump("GAZP", "SBER"))
	snap, err := h.BookSnapshot(context.Background(), "SBER")
	if err != nil || len(snap.Bids) != 3 || snap.Bids[0].Price.String() != "284.5" || snap.RptSeq != 3 || snap.Stale {
		t.Errorf("BookSnapshot = %+v, %v", snap, err)
	}
	if _, err := h.BookSnapshot(context.Background(), "NOPE"); err == nil {
		t.Error("BookSnapshot of an unfollowed symbol succeeded")
	}
	if socks := h.Sockets(); len(socks) != 5 || socks[0].Channel != "definitions" || socks[1].ReadBuffer <= 0 {
		t.Errorf("Sockets = %+v", socks)
	}
	st := stop()
	if st.Gaps != 1 || st.RecoveredAB != 1 || st.Duplicates != 3 || st.Messages != 5 || st.StaleBooks != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestGapRecoveredOverFIX, in both receive modes: busy polling, the gap timer and the
// recovery's answers (commands) must be seen although the spinning loop runs its duty
// cycle only every idleTurns empty turns.
func TestGapRecoveredOverFIX(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy-poll=%v", busy), func(t *testing.T) {
			s := newScript(t)
			rec := &fakeRecovery{s: s}
			h, stop := startHandler(t, Config{Topics: []string{"SBER"}, Recovery: rec, Gap: gap.Config{GapWait: time.Millisecond}, BusyPoll: busy})
			for i := int64(0); i < 10; i++ {
				s.update("SBER", md.New, md.Bid, 28400+i, 10+i)
			}
			for _, seq := range []uint32{1, 2, 6, 7, 8, 9} {
				s.send("SBER", seq, false)
			}
			s.heartbeat("SBER") // announces 10: the tail was lost too
			dumpEqual(t, h, s.truthDump("SBER"))
			st := stop()
			if st.RecoveredFIX != 4 || st.Missing != 4 || st.StaleBooks != 0 {
				t.Errorf("stats %+v, retransmits %v", st, rec.retransmits)
			}
		})
	}
}

func TestRefusedRecoveryFallsBackToSnapshot(t *testing.T) {
	s := newScript(t)
	rec := &fakeRecovery{s: s, refuseRetx: true}
	rec.snapshots = func(symbols []string) []md.Snapshot {
		var out []md.Snapshot
		for _, sym := range symbols {
			out = append(out, s.snapshot(sym))
		}
		return out
	}
	h, stop := startHandler(t, Config{Topics: []string{"SBER"}, Recovery: rec, Gap: gap.Config{GapWait: time.Millisecond}})
	for i := int64(0); i < 6; i++ {
		s.update("SBER", md.New, md.Offer, 28500+i, 3)
	}
	s.send("SBER", 1, false)
	s.send("SBER", 4, false) // 2, 3 lost; the snapshot is taken at 6 below
	eventually(t, h, "a stale book", func() bool { return h.bySymbol["SBER"].stale || rec.snapRequests > 0 })
	s.send("SBER", 5, false)
	s.send("SBER", 6, false)
	dumpEqual(t, h, s.truthDump("SBER"))
	st := stop()
	if st.RecoveryFails == 0 || st.SnapshotsDone == 0 || st.StaleBooks != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestLateJoinConvergesFromSnapshot(t *testing.T) {
	s := newScript(t)
	for i := int64(0); i < 5; i++ {
		s.update("SBER", md.New, md.Bid, 28000+i, 1)
	}
	snapAtFive := s.snapshot("SBER")
	rec := &fakeRecovery{s: s, snapshots: func([]string) []md.Snapshot { return []md.Snapshot{snapAtFive} }}
	h, stop := startHandler(t, Config{Topics: []string{"SBER"}, Recovery: rec, Gap: gap.Config{GapWait: time.Millisecond}})
	for i := int64(0); i < 5; i++ {
		s.update("SBER", md.Change, md.Bid, 28000+i, 2+i)
	}
	for seq := uint32(6); seq <= 10; seq++ {
		s.send("SBER", seq, false)
	}
	dumpEqual(t, h, s.truthDump("SBER"))
	if st := stop(); st.SnapshotsDone != 1 || st.StaleBooks != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestInjectedFaults(t *testing.T) {
	s := newScript(t)
	rec := &fakeRecovery{s: s, snapshots: func(symbols []string) []md.Snapshot {
		// The first datagram may be lost too: the handler then joins late.
		return []md.Snapshot{s.snapshot("SBER")}
	}}
	h, stop := startHandler(t, Config{Topics: []string{"SBER"}, Recovery: rec,
		Gap:    gap.Config{GapWait: 2 * time.Millisecond},
		Inject: Inject{Loss: 0.05, Reorder: 0.05, Dup: 0.05, Seed: 7}})
	var last uint32
	for i := int64(0); i < 2000; i++ {
		switch {
		case i < 20:
			last = s.update("SBER", md.New, md.Bid, 20000+i, 1)
		default:
			last = s.update("SBER", md.Change, md.Bid, 20000+i%20, 2+i)
		}
		s.send("SBER", last, false)
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // stay well inside the socket buffer
		}
	}
	s.heartbeat("SBER")
	dumpEqual(t, h, s.truthDump("SBER"))
	st := stop()
	if st.InjectedLoss == 0 || st.InjectedDup == 0 || st.InjectedReord == 0 || st.RecoveredFIX == 0 || st.StaleBooks != 0 || st.KernelDrops != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMalformedDatagrams(t *testing.T) {
	s := newScript(t)
	h, stop := startHandler(t, Config{Topics: []string{"SBER"}})
	s.update("SBER", md.New, md.Bid, 100, 1)
	addr := channelOf("SBER")
	for _, bad := range [][]byte{{1, 2}, {1, 0, 0, 0, 0xff, 0xff}, bytes.Repeat([]byte{0x80}, 100), {2, 0, 0, 0, 0xc0, 0xe3}} {
		if err := s.sender.WriteTo(bad, addr); err != nil {
			t.Fatal(err)
		}
	}
	s.send("SBER", 1, false)
	dumpEqual(t, h, s.truthDump("SBER"))
	if st := stop(); st.DecodeErrors < 3 || st.Messages != 1 {
		t.Errorf("stats %+v", st)
	}
}
