package fastgen

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"fastfeed/fast"
)

func (g *gen) emitEncoder() {
	g.w(`// Encoder encodes messages of these templates, keeping the dictionaries between messages
// exactly as a Decoder does; call Reset where the feed resets them. Mandatory constants may
// be left zero (nil). An Encoder is not safe for concurrent use.
type Encoder struct {
	fastrt.Enc
	d dictionary
}

// NewEncoder returns an encoder with every dictionary entry undefined.
func NewEncoder() *Encoder {
	c := &Encoder{}
	c.Gen = 2
	return c
}

// Reset makes every dictionary entry undefined.
func (c *Encoder) Reset() {
	if c.Dict.Reset() {
		c.d.clearGen()
	}
}

// Encode appends the encoding of m (the member m.ID names) to dst. On error it returns dst
// unchanged.
func (c *Encoder) Encode(dst []byte, m *Message) ([]byte, error) {
	switch m.ID {
`)
	for _, t := range g.tmpls {
		g.w("case %d:\nreturn c.Encode%s(dst, &m.%s)\n", t.t.ID, t.seg.typeName, t.seg.typeName)
	}
	g.w("}\nreturn dst, fastrt.EncErr(fast.Missing, nil, \"unknown template identifier\")\n}\n\n")
	for _, t := range g.tmpls {
		s := t.seg
		g.w("// Encode%s appends the encoding of a %s message to dst.\n", s.typeName, t.t.Name)
		g.w("func (c *Encoder) Encode%s(dst []byte, v *%s) ([]byte, error) {\n", s.typeName, s.typeName)
		g.w("if c.Gen == 0 {\nc.Gen = 2\n}\nc.Depth = 0\nvar pm fastrt.PMapW\n")
		g.reserve("dst", "pm", s.bits, "out :=")
		g.w("if c.d.tid.G == c.Gen && uint32(c.d.tid.I) == %d {\npm.Bit(out, false)\n} else {\npm.Bit(out, true)\nout = fast.AppendUint(out, %d)\nc.SetInt(&c.d.tid, fast.TypeUint32, %d, 0)\n}\n", t.t.ID, t.t.ID, t.t.ID)
		if t.t.ResetEach {
			g.w("c.Reset()\n")
		}
		g.w("out, err := c.e%d(out, v, &pm)\nif err != nil {\nreturn dst, fastrt.SetTemplate(err, %q)\n}\n", s.id, t.t.Name)
		if s.bits <= 7 {
			// fastrt.Finish of a one-byte map, written out.
			g.w("out[pm.Start] = byte(pm.Reg<<uint(7-pm.N)) | 0x80\n")
		} else {
			g.w("out = fastrt.Finish(out, &pm)\n")
		}
		if t.t.Reset {
			g.w("c.Reset()\n")
		}
		g.w("return out, nil\n}\n\n")
	}
	for _, s := range g.segs {
		g.encSegment(s)
	}
}

// reserve writes the start of a presence map of bits bits at the end of slice from.
func (g *gen) reserve(from, pm string, bits int, assign string) {
	if bits <= 7 {
		g.w("%s = fastrt.PMapW{Start: len(%s), Size: 1}\n%s append(%s, 0)\n", pm, from, assign, from)
		return
	}
	g.w("%s fastrt.Reserve(%s, &%s, %d)\n", assign, from, pm, bits)
}

func (g *gen) encSegment(s *segment) {
	if s.encInlined {
		return // written out where it is used
	}
	g.w("func (c *Encoder) e%d(out []byte, v *%s, pm *fastrt.PMapW) ([]byte, error) {\n", s.id, s.typeName)
	g.w("var err error\n_ = err\n")
	g.buf.WriteString(g.encBody(s, false))
	g.w("return out, nil\n}\n\n")
}

