package md

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"fastfeed/fast"
)

func newCodec(tb testing.TB) *Codec {
	tb.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "fixtures", "templates.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewCodec(ts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func sampleIncremental() *Incremental {
	return &Incremental{
		Header: Header{SeqNum: 42, SendingTime: 1795372800123456789},
		Entries: []Entry{
			{Action: New, Type: Bid, Symbol: []byte("SBER"), RptSeq: 7, Price: Dec(28455, -2), Size: Dec(1200, 0), Orders: 3},
			{Action: Change, Type: Offer, Symbol: []byte("SBER"), RptSeq: 8, Price: Dec(28470, -2), Size: Dec(5, 2), Orders: 1},
			{Action: Delete, Type: Offer, Symbol: []byte("SBER"), RptSeq: 9, Price: Dec(28480, -2)},
			{Action: New, Type: Trade, Symbol: []byte("GAZP"), RptSeq: 1, ID: []byte("T77"), Price: Dec(-5, -1), Size: Dec(10, 0)},
			{Action: New, Type: Bid, Symbol: []byte("GAZP"), RptSeq: 2, ID: []byte("O123"), Price: Dec(16001, -2), Size: Dec(15, -1), Orders: 1},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := newCodec(t)
	inc := sampleIncremental()
	cont := *inc
	cont.Continued = true
	cases := []struct {
		kind   Kind
		encode func([]byte) ([]byte, error)
		want   any
		got    func() any
	}{
		{KindIncremental, func(b []byte) ([]byte, error) { return c.AppendIncremental(b, inc) }, inc, func() any { return &c.Incremental }},
		{KindIncremental, func(b []byte) ([]byte, error) { return c.AppendIncremental(b, &cont) }, &cont, func() any { return &c.Incremental }},
		{KindSnapshot, func(b []byte) ([]byte, error) {
			return c.AppendSnapshot(b, &Snapshot{Header: Header{SendingTime: 5}, LastMsgSeqNumProcessed: 41, Symbol: []byte("SBER"), RptSeq: 6,
				Entries: []Entry{{Type: Bid, Price: Dec(28455, -2), Size: Dec(1200, 0), Orders: 3}, {Type: Offer, Price: Dec(28470, -2), Size: Dec(500, 0), Orders: 1}}})
		}, &Snapshot{Header: Header{SendingTime: 5}, LastMsgSeqNumProcessed: 41, Symbol: []byte("SBER"), RptSeq: 6,
			Entries: []Entry{{Type: Bid, Price: Dec(28455, -2), Size: Dec(1200, 0), Orders: 3}, {Type: Offer, Price: Dec(28470, -2), Size: Dec(500, 0), Orders: 1}}},
			func() any { return &c.Snapshot }},
		{KindDefinition, func(b []byte) ([]byte, error) {
			return c.AppendDefinition(b, &Definition{Header: Header{SeqNum: 3, SendingTime: 9}, TotNumReports: 2, Symbol: []byte("SBER"), SecurityID: 77,
				SecurityType: []byte("CS"), Currency: []byte("RUB"), Description: []byte("Сбербанк"), Tick: Dec(1, -2), PriceExp: -2, SizeExp: 0,
				BookType: PriceDepth, MarketDepth: 20, Channel: []byte("G239.1.2.3:30001")})
		}, &Definition{Header: Header{SeqNum: 3, SendingTime: 9}, TotNumReports: 2, Symbol: []byte("SBER"), SecurityID: 77,
			SecurityType: []byte("CS"), Currency: []byte("RUB"), Description: []byte("Сбербанк"), Tick: Dec(1, -2), PriceExp: -2, SizeExp: 0,
			BookType: PriceDepth, MarketDepth: 20, Channel: []byte("G239.1.2.3:30001")}, func() any { return &c.Definition }},
		{KindStatus, func(b []byte) ([]byte, error) {
			return c.AppendStatus(b, &Status{Header: Header{SeqNum: 4, SendingTime: 10}, Symbol: []byte("SBER"), TradingStatus: 17, SessionID: []byte("TQBR"), Text: []byte("open")})
		}, &Status{Header: Header{SeqNum: 4, SendingTime: 10}, Symbol: []byte("SBER"), TradingStatus: 17, SessionID: []byte("TQBR"), Text: []byte("open")},
			func() any { return &c.Status }},
		{KindHeartbeat, func(b []byte) ([]byte, error) {
			return c.AppendHeartbeat(b, &Heartbeat{Header: Header{SeqNum: 4, SendingTime: 11}, LastSeqNum: 4})
		}, &Heartbeat{Header: Header{SeqNum: 4, SendingTime: 11}, LastSeqNum: 4}, func() any { return &c.Heartbeat }},
		{KindReset, func(b []byte) ([]byte, error) {
			return c.AppendReset(b, &Reset{Header: Header{SeqNum: 1, SendingTime: 12}, NewSeqNo: 1})
		}, &Reset{Header: Header{SeqNum: 1, SendingTime: 12}, NewSeqNo: 1}, func() any { return &c.Reset }},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			wire, err := tc.encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			kind, err := c.Decode(wire)
			if err != nil {
				t.Fatal(err)
			}
			if kind != tc.kind {
				t.Fatalf("kind %v, want %v", kind, tc.kind)
			}
			if got := tc.got(); !reflect.DeepEqual(normalize(got), normalize(tc.want)) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// normalize makes nil and empty byte slices compare equal.
func normalize(v any) any {
	rv := reflect.ValueOf(v).Elem()
	out := reflect.New(rv.Type())
	out.Elem().Set(rv)
	fixBytes(out.Elem())
	return out.Interface()
}

func fixBytes(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fixBytes(v.Field(i))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		for i := 0; i < cp.Len(); i++ {
			fixBytes(cp.Index(i))
		}
		v.Set(cp)
	}
}

func TestCodecErrors(t *testing.T) {
	c := newCodec(t)
	wire, err := c.AppendIncremental(nil, sampleIncremental())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(wire[:len(wire)-1]); fast.CodeOf(err) != fast.Truncated {
		t.Errorf("truncated: %v", err)
	}
	if _, err := c.Decode(append(append([]byte(nil), wire...), 0x80)); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, err := c.Decode([]byte{0xc0, 0xe3}); fast.CodeOf(err) != fast.D9 {
		t.Errorf("unknown template: %v", err)
	}
	ts, err := fast.Load(bytes.NewReader([]byte(`<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1"><template name="MDIncRefresh" id="1"><uInt32 name="MsgSeqNum"/></template></templates>`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCodec(ts); err == nil {
		t.Error("NewCodec accepted templates without the model's fields")
	}
}

func TestCodecNoAllocs(t *testing.T) {
	c := newCodec(t)
	inc := sampleIncremental()
	buf := make([]byte, 0, 1500)
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		buf, err = c.AppendIncremental(buf[:0], inc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Decode(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("encode+decode allocates %.1f times per message", allocs)
	}
}

func BenchmarkDecodeIncremental(b *testing.B) {
	c := newCodec(b)
	wire, err := c.AppendIncremental(nil, sampleIncremental())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIncremental(b *testing.B) {
	c := newCodec(b)
	inc := sampleIncremental()
	buf := make([]byte, 0, 1500)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendIncremental(buf[:0], inc); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func TestDecimalAt(t *testing.T) {
	tests := []struct {
		d    Decimal
		exp  int8
		want int64
		ok   bool
	}{
		{Dec(10125, -2), -2, 10125, true},
		{Dec(1, 0), -2, 100, true},
		{Dec(1500, -3), -2, 150, true},
		{Dec(1505, -3), -2, 0, false},
		{Dec(1, 0), -19, 0, false},
		{Dec(-5, -1), -2, -50, true},
	}
	for _, tt := range tests {
		got, ok := tt.d.At(tt.exp)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%+v.At(%d) = %d, %v; want %d, %v", tt.d, tt.exp, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPeek(t *testing.T) {
	c := newCodec(t)
	hb, err := c.AppendHeartbeat(nil, &Heartbeat{LastSeqNum: 9})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := c.AppendIncremental(nil, sampleIncremental())
	if err != nil {
		t.Fatal(err)
	}
	rst, err := c.AppendReset(nil, &Reset{NewSeqNo: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		b    []byte
		kind Kind
		ok   bool
	}{{hb, KindHeartbeat, true}, {inc, KindIncremental, true}, {rst, KindReset, true}, {nil, 0, false}, {[]byte{0x80}, 0, false}, {[]byte{0xc0}, 0, false}, {[]byte{0xc0, 0xe3}, 0, false}} {
		kind, ok := c.Peek(tt.b)
		if kind != tt.kind || ok != tt.ok {
			t.Errorf("Peek(% x) = %v, %v; want %v, %v", tt.b, kind, ok, tt.kind, tt.ok)
		}
	}
}
