package fast

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// gen fills messages with random values that every operator can express.
type gen struct {
	r *rand.Rand
}

func (g *gen) fill(grp Group, depth int) {
	for i, f := range grp.Fields() {
		if f.Optional && g.r.IntN(4) == 0 {
			continue // absent
		}
		switch f.Type {
		case TypeUint32, TypeInt32, TypeUint64, TypeInt64:
			if f.Op == OpConstant {
				grp.SetInt(i, f.initInt)
				continue
			}
			grp.SetInt(i, g.integer(f))
		case TypeDecimal:
			if f.Op == OpConstant {
				grp.SetDecimal(i, f.initInt, f.initExp)
				continue
			}
			exp := int32(g.r.IntN(127) - 63)
			if f.split && f.Exponent.Op == OpConstant {
				exp = int32(f.Exponent.initInt)
			}
			mant := g.r.Int64N(1<<62) - 1<<61
			if f.split && f.Mantissa.Op == OpConstant {
				mant = f.Mantissa.initInt
			}
			if g.r.IntN(3) == 0 {
				mant = int64(g.r.IntN(200) - 100) // small values exercise one-byte forms
			}
			grp.SetDecimal(i, mant, exp)
		case TypeASCII, TypeUnicode, TypeBytes:
			if f.Op == OpConstant {
				grp.SetBytes(i, f.initBytes)
				continue
			}
			n := g.r.IntN(12)
			if f.Op == OpTail {
				n = max(len(f.initBytes), 8) // a tail can replace, never shorten
			}
			grp.SetBytes(i, g.vector(f.Type, n))
		case TypeSequence:
			if depth > 3 {
				if f.Optional {
					continue
				}
				grp.SetSeq(i, 0)
				continue
			}
			s := grp.SetSeq(i, g.r.IntN(4))
			for j := 0; j < s.Len(); j++ {
				g.fill(s.Elem(j), depth+1)
			}
		case TypeGroup:
			g.fill(grp.SetGroup(i), depth+1)
		}
	}
}

func (g *gen) integer(f *Field) int64 {
	small := g.r.IntN(3) == 0
	switch f.Type {
	case TypeUint32:
		if small {
			return int64(g.r.IntN(130))
		}
		return int64(g.r.Uint32())
	case TypeInt32:
		if small {
			return int64(g.r.IntN(130) - 65)
		}
		return int64(int32(g.r.Uint32()))
	case TypeUint64:
		if small {
			return int64(g.r.IntN(130))
		}
		return g.r.Int64N(1 << 62) // deltas between any two must fit in int64
	}
	if small {
		return int64(g.r.IntN(130) - 65)
	}
	return g.r.Int64N(1<<62) - 1<<61
}

func (g *gen) vector(t Type, n int) []byte {
	b := make([]byte, 0, n*3)
	for range n {
		switch t {
		case TypeASCII:
			b = append(b, byte(0x20+g.r.IntN(0x5f)))
		case TypeUnicode:
			b = append(b, []byte(string(rune([]int{'a', 'Ж', '€', '𝄞'}[g.r.IntN(4)])))...)
		default:
			b = append(b, byte(g.r.IntN(256)))
		}
	}
	return b
}

