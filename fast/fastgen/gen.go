// Package fastgen generates Go code for the templates of a FAST template file: one struct
// per template (and per sequence element and group), a Decoder and an Encoder whose code
// is written out per template, field after field, with dictionary entries as named fields,
// presence-map bits tested inline and the common field instructions (integers, ASCII
// strings and decimals without operator, copy and increment of integers, copy of ASCII
// strings, copy/delta decimals) decoded and encoded without a call. Everything rarer, and
// every error, goes through package fastrt, whose semantics are the interpreter's (package
// fast); a differential test proves generated == interpreted.
//
// An optional field has a HasX flag beside its value X; the value of an absent field is
// not cleared by the decoder (it is meaningful only when the flag is set), which saves the
// stores for the many absent fields of real feeds. A mandatory constant is always set.
//
// Byte slices of decoded messages alias the decoder's buffers or the input (byte vectors
// and unicode strings) and are valid until the next Decode; constants alias static data and
// must not be modified.
package fastgen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/format"
	"sort"
	"strconv"
	"strings"

	"fastfeed/fast"
)

// Config says what to generate.
type Config struct {
	Package string // Go package name
	Source  string // template file name, for the header comment
}

// Generate returns the Go source of a codec for the template XML in xml.
func Generate(xml []byte, cfg Config) ([]byte, error) {
	ts, err := fast.Load(bytes.NewReader(xml))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(xml)
	g := &gen{ts: ts, cfg: cfg, sum: hex.EncodeToString(sum[:]), types: namer{}, vars: namer{}}
	if err := g.build(); err != nil {
		return nil, err
	}
	g.emit()
	src, err := format.Source(bytes.ReplaceAll(g.buf.Bytes(), []byte(outMark), []byte("out = ")))
	if err != nil {
		return g.buf.Bytes(), fmt.Errorf("fastgen: formatting the generated code: %w", err)
	}
	return src, nil
}

type gen struct {
	ts    *fast.Templates
	cfg   Config
	sum   string
	buf   bytes.Buffer
	types namer
	vars  namer

	tmpls    []*tmpl
	segs     []*segment
	fieldVar map[*fast.Field]string
	slots    map[int32]string // slot -> dictionary field name
	consts   []string         // declarations of constant byte values
	fieldDec []string         // declarations of fastrt.Field values
	labels   int              // labels written so far (decoder fields' ends)
	lazy     []string         // entries with a bit in the decoder's dirty mask, in bit order
}

type tmpl struct {
	t   *fast.Template
	seg *segment
}

type segment struct {
	typeName string
	fields   []*field
	ownPmap  bool
	bits     int
	owner    *fast.Field // sequence or group; nil for a template
	ownerVar string
	id       int
	inlined  bool // decoded inside its parent's code
	// encInlined: encoded inside its parent's code.
	encInlined bool
}

type field struct {
	f    *fast.Field
	in   fast.FieldInfo
	name string // Go field
	has  string // presence flag, "" when mandatory
	fv   string // fastrt.Field variable
	elem *segment
	cval string // mandatory constant: Go expression of the value
}

func (g *gen) w(format string, args ...any) { fmt.Fprintf(&g.buf, format, args...) }

func (g *gen) build() error {
	g.fieldVar = map[*fast.Field]string{}
	g.slots = map[int32]string{}
	g.types.take("Message")
	g.types.take("Decoder")
	g.types.take("Encoder")
	g.types.take("Decimal")
	for _, t := range g.ts.List() {
		name := g.types.take(goName(t.Name))
		seg, err := g.segment(name, t.Fields, nil)
		if err != nil {
			return fmt.Errorf("template %s: %w", t.Name, err)
		}
		seg.ownPmap = true
		seg.bits = t.PmapBits()
		g.tmpls = append(g.tmpls, &tmpl{t: t, seg: seg})
	}
	return nil
}

