package md

import (
	"bytes"
	"reflect"
	"testing"

	"fastfeed/fast"
	"fastfeed/fixtures"
)

// TestEmbeddedTemplatesGenerated checks that the templates compiled into the binary (what
// the publisher and the handler load) take the generated path.
func TestEmbeddedTemplatesGenerated(t *testing.T) {
	ts, err := fixtures.Templates()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec(ts)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Generated() {
		t.Fatal("md.Codec for the embedded fixtures/templates.xml does not use the generated codec")
	}
}

// TestGeneratedMatchesInterpreted encodes the same model values with the generated path and
// the interpreter's and requires the same bytes (or the same error code), and the same
// decoded values.
func TestGeneratedMatchesInterpreted(t *testing.T) {
	gen := newCodec(t)
	if !gen.Generated() {
		t.Fatal("a Codec for fixtures/templates.xml does not use the generated codec")
	}
	in := newCodec(t)
	in.g = nil
	inc := sampleIncremental()
	cont := *inc
	cont.Continued = true
	snap := &Snapshot{Header: Header{SendingTime: 5}, LastMsgSeqNumProcessed: 41, Symbol: []byte("SBER"), RptSeq: 6,
		Entries: []Entry{{Type: Bid, Price: Dec(28455, -2), Size: Dec(1200, 0), Orders: 3}, {Type: Offer, ID: []byte("9"), Price: Dec(28470, -2), Size: Dec(500, 0)}}}
	badSnap := &Snapshot{Symbol: []byte("SBER"), Entries: []Entry{{Type: Bid, Price: Dec(1, 0)}}}
	def := &Definition{Header: Header{SeqNum: 3, SendingTime: 9}, TotNumReports: 2, Symbol: []byte("SBER"), SecurityID: 77,
		SecurityType: []byte("CS"), Currency: []byte("RUB"), Description: []byte("Сбербанк"), PriceExp: -2,
		MarketDepth: 20, Channel: []byte("G239.1.2.3:30001")}
	nonASCII := &Status{Symbol: []byte("СБЕР")}
	encoders := []func(c *Codec, b []byte) ([]byte, error){
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendIncremental(b, inc) },
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendIncremental(b, &cont) },
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendIncremental(b, &Incremental{}) },
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendSnapshot(b, snap) },
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendSnapshot(b, badSnap) },
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendDefinition(b, def) },
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendDefinition(b, &Definition{}) },
		func(c *Codec, b []byte) ([]byte, error) {
			return c.AppendStatus(b, &Status{Symbol: []byte("SBER"), TradingStatus: 17, SessionID: []byte("TQBR"), Text: []byte("open")})
		},
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendStatus(b, nonASCII) },
		func(c *Codec, b []byte) ([]byte, error) {
			return c.AppendHeartbeat(b, &Heartbeat{Header: Header{SeqNum: 4}, LastSeqNum: 4})
		},
		func(c *Codec, b []byte) ([]byte, error) { return c.AppendReset(b, &Reset{NewSeqNo: 1 << 31}) },
	}
	for i, enc := range encoders {
		w1, err1 := enc(in, nil)
		w2, err2 := enc(gen, nil)
		if fast.CodeOf(err1) != fast.CodeOf(err2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("message %d: interpreted error %v, generated %v", i, err1, err2)
		}
		if !bytes.Equal(w1, w2) {
			t.Fatalf("message %d: interpreted % x, generated % x", i, w1, w2)
		}
		if err1 != nil {
			continue
		}
		for _, wire := range [][]byte{w1, w1[:len(w1)-1], append(w1[:len(w1):len(w1)], 0x80)} {
			k1, err1 := in.Decode(wire)
			k2, err2 := gen.Decode(wire)
			if k1 != k2 || fast.CodeOf(err1) != fast.CodeOf(err2) || (err1 == nil) != (err2 == nil) {
				t.Fatalf("message %d: decode % x: interpreted %v %v, generated %v %v", i, wire, k1, err1, k2, err2)
			}
			if err1 != nil {
				continue
			}
			// Only the value of the decoded kind is valid (the others alias old buffers).
			pair := map[Kind][2]any{KindIncremental: {&in.Incremental, &gen.Incremental}, KindSnapshot: {&in.Snapshot, &gen.Snapshot},
				KindDefinition: {&in.Definition, &gen.Definition}, KindStatus: {&in.Status, &gen.Status},
				KindHeartbeat: {&in.Heartbeat, &gen.Heartbeat}, KindReset: {&in.Reset, &gen.Reset}}[k1]
			if !reflect.DeepEqual(normalize(pair[0]), normalize(pair[1])) {
				t.Fatalf("message %d: decoded\n%+v\ngenerated\n%+v", i, pair[0], pair[1])
			}
		}
	}
}

// BenchmarkCodecPaths compares the Codec's generated path with the interpreter's on the
// incremental of the round-trip test (dictionaries reset per message, as on the wire).
func BenchmarkCodecPaths(b *testing.B) {
	for _, path := range []string{"generated", "interpreted"} {
		c := newCodec(b)
		if path == "interpreted" {
			c.g = nil
		}
		inc := sampleIncremental()
		wire, err := c.AppendIncremental(nil, inc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Decode/"+path, func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Encode/"+path, func(b *testing.B) {
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = c.AppendIncremental(buf[:0], inc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
