package moex

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/replay"
)

// TestReferenceFeeds: IDF definitions, ISF statuses, the market's session status (h) and
// MSR statistics are kept per instrument; a statistic's delete removes it.
func TestReferenceFeeds(t *testing.T) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 5)
	x.send("IDF", &moexasts.Message{ID: moexasts.IDD, D: moexasts.D{Symbol: []byte("SBER"), HasSymbol: true,
		SecurityID: []byte("RU0009029540"), HasSecurityID: true, Currency: []byte("RUB"), HasCurrency: true,
		MinPriceIncrement: dec(1, -2), HasMinPriceIncrement: true, MessageEncoding: []byte("UTF-8")}})
	x.send("ISF", &moexasts.Message{ID: moexasts.IDF, F: moexasts.F{Symbol: []byte("SBER"),
		SecurityTradingStatus: 17, HasSecurityTradingStatus: true, TradingSessionID: []byte("TQBR"), HasTradingSessionID: true}})
	x.send("ISF", &moexasts.Message{ID: moexasts.IDH, H: moexasts.H{TradSesStatus: 2, TradingSessionID: []byte("TQBR")}})
	stat := func(action uint32, typ string, px int64, rpt int32) *moexasts.Message {
		msg := &moexasts.Message{ID: moexasts.IDXMSRFOND}
		msg.XMSRFOND.GroupMDEntries = []moexasts.XMSRFONDGroupMDEntries{{MDUpdateAction: action, HasMDUpdateAction: true,
			MDEntryType: []byte(typ), HasMDEntryType: true, Symbol: []byte("SBER"), HasSymbol: true, RptSeq: rpt, HasRptSeq: true,
			MDEntryPx: dec(px, -2), HasMDEntryPx: true}}
		return msg
	}
	x.send("MSR", stat(0, "7", 10500, 1)) // high
	x.send("MSR", stat(0, "8", 9900, 2))  // low
	x.send("MSR", stat(1, "7", 10600, 3))
	x.send("MSR", stat(2, "8", 0, 4))
	x.send("MSR", &moexasts.Message{ID: moexasts.IDX0})
	x.close()
	e, _ := ingest(t, m, buf.Bytes())
	in, ok := e.Instrument("SBER")
	if !ok || !in.Defined || in.SecurityID != "RU0009029540" || in.Currency != "RUB" || in.MinPriceIncrement != dec(1, -2) {
		t.Fatalf("definition %+v", in)
	}
	if !in.HasStatus || in.TradingStatus != 17 || in.TradingSessionID != "TQBR" {
		t.Errorf("status %+v", in)
	}
	if s, id, ok := e.SessionStatus(); !ok || s != 2 || id != "TQBR" {
		t.Errorf("session %d %q %v", s, id, ok)
	}
	if len(in.Stats) != 1 || in.Stats[0].Type != "7" || in.Stats[0].Px != dec(10600, -2) || in.Stats[0].RptSeq != 3 {
		t.Errorf("stats %+v", in.Stats)
	}
	st := e.Stats()
	if st.Definitions != 1 || st.Statuses != 1 || st.SessionStatuses != 1 || st.Statistics != 4 || st.Heartbeats != 1 || st.SeqMismatch != 0 {
		t.Errorf("counters %+v", st)
	}
}

// TestCurrOrders: the CURR templates (copy operators on MDUpdateAction and Symbol, absent
// fields taking the previous entry's value within a datagram) build the same book; an
// empty-book entry (J) clears it.
func TestCurrOrders(t *testing.T) {
	c, err := LoadConfig(conformanceConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := c.Market("CURR")
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 6)
	msg := &moexasts.Message{ID: moexasts.IDXOLRCURR}
	for i, px := range []int64{7501, 7502, 7503} {
		msg.XOLRCURR.GroupMDEntries = append(msg.XOLRCURR.GroupMDEntries, moexasts.XOLRCURRGroupMDEntries{
			MDUpdateAction: 0, HasMDUpdateAction: true, MDEntryType: []byte("1"), HasMDEntryType: true,
			MDEntryID: []byte{'a' + byte(i)}, HasMDEntryID: true, Symbol: []byte("USD000UTSTOM"), HasSymbol: true,
			RptSeq: int32(i + 1), HasRptSeq: true, MDEntryPx: dec(px, -2), HasMDEntryPx: true, MDEntrySize: dec(1000, 0), HasMDEntrySize: true})
	}
	x.send("OLR", msg)
	x.close()
	e, _ := ingest(t, m, buf.Bytes())
	want := `{"symbol":"USD000UTSTOM","rptseq":3,"stale":false,"bids":[],"asks":[["75.01","1000",1],["75.02","1000",1],["75.03","1000",1]]}` + "\n"
	if got := dumpBooks(t, e); got != want {
		t.Errorf("got %s want %s", got, want)
	}

	// J: the book is emptied.
	buf.Reset()
	x = newExchange(t, m, &buf, 6)
	x.send("OLR", msg)
	clear := &moexasts.Message{ID: moexasts.IDXOLRCURR}
	clear.XOLRCURR.GroupMDEntries = []moexasts.XOLRCURRGroupMDEntries{{MDEntryType: []byte("J"), HasMDEntryType: true,
		Symbol: []byte("USD000UTSTOM"), HasSymbol: true, RptSeq: 4, HasRptSeq: true}}
	x.send("OLR", clear)
	x.close()
	e, _ = ingest(t, m, buf.Bytes())
	if got := dumpBooks(t, e); got != `{"symbol":"USD000UTSTOM","rptseq":4,"stale":false,"bids":[],"asks":[]}`+"\n" || e.Stats().EmptyBooks != 1 {
		t.Errorf("after J: %s %+v", got, e.Stats())
	}
}

