package natsbus

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"fastfeed/md"
)

func TestSubjects(t *testing.T) {
	for _, c := range []struct{ prefix, channel, symbol, want string }{
		{PrefixMD, "G239.1.2.3:30001", "SBER", "md.G239-1-2-3-30001.SBER"},
		{PrefixSnap, "G239.1.2.3:30001", "BRK.B", "snap.G239-1-2-3-30001.BRK~2EB"},
		{PrefixStatus, "", "A B*>", "status.-.A~20B~2A~3E"},
		{PrefixMD, "my chan", "x_y-z", "md.my~20chan.x_y-z"},
	} {
		got := Subject(c.prefix, c.channel, c.symbol)
		if got != c.want {
			t.Errorf("Subject(%q, %q, %q) = %q, want %q", c.prefix, c.channel, c.symbol, got, c.want)
			continue
		}
		p, ch, sym, err := SplitSubject(got)
		if err != nil || p != c.prefix || sym != c.symbol {
			t.Errorf("SplitSubject(%q) = %q %q %q %v", got, p, ch, sym, err)
		}
		if strings.HasPrefix(c.channel, "G") && ch != c.channel {
			t.Errorf("SplitSubject(%q) channel %q, want %q", got, ch, c.channel)
		}
	}
	for _, bad := range []string{"md.x", "md.a.b.c", "md.a.B~2", "md.a.B~2e", "md.a.B~ZZ", "md.a.B*"} {
		if _, _, _, err := SplitSubject(bad); err == nil {
			t.Errorf("SplitSubject(%q): no error", bad)
		}
	}
	for _, c := range []struct{ p, want string }{
		{"SBER", "md.*.SBER"}, {"G239.1.2.3:30001", "md.G239-1-2-3-30001.*"}, {"*", "md.>"}, {"SB*", "md.>"},
	} {
		if got, _ := Filter(PrefixMD, feedPattern(c.p)); got != c.want {
			t.Errorf("Filter(%q) = %q, want %q", c.p, got, c.want)
		}
	}
}