// encBody returns the code that encodes segment s from v, with its presence map. Inline
// (inside its parent, for a segment of inlinable) it keeps to its own block and names its
// own map directly, never through pm.
func (g *gen) encBody(s *segment, inline bool) string {
	saved := g.buf
	g.buf = bytes.Buffer{}
	defer func() { g.buf = saved }()
	reg := regMode(s)
	own := s.owner != nil && s.ownPmap
	// A segment with its own map whose fields each take a fixed number of bits (no group,
	// no sequence, no optional decimal whose mantissa takes a bit) counts them at
	// generation time: no pmn register.
	static := reg && own && staticBits(s)
	switch {
	case static && s.bits <= 7:
		// A one-byte map written at the end: its offset is all it needs (a PMapW
		// on the stack cost six instructions per element to clear and fill).
		g.w("ownStart := len(out)\nout = append(out, 0)\n")
	case own:
		g.w("var own fastrt.PMapW\n")
		g.reserve("out", "own", s.bits, "out =")
		if !inline {
			g.w("pm = &own\n")
		}
	}
	nbits := 0
	var body bytes.Buffer
	for _, f := range s.fields {
		var tmp bytes.Buffer
		g.buf, tmp = tmp, g.buf
		g.w("// %s\n", f.f.Name)
		g.encField(f)
		g.buf, tmp = tmp, g.buf
		code := inlineAppends(tmp.String())
		if reg {
			code = toRegW(code)
		}
		// The parent's bits wait in its map while an inline sequence's elements are written:
		// two registers fewer across the element loop.
		if reg {
			code = strings.ReplaceAll(code, spillMark, fmt.Sprintf("%s.Reg, %s.N = pmr, pmn\n", mapName(inline, own), mapName(inline, own)))
			code = strings.ReplaceAll(code, fillMark, fmt.Sprintf("pmr, pmn = %s.Reg, %s.N\n", mapName(inline, own), mapName(inline, own)))
		} else {
			code = strings.ReplaceAll(code, spillMark, "")
			code = strings.ReplaceAll(code, fillMark, "")
		}
		if static {
			code = strings.ReplaceAll(code, "pmn++\n", "")
			code = strings.ReplaceAll(code, "tpw := fastrt.PMapW{Reg: pmr, N: pmn}", fmt.Sprintf("tpw := fastrt.PMapW{Reg: pmr, N: %d}", nbits))
			code = strings.ReplaceAll(code, "pmr, pmn = tpw.Reg, tpw.N", "pmr = tpw.Reg")
			if strings.Contains(code, "pmn") {
				panic("fastgen: pmn left in a segment with a static bit count:\n" + code)
			}
			nbits += fieldBits(f)
		}
		body.WriteString(code)
	}
	// In register mode the bits collect in pmr (pmn of them) and go into the map at the end.
	mp := mapName(inline, own)
	if reg {
		switch {
		case static:
			g.w("pmr := uint64(0)\n")
		case own:
			g.w("pmr, pmn := uint64(0), 0\n") // the map was just reserved
		default:
			g.w("pmr, pmn := %s.Reg, %s.N\n", mp, mp)
		}
	}
	g.buf.Write(body.Bytes())
	switch {
	case static && s.bits <= 7:
		g.w("out[ownStart] = byte(pmr<<%d) | 0x80\n", 7-nbits)
		return g.buf.String()
	case static:
		g.w("%s.Reg, %s.N = pmr, %d\n", mp, mp, nbits)
	case reg && own && s.bits <= 7:
		// A one-byte map: its bits, left-aligned, and the stop bit.
		g.w("out[own.Start] = byte(pmr<<uint(7-pmn)) | 0x80\n")
		return g.buf.String()
	case reg:
		g.w("%s.Reg, %s.N = pmr, pmn\n", mp, mp)
	}
	if own {
		g.w("out = fastrt.Finish(out, &own)\n")
	}
	return g.buf.String()
}

// mapName is the variable of the presence map a segment's code writes.
func mapName(inline, own bool) string {
	if inline && own {
		return "own"
	}
	return "pm"
}

// spillMark and fillMark mark where an inline sequence's element loop begins and ends
// (encBody stores the parent's map registers before it and loads them after).
const (
	spillMark = "//fastgen:spill\n"
	fillMark  = "//fastgen:fill\n"
)

// staticBits reports whether every field of s takes a fixed number of presence map bits
// whatever the values (see fieldBits).
func staticBits(s *segment) bool {
	for _, f := range s.fields {
		switch {
		case f.f.Type == fast.TypeGroup || f.f.Type == fast.TypeSequence:
			return false
		case f.in.Split && f.f.Mantissa.Info().Bit:
			return false // absent with a NULL exponent, the mantissa takes no bit
		}
	}
	return true
}

