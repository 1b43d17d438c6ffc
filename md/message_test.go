package md

import (
	"reflect"
	"testing"
)

// TestMessageCopyFrom: a copy owns its bytes (the codec's next Decode leaves it alone),
// equals the decoded value, and a Message reused for copies stops allocating.
func TestMessageCopyFrom(t *testing.T) {
	c := newCodec(t)
	inc := sampleIncremental()
	b1, err := c.AppendIncremental(nil, inc)
	if err != nil {
		t.Fatal(err)
	}
	st := &Status{Header: Header{SeqNum: 3}, Symbol: []byte("GAZP"), TradingStatus: 17, Text: []byte("halted")}
	b2, err := c.AppendStatus(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if _, err := c.Decode(b1); err != nil {
		t.Fatal(err)
	}
	m.CopyFrom(&c.Message)
	if _, err := c.Decode(b2); err != nil { // reuses the codec's buffers
		t.Fatal(err)
	}
	for i := range b1 {
		b1[i] = 0xff // nor may the copy alias the datagram
	}
	if m.Kind != KindIncremental || !reflect.DeepEqual(m.Incremental, *inc) {
		t.Fatalf("copy:\n got %+v\nwant %+v", m.Incremental, *inc)
	}
	if m.Header() != inc.Header {
		t.Fatalf("header %+v", m.Header())
	}
	var s Message
	s.CopyFrom(&c.Message)
	if s.Kind != KindStatus || !reflect.DeepEqual(s.Status, *st) {
		t.Fatalf("status copy %+v, want %+v", s.Status, *st)
	}
	// Reused for another message of the same size: no allocation.
	if _, err := c.Decode(mustIncremental(t, c, inc)); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() { m.CopyFrom(&c.Message) }); a != 0 {
		t.Errorf("%.1f allocations per CopyFrom into a warm Message", a)
	}
}

func mustIncremental(t *testing.T, c *Codec, m *Incremental) []byte {
	t.Helper()
	b, err := c.AppendIncremental(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
