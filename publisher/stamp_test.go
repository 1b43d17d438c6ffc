package publisher

import (
	"testing"

	"fastfeed/mcast"
	"fastfeed/md"
)

// TestRestamp checks that the SendingTime found in an encoded datagram is overwritten in
// place and decodes as the new time, for every kind of message the publisher sends.
func TestRestamp(t *testing.T) {
	codec, err := md.NewCodec(loadTemplates(t))
	if err != nil {
		t.Fatal(err)
	}
	const built, sent = int64(1795372800123456789), int64(1795372800987654321)
	for _, tc := range []struct {
		name   string
		encode func(h md.Header) ([]byte, error)
		seq    uint32
	}{
		{"incremental", func(h md.Header) ([]byte, error) {
			return codec.AppendIncremental(make([]byte, 4), &md.Incremental{Header: h, Entries: []md.Entry{{Action: md.New, Type: md.Bid,
				Symbol: []byte("SBER"), RptSeq: 1, Price: md.Decimal{Mantissa: 10125, Exp: -2, Valid: true}, Size: md.Decimal{Mantissa: 3, Valid: true}}}})
		}, 1},
		{"heartbeat, large sequence", func(h md.Header) ([]byte, error) {
			return codec.AppendHeartbeat(make([]byte, 4), &md.Heartbeat{Header: h, LastSeqNum: h.SeqNum})
		}, 1<<32 - 1},
		{"status", func(h md.Header) ([]byte, error) {
			return codec.AppendStatus(make([]byte, 4), &md.Status{Header: h, Symbol: []byte("SBER"), TradingStatus: 17})
		}, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.encode(md.Header{SeqNum: tc.seq, SendingTime: built})
			if err != nil {
				t.Fatal(err)
			}
			at := stampOffset(b, built)
			if at < 4 {
				t.Fatalf("SendingTime not found in % x", b)
			}
			p := &Publisher{out: []mcast.Message{{Buf: b}}, stampAt: []int16{at}, nout: 1}
			p.restamp(sent)
			if _, err := codec.Decode(b[4:]); err != nil {
				t.Fatal(err)
			}
			var got md.Header
			switch {
			case tc.name == "incremental":
				got = codec.Incremental.Header
			case tc.name == "status":
				got = codec.Status.Header
			default:
				got = codec.Heartbeat.Header
			}
			if got.SendingTime != sent || got.SeqNum != tc.seq {
				t.Errorf("decoded header %+v, want SendingTime %d SeqNum %d", got, sent, tc.seq)
			}
		})
	}
	if at := stampOffset([]byte{0, 0, 0, 0, 0xc0, 0x81}, built); at != -1 {
		t.Errorf("offset %d in a datagram without the time", at)
	}
	if _, ok := stopBitTime(5); ok {
		t.Error("a time before 1972 encodes in fewer than 9 bytes; it must not be stamped")
	}
}