func testEntries() []md.Entry {
	return []md.Entry{
		{Action: md.New, Type: md.Bid, RptSeq: 7, Price: md.Dec(10125, -2), Size: md.Dec(300, 0), Orders: 3},
		{Action: md.Delete, Type: md.Offer, RptSeq: 8, Price: md.Dec(-5, -1)},
		{Action: md.New, Type: md.Trade, RptSeq: 9, ID: []byte("T1"), Price: md.Dec(10120, -2), Size: md.Dec(5, 3)},
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	x := AppendX(nil, "SBER", testEntries(), 123456789)
	wantX := "35=X|20010=123456789|268=3|279=0|269=0|55=SBER|270=101.25|271=300|346=3|83=7|279=2|269=1|55=SBER|270=-0.5|83=8|" +
		"279=0|269=2|278=T1|55=SBER|270=101.20|271=5000|83=9|"
	if got := string(bytes.ReplaceAll(x, []byte{1}, []byte("|"))); got != wantX {
		t.Fatalf("AppendX:\n got %s\nwant %s", got, wantX)
	}
	var m Message
	if err := ParsePayload(x, &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != md.KindIncremental || string(m.Symbol) != "SBER" || m.PublishTime != 123456789 || len(m.Entries) != 3 {
		t.Fatalf("parsed %+v", m)
	}
	for i, e := range testEntries() {
		g := m.Entries[i]
		if g.Action != e.Action || g.Type != e.Type || g.RptSeq != e.RptSeq || g.Price != e.Price || g.Orders != e.Orders ||
			string(g.ID) != string(e.ID) || string(g.Symbol) != "SBER" {
			t.Errorf("entry %d: got %+v, want %+v", i, g, e)
		}
	}
	s := md.Snapshot{Symbol: []byte("BRK.B"), RptSeq: 41, LastMsgSeqNumProcessed: 9, Entries: []md.Entry{
		{Type: md.Bid, Price: md.Dec(100, -2), Size: md.Dec(1, 0), Orders: 1}, {Type: md.Offer, Price: md.Dec(101, -2), Size: md.Dec(2, 0)}}}
	w := AppendW(nil, &s, -2, 0, 5)
	wantW := "35=W|369=9|55=BRK.B|83=41|20010=5|20001=-2|20002=0|268=2|269=0|270=1.00|271=1|346=1|269=1|270=1.01|271=2|"
	if got := string(bytes.ReplaceAll(w, []byte{1}, []byte("|"))); got != wantW {
		t.Fatalf("AppendW:\n got %s\nwant %s", got, wantW)
	}
	if err := ParsePayload(w, &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != md.KindSnapshot || string(m.Symbol) != "BRK.B" || m.RptSeq != 41 || m.LastSeq != 9 || !m.HasExp || m.PriceExp != -2 ||
		len(m.Entries) != 2 || m.Entries[1].Price != md.Dec(101, -2) {
		t.Fatalf("parsed %+v", m)
	}
	f := AppendF(nil, "SBER", StatusStale, TextStale, 8)
	if err := ParsePayload(f, &m); err != nil || m.Kind != md.KindStatus || m.TradingStatus != 20 || string(m.Text) != "stale" {
		t.Fatalf("f: %+v %v", m, err)
	}
}

func TestParsePayloadErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "does not start"},
		{"35=V|", "does not start"},
		{"35=X|268=1|", "NoMDEntries 1, 0 entries"},
		{"35=X|268=1|279=0|269=0|83=1|", "lacks a required field"},
		{"35=X|268=1|279=0|269=0|55=A|83=1|279=0|269=0|55=A|83=2|", "more entries"},
		{"35=X|268=2|279=0|269=0|55=A|83=1|279=0|269=0|55=B|83=2|", "second instrument"},
		{"35=X|268=1|279=3|269=0|55=A|83=1|", "MDUpdateAction"},
		{"35=X|268=1|279=0|269=0|55=A|270=1.2.3|83=1|", "not a FIX decimal"},
		{"35=X|268=1|279=0|269=0|55=A|83=99999999999|", "RptSeq"},
		{"35=X|268=1|279=0|279=0|269=0|55=A|83=1|", "lacks a required field"},
		{"35=X|268=1|279=0|269=0|269=0|55=A|83=1|", "repeated"},
		{"35=X|20010=|", "empty value"},
		{"35=X|20010=1", "not ended by SOH"},
		{"35=X|=1|", "want tag=value"},
		{"35=W|55=A|83=1|268=0|", "needs LastMsgSeqNumProcessed"},
		{"35=W|369=1|55=A|83=1|20001=99|268=0|", "exponent"},
		{"35=f|55=A|", "needs Symbol (55) and SecurityTradingStatus"},
		{"35=f|55=A|326=1|268=0|", "entries in a SecurityStatus"},
	} {
		var m Message
		err := ParsePayload([]byte(strings.ReplaceAll(c.in, "|", "\x01")), &m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePayload(%q) = %v, want an error containing %q", c.in, err, c.want)
		}
		var pe *PayloadError
		if err != nil && !errors.Is(err, errNotPayload) && !errors.As(err, &pe) {
			t.Errorf("ParsePayload(%q): error %T", c.in, err)
		}
	}
}

