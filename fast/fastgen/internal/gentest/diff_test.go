package gentest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"fastfeed/fast"
	"fastfeed/fast/codecs/ffcodec"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastgen/internal/gentest/b3"
	"fastfeed/fast/fastgen/internal/gentest/eurex"
	"fastfeed/fast/fastgen/internal/gentest/ext"
	"fastfeed/fast/fastgen/internal/gentest/forts"
	"fastfeed/fast/fastgen/internal/gentest/scp"
	"fastfeed/fast/fastgen/internal/gentest/spec"
	"fastfeed/fast/fastgen/internal/gentest/spec2"
)

// gcodec wraps one generated package behind the interpreter's message form.
type gcodec struct {
	decode   func(b []byte, out *fast.Message) (int, error)
	encode   func(dst []byte, in *fast.Message) ([]byte, error)
	resetDec func()
	resetEnc func()
}

type message interface {
	ToFast(*fast.Templates, *fast.Message) error
	FromFast(*fast.Message) error
}

type decoder[PM any] interface {
	Decode([]byte, PM) (int, error)
	Reset()
}

type encoder[PM any] interface {
	Encode([]byte, PM) ([]byte, error)
	Reset()
}

func adapt[M any, PM interface {
	*M
	message
}](ts *fast.Templates, d decoder[PM], e encoder[PM]) *gcodec {
	var dm, em M
	return &gcodec{
		decode: func(b []byte, out *fast.Message) (int, error) {
			n, err := d.Decode(b, &dm)
			if err != nil {
				return n, err
			}
			return n, PM(&dm).ToFast(ts, out)
		},
		encode: func(dst []byte, in *fast.Message) ([]byte, error) {
			if err := PM(&em).FromFast(in); err != nil {
				return dst, err
			}
			return e.Encode(dst, &em)
		},
		resetDec: d.Reset,
		resetEnc: e.Reset,
	}
}

type file struct {
	name   string
	path   string // relative to ../shared/conformance, or to the repository
	shared bool
	sum    string
	mk     func(ts *fast.Templates) *gcodec
}

var files = []file{
	{"spec", "fast-spec/spec_templates.xml", true, spec.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[spec.Message](ts, spec.NewDecoder(), spec.NewEncoder())
	}},
	{"spec2", "fast-spec/spec2_templates.xml", true, spec2.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[spec2.Message](ts, spec2.NewDecoder(), spec2.NewEncoder())
	}},
	{"asts", "exchange-templates/moex_asts_FIX50SP2-2017-Mar.xml", true, moexasts.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[moexasts.Message](ts, moexasts.NewDecoder(), moexasts.NewEncoder())
	}},
	{"forts", "exchange-templates/moex_forts_spectra_templates.xml", true, forts.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[forts.Message](ts, forts.NewDecoder(), forts.NewEncoder())
	}},
	{"b3", "exchange-templates/b3_umdf_puma_templates_5.1.13.xml", true, b3.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[b3.Message](ts, b3.NewDecoder(), b3.NewEncoder())
	}},
	{"eurex", "exchange-templates/eurex_emdi_EMDSFastTemplates-1.1.xml", true, eurex.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[eurex.Message](ts, eurex.NewDecoder(), eurex.NewEncoder())
	}},
	{"scp", "exchange-templates/fast_scp_1.1.xml", true, scp.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[scp.Message](ts, scp.NewDecoder(), scp.NewEncoder())
	}},
	{"fixtures", "fixtures/templates.xml", false, ffcodec.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[ffcodec.Message](ts, ffcodec.NewDecoder(), ffcodec.NewEncoder())
	}},
	{"extensions", "fast/fastgen/internal/gentest/testdata/extensions.xml", false, ext.SourceSHA256, func(ts *fast.Templates) *gcodec {
		return adapt[ext.Message](ts, ext.NewDecoder(), ext.NewEncoder())
	}},
}

func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FASTFEED_SHARED"); d != "" {
		return d
	}
	return filepath.Join(repoDir(t), "..", "shared")
}

func repoDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func (f file) load(t testing.TB) *fast.Templates {
	t.Helper()
	p := filepath.Join(repoDir(t), f.path)
	if f.shared {
		p = filepath.Join(sharedDir(t), "conformance", f.path)
	}
	ts, err := fast.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// dump renders every value of a message, presence and raw numbers included, so that two
// decoders agree only if they agree exactly.
func dump(m *fast.Message) string {
	if m.Template == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(m.Template.Name)
	dumpGroup(&b, m.Root())
	return b.String()
}

func dumpGroup(b *strings.Builder, g fast.Group) {
	b.WriteByte('{')
	for i, f := range g.Fields() {
		if !g.Present(i) {
			b.WriteString("_,")
			continue
		}
		switch f.Type {
		case fast.TypeSequence:
			s := g.Seq(i)
			b.WriteByte('[')
			for j := 0; j < s.Len(); j++ {
				dumpGroup(b, s.Elem(j))
			}
			b.WriteByte(']')
		case fast.TypeGroup:
			sub, _ := g.Group(i)
			dumpGroup(b, sub)
		case fast.TypeASCII, fast.TypeUnicode, fast.TypeBytes:
			b.WriteString(strconv.Quote(string(g.Bytes(i))))
		case fast.TypeDecimal:
			m, e := g.Decimal(i)
			fmt.Fprintf(b, "%de%d", m, e)
		default:
			fmt.Fprintf(b, "%d", g.Int(i))
		}
		b.WriteByte(',')
	}
	b.WriteByte('}')
}

func sameErr(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	var ea, eb *fast.Error
	if !errors.As(a, &ea) || !errors.As(b, &eb) {
		return false
	}
	return ea.Code == eb.Code && ea.Offset == eb.Offset
}

// pair runs the interpreter and the generated codec side by side on one stream.
type pair struct {
	ts   *fast.Templates
	idec *fast.Decoder
	ienc *fast.Encoder
	g    *gcodec
	g2   *gcodec // a second generated encoder, writing into spare capacity (see encode)
	buf  []byte
	im   fast.Message
	gm   fast.Message
}

func newPair(f file, t testing.TB) *pair {
	ts := f.load(t)
	return &pair{ts: ts, idec: fast.NewDecoder(ts), ienc: fast.NewEncoder(ts), g: f.mk(ts), g2: f.mk(ts), buf: make([]byte, 0, 1<<16)}
}

func (p *pair) resetDec() { p.idec.Reset(); p.g.resetDec() }
func (p *pair) resetEnc() { p.ienc.Reset(); p.g.resetEnc(); p.g2.resetEnc() }

// decode checks that both decoders agree on b; it returns the interpreter's result.
func (p *pair) decode(t testing.TB, b []byte, what string) (int, error) {
	t.Helper()
	n1, err1 := p.idec.Decode(b, &p.im)
	n2, err2 := p.g.decode(b, &p.gm)
	if !sameErr(err1, err2) {
		t.Fatalf("%s: decode % x: interpreted error %v, generated %v", what, b, err1, err2)
	}
	if err1 == nil {
		if n1 != n2 {
			t.Fatalf("%s: decode % x: interpreted used %d bytes, generated %d", what, b, n1, n2)
		}
		if d1, d2 := dump(&p.im), dump(&p.gm); d1 != d2 {
			t.Fatalf("%s: decode % x:\ninterpreted %s\ngenerated   %s", what, b, d1, d2)
		}
	}
	return n1, err1
}

// encode checks that both encoders agree on m; it returns the interpreter's bytes.
func (p *pair) encode(t testing.TB, m *fast.Message, what string) ([]byte, error) {
	t.Helper()
	b1, err1 := p.ienc.Encode(nil, m)
	b2, err2 := p.g.encode(nil, m)
	if (err1 == nil) != (err2 == nil) || (err1 != nil && fast.CodeOf(err1) != fast.CodeOf(err2)) {
		t.Fatalf("%s: encode %s: interpreted error %v, generated %v", what, dump(m), err1, err2)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("%s: encode %s:\ninterpreted % x\ngenerated   % x", what, dump(m), b1, b2)
	}
	// The same message after a prefix, with room to spare (as the publisher encodes):
	// the generated code's in-place writes, which an output without capacity never takes.
	b3, err3 := p.g2.encode(append(p.buf[:0], 0xee), m)
	if (err1 == nil) != (err3 == nil) || (err1 != nil && fast.CodeOf(err1) != fast.CodeOf(err3)) {
		t.Fatalf("%s: encode %s into spare capacity: interpreted error %v, generated %v", what, dump(m), err1, err3)
	}
	if err3 == nil && (b3[0] != 0xee || !bytes.Equal(b1, b3[1:])) {
		t.Fatalf("%s: encode %s into spare capacity:\ninterpreted    % x\ngenerated   % x", what, dump(m), b1, b3)
	}
	return b1, err1
}

// TestConformanceVectors runs every vector of ../shared/conformance/fast-spec through both
// codecs, one stream per case as the vector files say, and re-encodes what was decoded.
func TestConformanceVectors(t *testing.T) {
	for _, v := range []struct{ file, vectors string }{{"spec", "spec_vectors.txt"}, {"spec2", "spec2_vectors.txt"}} {
		var f file
		for _, x := range files {
			if x.name == v.file {
				f = x
			}
		}
		cases := readVectors(t, filepath.Join(sharedDir(t), "conformance", "fast-spec", v.vectors))
		n := 0
		for _, c := range cases {
			p := newPair(f, t)
			for _, vec := range c.vectors {
				what := fmt.Sprintf("%s %s line %d", v.vectors, c.name, vec.line)
				if _, err := p.decode(t, vec.wire, what); err != nil {
					continue
				}
				if _, err := p.encode(t, &p.im, what); err == nil {
					n++
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no vector decoded and re-encoded", v.vectors)
		}
	}
}

func readVectors(t *testing.T, path string) (cases []struct {
	name    string
	vectors []struct {
		line int
		wire []byte
	}
}) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case strings.TrimSpace(text) == "":
		case strings.HasPrefix(text, "CASE "):
			cases = append(cases, struct {
				name    string
				vectors []struct {
					line int
					wire []byte
				}
			}{name: strings.TrimPrefix(text, "CASE ")})
		default:
			parts := strings.Split(strings.TrimSpace(text), "\t")
			if len(parts) != 3 || len(cases) == 0 {
				t.Fatalf("%s:%d: malformed vector line", path, line)
			}
			wire, err := hex.DecodeString(strings.ReplaceAll(parts[0], " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			c := &cases[len(cases)-1]
			c.vectors = append(c.vectors, struct {
				line int
				wire []byte
			}{line, wire})
		}
	}
	return cases
}

// filler makes random messages from small pools of values, so that consecutive values
// repeat, increase by one and sit on the edges of their types: the cases where operators
// and fast paths could disagree.
type filler struct {
	r    *rand.Rand
	last map[*fast.Field]int64
}

func (g *filler) integer(f *fast.Field) int64 {
	switch g.r.IntN(6) {
	case 0, 1:
		return g.last[f]
	case 2:
		x := g.last[f] + 1
		if !inRange(f.Type, x) {
			x = 0
		}
		return x
	}
	lo, hi := int64(0), int64(math.MaxUint32)
	switch f.Type {
	case fast.TypeInt32:
		lo, hi = math.MinInt32, math.MaxInt32
	case fast.TypeUint64:
		lo, hi = 0, -1
	case fast.TypeInt64:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	return []int64{0, 1, 62, 63, 64, 126, 127, 128, 8191, 8192, lo, hi, hi - 1, lo + 1}[g.r.IntN(14)]
}

func inRange(t fast.Type, x int64) bool {
	switch t {
	case fast.TypeUint32:
		return uint64(x) <= math.MaxUint32
	case fast.TypeInt32:
		return x >= math.MinInt32 && x <= math.MaxInt32
	}
	return true
}

func (g *filler) fill(grp fast.Group, depth int) {
	for i, f := range grp.Fields() {
		in := f.Info()
		if f.Optional && g.r.IntN(4) == 0 {
			continue
		}
		// Mandatory constants: the generated struct cannot tell a zero from no value, so
		// they carry their constant (as every encoder user does).
		konst := f.Op == fast.OpConstant && (!f.Optional || g.r.IntN(8) != 0)
		switch f.Type {
		case fast.TypeUint32, fast.TypeInt32, fast.TypeUint64, fast.TypeInt64:
			x := g.integer(f)
			if konst {
				x = in.InitInt
			}
			g.last[f] = x
			grp.SetInt(i, x)
		case fast.TypeDecimal:
			m := []int64{0, 1, -1, 63, 64, -64, -65, 28455, 8191, -8192}[g.r.IntN(10)]
			if g.r.IntN(40) == 0 {
				m = []int64{math.MaxInt64, math.MinInt64}[g.r.IntN(2)]
			}
			e := []int32{0, -2, 63, -63}[g.r.IntN(4)]
			if g.r.IntN(40) == 0 {
				e = 64
			}
			if konst {
				m, e = in.InitInt, in.InitExp
			}
			grp.SetDecimal(i, m, e)
		case fast.TypeASCII, fast.TypeUnicode, fast.TypeBytes:
			v := [][]byte{nil, {}, {0}, []byte("0"), []byte("SBER"), []byte("SBER2"), []byte("\u00e9"), bytes.Repeat([]byte("x"), 20)}[g.r.IntN(8)]
			if f.Type == fast.TypeASCII && len(v) > 0 && v[0] >= 0x80 && g.r.IntN(10) != 0 {
				v = []byte("1")
			}
			if konst {
				v = in.InitBytes
			}
			grp.SetBytes(i, v)
		case fast.TypeSequence:
			n := g.r.IntN(4)
			if depth > 3 {
				n = 0
			}
			s := grp.SetSeq(i, n)
			for j := 0; j < n; j++ {
				g.fill(s.Elem(j), depth+1)
			}
		case fast.TypeGroup:
			g.fill(grp.SetGroup(i), depth+1)
		}
	}
}

// TestRandomMessages encodes random messages of every template of every file with both
// encoders (streams with and without resets between messages), and decodes the bytes with
// both decoders.
func TestRandomMessages(t *testing.T) {
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			p := newPair(f, t)
			fl := &filler{r: rand.New(rand.NewPCG(1, uint64(len(f.name)))), last: map[*fast.Field]int64{}}
			var m fast.Message
			ok := 0
			for _, tmpl := range p.ts.List() {
				for range 60 {
					var stream [][]byte
					p.resetEnc()
					for k := range 6 {
						m.Reset(tmpl)
						fl.fill(m.Root(), 0)
						if fl.r.IntN(3) == 0 { // another template of the file in between
							other := p.ts.List()[fl.r.IntN(len(p.ts.List()))]
							m.Reset(other)
							fl.fill(m.Root(), 0)
						}
						b, err := p.encode(t, &m, fmt.Sprintf("%s message %d", tmpl.Name, k))
						if err != nil {
							p.resetEnc() // the stream's dictionaries went on: restart it
							stream = append(stream, nil)
							continue
						}
						stream = append(stream, b)
					}
					p.resetDec()
					for k, b := range stream {
						if b == nil {
							p.resetDec()
							continue
						}
						// Both decoders must agree; what the interpreter's encoder wrote
						// is not always decodable (a delta past the type's range).
						if _, err := p.decode(t, b, fmt.Sprintf("%s message %d", tmpl.Name, k)); err == nil {
							ok++
						}
					}
				}
			}
			if ok == 0 {
				t.Fatal("no message encoded")
			}
			t.Logf("%d messages", ok)
		})
	}
}

