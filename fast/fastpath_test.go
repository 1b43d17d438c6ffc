package fast

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// poolGen fills messages from small pools of values, so that consecutive values repeat,
// increase by one, sit on the edges of their types and cross the one-byte limits: the cases
// where the encoder's fast paths and its general path could disagree.
type poolGen struct {
	r    *rand.Rand
	last map[*Field]int64
}

func (g *poolGen) integer(f *Field) int64 {
	switch g.r.IntN(6) {
	case 0, 1:
		return g.last[f] // repeat (copy)
	case 2:
		return g.last[f] + 1 // increment, which may overflow the type
	}
	lo, hi := int64(0), int64(math.MaxUint32)
	switch f.Type {
	case TypeInt32:
		lo, hi = math.MinInt32, math.MaxInt32
	case TypeUint64:
		lo, hi = 0, -1 // as bits: MaxUint64
	case TypeInt64:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	return []int64{0, 1, 62, 63, 64, 126, 127, 128, 8191, 8192, lo, hi, hi - 1, lo + 1}[g.r.IntN(14)]
}

func (g *poolGen) fill(grp Group, depth int) {
	for i, f := range grp.Fields() {
		if f.Optional && g.r.IntN(4) == 0 {
			continue
		}
		switch f.Type {
		case TypeUint32, TypeInt32, TypeUint64, TypeInt64:
			x := g.integer(f)
			if f.Op == OpConstant && g.r.IntN(8) != 0 {
				x = f.initInt
			}
			g.last[f] = x
			grp.SetInt(i, x)
		case TypeDecimal:
			// Extremes (which a delta may not reach) and an exponent out of range are rare:
			// one error spoils a whole message.
			m := []int64{0, 1, -1, 63, 64, -64, -65, 28455, 8191, -8192}[g.r.IntN(10)]
			if g.r.IntN(40) == 0 {
				m = []int64{math.MaxInt64, math.MinInt64}[g.r.IntN(2)]
			}
			e := []int32{0, -2, 63, -63}[g.r.IntN(4)]
			if g.r.IntN(40) == 0 {
				e = 64
			}
			if f.Op == OpConstant && g.r.IntN(8) != 0 {
				m, e = f.initInt, f.initExp
			}
			grp.SetDecimal(i, m, e)
		case TypeASCII, TypeUnicode, TypeBytes:
			v := [][]byte{nil, {}, {0}, []byte("0"), []byte("SBER"), []byte("SBER2"), []byte("\u00e9"), bytes.Repeat([]byte("x"), 20)}[g.r.IntN(8)]
			if f.Type == TypeASCII && len(v) > 0 && v[0] >= 0x80 && g.r.IntN(10) != 0 {
				v = []byte("1")
			}
			if f.Op == OpConstant && g.r.IntN(8) != 0 {
				v = f.initBytes
			}
			grp.SetBytes(i, v)
		case TypeSequence:
			if depth > 3 {
				if !f.Optional {
					grp.SetSeq(i, 0)
				}
				continue
			}
			s := grp.SetSeq(i, g.r.IntN(5))
			for j := 0; j < s.Len(); j++ {
				g.fill(s.Elem(j), depth+1)
			}
		case TypeGroup:
			g.fill(grp.SetGroup(i), depth+1)
		}
	}
}

// TestEncoderFastPathsMatchGeneral encodes the same messages with the fast paths on and
// off and requires the same bytes, or an error from both. The messages come from pools of
// edge values (see poolGen), for every template of every exchange template file.
func TestEncoderFastPathsMatchGeneral(t *testing.T) {
	files := append(exchangeTemplateFiles(t), filepath.Join("..", "fixtures", "templates.xml"))
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ts, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			g := poolGen{r: rand.New(rand.NewPCG(2, uint64(len(path)))), last: map[*Field]int64{}}
			fast, general := NewEncoder(ts), NewEncoder(ts)
			general.generalOnly = true
			var m Message
			var a, b []byte
			encoded, tried := 0, 0
			for n := 0; n < 300*len(ts.List()); n++ {
				if n%5 == 0 {
					fast.Reset()
					general.Reset()
				}
				tmpl := ts.List()[g.r.IntN(len(ts.List()))]
				if tmpl.ID == 0 {
					continue
				}
				m.Reset(tmpl)
				g.fill(m.Root(), 0)
				tried++
				var errA, errB error
				a, errA = fast.Encode(a[:0], &m)
				b, errB = general.Encode(b[:0], &m)
				if (errA == nil) != (errB == nil) {
					t.Fatalf("template %s: fast path error %v, general path error %v", tmpl.Name, errA, errB)
				}
				if errA != nil {
					// The dictionaries may differ after a failed message; start again.
					fast.Reset()
					general.Reset()
					continue
				}
				if !bytes.Equal(a, b) {
					t.Fatalf("template %s: fast path wrote\n% x\ngeneral path wrote\n% x", tmpl.Name, a, b)
				}
				encoded++
			}
			if encoded < tried/5 {
				t.Fatalf("only %d of %d messages encoded without error", encoded, tried)
			}
			t.Logf("%d of %d messages encoded identically, the rest failed on both paths", encoded, tried)
		})
	}
}

