package md

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"
)

// fixWire returns msg's tag-value bytes as a session would send them (BodyLength and
// CheckSum computed) and parses them back, as the receiving session would.
func fixWire(tb testing.TB, msg *quickfix.Message) *quickfix.Message {
	tb.Helper()
	wire := msg.String()
	back, err := ParseFIX([]byte(wire))
	if err != nil {
		tb.Fatalf("ParseFIX(%q): %v", wire, err)
	}
	return back
}

// fixRaw frames a message body given with '|' for SOH: it adds BeginString, BodyLength,
// MsgType and a correct CheckSum, then parses it.
func fixRaw(tb testing.TB, msgType, body string) *quickfix.Message {
	tb.Helper()
	b := []byte(fixFrame(msgType, body))
	msg, err := ParseFIX(b)
	if err != nil {
		tb.Fatalf("ParseFIX(%q): %v", b, err)
	}
	return msg
}

func fixFrame(msgType, body string) string {
	return string(fixFrameRest([]byte("35=" + msgType + "\x01" + strings.ReplaceAll(body, "|", "\x01"))))
}

// fixFrameRest wraps rest, the fields from MsgType (35) on, in BeginString, a correct
// BodyLength and a correct CheckSum.
func fixFrameRest(rest []byte) []byte {
	b := []byte("8=FIXT.1.1\x019=" + strconv.Itoa(len(rest)) + "\x01")
	b = append(b, rest...)
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	return fmt.Appendf(b, "10=%03d\x01", sum%256)
}

// fixRest returns the fields of a framed message from MsgType (35) up to CheckSum (10).
func fixRest(wire string) []byte {
	start := strings.Index(wire, "\x0135=") + 1
	end := strings.LastIndex(wire, "\x0110=") + 1
	return []byte(wire[start:end])
}

// fixCanon returns d with trailing zeros moved out of the mantissa: equal values compare
// equal. FIX carries values, not exponents (Dec(5, 3) arrives as 5000).
func fixCanon(d Decimal) Decimal {
	if !d.Valid {
		return d
	}
	if d.Mantissa == 0 {
		return Dec(0, 0)
	}
	for d.Mantissa%10 == 0 {
		d.Mantissa /= 10
		d.Exp++
	}
	return d
}

func fixCanonEntries(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		e.Price, e.Size = fixCanon(e.Price), fixCanon(e.Size)
		out[i] = e
	}
	return out
}

var fixT0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC).UnixNano()

func fixSampleEntries() []Entry {
	return []Entry{
		{Action: New, Type: Bid, Symbol: []byte("SBER"), RptSeq: 1, Price: Dec(10125, -2), Size: Dec(300, 0), Orders: 3},
		{Action: Change, Type: Offer, Symbol: []byte("SBER"), RptSeq: 2, Price: Dec(10130, -2), Size: Dec(50, 0), Orders: 1},
		{Action: Delete, Type: Bid, Symbol: []byte("SBER"), RptSeq: 3, Price: Dec(10120, -2)}, // "101.20": scale kept
		{Action: New, Type: Trade, Symbol: []byte("GAZP"), RptSeq: 17, ID: []byte("T-991"), Price: Dec(-5, -1), Size: Dec(7, 3)},
		{Action: New, Type: Offer, Symbol: []byte("BTC-USD"), RptSeq: 4294967295, Price: Dec(123456789, -8), Size: Dec(1, -8)},
		{Action: New, Type: Bid, Symbol: []byte("X"), RptSeq: 5, Price: Dec(-999999999999999999, -3), Size: Dec(0, -2)},
		{Action: New, Type: Bid, Symbol: []byte("EXP"), RptSeq: 6, Price: Dec(12, 1), Size: Dec(3, 2), Orders: 4294967295},
	}
}

func fixMBOEntries() []Entry {
	return []Entry{
		{Action: New, Type: Bid, Symbol: []byte("SBER"), RptSeq: 10, ID: []byte("ORD-1"), Price: Dec(10125, -2), Size: Dec(100, 0)},
		{Action: Change, Type: Bid, Symbol: []byte("SBER"), RptSeq: 11, ID: []byte("ORD-1"), Price: Dec(10125, -2), Size: Dec(40, 0)},
		{Action: Delete, Type: Offer, Symbol: []byte("SBER"), RptSeq: 12, ID: []byte("ORD-7")},
	}
}

func TestFIXIncrementalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Incremental
		appl ApplFields
	}{
		{"mbp", Incremental{Header: Header{SeqNum: 42, SendingTime: fixT0}, Entries: fixSampleEntries()}, ApplFields{}},
		{"mbo continued", Incremental{Header: Header{SeqNum: 43, SendingTime: fixT0 + 1}, Continued: true, Entries: fixMBOEntries()},
			ApplFields{ApplID: "G239.1.2.3:5000", MDReqID: "req-1"}},
		{"resend", Incremental{Header: Header{SeqNum: 7, SendingTime: fixT0}, Entries: fixSampleEntries()[:2]},
			ApplFields{ApplID: "G239.1.2.3:5000", ApplSeqNum: 7, ApplResendFlag: true, MDReqID: "R9"}},
		{"no entries, no time", Incremental{Entries: []Entry{}}, ApplFields{}},
		{"pre-1970 time", Incremental{Header: Header{SeqNum: 1, SendingTime: -1_000_000_001}, Entries: fixMBOEntries()[:1]}, ApplFields{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := IncrementalToFIX(&tt.m, tt.appl)
			for _, path := range []struct {
				name string
				msg  *quickfix.Message
			}{{"memory", msg}, {"wire", fixWire(t, msg)}} {
				var got Incremental
				got.Entries = make([]Entry, 0, 1)
				appl, err := IncrementalFromFIX(path.msg, &got)
				if err != nil {
					t.Fatalf("%s: IncrementalFromFIX: %v\n%s", path.name, err, msg)
				}
				wantAppl := tt.appl
				wantAppl.ApplSeqNum = tt.m.SeqNum
				if appl != wantAppl {
					t.Errorf("%s: appl = %+v, want %+v", path.name, appl, wantAppl)
				}
				if got.Header != tt.m.Header || got.Continued != tt.m.Continued {
					t.Errorf("%s: header = %+v continued %v, want %+v %v", path.name, got.Header, got.Continued, tt.m.Header, tt.m.Continued)
				}
				if g, w := fixCanonEntries(got.Entries), fixCanonEntries(tt.m.Entries); !reflect.DeepEqual(g, w) {
					t.Errorf("%s: entries\n got %+v\nwant %+v", path.name, g, w)
				}
			}
		})
	}
}

func TestFIXIncrementalWire(t *testing.T) {
	m := Incremental{Header: Header{SeqNum: 9, SendingTime: fixT0}, Continued: true, Entries: []Entry{
		{Action: New, Type: Bid, Symbol: []byte("SBER"), RptSeq: 3, ID: []byte("O1"), Price: Dec(10120, -2), Size: Dec(5, 3), Orders: 2},
	}}
	got := IncrementalToFIX(&m, ApplFields{ApplID: "C1", ApplResendFlag: true, MDReqID: "Q"}).String()
	want := "8=FIXT.1.1|9=166|35=X|52=20250314-09:26:53.589793238|122=20250314-09:26:53.589793238|" +
		"262=Q|268=1|279=0|269=0|278=O1|55=SBER|270=101.20|271=5000|346=2|83=3|893=N|1180=C1|1181=9|1352=Y|10="
	if got := strings.ReplaceAll(got, "\x01", "|"); !strings.HasPrefix(got, want) {
		t.Errorf("wire\n got %s\nwant %s...", got, want)
	}
}

func TestFIXSnapshotRoundTrip(t *testing.T) {
	entries := fixSampleEntries()
	for i := range entries { // snapshot entries carry neither action, symbol nor RptSeq
		entries[i].Action, entries[i].Symbol, entries[i].RptSeq = 0, nil, 0
	}
	mbo := fixMBOEntries()[:2]
	for i := range mbo {
		mbo[i].Action, mbo[i].Symbol, mbo[i].RptSeq = 0, nil, 0
	}
	tests := []struct {
		name string
		m    Snapshot
		appl ApplFields
	}{
		{"mbp", Snapshot{Header: Header{SeqNum: 100, SendingTime: fixT0}, LastMsgSeqNumProcessed: 100, Symbol: []byte("SBER"), RptSeq: 812, Entries: entries},
			ApplFields{ApplID: "G239.0.0.7:5000", MDReqID: "snap-1"}},
		{"mbo continued", Snapshot{LastMsgSeqNumProcessed: 5, Symbol: []byte("SBER"), RptSeq: 12, Continued: true, Entries: mbo}, ApplFields{}},
		{"empty book", Snapshot{Header: Header{SendingTime: fixT0}, Symbol: []byte("NEW"), Entries: []Entry{}}, ApplFields{ApplResendFlag: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := SnapshotToFIX(&tt.m, tt.appl)
			var got Snapshot
			appl, err := SnapshotFromFIX(fixWire(t, msg), &got)
			if err != nil {
				t.Fatalf("SnapshotFromFIX: %v\n%s", err, msg)
			}
			wantAppl := tt.appl
			wantAppl.ApplSeqNum = tt.m.SeqNum
			if appl != wantAppl {
				t.Errorf("appl = %+v, want %+v", appl, wantAppl)
			}
			g, w := got, tt.m
			g.Entries, w.Entries = fixCanonEntries(g.Entries), fixCanonEntries(w.Entries)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("\n got %+v\nwant %+v", g, w)
			}
		})
	}
}

func TestFIXDefinitionRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Definition
		appl ApplFields
	}{
		{"full", Definition{Header: Header{SeqNum: 3, SendingTime: fixT0}, TotNumReports: 250, Symbol: []byte("SBER"), SecurityID: 18446744073709551615,
			SecurityType: []byte("CS"), Currency: []byte("RUB"), Description: []byte("Сбербанк ао"), Tick: Dec(1, -2), PriceExp: -2, SizeExp: 0,
			BookType: PriceDepth, MarketDepth: 10, Channel: []byte("G239.1.2.3:5000")}, ApplFields{ApplSeqNum: 3}},
		{"mbo, extreme exponents", Definition{Symbol: []byte("BTC"), Tick: Dec(5, -8), PriceExp: -63, SizeExp: 63, BookType: OrderDepth}, ApplFields{MDReqID: "d"}},
		{"minimal", Definition{Symbol: []byte("X"), PriceExp: 3, SizeExp: -8}, ApplFields{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Definition
			appl, err := DefinitionFromFIX(fixWire(t, DefinitionToFIX(&tt.m, tt.appl)), &got)
			if err != nil {
				t.Fatal(err)
			}
			wantAppl := tt.appl
			wantAppl.ApplSeqNum = tt.m.SeqNum
			wantAppl.ApplID = string(tt.m.Channel) // 1180 carries the instrument's channel
			if appl != wantAppl {
				t.Errorf("appl = %+v, want %+v", appl, wantAppl)
			}
			if !reflect.DeepEqual(got, tt.m) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.m)
			}
		})
	}
}

func TestFIXStatusRoundTrip(t *testing.T) {
	tests := []Status{
		{Header: Header{SeqNum: 8, SendingTime: fixT0}, Symbol: []byte("SBER"), TradingStatus: 17, SessionID: []byte("TQBR"), Text: []byte("ready to trade")},
		{Header: Header{SeqNum: 9}, Symbol: []byte("SBER"), TradingStatus: 2},
		{},
	}
	for i, m := range tests {
		var got Status
		appl, err := StatusFromFIX(fixWire(t, StatusToFIX(&m, ApplFields{ApplID: "ch"})), &got)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if want := (ApplFields{ApplID: "ch", ApplSeqNum: m.SeqNum}); appl != want {
			t.Errorf("%d: appl = %+v, want %+v", i, appl, want)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%d:\n got %+v\nwant %+v", i, got, m)
		}
	}
}

func TestFIXRequestRoundTrip(t *testing.T) {
	reqs := []MarketDataRequest{
		{MDReqID: "snap-1", SubscriptionType: SubscriptionSnapshot, Symbols: []string{"SBER", "GAZP"}},
		{MDReqID: "rtx-7", SubscriptionType: SubscriptionSnapshot, ApplID: "G239.1.2.3:5000", BegSeqNum: 100, EndSeqNum: 4294967295},
		{MDReqID: "sub", SubscriptionType: SubscriptionSubscribe, Symbols: []string{"SB*"}, MarketDepth: 5},
		{MDReqID: "all", SubscriptionType: SubscriptionSubscribe, Symbols: []string{"*"}},
		{MDReqID: "sub", SubscriptionType: SubscriptionUnsubscribe},
	}
	for _, r := range reqs {
		got, err := MarketDataRequestFromFIX(fixWire(t, r.ToFIX()))
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("\n got %+v\nwant %+v", got, r)
		}
	}
	rejs := []MarketDataReject{
		{MDReqID: "rtx-7", Reason: RejectUnsupportedScope, Text: "range 1..20000 exceeds the limit of 10000"},
		{MDReqID: "sub", Reason: RejectUnknownSymbol},
		{MDReqID: "x", Reason: RejectInsufficientPermissions, Text: "not entitled to SBER"},
		{MDReqID: "y"},
	}
	for _, r := range rejs {
		got, err := MarketDataRejectFromFIX(fixWire(t, r.ToFIX()))
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if got != r {
			t.Errorf("got %+v, want %+v", got, r)
		}
	}
	// The FIX-required fields are written even when zero.
	wire := strings.ReplaceAll(MarketDataRequest{MDReqID: "z"}.ToFIX().String(), "\x01", "|")
	for _, f := range []string{"|262=z|", "|263=0|", "|264=0|", "|267=2|269=0|269=1|"} {
		if !strings.Contains(wire, f) {
			t.Errorf("request %s lacks %s", wire, f)
		}
	}
}

func TestFIXDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want Decimal
		err  string
	}{
		{in: "101.25", want: Dec(10125, -2)},
		{in: "101.20", want: Dec(10120, -2)},
		{in: "-0.5", want: Dec(-5, -1)},
		{in: "300", want: Dec(300, 0)},
		{in: "0", want: Dec(0, 0)},
		{in: "-0", want: Dec(0, 0)},
		{in: "0.00", want: Dec(0, -2)},
		{in: "007.50", want: Dec(750, -2)},
		{in: ".5", want: Dec(5, -1)},
		{in: "5.", want: Dec(5, 0)},
		{in: "0.00000001", want: Dec(1, -8)},
		{in: "999999999999999999", want: Dec(999999999999999999, 0)},
		{in: "-99999999.9999999999", want: Dec(-999999999999999999, -10)},
		{in: "100000000000000000000", want: Dec(100000000000000000, 3)},
		{in: "0." + strings.Repeat("0", 62) + "1", want: Dec(1, -63)},
		{in: "1" + strings.Repeat("0", 80), want: Dec(100000000000000000, 63)},
		{in: "1000000000000000000", want: Dec(100000000000000000, 1)},
		{in: "1000000000000000001", err: "more than 18 significant digits"},
		{in: "9223372036854775807", err: "more than 18 significant digits"},
		{in: "1.0000000000000000001", err: "more than 18 significant digits"},
		{in: "0." + strings.Repeat("0", 63) + "1", err: "exponent -64 out of range"},
		{in: "1" + strings.Repeat("0", 81), err: "exponent 64 out of range"},
		{in: "1.2.3", err: "more than one decimal point"},
		{in: "1e3", err: "invalid character 'e'"},
		{in: "+5", err: "invalid character '+'"},
		{in: " 5", err: "invalid character ' '"},
		{in: "--5", err: "invalid character '-'"},
		{in: "-", err: "no digits"},
		{in: ".", err: "no digits"},
		{in: "NaN", err: "invalid character 'N'"},
	}
	for _, tt := range tests {
		got, problem := parseFIXDecimal([]byte(tt.in))
		switch {
		case tt.err != "" && !strings.Contains(problem, tt.err):
			t.Errorf("parse %q: problem %q, want %q", tt.in, problem, tt.err)
		case tt.err == "" && (problem != "" || got != tt.want):
			t.Errorf("parse %q = %+v %q, want %+v", tt.in, got, problem, tt.want)
		}
	}
}

func TestFIXDecimalWrite(t *testing.T) {
	tests := []struct {
		d    Decimal
		want string
	}{
		{Dec(10125, -2), "101.25"},
		{Dec(10120, -2), "101.20"},
		{Dec(-5, -1), "-0.5"},
		{Dec(5, -3), "0.005"},
		{Dec(0, -2), "0.00"},
		{Dec(0, 0), "0"},
		{Dec(12, 0), "12"},
		{Dec(5, 3), "5000"},
		{Dec(-123456789, -8), "-1.23456789"},
		{Dec(-9223372036854775808, 0), "-9223372036854775808"},
	}
	for _, tt := range tests {
		got := string(appendFIXDecimal(nil, tt.d))
		if got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.d, got, tt.want)
		}
		if len(strings.TrimLeft(got, "-0.")) > 18 {
			continue // beyond what a FIX decimal may carry
		}
		back, problem := parseFIXDecimal([]byte(got))
		if problem != "" || fixCanon(back) != fixCanon(tt.d) || (tt.d.Exp <= 0 && back != tt.d) {
			t.Errorf("%+v: read back %+v %q", tt.d, back, problem)
		}
	}
	// Every exponent -8..+3 reads back as the same value, and exactly when <= 0.
	for exp := int8(-8); exp <= 3; exp++ {
		for _, m := range []int64{0, 1, -1, 7, 10125, -10125, 999999999999999} {
			d := Dec(m, exp)
			back, problem := parseFIXDecimal(appendFIXDecimal(nil, d))
			if problem != "" || fixCanon(back) != fixCanon(d) || (exp <= 0 && back != d) {
				t.Errorf("%+v: read back %+v %q", d, back, problem)
			}
		}
	}
}