// TestSourceSHA256 checks that every generated package is up to date with its file.
func TestSourceSHA256(t *testing.T) {
	for _, f := range files {
		p := filepath.Join(repoDir(t), f.path)
		if f.shared {
			p = filepath.Join(sharedDir(t), "conformance", f.path)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256Hex(b); got != f.sum {
			t.Errorf("%s: generated from SHA-256 %s, the file is now %s: run go generate", f.name, f.sum, got)
		}
	}
}

// FuzzDecode feeds the same bytes to the interpreter and the generated decoder of every
// file, twice in one stream (dictionary state carried over), and requires the same result.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0xc0, 0x81, 0x80})
	f.Add([]byte{0xe0, 0x81, 0x83, 0x80, 0x84})
	cases := readVectors(&testing.T{}, filepath.Join(sharedDir(f), "conformance", "fast-spec", "spec_vectors.txt"))
	for _, c := range cases {
		for _, v := range c.vectors {
			f.Add(v.wire)
		}
	}
	pairs := make([]*pair, len(files))
	for i, fl := range files {
		pairs[i] = newPair(fl, f)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range pairs {
			p.resetDec()
			n, err := p.decode(t, b, "fuzz")
			if err == nil && n < len(b) {
				p.decode(t, b[n:], "fuzz, second message")
			}
		}
	})
}

