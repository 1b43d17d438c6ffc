package framing

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"fastfeed/fast"
)

func templates(t testing.TB) *fast.Templates {
	t.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "..", "fixtures", "templates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// heartbeat encodes a Heartbeat message with fresh dictionaries.
func heartbeat(t testing.TB, ts *fast.Templates, last uint64) []byte {
	t.Helper()
	tmpl := ts.ByName("Heartbeat")
	var m fast.Message
	m.Reset(tmpl)
	m.Root().SetUint(tmpl.FieldIndex("MsgSeqNum"), last)
	m.Root().SetUint(tmpl.FieldIndex("SendingTime"), 1)
	m.Root().SetUint(tmpl.FieldIndex("LastMsgSeqNumProcessed"), last)
	b, err := fast.NewEncoder(ts).Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReader(t *testing.T) {
	ts := templates(t)
	hb := heartbeat(t, ts, 7)
	seq32 := func(seq uint32, b []byte) []byte { return append(binary.LittleEndian.AppendUint32(nil, seq), b...) }
	len32 := func(b []byte) []byte { return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...) }
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	tests := []struct {
		name    string
		kind    Kind
		data    []byte
		seqs    []uint32
		errAt   int // offset of the error, -1 for none
		errCode fast.Code
	}{
		{"stream", Stream, cat(hb, hb), []uint32{1, 2}, -1, ""},
		{"seq32", Seq32, cat(seq32(7, hb), seq32(9, hb)), []uint32{7, 9}, -1, ""},
		{"len32", Len32, cat(len32(hb), len32(hb)), []uint32{1, 2}, -1, ""},
		{"empty", Seq32, nil, nil, -1, ""},
		{"seq32 short header", Seq32, cat(seq32(7, hb), []byte{1, 2}), []uint32{7}, len(hb) + 4, ""},
		{"len32 length beyond input", Len32, cat(len32(hb), []byte{200, 0, 0, 0, 1}), []uint32{1}, len(hb) + 4, ""},
		{"len32 trailing bytes in frame", Len32, len32(append(append([]byte(nil), hb...), 0x80)), nil, 4 + len(hb), ""},
		{"truncated message", Seq32, seq32(1, hb[:len(hb)-1]), nil, 4 + len(hb) - 1, fast.Truncated},
		{"unknown template", Stream, []byte{0xc0, 0xe3}, nil, 1, fast.D9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.kind, fast.NewDecoder(ts), tt.data)
			var m fast.Message
			var seqs []uint32
			for {
				seq, _, ok, err := r.Next(&m)
				if err != nil {
					var fe *Error
					if !errors.As(err, &fe) {
						t.Fatalf("error %v is not a *framing.Error", err)
					}
					if tt.errAt < 0 || fe.Offset != tt.errAt {
						t.Fatalf("error %v at %d, want at %d", err, fe.Offset, tt.errAt)
					}
					if tt.errCode != "" && fast.CodeOf(err) != tt.errCode {
						t.Fatalf("error %v, want FAST code %s", err, tt.errCode)
					}
					break
				}
				if !ok {
					if tt.errAt >= 0 {
						t.Fatalf("no error, want one at %d", tt.errAt)
					}
					break
				}
				seqs = append(seqs, seq)
			}
			if len(seqs) != len(tt.seqs) {
				t.Fatalf("sequence numbers %v, want %v", seqs, tt.seqs)
			}
			for i := range seqs {
				if seqs[i] != tt.seqs[i] {
					t.Fatalf("sequence numbers %v, want %v", seqs, tt.seqs)
				}
			}
		})
	}
}

func TestDecodeDatagram(t *testing.T) {
	ts := templates(t)
	hb := heartbeat(t, ts, 3)
	dec := fast.NewDecoder(ts)
	var m fast.Message
	d := append(binary.LittleEndian.AppendUint32(nil, 3), hb...)
	if seq, err := DecodeDatagram(dec, d, &m); err != nil || seq != 3 || m.Template.Name != "Heartbeat" {
		t.Fatalf("DecodeDatagram = %d, %v (%v)", seq, err, m.Template)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, append(append([]byte(nil), d...), 0x80)} {
		if _, err := DecodeDatagram(dec, bad, &m); err == nil {
			t.Errorf("DecodeDatagram(% x) accepted", bad)
		}
	}
}

// FuzzReader reads arbitrary bytes in every framing: no panic, and every error is a
// *framing.Error with an offset inside the input.
func FuzzReader(f *testing.F) {
	ts := templates(f)
	hb := heartbeat(f, ts, 1)
	f.Add(append(binary.LittleEndian.AppendUint32(nil, 1), hb...))
	f.Add(append(binary.LittleEndian.AppendUint32(nil, uint32(len(hb))), hb...))
	f.Add(hb)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []Kind{Stream, Seq32, Len32} {
			r := NewReader(k, fast.NewDecoder(ts), data)
			var m fast.Message
			for i := 0; ; i++ {
				if i > len(data) {
					t.Fatalf("%v: more messages than bytes", k)
				}
				_, _, ok, err := r.Next(&m)
				if err != nil {
					var fe *Error
					if !errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > len(data) {
						t.Fatalf("%v: error %v", k, err)
					}
					break
				}
				if !ok {
					break
				}
			}
		}
	})
}
