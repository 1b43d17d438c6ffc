package moex

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/replay"
)

func fond(t testing.TB) *Market {
	t.Helper()
	c, err := LoadConfig(conformanceConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := c.Market("FOND")
	return m
}

// ingest runs the capture in buf through a new engine and returns it with the trade dump.
func ingest(t testing.TB, m *Market, buf []byte) (*Engine, string) {
	t.Helper()
	e, err := NewEngine(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var trades []byte
	e.OnTrade = func(tr *Trade) { trades = AppendTrade(trades, tr) }
	r, err := replay.NewReader(bytes.NewReader(buf), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunCapture(context.Background(), r, e); err != nil {
		t.Fatal(err)
	}
	return e, string(trades)
}

func dumpBooks(t testing.TB, e *Engine) string {
	var b strings.Builder
	if err := WriteBooks(&b, e); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestCaptureABGapsSnapshots: order and trade feeds on lines A and B, B late; datagrams lost
// on A only are filled by B, two OLR datagrams lost on both lines are a channel gap that
// the fragmented OLS snapshots at the end repair; books equal the exchange's, trades equal
// its list, in order, none twice.
func TestCaptureABGapsSnapshots(t *testing.T) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 1)
	x.bLag = 3
	x.drop = func(conn string, seq uint32, line int) bool {
		if conn == "OLR" && (seq == 50 || seq == 51) {
			return true
		}
		if line == 0 {
			return seq%7 == 3
		}
		return seq%7 != 3 && seq%11 == 5
	}
	syms := []string{"SBER", "GAZP", "LKOH", "AFLT"}
	for i := range 400 {
		x.orderStep(syms, 1+i%3)
		if i%9 == 0 {
			x.trade(syms[i%len(syms)], 10000+int64(i), int64(1+i%17))
		}
	}
	for _, s := range syms {
		x.snapshot(s, 3)
	}
	x.close()

	e, trades := ingest(t, m, buf.Bytes())
	if got, want := dumpBooks(t, e), x.wantBooks(); got != want {
		t.Errorf("books:\n got %s\nwant %s", got, want)
	}
	if want := strings.Join(x.trades, "\n") + "\n"; trades != want {
		t.Errorf("trades:\n got %s\nwant %s", trades, want)
	}
	ch := e.Channels()
	olr, tlr := ch["OLR"], ch["TLR"]
	if olr.Gaps != 1 || olr.Missed != 2 {
		t.Errorf("OLR gaps %d missed %d, want 1 and 2", olr.Gaps, olr.Missed)
	}
	if olr.RecoveredAB == 0 || tlr.Gaps != 0 || olr.Duplicates == 0 {
		t.Errorf("OLR %+v TLR %+v", olr, tlr)
	}
	st := e.Stats()
	if st.InstrumentGaps == 0 || st.SnapshotsUsed == 0 || st.DecodeErrors != 0 || st.StaleEntries != 0 || st.SeqMismatch != 0 {
		t.Errorf("stats %+v", st)
	}
	var gaps uint64
	for _, in := range e.Instruments() {
		gaps += in.Gaps[FamOrders]
	}
	if gaps != st.InstrumentGaps {
		t.Errorf("per-instrument gaps %d, total %d", gaps, st.InstrumentGaps)
	}
}

// TestInstrumentContinuesAcrossChannelGap: a channel gap that held only GAZP's entries
// leaves SBER's RptSeq unbroken: SBER is kept (not stale), GAZP is stale and counted.
func TestInstrumentContinuesAcrossChannelGap(t *testing.T) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 2)
	x.drop = func(conn string, seq uint32, _ int) bool { return conn == "OLR" && seq == 3 }
	x.orderStep([]string{"SBER"}, 2)
	x.orderStep([]string{"GAZP"}, 1)
	x.orderStep([]string{"GAZP"}, 1) // lost on both lines
	x.orderStep([]string{"SBER"}, 1)
	x.orderStep([]string{"GAZP"}, 1)
	x.close()
	e, _ := ingest(t, m, buf.Bytes())
	sber, _ := e.Instrument("SBER")
	gazp, _ := e.Instrument("GAZP")
	if sber.Book.Stale() || sber.Gaps[FamOrders] != 0 || sber.Book.RptSeq() != 3 {
		t.Errorf("SBER stale %v gaps %d rptseq %d", sber.Book.Stale(), sber.Gaps[FamOrders], sber.Book.RptSeq())
	}
	if !gazp.Book.Stale() || gazp.Gaps[FamOrders] != 1 || gazp.Missed[FamOrders] != 1 {
		t.Errorf("GAZP stale %v gaps %d missed %d", gazp.Book.Stale(), gazp.Gaps[FamOrders], gazp.Missed[FamOrders])
	}
	if c := e.Channels()["OLR"]; c.Gaps != 1 || c.Missed != 1 {
		t.Errorf("OLR %+v", c)
	}
	// SBER's line equals the truth.
	want := x.wantBooks()
	got := dumpBooks(t, e)
	sberLine := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, `"SBER"`) {
				return l
			}
		}
		return ""
	}
	if sberLine(got) != sberLine(want) || sberLine(got) == "" {
		t.Errorf("SBER: got %s want %s", sberLine(got), sberLine(want))
	}
}