// TestDecoderFastPathsMatchGeneral decodes the same input with the fast paths on and off
// and requires the same outcome: the same values and length, or the same error code at the
// same offset. The input is a stream of messages from poolGen, and copies of it with bytes
// changed, so that the fast paths also meet malformed integers, strings and maps.
func TestDecoderFastPathsMatchGeneral(t *testing.T) {
	files := append(exchangeTemplateFiles(t), filepath.Join("..", "fixtures", "templates.xml"))
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ts, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			g := poolGen{r: rand.New(rand.NewPCG(3, uint64(len(path)))), last: map[*Field]int64{}}
			enc := NewEncoder(ts)
			var m Message
			var stream []byte
			for n := 0; n < 100*len(ts.List()); n++ {
				tmpl := ts.List()[g.r.IntN(len(ts.List()))]
				if tmpl.ID == 0 {
					continue
				}
				m.Reset(tmpl)
				g.fill(m.Root(), 0)
				out, err := enc.Encode(stream, &m)
				if err != nil {
					enc.Reset() // and drop the message: the stream's dictionaries go on
					stream = stream[:0]
					continue
				}
				stream = out
				if len(stream) > 2000 {
					decodeBoth(t, ts, stream)
					for k := 0; k < 20; k++ {
						bad := append([]byte(nil), stream...)
						for c := 0; c < 1+g.r.IntN(3); c++ {
							i := g.r.IntN(len(bad))
							bad[i] = []byte{0x00, 0x80, 0x7f, 0xff, 0x40, bad[i] ^ 0x80, byte(g.r.IntN(256))}[g.r.IntN(7)]
						}
						decodeBoth(t, ts, bad[:len(bad)-g.r.IntN(4)])
					}
					stream = stream[:0]
					enc.Reset()
				}
			}
		})
	}
}

// decodeBoth decodes stream message by message with a fast and a general-only decoder.
func decodeBoth(t *testing.T, ts *Templates, stream []byte) {
	t.Helper()
	fast, general := NewDecoder(ts), NewDecoder(ts)
	general.generalOnly = true
	var a, b Message
	for pos := 0; pos < len(stream); {
		na, errA := fast.Decode(stream[pos:], &a)
		nb, errB := general.Decode(stream[pos:], &b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("at %d: fast path error %v, general path error %v\n% x", pos, errA, errB, stream[pos:min(len(stream), pos+64)])
		}
		if errA != nil {
			var ea, eb *Error
			errors.As(errA, &ea)
			errors.As(errB, &eb)
			if ea.Code != eb.Code || ea.Offset != eb.Offset {
				t.Fatalf("at %d: fast path error %v, general path error %v", pos, errA, errB)
			}
			return
		}
		if na != nb {
			t.Fatalf("at %d: fast path used %d bytes, general path %d", pos, na, nb)
		}
		if d := equalGroups(a.Root(), b.Root(), a.Template.Name); d != "" {
			t.Fatalf("at %d: %s", pos, d)
		}
		pos += na
	}
}