// fieldBits is the number of presence map bits a field of a staticBits segment takes.
func fieldBits(f *field) int {
	if f.in.Split {
		if f.f.Exponent.Info().Bit {
			return 1
		}
		return 0
	}
	if f.in.Bit {
		return 1
	}
	return 0
}

// outMark begins an assignment to out that inlineAppends has already rewritten.
const outMark = "out =\x00 "

var (
	reAppInt  = regexp.MustCompile(`(?m)^out = fastrt\.AppendInt\(out, (.*)\)$`)
	reAppUint = regexp.MustCompile(`(?m)^out = fast\.AppendUint\(out, (.*)\)$`)
	reAppByte = regexp.MustCompile(`(?m)^out = append\(out, (.*)\)$`)
	reBitVar  = regexp.MustCompile(`pm\.Bit\(out, (v\.\w+)\)\n`)
	reEncCall = regexp.MustCompile(`(?m)^if out, err = (c\.\w+\(out, \w+, )pm(, .*); err != nil \{\nreturn out, err\n\}$`)
	reLeftW   = regexp.MustCompile(`\bpm\.`)
)

// inlineAppends rewrites a field's appends of one byte, and of integers that fit in one,
// as a store into the spare capacity of out (the common case: small deltas, nulls), with
// the append or the fastrt call for the rest. A store after out[:n+1] needs no call site,
// so the values live across it need not be spilled.
func inlineAppends(code string) string {
	// The fallbacks are marked (outMark) so that the rewriting of an enclosing field's code
	// (a sequence or group written out inline) leaves them alone; Generate removes the marks.
	code = reAppInt.ReplaceAllString(code, "if x, n := int64($1), len(out); uint64(x+64) < 128 && n < cap(out) {\nout = out[:n+1]\nout[n] = byte(x)&0x7f | 0x80\n} else if w := out[n:cap(out)]; uint64(x+8192) < 16384 && len(w) >= 2 {\nw[0], w[1] = byte(x>>7)&0x7f, byte(x)&0x7f|0x80\nout = out[:n+2]\n} else {\n"+outMark+"fastrt.AppendInt(out, x)\n}")
	code = reAppUint.ReplaceAllString(code, "if x, n := uint64($1), len(out); x < 128 && n < cap(out) {\nout = out[:n+1]\nout[n] = byte(x) | 0x80\n} else if w := out[n:cap(out)]; x < 16384 && len(w) >= 2 {\nw[0], w[1] = byte(x>>7), byte(x)&0x7f|0x80\nout = out[:n+2]\n} else {\n"+outMark+"fast.AppendUint(out, x)\n}")
	code = reAppByte.ReplaceAllString(code, "if n := len(out); n < cap(out) {\nout = out[:n+1]\nout[n] = $1\n} else {\n"+outMark+"append(out, $1)\n}")
	return code
}

// toRegW rewrites a field's encoding for a presence map collected in registers.
func toRegW(code string) string {
	code = strings.ReplaceAll(code, "pm.Bit(out, false)\n", "pmr <<= 1\npmn++\n")
	code = strings.ReplaceAll(code, "pm.Bit(out, true)\n", "pmr = pmr<<1 | 1\npmn++\n")
	code = reBitVar.ReplaceAllString(code, "pmr <<= 1\npmn++\nif $1 {\npmr |= 1\n}\n")
	code = reEncCall.ReplaceAllString(code, "{\ntpw := fastrt.PMapW{Reg: pmr, N: pmn}\nout, err = ${1}&tpw${2}\npmr, pmn = tpw.Reg, tpw.N\nif err != nil {\nreturn out, err\n}\n}")
	code = strings.ReplaceAll(code, ", pm); err != nil", ", nil); err != nil")
	if reLeftW.MatchString(code) {
		panic("fastgen: presence map use left in register mode:\n" + code)
	}
	return code
}