// TestTradesOnlyCapture: a capture of the TLR feed alone (no definitions, no snapshots)
// yields every trade; a trade lost on both lines is a gap of TLR and of its instrument.
func TestTradesOnlyCapture(t *testing.T) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 3)
	lost := uint32(6)
	x.drop = func(conn string, seq uint32, line int) bool { return seq == lost || (line == 1 && seq%2 == 0) }
	var want []string
	for i := range 20 {
		sym := []string{"SBER", "GAZP"}[i%2]
		seq := x.trade(sym, 25000+int64(i), int64(10+i))
		if seq != lost {
			want = append(want, x.trades[len(x.trades)-1])
		}
	}
	x.close()
	e, trades := ingest(t, m, buf.Bytes())
	if w := strings.Join(want, "\n") + "\n"; trades != w {
		t.Errorf("trades:\n got %s\nwant %s", trades, w)
	}
	tlr := e.Channels()["TLR"]
	gazp, _ := e.Instrument("GAZP")
	sber, _ := e.Instrument("SBER")
	if tlr.Gaps != 1 || tlr.Missed != 1 || gazp.Gaps[FamTrades] != 1 || sber.Gaps[FamTrades] != 0 {
		t.Errorf("TLR %+v GAZP gaps %v SBER gaps %v", tlr, gazp.Gaps, sber.Gaps)
	}
	if e.Stats().Trades != 19 || gazp.Book != nil {
		t.Errorf("stats %+v", e.Stats())
	}
}

// TestBadDatagrams: every kind of bad input is counted, nothing panics, and the good
// datagrams around it are still used.
func TestBadDatagrams(t *testing.T) {
	m := fond(t)
	e, err := NewEngine(m, Options{GapWindow: 4})
	if err != nil {
		t.Fatal(err)
	}
	olr, _ := m.Connection("OLR")
	a := olr.Lines[0]
	src := netip.AddrPortFrom(a.Src, 1)
	enc := moexasts.NewEncoder()
	good := func(seq uint32, fieldSeq uint32) []byte {
		msg := &moexasts.Message{ID: moexasts.IDX0}
		msg.X0.MsgSeqNum = fieldSeq
		enc.Reset()
		b, err := enc.Encode(binary.LittleEndian.AppendUint32(nil, seq), msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var now int64
	send := func(src, dst netip.AddrPort, b []byte) { now++; e.Datagram(src, dst, b, now) }
	send(src, a.Group, good(1, 1))
	send(src, a.Group, []byte{2, 0, 0})                                        // short
	send(src, a.Group, append(binary.LittleEndian.AppendUint32(nil, 2), 0x80)) // truncated FAST
	send(src, a.Group, append(good(3, 3), 0xff, 0xff))                         // trailing bytes
	send(src, a.Group, good(4, 99))                                            // header/field mismatch
	send(netip.MustParseAddrPort("10.9.9.9:1"), a.Group, good(5, 5))           // wrong source
	send(src, netip.MustParseAddrPort("239.1.1.1:1"), good(5, 5))              // not a line
	send(src, a.Group, good(5, 5))
	send(src, a.Group, good(4, 4)) // replay: duplicate
	st := e.Stats()
	c := e.Channels()["OLR"]
	if st.Short != 1 || st.DecodeErrors != 1 || st.Trailing != 1 || st.SeqMismatch != 1 ||
		st.WrongSource != 1 || st.Unrouted != 1 || st.Heartbeats != 4 || c.Duplicates != 1 || c.Gaps != 0 {
		t.Errorf("stats %+v channel %+v", st, c)
	}
}

// FuzzEngine: arbitrary datagrams on every line never panic, and the counters stay
// consistent.
func FuzzEngine(f *testing.F) {
	m := fond(f)
	var buf bytes.Buffer
	x := newExchange(f, m, &buf, 4)
	x.orderStep([]string{"SBER"}, 2)
	x.snapshot("SBER", 1)
	// TLS and MSS snapshots (their entries are used now): one of each.
	x.send("TLS", &moexasts.Message{ID: moexasts.IDWTLSFOND, WTLSFOND: moexasts.WTLSFOND{Symbol: []byte("SBER"), RptSeq: 2,
		HasLastFragment: true, LastFragment: 1, HasRouteFirst: true, RouteFirst: 1,
		GroupMDEntries: []moexasts.WTLSFONDGroupMDEntries{{MDEntryType: []byte("z"), MDEntryID: []byte("7"), HasMDEntryID: true,
			MDEntryPx: dec(100, -2), HasMDEntryPx: true, MDEntrySize: dec(3, 0), HasMDEntrySize: true}}}})
	x.send("MSS", &moexasts.Message{ID: moexasts.IDWGeneric, WGeneric: moexasts.WGeneric{Symbol: []byte("SBER"), RptSeq: 1,
		HasLastFragment: true, LastFragment: 1, HasRouteFirst: true, RouteFirst: 1,
		GroupMDEntries: []moexasts.WGenericGroupMDEntries{{MDEntryType: []byte("B"), HasMDEntryType: true,
			MDEntrySize: dec(3, 0), HasMDEntrySize: true}}}})
	x.close()
	r, err := replay.NewReader(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		f.Fatal(err)
	}
	var d replay.Datagram
	for r.Next(&d) == nil {
		f.Add(uint8(0), append([]byte(nil), d.Payload...))
	}
	f.Fuzz(func(t *testing.T, line uint8, b []byte) {
		e, err := NewEngine(m, Options{GapWindow: 2})
		if err != nil {
			t.Fatal(err)
		}
		var lines []Line
		for _, c := range m.Connections {
			lines = append(lines, c.Lines...)
		}
		l := lines[int(line)%len(lines)]
		for i := range 3 {
			e.Datagram(netip.AddrPortFrom(l.Src, 1), l.Group, b, int64(i))
			if len(b) > 4 {
				binary.LittleEndian.PutUint32(b, binary.LittleEndian.Uint32(b)+1)
			}
		}
		e.Flush()
		st := e.Stats()
		if st.Datagrams != 3 {
			t.Fatalf("datagrams %d", st.Datagrams)
		}
	})
}