// TestSnapshotFragments: a snapshot whose middle fragment is lost on both lines is not
// used (counted broken); the next complete cycle repairs the stale book. A fragment
// without its first is ignored.
func TestSnapshotFragments(t *testing.T) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 10)
	var lostOLR, lostOLS uint32
	x.drop = func(conn string, seq uint32, _ int) bool {
		return (conn == "OLR" && seq == lostOLR) || (conn == "OLS" && seq == lostOLS)
	}
	for range 30 {
		x.orderStep([]string{"SBER"}, 2)
	}
	lostOLR = x.seq["OLR"] + 1
	x.orderStep([]string{"SBER"}, 1) // lost: SBER goes stale at its next entry
	x.orderStep([]string{"SBER"}, 1)
	lostOLS = x.seq["OLS"] + 2
	x.snapshot("SBER", 2) // its second fragment is lost
	x.snapshot("SBER", 2) // complete
	x.close()
	if len(x.orders["SBER"]) < 5 {
		t.Fatalf("want a snapshot of at least 3 fragments, have %d orders", len(x.orders["SBER"]))
	}
	e, _ := ingest(t, m, buf.Bytes())
	st := e.Stats()
	if st.SnapshotsBroken == 0 || st.SnapshotsUsed != 1 || st.InstrumentGaps != 1 {
		t.Errorf("stats %+v", st)
	}
	if got, want := dumpBooks(t, e), x.wantBooks(); got != want {
		t.Errorf("got %s want %s", got, want)
	}
	if c := e.Channels()["OLS"]; c.Gaps != 1 || c.Missed != 1 {
		t.Errorf("OLS %+v", c)
	}
}

// TestHoleWaits: a hole waits for the other line GapWait of datagram time, or until
// GapWindow datagrams are held; then it is a gap and the held datagrams are used.
func TestHoleWaits(t *testing.T) {
	m := fond(t)
	olr, _ := m.Connection("OLR")
	a, b := olr.Lines[0], olr.Lines[1]
	enc := moexasts.NewEncoder()
	hb := func(seq uint32) []byte {
		msg := &moexasts.Message{ID: moexasts.IDX0}
		msg.X0.MsgSeqNum = seq
		enc.Reset()
		out, err := enc.Encode([]byte{byte(seq), byte(seq >> 8), 0, 0}, msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	e, err := NewEngine(m, Options{GapWindow: 3, GapWait: 100})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.AddrPortFrom(a.Src, 1)
	e.Datagram(src, a.Group, hb(1), 0)
	e.Datagram(src, a.Group, hb(3), 10) // hole at 2
	e.Datagram(src, a.Group, hb(4), 20)
	e.Datagram(src, b.Group, hb(2), 50) // B fills it in time
	c := e.Channels()["OLR"]
	if c.RecoveredAB != 1 || c.Gaps != 0 || c.Messages != 4 || e.Stats().Heartbeats != 4 {
		t.Fatalf("%+v %+v", c, e.Stats())
	}
	e.Datagram(src, a.Group, hb(6), 60)  // hole at 5
	e.Datagram(src, a.Group, hb(7), 170) // 110 after 6 arrived: given up
	if c := e.Channels()["OLR"]; c.Gaps != 1 || c.Missed != 1 || c.Messages != 6 {
		t.Fatalf("%+v", c)
	}
	e.Datagram(src, b.Group, hb(5), 171) // too late: a duplicate
	for s := uint32(9); s <= 12; s++ {   // hole at 8; the window (3) overflows at 12
		e.Datagram(src, a.Group, hb(s), 180)
	}
	if c := e.Channels()["OLR"]; c.Gaps != 2 || c.Missed != 2 || c.Messages != 10 || c.Duplicates != 1 {
		t.Fatalf("%+v", c)
	}
}

// TestMaxInstruments: symbols beyond the bound are counted and dropped; the others go on.
func TestMaxInstruments(t *testing.T) {
	m := fond(t)
	var buf bytes.Buffer
	x := newExchange(t, m, &buf, 12)
	for _, s := range []string{"A", "B", "C", "A"} {
		x.trade(s, 100, 1)
	}
	x.close()
	e, err := NewEngine(m, Options{MaxInstruments: 2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.NewReader(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunCapture(context.Background(), r, e); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.InstrumentsRefused != 1 || st.Trades != 3 || len(e.Instruments()) != 2 {
		t.Errorf("stats %+v instruments %d", st, len(e.Instruments()))
	}
}
