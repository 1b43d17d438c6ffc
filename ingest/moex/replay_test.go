package moex

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/replay"
)

// answer encodes an answer of the replay service: Logon, heartbeats beg..end, Logout.
func answer(t testing.TB, beg, end uint32, logoutText string) []byte {
	t.Helper()
	enc := moexasts.NewEncoder()
	var out []byte
	add := func(m *moexasts.Message) {
		enc.Reset()
		b, err := enc.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		out = AppendFrame(out, b)
	}
	add(&moexasts.Message{ID: moexasts.IDA, A: moexasts.A{TargetCompID: []byte("X"), MsgSeqNum: 1, DefaultApplVerID: []byte("9")}})
	for s := beg; s <= end; s++ {
		add(&moexasts.Message{ID: moexasts.IDX0, X0: moexasts.X0{MsgSeqNum: s}})
	}
	add(&moexasts.Message{ID: moexasts.IDX5, X5: moexasts.X5{TargetCompID: []byte("X"), Text: []byte(logoutText), HasText: logoutText != ""}})
	return out
}

func readAnswer(c *ReplayClient, b []byte, beg, end uint32) ([]uint32, error) {
	var got []uint32
	st := &replayState{dec: moexasts.NewDecoder()}
	err := c.read(context.Background(), st, bufio.NewReader(bytes.NewReader(b)), beg, end, func(seq uint32, msg []byte) { got = append(got, seq) },
		func(off int64, err error) error {
			return &ReplayError{Conn: "OLR", Beg: beg, End: end, Offset: off, Err: err}
		})
	return got, err
}