func TestFIXRejects(t *testing.T) {
	const (
		entry  = "279=0|269=0|55=SBER|270=1.5|271=10|83=1|"
		header = "52=20250314-09:26:53.123|"
	)
	inc := func(msg *quickfix.Message) error { _, err := IncrementalFromFIX(msg, new(Incremental)); return err }
	snap := func(msg *quickfix.Message) error { _, err := SnapshotFromFIX(msg, new(Snapshot)); return err }
	def := func(msg *quickfix.Message) error { _, err := DefinitionFromFIX(msg, new(Definition)); return err }
	stat := func(msg *quickfix.Message) error { _, err := StatusFromFIX(msg, new(Status)); return err }
	req := func(msg *quickfix.Message) error { _, err := MarketDataRequestFromFIX(msg); return err }
	rej := func(msg *quickfix.Message) error { _, err := MarketDataRejectFromFIX(msg); return err }
	tests := []struct {
		name, msgType, body string
		from                func(*quickfix.Message) error
		want                string
	}{
		{"valid X", "X", header + "268=1|" + entry, inc, ""},
		{"wrong MsgType", "W", "268=1|" + entry, inc, "35=W tag 35: want MsgType X"},
		{"no NoMDEntries", "X", header, inc, "tag 268: missing required tag"},
		{"count too high", "X", "268=2|" + entry, inc, "tag 268: count 2 does not match the 1 entries"},
		{"count too low", "X", "268=1|" + entry + entry, inc, "tag 268: count 1 does not match the 2 entries"},
		{"count zero with entries", "X", "268=0|" + entry, inc, "tag 268: count 0 but entries follow"},
		{"bad count", "X", "268=one|" + entry, inc, "tag 268: bad number"},
		{"negative count", "X", "268=-1|" + entry, inc, "tag 268: bad number"},
		{"entry not starting with 279", "X", "268=1|269=0|279=0|55=SBER|83=1|", inc, "tag 269 entry 0: missing required tag"},
		{"unknown tag ends the entry", "X", "268=1|279=0|269=0|55=SBER|1023=1|83=1|", inc, "tag 83 entry 0: missing required tag"},
		{"missing action", "X", "268=2|" + entry + "269=0|55=SBER|83=2|", inc, "count 2 does not match the 1 entries"},
		{"missing symbol", "X", "268=1|279=0|269=0|270=1|83=1|", inc, "tag 55 entry 0: missing required tag"},
		{"missing RptSeq", "X", "268=2|" + entry + "279=1|269=1|55=SBER|270=1|", inc, "tag 83 entry 1: missing required tag"},
		{"unknown action", "X", "268=1|279=3|269=0|55=SBER|83=1|", inc, `tag 279 entry 0: unknown MDUpdateAction '3'`},
		{"unknown entry type", "X", "268=1|279=0|269=9|55=SBER|83=1|", inc, `tag 269 entry 0: unknown MDEntryType '9'`},
		{"long entry type", "X", "268=1|279=0|269=01|55=SBER|83=1|", inc, `tag 269 entry 0: want one character, got "01"`},
		{"bad RptSeq", "X", "268=1|279=0|269=0|55=SBER|83=x1|", inc, `tag 83 entry 0: bad number "x1"`},
		{"RptSeq overflow", "X", "268=1|279=0|269=0|55=SBER|83=4294967296|", inc, "tag 83 entry 0: bad number"},
		{"negative orders", "X", "268=1|279=0|269=0|55=SBER|346=-2|83=1|", inc, "tag 346 entry 0: bad number"},
		{"19-digit price", "X", "268=1|279=0|269=0|55=SBER|270=1234567890123456789|83=1|", inc, "tag 270 entry 0: bad decimal \"1234567890123456789\": more than 18 significant digits"},
		{"price exponent", "X", "268=1|279=0|269=0|55=SBER|270=1e3|83=1|", inc, "tag 270 entry 0: bad decimal \"1e3\": invalid character 'e'"},
		{"price out of range", "X", "268=1|279=0|269=0|55=SBER|270=0." + strings.Repeat("0", 70) + "1|83=1|", inc, "exponent -71 out of range -63..63"},
		{"empty size", "X", "268=1|279=0|269=0|55=SBER|271=|83=1|", inc, "tag 271 entry 0: empty value"},
		{"bad LastFragment", "X", "268=1|" + entry + "893=Q|", inc, "tag 893: want Y or N"},
		{"bad ApplResendFlag", "X", "268=1|" + entry + "1352=yes|", inc, "tag 1352: want one character"},
		{"bad ApplSeqNum", "X", "268=1|" + entry + "1181=-5|", inc, "tag 1181: bad number"},
		{"bad SendingTime", "X", "52=2025-03-14T09:26:53Z|268=1|" + entry, inc, "tag 52: bad UTCTimestamp"},
		{"bad OrigSendingTime", "X", "122=yesterday|268=1|" + entry, inc, "tag 122: bad UTCTimestamp"},
		{"SendingTime out of range", "X", "52=30000101-00:00:00|268=1|" + entry, inc, "tag 52: UTCTimestamp \"30000101-00:00:00\" out of range"},

		{"valid W", "W", "369=5|55=SBER|83=1|268=1|269=0|270=1|271=1|", snap, ""},
		{"W no 369", "W", "55=SBER|83=1|268=0|", snap, "tag 369: missing required tag"},
		{"W no symbol", "W", "369=5|83=1|268=0|", snap, "tag 55: missing required tag"},
		{"W no RptSeq", "W", "369=5|55=SBER|268=0|", snap, "tag 83: missing required tag"},
		{"W no entries group", "W", "369=5|55=SBER|83=1|", snap, "tag 268: missing required tag"},
		{"W entry type", "W", "369=5|55=SBER|83=1|268=1|269=Z|", snap, "tag 269 entry 0: unknown MDEntryType 'Z'"},
		{"W 369 overflow", "W", "369=99999999999|55=SBER|83=1|268=0|", snap, "tag 369: bad number"},

		{"valid d", "d", "55=SBER|20001=-2|20002=0|", def, ""},
		{"d no symbol", "d", "20001=-2|20002=0|", def, "tag 55: missing required tag"},
		{"d no price exponent", "d", "55=SBER|20002=0|", def, "tag 20001: missing required tag"},
		{"d price exponent range", "d", "55=SBER|20001=64|20002=0|", def, "tag 20001: bad exponent \"64\": want an integer in -63..63"},
		{"d size exponent int8", "d", "55=SBER|20001=0|20002=-200|", def, "tag 20002: bad exponent"},
		{"d book type", "d", "55=SBER|20001=0|20002=0|1021=7|", def, "tag 1021: unknown MDBookType 7"},
		{"d tick", "d", "55=SBER|20001=0|20002=0|969=0.0.1|", def, "tag 969: bad decimal"},
		{"d security id", "d", "55=SBER|20001=0|20002=0|48=US0378331005|", def, "tag 48: bad number"},

		{"valid f", "f", "55=SBER|326=17|", stat, ""},
		{"f status", "f", "55=SBER|326=open|", stat, "tag 326: bad number"},

		{"valid V", "V", "262=a|263=1|264=0|267=1|269=0|146=1|55=SBER|", req, ""},
		{"V no MDReqID", "V", "263=1|264=0|", req, "tag 262: missing required tag"},
		{"V no type", "V", "262=a|264=0|", req, "tag 263: missing required tag"},
		{"V bad type", "V", "262=a|263=5|264=0|", req, "tag 263: unknown SubscriptionRequestType '5'"},
		{"V no depth", "V", "262=a|263=1|", req, "tag 264: missing required tag"},
		{"V negative depth", "V", "262=a|263=1|264=-1|", req, "tag 264: bad number"},
		{"V symbols count", "V", "262=a|263=1|264=0|146=2|55=SBER|", req, "tag 146: count 2 does not match the 1 entries"},
		{"V empty symbol", "V", "262=a|263=1|264=0|146=1|55=|", req, "tag 55 entry 0: empty value"},
		{"V entry types count", "V", "262=a|263=1|264=0|267=3|269=0|269=1|", req, "tag 267: count 3 does not match"},
		{"V ApplBegSeqNum", "V", "262=a|263=0|264=0|1180=G|1182=x|", req, "tag 1182: bad number"},

		{"valid Y", "Y", "262=a|281=0|58=unknown symbol|", rej, ""},
		{"Y no MDReqID", "Y", "281=0|", rej, "tag 262: missing required tag"},
		{"Y reason", "Y", "262=a|281=Z|", rej, "tag 281: unknown MDReqRejReason 'Z'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.from(fixRaw(t, tt.msgType, tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want %q", err, tt.want)
			default:
				if _, ok := err.(*FIXError); !ok {
					t.Errorf("error %T, want *FIXError", err)
				}
			}
		})
	}
}