func (g *gen) fvar(f *fast.Field) string {
	if v, ok := g.fieldVar[f]; ok {
		return v
	}
	v := g.vars.take("f" + goName(f.Name))
	g.fieldVar[f] = v
	in := f.Info()
	var b strings.Builder
	fmt.Fprintf(&b, "%s = &fastrt.Field{Name: %q, Type: %d, Op: %d, Optional: %v, Nullable: %v, HasInit: %v, TypeCheck: %v, InitInt: %d, InitExp: %d, Key: %q, Entry: %d",
		v, f.Name, f.Type, f.Op, f.Optional, in.Nullable, in.HasInit, in.TypeCheck, in.InitInt, in.InitExp, in.Key, in.Slot)
	if in.InitBytes != nil {
		fmt.Fprintf(&b, ", InitBytes: []byte(%q)", in.InitBytes)
	}
	if in.Split {
		fmt.Fprintf(&b, ", Exponent: %s, Mantissa: %s", g.fvar(f.Exponent), g.fvar(f.Mantissa))
	}
	b.WriteString("}")
	g.fieldDec = append(g.fieldDec, b.String())
	return v
}

func (g *gen) slot(f *fast.Field) string {
	s := f.Info().Slot
	if s < 0 {
		return "nil"
	}
	if _, ok := g.slots[s]; !ok {
		g.slots[s] = "s" + strconv.Itoa(int(s)) + goName(f.Info().Key)
	}
	return "&c.d." + g.slots[s]
}

func (g *gen) segment(typeName string, fs []*fast.Field, owner *fast.Field) (*segment, error) {
	seg := &segment{typeName: typeName, owner: owner, id: len(g.segs)}
	g.segs = append(g.segs, seg)
	if owner != nil {
		seg.ownerVar = g.fvar(owner)
		in := owner.Info()
		seg.ownPmap, seg.bits = in.SegmentPmap, in.SegmentBits
	}
	names := namer{}
	for _, f := range fs {
		if f.Type == fast.TypeTemplateRef {
			return nil, fmt.Errorf("line %d: dynamic template references are not supported by generated code (the interpreter decodes them)", f.Line)
		}
		gf := &field{f: f, in: f.Info(), name: names.take(goName(f.Name)), fv: g.fvar(f)}
		if f.Optional {
			gf.has = names.take("Has" + gf.name)
		}
		if f.Op == fast.OpConstant && !f.Optional && f.Type != fast.TypeSequence && f.Type != fast.TypeGroup {
			gf.cval = g.constExpr(f)
		}
		// Make sure the dictionary entries exist.
		for _, x := range []*fast.Field{f, f.Exponent, f.Mantissa, f.Length} {
			if x != nil {
				g.slot(x)
				g.fvar(x)
			}
		}
		switch f.Type {
		case fast.TypeSequence, fast.TypeGroup:
			el, err := g.segment(g.types.take(typeName+goName(f.Name)), f.Fields, f)
			if err != nil {
				return nil, err
			}
			gf.elem = el
		}
		seg.fields = append(seg.fields, gf)
	}
	return seg, nil
}

func (g *gen) constExpr(f *fast.Field) string {
	in := f.Info()
	switch f.Type {
	case fast.TypeDecimal:
		return fmt.Sprintf("fastrt.Decimal{Mantissa: %d, Exponent: %d}", in.InitInt, in.InitExp)
	case fast.TypeASCII, fast.TypeUnicode, fast.TypeBytes:
		v := g.vars.take("c" + goName(f.Name))
		g.consts = append(g.consts, fmt.Sprintf("%s = []byte(%q)", v, in.InitBytes))
		return v
	}
	return fmt.Sprintf("%s(%d)", goType(f.Type), uint64OrInt(f.Type, in.InitInt))
}

func uint64OrInt(t fast.Type, v int64) any {
	if t == fast.TypeUint32 || t == fast.TypeUint64 {
		return uint64(v)
	}
	return v
}

func goType(t fast.Type) string {
	switch t {
	case fast.TypeUint32:
		return "uint32"
	case fast.TypeInt32:
		return "int32"
	case fast.TypeUint64:
		return "uint64"
	case fast.TypeInt64:
		return "int64"
	case fast.TypeDecimal:
		return "fastrt.Decimal"
	}
	return "[]byte"
}