func (g *gen) encField(f *field) {
	ff := f.f
	in := f.in
	has := "true"
	if f.has != "" {
		has = "v." + f.has
	}
	switch {
	case f.cval != "":
		switch {
		case isVector(ff.Type):
			g.w("if v.%s != nil && string(v.%s) != string(%s) {\nreturn out, fastrt.EncErr(fast.Unencodable, %s, \"value differs from the constant\")\n}\n", f.name, f.name, f.cval, f.fv)
		case ff.Type == fast.TypeDecimal:
			g.w("if v.%s != (fastrt.Decimal{}) && v.%s != (%s) {\nreturn out, fastrt.EncErr(fast.Unencodable, %s, \"value differs from the constant\")\n}\n", f.name, f.name, f.cval, f.fv)
		default:
			g.w("if v.%s != 0 && v.%s != %s {\nreturn out, fastrt.EncErr(fast.Unencodable, %s, \"value differs from the constant\")\n}\n", f.name, f.name, f.cval, f.fv)
		}
		return
	case ff.Type == fast.TypeSequence:
		g.encSequence(f)
		return
	case ff.Type == fast.TypeGroup:
		if f.has != "" {
			g.w("pm.Bit(out, v.%s)\nif v.%s {\n", f.has, f.has)
		} else {
			g.w("{\n")
		}
		g.w("%s", encEnter(f.fv))
		if inlinable(f.elem) {
			f.elem.encInlined = true
			g.w("{\nv := &v.%s\n%s}\nc.Depth--\n}\n", f.name, g.encBody(f.elem, true))
			return
		}
		g.w("if out, err = c.e%d(out, &v.%s, pm); err != nil {\nreturn out, err\n}\nc.Depth--\n}\n", f.elem.id, f.name)
		return
	}
	general := g.encGeneral(f)
	switch {
	case isInt(ff.Type) && ff.Op == fast.OpNone:
		app := "fast.AppendUint(out, uint64(v.%s))"
		if isSigned(ff.Type) {
			app = "fastrt.AppendInt(out, int64(v.%s))"
		}
		if !in.Nullable {
			g.w("out = "+app+"\n", f.name)
			return
		}
		if isSigned(ff.Type) {
			g.w("if !v.%s {\nout = append(out, 0x80)\n} else if x := int64(v.%s); x >= 0 && x < 0x3f {\nout = append(out, byte(x+1)|0x80)\n} else {\nout = fast.AppendIntNullable(out, x)\n}\n", f.has, f.name)
		} else {
			g.w("if !v.%s {\nout = append(out, 0x80)\n} else if x := uint64(v.%s); x < 0x7f {\nout = append(out, byte(x+1)|0x80)\n} else {\nout = fast.AppendUintNullable(out, x)\n}\n", f.has, f.name)
		}
	case isInt(ff.Type) && (ff.Op == fast.OpCopy || ff.Op == fast.OpIncrement) && !in.TypeCheck:
		cond := fmt.Sprintf("e.G == c.Gen && e.I == int64(v.%s)", f.name)
		if ff.Op == fast.OpIncrement {
			cond = fmt.Sprintf("e.G == c.Gen && e.I+1 == int64(v.%s) && e.I+1 > e.I", f.name)
			if ff.Type == fast.TypeUint64 {
				cond += fmt.Sprintf(" && v.%s != 0", f.name)
			}
		}
		if f.has != "" {
			cond = "v." + f.has + " && " + cond
		}
		g.w("if e := %s; %s {\npm.Bit(out, false)\n", g.slot(ff), cond)
		if ff.Op == fast.OpIncrement {
			g.w("e.I++\n")
		}
		// A value the decoder cannot infer: sent, and recorded.
		send := "e.G == c.Gen"
		if !in.HasInit {
			send = "true"
		}
		if f.has != "" {
			send = "v." + f.has + " && (" + send + ")"
		}
		var app string
		switch {
		case !in.Nullable && !isSigned(ff.Type):
			app = "fast.AppendUint(out, uint64(v.%s))"
		case !in.Nullable:
			app = "fastrt.AppendInt(out, int64(v.%s))"
		case isSigned(ff.Type):
			app = "fast.AppendIntNullable(out, int64(v.%s))"
		default:
			app = "fast.AppendUintNullable(out, uint64(v.%s))"
		}
		g.w("} else if e := %s; %s {\npm.Bit(out, true)\nout = "+app+"\ne.G, e.T, e.I, e.E = c.Gen, %d, int64(v.%s), 0\n", g.slot(ff), send, f.name, ff.Type, f.name)
		g.w("} else {\n%s}\n", general)
	case ff.Type == fast.TypeDecimal && ff.Op == fast.OpNone && !in.Split:
		if in.Nullable {
			g.w("if !v.%s {\nout = append(out, 0x80)\n} else ", f.has)
		}
		g.w("if x := v.%s; x.Exponent >= -63 && x.Exponent <= 63 {\nexp := int64(x.Exponent)\n", f.name)
		if in.Nullable {
			g.w("if exp >= 0 {\nexp++\n}\n")
		}
		g.w("out = fastrt.AppendInt(out, exp)\nout = fastrt.AppendInt(out, x.Mantissa)\n} else {\n%s}\n", general)
	case ff.Type == fast.TypeASCII && ff.Op == fast.OpNone:
		if in.Nullable {
			g.w("if !v.%s {\nout = append(out, 0x80)\n} else ", f.has)
		}
		g.w("if x, n := v.%s, len(out); len(x) > 0 && x[0] != 0 && cap(out)-n >= len(x) && fastrt.PutASCII(out[n:n+len(x)], x) {\nout = out[:n+len(x)]\n} else ", f.name)
		g.w("if o, ok := fastrt.AppendASCII(out, v.%s, %v); ok {\nout = o\n} else {\n%s}\n", f.name, in.Nullable, general)
	case ff.Type == fast.TypeASCII && ff.Op == fast.OpCopy && !in.TypeCheck:
		// The copy into the dictionary value is a byte loop when it fits (short strings:
		// symbols, entry types; a memmove call costs more). The comparison stays a string
		// comparison (written as a byte loop it cost 5% more instructions).
		g.w("{\n")
		cond := fmt.Sprintf("e.G == c.Gen && fastrt.Eq(e.B, v.%s)", f.name)
		if f.has != "" {
			cond = "v." + f.has + " && " + cond
		}
		send := "e.G == c.Gen"
		if !in.HasInit {
			send = "true"
		}
		if f.has != "" {
			send = "v." + f.has + " && (" + send + ")"
		}
		// A short ASCII value with room in out is written in place (fastrt.PutASCII,
		// inlined); AppendASCII for the rest.
		save := fmt.Sprintf("if x := v.%s; len(x) <= cap(e.B) {\nd := e.B[:len(x)]\nfastrt.CopyShort(d, x)\ne.B = d\n} else {\ne.B = append(e.B[:0], x...)\n}\n", f.name)
		g.w("if e := %s; %s {\npm.Bit(out, false)\n} else if x, n := v.%s, len(out); (%s) && len(x) > 0 && x[0] != 0 && cap(out)-n >= len(x) && fastrt.PutASCII(out[n:n+len(x)], x) {\npm.Bit(out, true)\nout = out[:n+len(x)]\ne.G, e.T, e.Msg = c.Gen, %d, 0\n%s",
			g.slot(ff), cond, f.name, send, ff.Type, save)
		g.w("} else if o, ok := fastrt.AppendASCII(out, v.%s, %v); ok && (%s) {\npm.Bit(out, true)\nout = o\ne.G, e.T, e.Msg = c.Gen, %d, 0\n",
			f.name, in.Nullable, send, ff.Type)
		g.w("%s} else {\n%s}\n}\n", save, general)
	case in.Split && ff.Exponent.Op == fast.OpCopy && ff.Mantissa.Op == fast.OpDelta && !ff.Exponent.Info().TypeCheck && !ff.Mantissa.Info().TypeCheck && !ff.Mantissa.Info().HasInit:
		x := ff.Exponent.Info()
		cond := fmt.Sprintf("v.%s.Exponent >= -63 && v.%s.Exponent <= 63 && me.G != c.Gen+1", f.name, f.name)
		if f.has != "" {
			cond = "v." + f.has + " && " + cond
		}
		g.w("if ee, me := %s, %s; %s {\nbase := int64(0)\nif me.G == c.Gen {\nbase = me.I\n}\n", g.slot(ff.Exponent), g.slot(ff.Mantissa), cond)
		g.w("m, exp := v.%s.Mantissa, int64(v.%s.Exponent)\nd := m - base\nsent := true\n", f.name, f.name)
		g.w("if (m^base)&(m^d) < 0 {\nsent = false\n} else if ee.G == c.Gen && ee.I == exp {\npm.Bit(out, false)\n}")
		sendExp := "ee.G == c.Gen"
		if !x.HasInit {
			sendExp = "true"
		}
		app := "fastrt.AppendInt(out, exp)"
		if x.Nullable {
			app = "fast.AppendIntNullable(out, exp)"
		}
		g.w(" else if %s {\npm.Bit(out, true)\nout = %s\nee.G, ee.T, ee.I, ee.E = c.Gen, %d, exp, 0\n} else {\nsent = false\n}\n", sendExp, app, ff.Exponent.Type)
		g.w("if sent {\nout = fastrt.AppendInt(out, d)\nme.G, me.T, me.I, me.E = c.Gen, %d, m, 0\n} else {\n%s}\n} else {\n%s}\n", ff.Mantissa.Type, general, general)
	default:
		g.w("%s", general)
	}
	_ = has
}