func TestKindOfFIX(t *testing.T) {
	for _, k := range []Kind{KindIncremental, KindSnapshot, KindDefinition, KindStatus} {
		got, err := KindOfFIX(fixRaw(t, string(k), "55=X|"))
		if err != nil || got != k {
			t.Errorf("KindOfFIX(%c) = %v, %v", k, got, err)
		}
	}
	for _, mt := range []string{"V", "Y", "0", "4", "A", "XX"} {
		if k, err := KindOfFIX(fixRaw(t, mt, "55=X|")); err == nil {
			t.Errorf("KindOfFIX(%s) = %v, want an error", mt, k)
		}
	}
	if _, err := KindOfFIX(quickfix.NewMessage()); err == nil || !strings.Contains(err.Error(), "tag 35: missing required tag") {
		t.Errorf("KindOfFIX(empty) error %v", err)
	}
}

func TestParseFIXMalformed(t *testing.T) {
	for _, b := range []string{
		"",
		"8=FIXT.1.1",
		"35=X\x01",
		"8=FIXT.1.1\x019=6\x0135=X\x0110=000\x01", // wrong BodyLength
		fixFrame("0", "212=100|213=ab|"),          // panics inside quickfix v0.9.7's parser
	} {
		if msg, err := ParseFIX([]byte(b)); err == nil {
			t.Errorf("ParseFIX(%q) = %v, want an error", b, msg)
		}
	}
}

