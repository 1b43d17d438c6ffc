package feed

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/gap"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
	"fastfeed/md"
)

func testKey(t testing.TB, hexByte string) *dgauth.Key {
	t.Helper()
	k, err := dgauth.ParseKey("test key", []byte(strings.Repeat(hexByte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// forge returns the attack of issue 18, hole 5: an incremental for symbol with its
// channel's next sequence number and the instrument's next RptSeq, adding a bid at half
// the best bid's price with size 777. It is in no ground truth; the script's state does
// not move.
func (s *script) forge(t *testing.T, symbol string) (datagram []byte, price int64) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	best := s.truth[symbol].AppendLevels(nil, book.Bid)
	if len(best) == 0 {
		t.Fatal("forge: no bid to halve")
	}
	price = best[0].Price / 2
	seq := s.seq[mcast.ChannelName(channelOf(symbol))] + 1
	e := md.Entry{Action: md.New, Type: md.Bid, Symbol: []byte(symbol), RptSeq: s.rpt[symbol] + 1,
		Price: md.Dec(price, -2), Size: md.Dec(777, 0), Orders: 1}
	d := binary.LittleEndian.AppendUint32(nil, seq)
	d, err := s.codec.AppendIncremental(d, &md.Incremental{Header: md.Header{SeqNum: seq}, Entries: []md.Entry{e}})
	if err != nil {
		t.Fatal(err)
	}
	return d, price
}

// hasLevel reports whether symbol's book in h shows a bid at price (a mantissa at -2)
// with size 777. Call it through Do.
func hasForgedLevel(h *Engine, symbol string, price int64) bool {
	in := h.bySymbol[symbol]
	if in == nil || in.book == nil {
		return false
	}
	for _, l := range in.book.AppendLevels(nil, book.Bid) {
		if l.Price == price && l.Size == 777 {
			return true
		}
	}
	return false
}

// logLines collects a handler's log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

// logger returns a logger whose records, every level, are kept as lines: the message
// and its attributes.
func (l *logLines) logger() *slog.Logger { return slog.New(logLinesHandler{l}) }

type logLinesHandler struct{ l *logLines }

func (h logLinesHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h logLinesHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logLinesHandler) WithGroup(string) slog.Handler            { return h }
func (h logLinesHandler) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += fmt.Sprintf(" %s=%v", a.Key, a.Value); return true })
	h.l.mu.Lock()
	h.l.lines = append(h.l.lines, line)
	h.l.mu.Unlock()
	return nil
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// forgedAttack performs the attack of issue 18, hole 5 against a handler on a real
// socket in this test's private network namespace: the publisher (the script) sends ten
// updates of SBER; another socket on the same host sends the forged datagram (and, with
// a key, the same forged datagram sealed with a wrong key and with the trailer of the
// publisher's true datagram of that number); then the publisher sends its true datagram
// with that number and ten more updates. It returns the handler's counters, whether the
// forged level was ever seen in the book, and the log.
func forgedAttack(t *testing.T, key *dgauth.Key) (st Stats, seen bool, log *logLines) {
	s := newScript(t)
	s.key = key
	rec := &fakeRecovery{s: s, snapshots: func(symbols []string) []md.Snapshot {
		var out []md.Snapshot
		for _, sym := range symbols {
			out = append(out, s.snapshot(sym))
		}
		return out
	}}
	log = &logLines{}
	h, stop := startHandler(t, Config{Topics: []string{"SBER"}, Key: key, Recovery: rec, Logger: log.logger(),
		Gap: gap.Config{GapWait: time.Millisecond}})
	for i := range 10 {
		s.send("SBER", s.update("SBER", md.New, md.Bid, int64(28400-i*10), 100), false)
	}
	dumpEqual(t, h, s.truthDump("SBER"))

	attacker, err := mcast.NewSender(mcast.SenderConfig{}) // the same host, its own socket
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	forged, price := s.forge(t, "SBER")
	attack := [][]byte{forged}
	if key != nil {
		wrong := testKey(t, "99").Seal(nil, channelOf("SBER"), forged)
		// The trailer of the true datagram with the same number, copied from the wire.
		trueSeq := s.update("SBER", md.Change, md.Bid, 28400, 150)
		trueSealed := key.Seal(nil, channelOf("SBER"), s.sent[mcast.ChannelName(channelOf("SBER"))][trueSeq])
		stolen := append(append([]byte(nil), forged...), trueSealed[len(trueSealed)-dgauth.Overhead:]...)
		attack = append(attack, wrong, stolen)
	}
	for _, d := range attack {
		if err := attacker.WriteTo(d, channelOf("SBER")); err != nil {
			t.Fatal(err)
		}
	}
	if key != nil {
		eventually(t, h, "the forged datagrams refused", func() bool { return h.stats.AuthFailures == uint64(len(attack)) })
		_ = h.Do(t.Context(), func() { seen = hasForgedLevel(h.Engine, "SBER", price) })
		s.send("SBER", s.seq[mcast.ChannelName(channelOf("SBER"))], false)
	} else {
		eventually(t, h, "the forged level applied", func() bool { return hasForgedLevel(h.Engine, "SBER", price) })
		seen = true
		// The publisher's true datagram of that number.
		s.send("SBER", s.update("SBER", md.Change, md.Bid, 28400, 150), false)
	}
	for i := range 10 {
		s.send("SBER", s.update("SBER", md.Change, md.Bid, int64(28400-i*10), int64(200+i)), false)
	}
	s.heartbeat("SBER")
	dumpEqual(t, h, s.truthDump("SBER"))
	eventually(t, h, "a live channel", func() bool { return h.channels[mcast.ChannelName(channelOf("SBER"))].tracker.State() == gap.Live })
	return stop(), seen, log
}

// TestForgedDatagram: without a key the network is trusted, and the forged datagram is
// applied (the level at half price, size 777, is in the book). What the handler does
// about it: the publisher's true datagram with that number then arrives and differs from
// the copy taken, so the handler counts ab_mismatch, marks the book stale, and rebuilds
// it from a snapshot: the forged level does not stay, and it was flagged. (Without a
// recovery service the book stays stale.) A forgery whose number the publisher never
// sends, or one sent after the true datagram's, is not caught this way: only a key
// stops a forger.
func TestForgedDatagram(t *testing.T) {
	st, seen, log := forgedAttack(t, nil)
	if !seen {
		t.Error("the forged level never reached the book (without a key it should)")
	}
	if st.ABMismatch != 1 || st.AuthFailures != 0 || st.SnapshotsDone != 1 || st.StaleBooks != 0 {
		t.Errorf("stats %+v: want ab_mismatch 1, one snapshot applied, no stale book", st)
	}
	if log.count("differs from the one taken") != 1 {
		t.Errorf("the mismatch is not logged once:\n%s", strings.Join(log.lines, "\n"))
	}
}

// TestForgedDatagramWithKey: with a key, the forged datagram, the same sealed with
// another key, and the same with the trailer of the publisher's true datagram of that
// number are refused before the sequence tracker and counted (auth_failures 3); the
// level never shows, the true datagram is applied, no snapshot is needed and the book
// equals the ground truth.
func TestForgedDatagramWithKey(t *testing.T) {
	st, seen, log := forgedAttack(t, testKey(t, "c3"))
	if seen {
		t.Error("the forged level reached the book")
	}
	if st.AuthFailures != 3 || st.ABMismatch != 0 || st.Snapshots != 0 || st.StaleEvents != 0 || st.DecodeErrors != 0 || st.Messages != 21 {
		t.Errorf("stats %+v: want auth_failures 3, 21 messages and nothing else", st)
	}
	if n := log.count("refused: dgauth"); n != 1 {
		t.Errorf("%d refusals logged, want 1 (at most one a second):\n%s", n, strings.Join(log.lines, "\n"))
	}
}

// TestABMismatch hands an engine with lines A and B copies of each datagram. A
// copy that differs from the one taken (the A copy forged, then the B copy true; and the
// other way round) is counted, logged at most once a second, and the channel goes stale
// and is rebuilt from snapshots to the ground truth. Identical copies, and numbers reused
// after a sequence reset, are not mismatches.
func TestABMismatch(t *testing.T) {
	s := newScript(t)
	rec := &boundedRecovery{s: s}
	log := &logLines{}
	h, err := NewEngine(Config{Topics: []string{"SBER"}, Templates: templates(t), Port: port, BPort: port + 1,
		Recovery: rec, Logger: log.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, b := channelOf("SBER"), netip.AddrPortFrom(channelOf("SBER").Addr(), port+1)
	sber := mcast.ChannelName(a)
	var now int64 = 1e9
	hand := func(dst netip.AddrPort, d []byte) {
		t.Helper()
		if !h.Receive(dst, d, now) {
			t.Fatalf("Receive refused %v", dst)
		}
		now += 1000
		h.DoWork(now)
	}
	settle := func() {
		t.Helper()
		for i := 0; i < 20 || h.Recovering(); i++ {
			if i > 5000 {
				t.Fatalf("recovery did not end: %+v", h.Channels())
			}
			time.Sleep(time.Millisecond)
			now += int64(time.Millisecond)
			h.DoWork(now)
		}
	}
	both := func(seq uint32) {
		hand(a, s.sent[sber][seq])
		hand(b, s.sent[sber][seq])
	}
	for i := range 10 {
		both(s.update("SBER", md.New, md.Bid, int64(28400-i*10), 100))
	}
	if st := h.Stats(); st.ABMismatch != 0 || st.Duplicates != 10 {
		t.Fatalf("identical copies: %+v", st)
	}

	// Line A forged, line B true.
	forged, price := s.forge(t, "SBER")
	hand(a, forged)
	if !hasForgedLevel(h, "SBER", price) {
		t.Fatal("the forged copy was not applied (taken first, it should be)")
	}
	hand(b, s.sent[sber][s.update("SBER", md.Change, md.Bid, 28400, 150)])
	if st := h.Stats(); st.ABMismatch != 1 || !h.bySymbol["SBER"].stale || h.channels[sber].tracker.State() != gap.Snapshot {
		t.Fatalf("after the differing copy: ab_mismatch %d, stale %v, state %v", st.ABMismatch, h.bySymbol["SBER"].stale, h.channels[sber].tracker.State())
	}
	for i := range 5 {
		both(s.update("SBER", md.Change, md.Bid, int64(28400-i*10), int64(300+i)))
	}
	settle()
	if d := book.DiffDumps(h.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books differ from the ground truth after the snapshot:\n%s", d)
	}

	// Two seconds later, the true copy first on line A, then a forged one on line B four
	// times within a second: each counted, one logged.
	now += 2 * int64(time.Second)
	forged, price = s.forge(t, "SBER")
	seq := s.update("SBER", md.Change, md.Bid, 28390, 160)
	hand(a, s.sent[sber][seq])
	for range 4 { // no Poll between them: one snapshot request (each differing copy after it is applied asks again)
		if !h.Receive(b, forged, now) {
			t.Fatal("Receive refused line B")
		}
	}
	if hasForgedLevel(h, "SBER", price) {
		t.Fatal("a forged copy after the true one was applied")
	}
	settle()
	if d := book.DiffDumps(h.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books differ from the ground truth:\n%s", d)
	}
	st := h.Stats()
	if st.ABMismatch != 5 || st.SnapshotsDone != 2 || st.StaleBooks != 0 || st.DecodeErrors != 0 {
		t.Errorf("stats %+v: want ab_mismatch 5, 2 snapshots applied; log:\n%s", st, strings.Join(log.lines, "\n"))
	}
	if n := log.count("differs from the one taken"); n != 2 {
		t.Errorf("%d mismatches logged, want 2 (the first, then one a second at most):\n%s", n, strings.Join(log.lines, "\n"))
	}

	// A sequence reset reuses the numbers: new content is no mismatch.
	reset := binary.LittleEndian.AppendUint32(nil, 0)
	reset, err = s.codec.AppendReset(reset, &md.Reset{NewSeqNo: 1})
	if err != nil {
		t.Fatal(err)
	}
	hand(a, reset)
	s.mu.Lock()
	s.seq[sber], s.rpt["SBER"] = 0, 0
	s.truth["SBER"].Clear()
	s.mu.Unlock()
	for i := range 3 {
		both(s.update("SBER", md.New, md.Offer, int64(29000+i*10), 5))
	}
	if st := h.Stats(); st.ABMismatch != 5 {
		t.Errorf("after a sequence reset: ab_mismatch %d, want still 5", st.ABMismatch)
	}
	if d := book.DiffDumps(h.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books differ from the ground truth after the reset:\n%s", d)
	}
}