// TestReplayClientAnswers: a whole answer delivers every message in order; a short one,
// a Logout before the end, a message out of order, an oversized or cut frame and bytes
// that are no ASTS message each fail with an error naming what and where, and a counter.
func TestReplayClientAnswers(t *testing.T) {
	good := answer(t, 5, 9, "")
	var c ReplayClient
	got, err := readAnswer(&c, good, 5, 9)
	if err != nil || len(got) != 5 || got[0] != 5 || got[4] != 9 || c.stats.Filled != 1 {
		t.Fatalf("good answer: %v %v %+v", got, err, c.stats)
	}
	cut := good[:len(good)-3]
	oversized := append(AppendFrame(nil, make([]byte, 70000))[:0:0], AppendFrame(nil, make([]byte, 70000))...)
	for _, tc := range []struct {
		name    string
		b       []byte
		beg     uint32
		end     uint32
		want    string
		counter func(s ReplayStats) uint64
	}{
		{"short", answer(t, 5, 7, "kept are 1..7"), 5, 9, "logout after 3 of 5 messages", func(s ReplayStats) uint64 { return s.Rejected }},
		{"out of order", answer(t, 6, 9, ""), 5, 9, "message 6, want 5", func(s ReplayStats) uint64 { return s.OutOfOrder }},
		{"cut", cut, 5, 9, "unexpected EOF", func(s ReplayStats) uint64 { return s.BadFrames }},
		{"oversized", oversized, 5, 9, "frame of 70000 bytes", func(s ReplayStats) uint64 { return s.BadFrames }},
		{"garbage", AppendFrame(nil, []byte{0xff, 0xff, 0xff}), 5, 9, "frame of 3 bytes", func(s ReplayStats) uint64 { return s.DecodeErrors }},
		{"closed", good[:0], 5, 9, "closed after 0 of 5", func(s ReplayStats) uint64 { return s.BadFrames }},
		{"no logon", good[int(good[0]&0x7f)+1:], 5, 9, "template 2108 before the Logon", func(s ReplayStats) uint64 { return s.Unexpected }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c ReplayClient
			_, err := readAnswer(&c, tc.b, tc.beg, tc.end)
			if err == nil {
				t.Fatal("no error")
			}
			var re *ReplayError
			if !errors.As(err, &re) || re.Conn != "OLR" {
				t.Errorf("error %T %v", err, err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if tc.counter != nil && tc.counter(c.stats) != 1 {
				t.Errorf("counter not 1: %+v", c.stats)
			}
		})
	}
}

// TestFIXRoundTrip: AppendFIX writes what ReadFIX reads back; a bad checksum, a
// BodyLength too large and a missing SOH are errors naming them.
func TestFIXRoundTrip(t *testing.T) {
	b := AppendFIX(nil, "V", "262", "1", "1180", "OLR", "1182", "10", "1183", "20")
	m, err := ReadFIX(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Get("1180"); v != "OLR" {
		t.Errorf("1180 = %q", v)
	}
	if v, _ := m.Get("35"); v != "V" {
		t.Errorf("35 = %q", v)
	}
	bad := bytes.Clone(b)
	bad[len(bad)-2]++
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"checksum", bad, "CheckSum"},
		{"length", []byte("8=FIXT.1.1\x019=99999\x01"), "BodyLength"},
		{"not fix", []byte("GET / HTTP/1.1\r\n"), "does not start with 8="},
		{"cut", b[:len(b)-5], "unexpected EOF"},
	} {
		if _, err := ReadFIX(bufio.NewReader(bytes.NewReader(tc.b))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzReplayAnswer: any bytes as the replay service's answer end in delivered messages
// in order within the range, or an error; never a panic or a hang.
func FuzzReplayAnswer(f *testing.F) {
	f.Add(answer(f, 1, 3, ""))
	f.Add(answer(f, 1, 1, "no"))
	f.Add([]byte{0x85, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := ReplayClient{MaxFrame: 1024}
		got, err := readAnswer(&c, b, 1, 3)
		for i, s := range got {
			if s != uint32(i+1) {
				t.Fatalf("delivered %v", got)
			}
		}
		if err == nil && len(got) != 3 {
			t.Fatalf("no error with %d of 3 messages", len(got))
		}
	})
}

// FuzzReadFIX: any bytes as a FIX request are parsed or refused with an error.
func FuzzReadFIX(f *testing.F) {
	f.Add(AppendFIX(nil, "A", "553", "demo", "554", "demo"))
	f.Add([]byte("8=FIXT.1.1\x019=5\x0135=A\x0110=000\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 4 {
			m, err := ReadFIX(r)
			if err != nil {
				if errors.Is(err, io.EOF) && len(b) > 0 && m != nil {
					t.Fatal("message with EOF")
				}
				return
			}
			if len(m.Fields) > 64 {
				t.Fatalf("%d fields", len(m.Fields))
			}
		}
	})
}

// fakeReplay answers from a map of encoded messages per MsgSeqNum; with gate set, each
// answer waits for a value from it (or for ctx).
type fakeReplay struct {
	msgs  map[uint32][]byte
	gate  chan struct{}
	mu    sync.Mutex
	asked [][2]uint32
}

func (f *fakeReplay) Replay(ctx context.Context, conn string, beg, end uint32, deliver func(uint32, []byte)) error {
	f.mu.Lock()
	f.asked = append(f.asked, [2]uint32{beg, end})
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for s := beg; s <= end; s++ {
		m, ok := f.msgs[s]
		if !ok {
			return errors.New("not kept")
		}
		deliver(s, m)
	}
	return nil
}

// settle waits for the answers of every request in flight and applies them.
func settle(e *Engine) {
	for {
		n := 0
		for _, ch := range e.chans {
			n += ch.inflight
		}
		if n == 0 {
			return
		}
		a := <-e.rep.answers
		e.rep.pending.Add(-1)
		e.replayAnswered(a)
	}
}

// feedCapture gives e the datagrams of a capture as a live run would (the replay
// workers on, answers applied after each datagram), then waits for the answers still
// out and gives up what is left.
func feedCapture(t *testing.T, e *Engine, capture []byte, beforeSettle func()) {
	t.Helper()
	rd, err := replay.NewReader(bytes.NewReader(capture), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.startReplay(t.Context(), nil)
	var d replay.Datagram
	for rd.Next(&d) == nil {
		e.Datagram(d.Src, d.Dst, d.Payload, d.Time)
		e.applyReplays()
		e.Tick(d.Time)
	}
	e.Tick(d.Time + e.opts.GapWait) // the holes at the end have waited
	if beforeSettle != nil {
		beforeSettle()
	}
	settle(e)
	e.stopReplay()
	e.Flush()
}

// lossyOLR writes the same exchange twice: every datagram (kept by the fake replay
// service), then the capture with the OLR MsgSeqNums in lost dropped on both lines.
func lossyOLR(t *testing.T, m *Market, steps int, lost map[uint32]bool) (*fakeReplay, *exchange, []byte) {
	t.Helper()
	syms := []string{"SBER", "GAZP"}
	var all, buf bytes.Buffer
	x2 := newExchange(t, m, &all, 4)
	for range steps {
		x2.orderStep(syms, 1)
	}
	x2.close()
	fr := &fakeReplay{msgs: map[uint32][]byte{}}
	for seq, p := range olrPayloads(t, m, all.Bytes()) {
		fr.msgs[seq] = p[4:]
	}
	x := newExchange(t, m, &buf, 4)
	x.drop = func(conn string, seq uint32, line int) bool { return conn == "OLR" && lost[seq] }
	for range steps {
		x.orderStep(syms, 1)
	}
	x.close()
	return fr, x, buf.Bytes()
}

// TestEngineReplayAndReset: a hole of OLR lost on both lines, short enough, is asked of
// the replay service (off the receive path) and filled (recovered_replay, no gap); a
// longer one is a gap left to the snapshot feed; MsgSeqNum 1 after higher numbers is a
// reset (a new day) that empties the books and starts the RptSeqs again, while a late
// copy of datagram 1 is a duplicate. A capture never asks.
func TestEngineReplayAndReset(t *testing.T) {
	m := fond(t)
	fr, _, capture := lossyOLR(t, m, 50, map[uint32]bool{10: true, 11: true, 30: true, 31: true, 32: true, 33: true, 34: true})
	e, err := NewEngine(m, Options{Replay: fr, MaxReplayGap: 3})
	if err != nil {
		t.Fatal(err)
	}
	feedCapture(t, e, capture, nil)
	c := e.Channels()["OLR"]
	if c.RecoveredReplay != 1 || c.ReplayMessages != 2 || c.Gaps != 1 || c.Missed != 5 || c.SnapshotGaps != 1 || c.ReplayRequests != 1 {
		t.Errorf("OLR %+v, asked %v", c, fr.asked)
	}
	if len(fr.asked) != 1 || fr.asked[0] != [2]uint32{10, 11} {
		t.Errorf("asked %v", fr.asked)
	}

	// The capture path never asks.
	ec, err := NewEngine(m, Options{Replay: fr, MaxReplayGap: 3})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := replay.NewReader(bytes.NewReader(capture), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunCapture(t.Context(), rd, ec); err != nil {
		t.Fatal(err)
	}
	if c := ec.Channels()["OLR"]; c.ReplayRequests != 0 || c.Gaps != 2 || len(fr.asked) != 1 {
		t.Errorf("capture: OLR %+v, asked %v", c, fr.asked)
	}

	// A new day: datagram 1 again with other content; a late copy of the old 1 before it
	// is a duplicate.
	first := fr.msgs[1]
	e.Datagram(udpSrc(m, "OLR"), udpDst(m, "OLR", 1), append(binary.LittleEndian.AppendUint32(nil, 1), first...), 2e18)
	if c := e.Channels()["OLR"]; c.Resets != 0 {
		t.Fatalf("a late copy of datagram 1 taken as a reset: %+v", c)
	}
	enc := moexasts.NewEncoder()
	nm := &moexasts.Message{ID: moexasts.IDXOLRFOND}
	nm.XOLRFOND.MsgSeqNum = 1
	nm.XOLRFOND.GroupMDEntries = []moexasts.XOLRFONDGroupMDEntries{{MDUpdateAction: 0, HasMDUpdateAction: true,
		MDEntryType: []byte("0"), HasMDEntryType: true, MDEntryID: []byte("new1"), HasMDEntryID: true,
		Symbol: []byte("SBER"), HasSymbol: true, RptSeq: 1, HasRptSeq: true,
		MDEntryPx: dec(5000, -2), HasMDEntryPx: true, MDEntrySize: dec(7, 0), HasMDEntrySize: true}}
	p, err := enc.Encode(binary.LittleEndian.AppendUint32(nil, 1), nm)
	if err != nil {
		t.Fatal(err)
	}
	e.Datagram(udpSrc(m, "OLR"), udpDst(m, "OLR", 0), p, 2e18)
	if c := e.Channels()["OLR"]; c.Resets != 1 {
		t.Fatalf("no reset: %+v", c)
	}
	got := dumpBooks(t, e)
	if !strings.Contains(got, `{"symbol":"SBER","rptseq":1,"stale":false,"bids":[["50","7",1]],"asks":[]}`) ||
		!strings.Contains(got, `{"symbol":"GAZP","rptseq":0,"stale":false,"bids":[],"asks":[]}`) {
		t.Errorf("books after the reset:\n%s", got)
	}
}

// olrPayloads returns the OLR datagrams of a capture by MsgSeqNum.
func olrPayloads(t *testing.T, m *Market, capture []byte) map[uint32][]byte {
	t.Helper()
	r, err := replay.NewReader(bytes.NewReader(capture), nil)
	if err != nil {
		t.Fatal(err)
	}
	olr := udpDst(m, "OLR", 0)
	out := map[uint32][]byte{}
	var d replay.Datagram
	for r.Next(&d) == nil {
		if d.Dst == olr {
			out[binary.LittleEndian.Uint32(d.Payload)] = bytes.Clone(d.Payload)
		}
	}
	return out
}

func udpSrc(m *Market, conn string) netip.AddrPort {
	cn, _ := m.Connection(conn)
	return netip.AddrPortFrom(cn.Lines[0].Src, 40000)
}

func udpDst(m *Market, conn string, line int) netip.AddrPort {
	cn, _ := m.Connection(conn)
	return cn.Lines[line].Group
}

// TestEngineReplayAsync: the replay service holds its answers while the datagrams keep
// coming: every datagram is received and held behind the holes (none used out of order,
// none lost), at most ReplayInFlight requests are out per connection (a third hole
// waits), and when the answers come they are applied in order:
// the books equal the exchange's. With a window too small for the wait, the hole is a
// gap instead and the answer that comes later is counted as late; a failed request
// leaves its hole a gap at once.
func TestEngineReplayAsync(t *testing.T) {
	m := fond(t)
	lost := map[uint32]bool{10: true, 11: true, 25: true, 40: true, 41: true}
	t.Run("slow", func(t *testing.T) {
		fr, x, capture := lossyOLR(t, m, 60, lost)
		fr.gate = make(chan struct{})
		e, err := NewEngine(m, Options{Replay: fr, MaxReplayGap: 3, GapWait: 3000})
		if err != nil {
			t.Fatal(err)
		}
		feedCapture(t, e, capture, func() {
			// Everything came while the answers were held: received, held, not lost.
			ch := e.chans[slices.IndexFunc(e.chans, func(c *channel) bool { return c.conn.ID == "OLR" })]
			if ch.next != 10 || len(ch.held) != int(x.seq["OLR"])-len(lost)-9 || ch.inflight != 2 {
				t.Errorf("while waiting: next %d, held %d, in flight %d; OLR %+v", ch.next, len(ch.held), ch.inflight, ch.stats)
			}
			// Two holes asked (ReplayInFlight), the third waits for a worker.
			time.Sleep(10 * time.Millisecond)
			fr.mu.Lock()
			if len(fr.asked) != 2 {
				t.Errorf("asked %v while waiting", fr.asked)
			}
			fr.mu.Unlock()
			close(fr.gate)
		})
		c := e.Channels()["OLR"]
		if c.RecoveredReplay != 3 || c.Gaps != 0 || c.ReplayMessages != 5 || c.ReplayRequests != 3 {
			t.Errorf("OLR %+v, asked %v", c, fr.asked)
		}
		if got, want := dumpBooks(t, e), x.wantBooks(); got != want {
			t.Errorf("books\n got %s\nwant %s", got, want)
		}
	})
	t.Run("window full", func(t *testing.T) {
		fr, _, capture := lossyOLR(t, m, 60, lost)
		fr.gate = make(chan struct{})
		e, err := NewEngine(m, Options{Replay: fr, MaxReplayGap: 3, GapWait: 3000, GapWindow: 4, ReplayWindow: 8, ReplayInFlight: 1})
		if err != nil {
			t.Fatal(err)
		}
		feedCapture(t, e, capture, func() { close(fr.gate) })
		c := e.Channels()["OLR"]
		if c.ReplayLate == 0 || c.Gaps == 0 || c.Gaps+c.RecoveredReplay != 3 || c.Messages+c.Missed != uint64(len(olrPayloads(t, m, capture))+len(lost)) {
			t.Errorf("OLR %+v, asked %v", c, fr.asked)
		}
	})
	t.Run("failed", func(t *testing.T) {
		fr, _, capture := lossyOLR(t, m, 60, lost)
		fr.msgs = map[uint32][]byte{} // keeps nothing
		e, err := NewEngine(m, Options{Replay: fr, MaxReplayGap: 3, GapWait: 3000})
		if err != nil {
			t.Fatal(err)
		}
		feedCapture(t, e, capture, nil)
		c := e.Channels()["OLR"]
		if c.ReplayFailed != 3 || c.Gaps != 3 || c.Missed != 5 || c.RecoveredReplay != 0 || c.ReplayRequests != 3 {
			t.Errorf("OLR %+v, asked %v", c, fr.asked)
		}
	})
}