func TestPayloadAllocs(t *testing.T) {
	es := testEntries()
	buf := make([]byte, 0, 1024)
	var m Message
	m.Entries = make([]md.Entry, 0, 8)
	n := testing.AllocsPerRun(100, func() {
		buf = AppendX(buf[:0], "SBER", es, 1)
		if err := ParsePayload(buf, &m); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("AppendX + ParsePayload: %v allocs per run, want 0", n)
	}
}

// FuzzParsePayload: no input panics or hangs; an accepted message written again with
// the writers parses to the same message.
func FuzzParsePayload(f *testing.F) {
	f.Add(AppendX(nil, "SBER", testEntries(), 1))
	s := md.Snapshot{Symbol: []byte("A"), RptSeq: 1, Entries: []md.Entry{{Type: md.Bid, Price: md.Dec(1, -1), Size: md.Dec(2, 0)}}}
	f.Add(AppendW(nil, &s, -1, 0, 2))
	f.Add(AppendF(nil, "A", StatusReady, TextReady, 3))
	f.Add([]byte("35=X\x01268=0\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := ParsePayload(b, &m); err != nil {
			return
		}
		var again []byte
		switch m.Kind {
		case md.KindIncremental:
			if len(m.Entries) == 0 {
				return
			}
			again = AppendX(nil, string(m.Symbol), m.Entries, m.PublishTime)
		case md.KindSnapshot:
			s := md.Snapshot{Symbol: m.Symbol, RptSeq: m.RptSeq, LastMsgSeqNumProcessed: m.LastSeq, Entries: m.Entries}
			again = AppendW(nil, &s, m.PriceExp, m.SizeExp, m.PublishTime)
		case md.KindStatus:
			again = AppendF(nil, string(m.Symbol), m.TradingStatus, string(m.Text), m.PublishTime)
		}
		var m2 Message
		if err := ParsePayload(again, &m2); err != nil {
			t.Fatalf("%q parsed, but its rewrite %q does not: %v", b, again, err)
		}
		if m2.Kind != m.Kind || string(m2.Symbol) != string(m.Symbol) || m2.RptSeq != m.RptSeq || len(m2.Entries) != len(m.Entries) ||
			m2.TradingStatus != m.TradingStatus || string(m2.Text) != string(m.Text) {
			t.Fatalf("%q: rewrite %q parses differently: %+v vs %+v", b, again, m2, m)
		}
		for i := range m.Entries {
			a, c := m.Entries[i], m2.Entries[i]
			if a.Action != c.Action || a.Type != c.Type || a.RptSeq != c.RptSeq || a.Price != c.Price || a.Size != c.Size ||
				a.Orders != c.Orders || string(a.ID) != string(c.ID) {
				t.Fatalf("%q: entry %d %+v rewritten as %+v", b, i, a, c)
			}
		}
	})
}

// TestConsumerRefuses: a payload that does not parse, one about another instrument than
// its subject's, and instruments beyond MaxInstruments are dropped and counted.
func TestConsumerRefuses(t *testing.T) {
	c, err := NewConsumer(ConsumerConfig{Conn: &nats.Conn{}, MaxInstruments: 2})
	if err != nil {
		t.Fatal(err)
	}
	w := func(sym string) []byte {
		s := md.Snapshot{Symbol: []byte(sym), RptSeq: 3, Entries: []md.Entry{{Type: md.Bid, Price: md.Dec(5, 0), Size: md.Dec(1, 0)}}}
		return AppendW(nil, &s, 0, 0, 1)
	}
	for _, m := range []*nats.Msg{
		{Subject: "snap.G1.SBER", Data: []byte("35=W\x01garbage")},
		{Subject: "snap.G1.SBER", Data: w("GAZP")}, // permission to SBER, data of GAZP
		{Subject: "snap.G1.SBER", Data: w("SBER")},
		{Subject: "snap.G1.BRK~2EB", Data: w("BRK.B")},
		{Subject: "snap.G1.LKOH", Data: w("LKOH")}, // a third instrument
	} {
		c.handle(m)
	}
	st := c.Stats()
	if st.ParseErrors != 1 || st.Mismatches != 1 || st.TooMany != 1 || st.Instruments != 2 || st.Snapshots != 2 {
		t.Errorf("stats %+v", st)
	}
	d := c.Dump()
	if len(d) != 2 || d[0].Symbol != "BRK.B" || d[1].Symbol != "SBER" || d[1].RptSeq != 3 || d[1].Stale || len(d[1].Bids) != 1 {
		t.Errorf("dump %+v", d)
	}
}