// TestDecoderFastPathsEdgeEncodings decodes hand-made encodings at the edges of every
// primitive (overlong forms, the limits of each integer type and one past them, NULL,
// truncation) in every common field shape, with the fast paths on and off, and requires
// the same outcome. Each message follows one that assigned the field's dictionary entry,
// and is decoded both with the field's presence bit set and clear.
func TestDecoderFastPathsEdgeEncodings(t *testing.T) {
	shapes := []string{
		`<int32 name="x"/>`, `<int32 name="x" presence="optional"/>`,
		`<int64 name="x"/>`, `<int64 name="x" presence="optional"/>`,
		`<uInt32 name="x"/>`, `<uInt32 name="x" presence="optional"/>`,
		`<uInt64 name="x"/>`, `<uInt64 name="x" presence="optional"/>`,
		`<uInt32 name="x"><copy/></uInt32>`, `<uInt32 name="x" presence="optional"><copy/></uInt32>`,
		`<int32 name="x"><increment/></int32>`, `<uInt32 name="x"><increment/></uInt32>`,
		`<uInt64 name="x"><increment/></uInt64>`, `<int64 name="x" presence="optional"><copy/></int64>`,
		`<decimal name="x"/>`, `<decimal name="x" presence="optional"/>`,
		`<decimal name="x" presence="optional"><exponent><copy/></exponent><mantissa><delta/></mantissa></decimal>`,
		`<decimal name="x"><exponent><copy/></exponent><mantissa><delta/></mantissa></decimal>`,
		`<string name="x"/>`, `<string name="x" presence="optional"/>`,
		`<string name="x"><copy/></string>`, `<string name="x" presence="optional"><copy/></string>`,
		`<string name="x"><constant value="X"/></string>`, `<int32 name="x"><constant value="-5"/></int32>`,
	}
	var vals [][]byte
	for _, u := range []uint64{0, 1, 63, 64, 127, 128, 8191, 8192, 1<<31 - 1, 1 << 31, 1<<31 + 1, 1<<32 - 1, 1 << 32, 1<<32 + 1, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
		vals = append(vals, AppendUint(nil, u))
	}
	for _, i := range []int64{-1, -64, -65, -8192, -8193, -1 << 31, -1<<31 - 1, 1<<31 - 1, 1 << 31, math.MinInt64, math.MaxInt64} {
		vals = append(vals, AppendInt(nil, i))
	}
	vals = append(vals,
		[]byte{0x00, 0x80}, []byte{0x00, 0xc0}, []byte{0x7f, 0xc0}, []byte{0x7f, 0x80}, []byte{0x00, 0x00, 0x81},
		[]byte{0x7f, 0x7f, 0x81}, []byte{0x00, 0x40, 0x80}, []byte{0x41, 0x42, 0xc3}, []byte{0x01},
		[]byte{0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x80},
		[]byte{0x7e, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, []byte{0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0x80},
		[]byte{0x00, 0x00, 0x80}, []byte{0x00, 0x00, 0x00, 0x80})
	for _, shape := range shapes {
		xml := `<templates xmlns="http://www.fixprotocol.org/ns/fast/td/1.1"><template name="T" id="1">` + shape + `</template></templates>`
		ts, err := Load(strings.NewReader(xml))
		if err != nil {
			t.Fatalf("%s: %v", shape, err)
		}
		parts := 1
		if strings.HasPrefix(shape, "<decimal") {
			parts = 2
		}
		for _, first := range vals {
			for _, second := range vals {
				// Presence maps: the identifier (1) and, if the field takes a bit, the
				// field's bit set; for the second message also with the bit clear.
				set, clear := byte(0xc0), byte(0xc0)
				if ts.ByID(1).pmapBits > 1 {
					set = 0xe0
				}
				for _, pm := range []byte{set, clear} {
					var stream []byte
					stream = append(stream, set, 0x81)
					for range parts { // a decimal: exponent and mantissa
						stream = append(stream, first...)
					}
					stream = append(stream, pm, 0x81)
					for range parts {
						stream = append(stream, second...)
					}
					decodeBoth(t, ts, stream)
				}
			}
		}
	}
}

// FuzzDecodeFastPaths decodes arbitrary bytes with the decoder's fast paths on and off, for
// fastfeed's templates and MOEX ASTS, and requires the same outcome (see decodeBoth).
func FuzzDecodeFastPaths(f *testing.F) {
	fixture, moex := fuzzTemplates(f)
	f.Add([]byte{0xe0, 0x81, 0x7f, 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, fixture, data)
		decodeBoth(t, moex, data)
	})
}

// TestAppendIntegersMatchReference compares AppendUint and AppendInt, which write by
// index into grown capacity, with a plain byte-at-a-time reference encoder, at both sides
// of every 7-bit group boundary, and checks that Consume reads the value back.
func TestAppendIntegersMatchReference(t *testing.T) {
	refUint := func(v uint64) []byte {
		var groups []byte
		for {
			groups = append([]byte{byte(v & 0x7f)}, groups...)
			v >>= 7
			if v == 0 {
				break
			}
		}
		groups[len(groups)-1] |= stopBit
		return groups
	}
	refInt := func(v int64) []byte {
		var groups []byte
		for {
			groups = append([]byte{byte(v & 0x7f)}, groups...)
			// Stop when the rest is the sign extension of the group just taken.
			if (v>>6 == 0) || (v>>6 == -1) {
				break
			}
			v >>= 7
		}
		groups[len(groups)-1] |= stopBit
		return groups
	}
	var us []uint64
	var is []int64
	for k := uint(0); k < 64; k++ {
		u := uint64(1) << k
		us = append(us, u-1, u, u+1)
		is = append(is, int64(u)-1, int64(u), int64(u)+1, -int64(u), -int64(u)-1, -int64(u)+1)
	}
	us = append(us, 0, math.MaxUint64)
	is = append(is, 0, math.MaxInt64, math.MinInt64)
	prefix := []byte{0xaa} // appended after existing bytes
	for _, u := range us {
		got := AppendUint(append([]byte(nil), prefix...), u)
		if want := append(append([]byte(nil), prefix...), refUint(u)...); !bytes.Equal(got, want) {
			t.Fatalf("AppendUint(%d) = % x, want % x", u, got, want)
		}
		if v, n := ConsumeUint(got[1:]); v != u || n != len(got)-1 {
			t.Fatalf("ConsumeUint(AppendUint(%d)) = %d, %d", u, v, n)
		}
	}
	for _, i := range is {
		got := AppendInt(append([]byte(nil), prefix...), i)
		if want := append(append([]byte(nil), prefix...), refInt(i)...); !bytes.Equal(got, want) {
			t.Fatalf("AppendInt(%d) = % x, want % x", i, got, want)
		}
		if v, n := ConsumeInt(got[1:]); v != i || n != len(got)-1 {
			t.Fatalf("ConsumeInt(AppendInt(%d)) = %d, %d", i, v, n)
		}
	}
}