// FuzzFromFIX feeds raw bytes through ParseFIX and every reader: none may panic, and
// whatever a reader accepts must survive a trip back through the writer unchanged.
func FuzzFromFIX(f *testing.F) {
	inc := Incremental{Header: Header{SeqNum: 4, SendingTime: fixT0}, Continued: true, Entries: append(fixSampleEntries(), fixMBOEntries()...)}
	f.Add([]byte(IncrementalToFIX(&inc, ApplFields{ApplID: "A", ApplResendFlag: true, MDReqID: "r"}).String()))
	snap := Snapshot{LastMsgSeqNumProcessed: 3, Symbol: []byte("S"), RptSeq: 2, Entries: []Entry{{Type: Bid, Price: Dec(1, -1), Size: Dec(2, 0), Orders: 1, ID: []byte("o")}}}
	f.Add([]byte(SnapshotToFIX(&snap, ApplFields{}).String()))
	def := Definition{Symbol: []byte("S"), SecurityID: 7, Tick: Dec(5, -3), PriceExp: -3, BookType: OrderDepth, Channel: []byte("C")}
	f.Add([]byte(DefinitionToFIX(&def, ApplFields{}).String()))
	st := Status{Symbol: []byte("S"), TradingStatus: 2, Text: []byte("t")}
	f.Add([]byte(StatusToFIX(&st, ApplFields{}).String()))
	f.Add([]byte(MarketDataRequest{MDReqID: "q", SubscriptionType: '1', Symbols: []string{"A", "B"}, ApplID: "C", BegSeqNum: 1, EndSeqNum: 2}.ToFIX().String()))
	f.Add([]byte(MarketDataReject{MDReqID: "q", Reason: '3', Text: "no"}.ToFIX().String()))
	f.Add([]byte(fixFrame("X", "268=2|279=0|269=0|55=S|83=1|")))
	f.Add([]byte(fixFrame("X", "268=1|279=0|269=0|55=S|270=1234567890123456789|83=1|")))
	f.Add([]byte(fixFrame("0", "212=100|213=ab|")))

	// Each seed also as its fields alone, which the target frames: mutations then keep a
	// valid BodyLength and CheckSum and reach the readers.
	seeds := []string{
		IncrementalToFIX(&inc, ApplFields{ApplID: "A", ApplResendFlag: true, MDReqID: "r"}).String(),
		SnapshotToFIX(&snap, ApplFields{}).String(),
		DefinitionToFIX(&def, ApplFields{}).String(),
		StatusToFIX(&st, ApplFields{}).String(),
		MarketDataRequest{MDReqID: "q", SubscriptionType: '1', Symbols: []string{"A", "B"}}.ToFIX().String(),
		MarketDataReject{MDReqID: "q", Reason: '3', Text: "no"}.ToFIX().String(),
	}
	for _, s := range seeds {
		f.Add(fixRest(s))
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzFromFIX(t, b)
		if bytes.HasPrefix(b, []byte("35=")) {
			fuzzFromFIX(t, fixFrameRest(b))
		}
	})
}