// encEnter is c.Enter(fv) written out: a call only for the error.
func encEnter(fv string) string {
	return fmt.Sprintf("if c.Depth < fastrt.MaxDepth {\nc.Depth++\n} else if err := c.Enter(%s); err != nil {\nreturn out, err\n}\n", fv)
}

func (g *gen) encGeneral(f *field) string {
	ff := f.f
	has := "true"
	if f.has != "" {
		has = "v." + f.has
	}
	switch {
	case isInt(ff.Type):
		return fmt.Sprintf("if out, err = c.Int(out, %s, pm, %s, int64(v.%s), %s); err != nil {\nreturn out, err\n}\n", f.fv, g.slot(ff), f.name, has)
	case ff.Type == fast.TypeDecimal && f.in.Split:
		return fmt.Sprintf("if out, err = c.SplitDecimal(out, %s, pm, %s, %s, v.%s.Mantissa, v.%s.Exponent, %s); err != nil {\nreturn out, err\n}\n",
			f.fv, g.slot(ff.Exponent), g.slot(ff.Mantissa), f.name, f.name, has)
	case ff.Type == fast.TypeDecimal:
		return fmt.Sprintf("if out, err = c.Decimal(out, %s, pm, %s, v.%s.Mantissa, v.%s.Exponent, %s); err != nil {\nreturn out, err\n}\n", f.fv, g.slot(ff), f.name, f.name, has)
	}
	return fmt.Sprintf("if out, err = c.Vector(out, %s, pm, %s, v.%s, %s); err != nil {\nreturn out, err\n}\n", f.fv, g.slot(ff), f.name, has)
}