func isInt(t fast.Type) bool    { return t >= fast.TypeUint32 && t <= fast.TypeInt64 }
func isSigned(t fast.Type) bool { return t == fast.TypeInt32 || t == fast.TypeInt64 }
func isVector(t fast.Type) bool {
	return t == fast.TypeASCII || t == fast.TypeUnicode || t == fast.TypeBytes
}

func (g *gen) emit() {
	src := g.cfg.Source
	if src == "" {
		src = "a template file"
	}
	g.w("// Code generated by fastfeed gen from %s; DO NOT EDIT.\n\n", src)
	g.w("// Package %s is a FAST codec generated for the templates of %s.\n", g.cfg.Package, src)
	g.w("package %s\n\n", g.cfg.Package)
	g.w("import (\n\"encoding/binary\"\n\"math/bits\"\n\n\"fastfeed/fast\"\n\"fastfeed/fast/fastrt\"\n)\n\n")
	g.w("var (\n_ = binary.LittleEndian\n_ = bits.TrailingZeros64\n)\n\n")
	g.w("// SourceSHA256 is the SHA-256 of the template file the code was generated from.\n")
	g.w("const SourceSHA256 = %q\n\n", g.sum)
	g.w("// Template identifiers.\nconst (\n")
	for _, t := range g.tmpls {
		g.w("ID%s = %d // %s\n", t.seg.typeName, t.t.ID, t.t.Name)
	}
	g.w(")\n\n")
	g.emitTypes()
	g.emitDict()
	g.emitDecoder()
	g.emitEncoder()
	g.emitConvert()
	g.w("var (\n")
	for _, c := range g.consts {
		g.w("%s\n", c)
	}
	for _, d := range g.fieldDec {
		g.w("%s\n", d)
	}
	g.w(")\n")
}

func (g *gen) emitTypes() {
	g.w("// Message holds one message of any template: ID says which member holds it.\n")
	g.w("type Message struct {\nID uint32\n")
	for _, t := range g.tmpls {
		g.w("%s %s\n", t.seg.typeName, t.seg.typeName)
	}
	g.w("}\n\n")
	for _, s := range g.segs {
		if s.owner == nil {
			g.w("// %s is a message of template %s.\n", s.typeName, s.typeName)
		} else {
			g.w("// %s is an element of %s.\n", s.typeName, s.owner.Name)
		}
		g.w("type %s struct {\n", s.typeName)
		for _, f := range s.fields {
			typ := goType(f.f.Type)
			switch f.f.Type {
			case fast.TypeSequence:
				typ = "[]" + f.elem.typeName
			case fast.TypeGroup:
				typ = f.elem.typeName
			}
			g.w("%s %s // %s", f.name, typ, f.f.Name)
			if f.f.ID != 0 {
				g.w(" (%d)", f.f.ID)
			}
			if f.cval != "" {
				g.w(", constant")
			}
			g.w("\n")
			if f.has != "" {
				g.w("%s bool\n", f.has)
			}
		}
		g.w("}\n\n")
	}
}

func (g *gen) emitDict() {
	var slots []int32
	for s := range g.slots {
		slots = append(slots, s)
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i] < slots[j] })
	g.w("// dictionary holds every dictionary entry of the templates as a field.\ntype dictionary struct {\ntid fastrt.Entry\n")
	for _, s := range slots {
		g.w("%s fastrt.Entry\n", g.slots[s])
	}
	g.w("}\n\n")
	g.w("func (d *dictionary) clearGen() {\nd.tid.G = 0\n")
	for _, s := range slots {
		g.w("d.%s.G = 0\n", g.slots[s])
	}
	g.w("}\n\n")
	g.w("func (d *dictionary) clearMsg() {\n")
	for _, s := range slots {
		g.w("d.%s.Msg = 0\n", g.slots[s])
	}
	g.w("}\n\n")
}