// equalGroups compares two groups value by value and returns a description of the first
// difference, or "".
func equalGroups(a, b Group, path string) string {
	if a.Len() != b.Len() {
		return fmt.Sprintf("%s: %d fields vs %d", path, a.Len(), b.Len())
	}
	for i, f := range a.Fields() {
		p := path + "." + f.Name
		if a.Present(i) != b.Present(i) {
			return fmt.Sprintf("%s: present %v vs %v", p, a.Present(i), b.Present(i))
		}
		if !a.Present(i) {
			continue
		}
		switch f.Type {
		case TypeUint32, TypeInt32, TypeUint64, TypeInt64:
			if a.Int(i) != b.Int(i) {
				return fmt.Sprintf("%s: %d vs %d", p, a.Int(i), b.Int(i))
			}
		case TypeDecimal:
			am, ae := a.Decimal(i)
			bm, be := b.Decimal(i)
			if am != bm || ae != be {
				return fmt.Sprintf("%s: %de%d vs %de%d", p, am, ae, bm, be)
			}
		case TypeASCII, TypeUnicode, TypeBytes:
			if !bytes.Equal(a.Bytes(i), b.Bytes(i)) {
				return fmt.Sprintf("%s: %q vs %q", p, a.Bytes(i), b.Bytes(i))
			}
		case TypeSequence:
			sa, sb := a.Seq(i), b.Seq(i)
			if sa.Len() != sb.Len() {
				return fmt.Sprintf("%s: length %d vs %d", p, sa.Len(), sb.Len())
			}
			for j := 0; j < sa.Len(); j++ {
				if d := equalGroups(sa.Elem(j), sb.Elem(j), fmt.Sprintf("%s[%d]", p, j)); d != "" {
					return d
				}
			}
		case TypeGroup:
			ga, _ := a.Group(i)
			gb, _ := b.Group(i)
			if d := equalGroups(ga, gb, p); d != "" {
				return d
			}
		}
	}
	return ""
}

func exchangeTemplateFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(sharedDir(t), "conformance", "exchange-templates", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("expected the five exchange template files, found %d", len(files))
	}
	return files
}

// TestExchangeTemplatesRoundTrip loads every exchange template file and, for every template
// in it, encodes random messages and decodes them back to equal values. Messages of all the
// file's templates are interleaved through one encoder and one decoder, so dictionaries carry
// state across templates, and the dictionaries are reset every few messages as a datagram
// feed does.
func TestExchangeTemplatesRoundTrip(t *testing.T) {
	files := append(exchangeTemplateFiles(t), filepath.Join("..", "fixtures", "templates.xml"))
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ts, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts.List()) == 0 {
				t.Fatal("no templates loaded")
			}
			g := gen{r: rand.New(rand.NewPCG(1, uint64(len(path))))}
			enc, dec := NewEncoder(ts), NewDecoder(ts)
			var in, out Message
			perTemplate := map[string]int{}
			var stream []byte
			var sent []*Message
			for n := 0; n < 200*len(ts.List()); n++ {
				if n%7 == 0 {
					// Verify the buffered stream, then reset both sides.
					verifyStream(t, dec, stream, sent, &out)
					stream, sent = stream[:0], sent[:0]
					enc.Reset()
					dec.Reset()
				}
				tmpl := ts.List()[g.r.IntN(len(ts.List()))]
				if tmpl.ID == 0 {
					continue // a template without an identifier is only referenced statically
				}
				in.Reset(tmpl)
				g.fill(in.Root(), 0)
				var err error
				stream, err = enc.Encode(stream, &in)
				if err != nil {
					t.Fatalf("template %s: encode: %v", tmpl.Name, err)
				}
				sent = append(sent, cloneMessage(&in))
				perTemplate[tmpl.Name]++
			}
			verifyStream(t, dec, stream, sent, &out)
			for _, tmpl := range ts.List() {
				if tmpl.ID != 0 && perTemplate[tmpl.Name] == 0 {
					t.Errorf("template %s never exercised", tmpl.Name)
				}
			}
		})
	}
}

func verifyStream(t *testing.T, dec *Decoder, stream []byte, sent []*Message, out *Message) {
	t.Helper()
	pos := 0
	for k, want := range sent {
		n, err := dec.Decode(stream[pos:], out)
		if err != nil {
			t.Fatalf("message %d (%s): decode at stream offset %d: %v", k, want.Template.Name, pos, err)
		}
		pos += n
		if out.Template != want.Template {
			t.Fatalf("message %d: template %s, want %s", k, out.Template.Name, want.Template.Name)
		}
		if d := equalGroups(want.Root(), out.Root(), want.Template.Name); d != "" {
			t.Fatalf("message %d: %s", k, d)
		}
	}
	if pos != len(stream) {
		t.Fatalf("decoded %d of %d stream bytes", pos, len(stream))
	}
}

func cloneMessage(m *Message) *Message {
	return &Message{
		Template: m.Template,
		vals:     append([]Value(nil), m.vals...),
		data:     append([]byte(nil), m.data...),
		refs:     append([]*Template(nil), m.refs...),
	}
}