func (g *gen) encSequence(f *field) {
	ff := f.f
	lf := ff.Length
	has := "true"
	if f.has != "" {
		has = "v." + f.has
	}
	if lf.Op == fast.OpNone && !lf.Info().Nullable {
		g.w("out = fast.AppendUint(out, uint64(len(v.%s)))\n", f.name)
	} else {
		g.w("if out, err = c.Int(out, %s, pm, %s, int64(len(v.%s)), %s); err != nil {\nreturn out, err\n}\n", g.fvar(lf), g.slot(lf), f.name, has)
	}
	g.w("if %s {\n%s", has, encEnter(f.fv))
	// As in the decoder: elements without a presence map are encoded by a function of
	// their own (MOEX 3 trades -7%; elements with a map lost 4% that way).
	if inlinable(f.elem) && f.elem.ownPmap {
		f.elem.encInlined = true
		// The loop walks a slice (one pointer for the element) rather than an index
		// (a base and an offset, both kept or reloaded).
		g.w("%sfor es := v.%s; len(es) > 0; es = es[1:] {\nv := &es[0]\n%s}\n%sc.Depth--\n}\n", spillMark, f.name, g.encBody(f.elem, true), fillMark)
		return
	}
	g.w("for j := range v.%s {\nif out, err = c.e%d(out, &v.%s[j], pm); err != nil {\nreturn out, err\n}\n}\nc.Depth--\n}\n", f.name, f.elem.id, f.name)
}