// TestLongMessage decodes a message whose strings run far past the first 512 bytes that a
// generated decoder mirrors at once, from a stream that goes on after it.
func TestLongMessage(t *testing.T) {
	f := files[len(files)-2] // fixtures
	if f.name != "fixtures" {
		t.Fatal("files changed order")
	}
	p := newPair(f, t)
	tmpl := p.ts.ByName("MDIncRefresh")
	var m fast.Message
	m.Reset(tmpl)
	g := m.Root()
	g.SetUint(2, 1)
	g.SetUint(3, 2)
	s := g.SetSeq(5, 150)
	for j := 0; j < 150; j++ {
		e := s.Elem(j)
		e.SetUint(0, uint64(j%3))
		e.SetString(1, string(rune('0'+j%2)))
		e.SetString(2, fmt.Sprintf("SYM%04d", j/4))
		e.SetUint(3, uint64(1000+j))
		if j%5 != 0 {
			e.SetString(4, fmt.Sprintf("ORDER-%08d", j))
		}
		e.SetDecimal(5, int64(28455+j*j), -2)
	}
	wire, err := p.encode(t, &m, "long message")
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) < 3000 {
		t.Fatalf("message of %d bytes, want a long one", len(wire))
	}
	stream := append(append([]byte(nil), wire...), wire...)
	p.resetDec()
	n, err := p.decode(t, stream, "long message")
	if err != nil || n != len(wire) {
		t.Fatalf("decoded %d of %d bytes: %v", n, len(wire), err)
	}
	p.resetDec()
	if _, err := p.decode(t, stream[n:], "long message, second copy"); err != nil {
		t.Fatal(err)
	}
}