func fuzzFromFIX(t *testing.T, b []byte) {
	msg, err := ParseFIX(b)
	if err != nil {
		return
	}
	_, _ = KindOfFIX(msg)

	var i1, i2 Incremental
	if a1, err := IncrementalFromFIX(msg, &i1); err == nil {
		a2, err := IncrementalFromFIX(fixWire(t, IncrementalToFIX(&i1, a1)), &i2)
		if err != nil || a1 != a2 || !reflect.DeepEqual(i1, i2) {
			t.Fatalf("incremental changed on re-encoding: %v\n%+v %+v\n%+v %+v", err, a1, i1, a2, i2)
		}
	}
	var s1, s2 Snapshot
	if a1, err := SnapshotFromFIX(msg, &s1); err == nil {
		a2, err := SnapshotFromFIX(fixWire(t, SnapshotToFIX(&s1, a1)), &s2)
		if err != nil || a1 != a2 || !reflect.DeepEqual(s1, s2) {
			t.Fatalf("snapshot changed on re-encoding: %v\n%+v %+v\n%+v %+v", err, a1, s1, a2, s2)
		}
	}
	var d1, d2 Definition
	if a1, err := DefinitionFromFIX(msg, &d1); err == nil {
		a2, err := DefinitionFromFIX(fixWire(t, DefinitionToFIX(&d1, a1)), &d2)
		if err != nil || a1 != a2 || !reflect.DeepEqual(d1, d2) {
			t.Fatalf("definition changed on re-encoding: %v\n%+v %+v\n%+v %+v", err, a1, d1, a2, d2)
		}
	}
	var f1, f2 Status
	if a1, err := StatusFromFIX(msg, &f1); err == nil {
		a2, err := StatusFromFIX(fixWire(t, StatusToFIX(&f1, a1)), &f2)
		if err != nil || a1 != a2 || !reflect.DeepEqual(f1, f2) {
			t.Fatalf("status changed on re-encoding: %v\n%+v %+v\n%+v %+v", err, a1, f1, a2, f2)
		}
	}
	if r1, err := MarketDataRequestFromFIX(msg); err == nil {
		r2, err := MarketDataRequestFromFIX(fixWire(t, r1.ToFIX()))
		if err != nil || !reflect.DeepEqual(r1, r2) {
			t.Fatalf("request changed on re-encoding: %v\n%+v\n%+v", err, r1, r2)
		}
	}
	if r1, err := MarketDataRejectFromFIX(msg); err == nil {
		r2, err := MarketDataRejectFromFIX(fixWire(t, r1.ToFIX()))
		if err != nil || r1 != r2 {
			t.Fatalf("reject changed on re-encoding: %v\n%+v\n%+v", err, r1, r2)
		}
	}
}

func ExampleIncrementalToFIX() {
	m := Incremental{Header: Header{SeqNum: 42}, Entries: []Entry{
		{Action: New, Type: Bid, Symbol: []byte("SBER"), RptSeq: 812, Price: Dec(10125, -2), Size: Dec(300, 0), Orders: 3},
	}}
	msg := IncrementalToFIX(&m, ApplFields{ApplID: "G239.1.2.3:5000"})
	fmt.Println(strings.ReplaceAll(msg.String(), "\x01", "|"))

	var back Incremental
	appl, err := IncrementalFromFIX(msg, &back)
	fmt.Println(appl.ApplID, back.SeqNum, back.Entries[0].Price.Decimal(), err)
	// Output:
	// 8=FIXT.1.1|9=92|35=X|268=1|279=0|269=0|55=SBER|270=101.25|271=300|346=3|83=812|1180=G239.1.2.3:5000|1181=42|10=135|
	// G239.1.2.3:5000 42 101.25 <nil>
}

// BenchmarkFIXIncrementalRoundTrip measures the recovery path per message: build, bytes,
// parse, read. It allocates (FIX is not the multicast hot path).
func BenchmarkFIXIncrementalRoundTrip(b *testing.B) {
	m := Incremental{Header: Header{SeqNum: 42, SendingTime: fixT0}, Entries: fixSampleEntries()[:4]}
	appl := ApplFields{ApplID: "G239.1.2.3:5000", ApplResendFlag: true, MDReqID: "r"}
	var dst Incremental
	for b.Loop() {
		msg, err := ParseFIX([]byte(IncrementalToFIX(&m, appl).String()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := IncrementalFromFIX(msg, &dst); err != nil {
			b.Fatal(err)
		}
	}
}
