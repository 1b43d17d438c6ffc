package fastgen

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"fastfeed/fast"
)

func (g *gen) emitDecoder() {
	g.w(`// Decoder decodes messages of these templates. It keeps the dictionaries between messages,
// as a FAST stream requires; call Reset where the feed resets them. Byte slices of a decoded
// Message are valid until the next Decode. A Decoder is not safe for concurrent use.
type Decoder struct {
	fastrt.Dec
	d dictionary
	// dirty has a bit per copy-operator ASCII entry whose B is stale (its value is Cur,
	// current in this message): flush copies Cur into B before the next message, unless
	// the dictionary was reset in between.
	dirty uint64
}

// NewDecoder returns a decoder with every dictionary entry undefined.
func NewDecoder() *Decoder {
	c := &Decoder{}
	c.Gen = 2
	return c
}

// Reset makes every dictionary entry undefined.
func (c *Decoder) Reset() {
	if c.Dict.Reset() {
		c.d.clearGen()
	}
}

// Decode decodes the message at the start of b into m and returns the number of bytes it
// used. Errors are *fast.Error values with the byte offset in b, as the interpreter's.
func (c *Decoder) Decode(b []byte, m *Message) (int, error) {
	if c.Gen == 0 {
		c.Gen = 2
	}
	if c.dirty != 0 {
		c.flush()
	}
	if c.Begin(b) {
		c.d.clearMsg()
	}
	var pm fastrt.PMap
	var id uint64
	var p, tidAt int
	var err error
	if len(b) >= 3 && b[0]&0xc0 == 0xc0 && (b[1] >= 0x80 || b[1] != 0 && b[2] >= 0x80) {
		// The common start: a one-byte presence map with the template identifier's bit
		// set, and an identifier of one or two bytes.
		pm.Bits, tidAt = uint64(b[0]&0x3f)<<58, 1
		if b[1] >= 0x80 {
			id, p = uint64(b[1]&0x7f), 2
		} else {
			id, p = uint64(b[1])<<7|uint64(b[2]&0x7f), 3
		}
		c.SetInt(&c.d.tid, fast.TypeUint32, int64(id), 0)
	} else {
		if p, err = fastrt.ReadPMap(b, 0, &pm); err != nil {
			return 0, err
		}
		tidAt = p
		if pm.Next(b) {
			x, n := fast.ConsumeUint(b[p:])
			if n < 0 {
				return 0, fastrt.IntErr(n, p, nil)
			}
			if x > 1<<32-1 {
				return 0, fastrt.Err(fast.D2, p, nil, "template identifier exceeds uInt32")
			}
			p += n
			id = x
			c.SetInt(&c.d.tid, fast.TypeUint32, int64(x), 0)
		} else if c.d.tid.G == c.Gen {
			id = uint64(c.d.tid.I)
		} else {
			return 0, fastrt.Err(fast.D5, p, nil, "template identifier absent and no previous one")
		}
	}
	switch id {
`)
	for _, t := range g.tmpls {
		g.w("case %d:\n", t.t.ID)
		g.w("m.ID = %d\n", t.t.ID)
		if t.t.ResetEach {
			g.w("c.Reset()\n")
		}
		if regMode(t.seg) {
			g.w("pmb, pmx := pm.Short(b)\nif p, err = c.d%d(b, p, &m.%s, pmb, pmx); err != nil {\nreturn 0, fastrt.SetTemplate(err, %q)\n}\n", t.seg.id, t.seg.typeName, t.t.Name)
		} else {
			g.w("if p, err = c.d%d(b, p, &m.%s, &pm); err != nil {\nreturn 0, fastrt.SetTemplate(err, %q)\n}\n", t.seg.id, t.seg.typeName, t.t.Name)
			g.w("if pm.Leftover(b) {\nreturn 0, fastrt.SetTemplate(fastrt.Err(fast.R8, p, nil, \"presence map has more bits than the template uses\"), %q)\n}\n", t.t.Name)
		}
		if t.t.Reset {
			g.w("c.Reset()\n")
		}
		g.w("return p, nil\n")
	}
	g.w("}\nreturn 0, fastrt.Err(fast.D9, tidAt, nil, \"unknown template identifier\")\n}\n\n")
	for _, s := range g.segs {
		g.decSegment(s)
	}
	g.w("// flush copies the current values of the entries whose bit is set in c.dirty into\n// their B, where they are still assigned.\nfunc (c *Decoder) flush() {\n")
	for k, slot := range g.lazy {
		g.w("if c.dirty&(1<<%d) != 0 {\nif e := %s; e.Msg == c.Msg && e.G == c.Gen {\ne.B = append(e.B[:0], e.Cur...)\n}\n}\n", k, slot)
	}
	g.w("c.dirty = 0\n}\n\n")
}

// lazyBit returns the bit of c.dirty of the entry slot (g.slot's expression), "" when
// the 64 bits are taken: that entry's B is then written at once.
func (g *gen) lazyBit(slot string) string {
	for k, s := range g.lazy {
		if s == slot {
			return fmt.Sprintf("1 << %d", k)
		}
	}
	if len(g.lazy) == 64 {
		return ""
	}
	g.lazy = append(g.lazy, slot)
	return fmt.Sprintf("1 << %d", len(g.lazy)-1)
}

// regMode reports whether a segment keeps its presence map in a register: it has its own
// map and uses at most 63 bits of it.
func regMode(s *segment) bool { return s.ownPmap && s.bits <= 63 }

func (g *gen) decSegment(s *segment) {
	if s.inlined {
		return // written out where it is used
	}
	reg := regMode(s)
	if s.owner == nil && reg {
		g.w("func (c *Decoder) d%d(b []byte, p int, v *%s, pmb uint64, pmx bool) (int, error) {\n", s.id, s.typeName)
		g.w("var pm *fastrt.PMap\n_ = pm\n")
	} else {
		g.w("func (c *Decoder) d%d(b []byte, p int, v *%s, pm *fastrt.PMap) (int, error) {\n", s.id, s.typeName)
	}
	g.w("var err error\n_ = err\n")
	g.buf.WriteString(g.decBody(s, false))
	g.w("return p, nil\n}\n\n")
}

// inlinable reports whether a sequence element or group is written out in its parent's
// code (no call per element): when its presence map, if any, is a register one.
func inlinable(s *segment) bool { return !s.ownPmap || regMode(s) }

// decBody returns the code that decodes segment s into v at p, reading its presence map.
// Inline (inside its parent) it declares what it needs in its own block.
func (g *gen) decBody(s *segment, inline bool) string {
	saved := g.buf
	g.buf = bytes.Buffer{}
	defer func() { g.buf = saved }()
	reg := regMode(s)
	if s.owner != nil && reg {
		g.w("var pmb uint64\npmx := false\nif uint(p) < uint(len(b)) && b[p] >= 0x80 {\npmb = uint64(b[p]&0x7f) << 57\np++\n} else if pmb, pmx, p, err = fastrt.ReadPMapShort(b, p); err != nil {\nreturn p, err\n}\n")
	} else if s.owner != nil && s.ownPmap {
		assign := "="
		if inline {
			assign = ":="
		}
		g.w("var own fastrt.PMap\nif p, err = fastrt.ReadPMap(b, p, &own); err != nil {\nreturn p, err\n}\npm %s &own\n", assign)
	}
	var body bytes.Buffer
	for _, f := range s.fields {
		var tmp bytes.Buffer
		g.buf, tmp = tmp, g.buf
		g.w("// %s\n", f.f.Name)
		g.decField(s, f)
		g.buf, tmp = tmp, g.buf
		code := tmp.String()
		if reg {
			code = toReg(code)
		}
		body.WriteString(code)
	}
	// The window of ASCII strings is read through c (c.Win), not kept in a local: one live
	// value fewer in the large functions (decode instructions -3 to -5%).
	g.buf.Write(body.Bytes())
	switch {
	case s.owner == nil && reg:
		g.w("if pmb != 0 || pmx {\nreturn p, fastrt.Err(fast.R8, p, nil, \"presence map has more bits than the template uses\")\n}\n")
	case reg:
		g.w("if pmb != 0 || pmx {\nreturn p, fastrt.Err(fast.R8, p, %s, \"presence map has more bits than the segment uses\")\n}\n", s.ownerVar)
	case s.owner != nil && s.ownPmap:
		g.w("if own.Leftover(b) {\nreturn p, fastrt.Err(fast.R8, p, %s, \"presence map has more bits than the segment uses\")\n}\n", s.ownerVar)
	}
	return g.buf.String()
}

var (
	reGroupBit = regexp.MustCompile(`if (v\.\w+) = pm\.Next\(b\); (v\.\w+) \{`)
	reLeft     = regexp.MustCompile(`\bpm\.`)
	reCall     = regexp.MustCompile(`(?m)^(.*:?= c\.\w+\(b, p, \w+, )pm(, .*)$`)
)

// toReg rewrites a field's code for a presence map in the register pmb.
func toReg(code string) string {
	code = reGroupBit.ReplaceAllString(code, "$1 = int64(pmb) < 0\npmb <<= 1\nif $2 {")
	code = strings.ReplaceAll(code, "!pm.Peek(b)", "int64(pmb) >= 0")
	code = strings.ReplaceAll(code, "pm.Peek(b)", "int64(pmb) < 0")
	code = strings.ReplaceAll(code, "pm.Next(b)\n", "pmb <<= 1\n")
	code = reCall.ReplaceAllString(code, "tpm := fastrt.PMap{Bits: pmb}\n${1}&tpm${2}\npmb = tpm.Bits")
	code = strings.ReplaceAll(code, "], pm); err != nil", "], nil); err != nil")
	code = strings.ReplaceAll(code, ", pm); err != nil", ", nil); err != nil")
	if reLeft.MatchString(code) {
		panic("fastgen: presence map use left in register mode:\n" + code)
	}
	return code
}

// setv writes the assignment of a decoded value and its presence.
func setv(f *field, val, present string) string {
	if f.has == "" {
		return fmt.Sprintf("v.%s = %s\n", f.name, val)
	}
	if present == "false" { // an absent field's value is left as it was
		return fmt.Sprintf("v.%s = false\n", f.has)
	}
	return fmt.Sprintf("v.%s, v.%s = %s, %s\n", f.name, f.has, val, present)
}

func (g *gen) decField(s *segment, f *field) {
	ff := f.f
	T := goType(ff.Type)
	switch {
	case f.cval != "":
		g.w("v.%s = %s\n", f.name, f.cval)
		return
	case ff.Type == fast.TypeSequence:
		g.decSequence(f)
		return
	case ff.Type == fast.TypeGroup:
		g.decGroup(f)
		return
	}
	st := g.buf.Len()
	g.w("{\ndone := false\n")
	if f.in.Nullable && ff.Op == fast.OpNone && (isInt(ff.Type) || ff.Type == fast.TypeASCII || ff.Type == fast.TypeDecimal && !f.in.Split) {
		// Null first: most optional fields of real feeds are absent (MOEX ASTS trades: 14
		// of 24), and the one-byte test is shorter than the value paths' tests.
		g.w("if uint(p) < uint(len(b)) && b[p] == 0x80 {\n%sp++\ndone = true\n}\n", setv(f, "", "false"))
	}
	switch {
	case isInt(ff.Type) && ff.Op == fast.OpNone:
		g.w("if uint(p) < uint(len(b)) && b[p] >= 0x80 {\n")
		switch {
		case !f.in.Nullable && !isSigned(ff.Type):
			g.w("v.%s = %s(b[p] & 0x7f)\n", f.name, T)
		case !f.in.Nullable:
			g.w("v.%s = %s(fastrt.SignExtend7(b[p]))\n", f.name, T)
		case !isSigned(ff.Type):
			g.w("if x := b[p] & 0x7f; x != 0 {\n%s} else {\n%s}\n", setv(f, T+"(x-1)", "true"), setv(f, "0", "false"))
		default:
			g.w("if x := fastrt.SignExtend7(b[p]); x > 0 {\n%s} else if x < 0 {\n%s} else {\n%s}\n",
				setv(f, T+"(x-1)", "true"), setv(f, T+"(x)", "true"), setv(f, "0", "false"))
		}
		g.w("p++\ndone = true\n")
		// Longer values: a short parse without overflow checks, then the range.
		if isSigned(ff.Type) {
			rng := ""
			if ff.Type == fast.TypeInt32 {
				if f.in.Nullable {
					rng = " && x >= -1<<31 && x <= 1<<31"
				} else {
					rng = " && x >= -1<<31 && x <= 1<<31-1"
				}
			}
			g.w("}\nif !done {\n")
			g.parse(true, "p", false)
			g.w("if n > 0%s {\n", rng)
			if f.in.Nullable {
				g.w("if x > 0 {\nx--\n}\n")
			}
		} else {
			rng := ""
			if ff.Type == fast.TypeUint32 {
				if f.in.Nullable {
					rng = " && x <= 1<<32"
				} else {
					rng = " && x <= 1<<32-1"
				}
			}
			g.w("}\nif !done {\n")
			g.parse(false, "p", ff.Type == fast.TypeUint64)
			g.w("if n > 0%s {\n", rng)
			if f.in.Nullable {
				g.w("x--\n")
			}
		}
		g.w("%sp += n\ndone = true\n}\n}\n", setv(f, T+"(x)", "true"))
	case isInt(ff.Type) && (ff.Op == fast.OpCopy || ff.Op == fast.OpIncrement) && !f.in.TypeCheck:
		g.w("e := %s\n", g.slot(ff))
		cond := "e.G == c.Gen"
		if ff.Op == fast.OpIncrement {
			switch ff.Type {
			case fast.TypeUint32:
				cond += " && e.I < 1<<32-1"
			case fast.TypeInt32:
				cond += " && e.I < 1<<31-1"
			case fast.TypeUint64:
				cond += " && e.I != -1"
			case fast.TypeInt64:
				cond += " && e.I != 1<<63-1"
			}
		}
		g.w("if !pm.Peek(b) {\nif %s {\npm.Next(b)\n", cond)
		if ff.Op == fast.OpIncrement {
			g.w("e.I++\n")
		}
		g.w("%sdone = true\n}\n", setv(f, T+"(e.I)", "true"))
		if !f.in.Nullable && !isSigned(ff.Type) {
			rng := ""
			if ff.Type == fast.TypeUint32 {
				rng = " && x <= 1<<32-1"
			}
			g.w("} else if uint(p) < uint(len(b)) && b[p] >= 0x80 {\npm.Next(b)\nx := int64(b[p] & 0x7f)\np++\ne.G, e.T, e.I, e.E = c.Gen, %d, x, 0\n%sdone = true\n", ff.Type, setv(f, T+"(x)", "true"))
			g.w("} else {\n")
			g.parse(false, "p", ff.Type == fast.TypeUint64)
			g.w("if n > 0%s {\npm.Next(b)\np += n\ne.G, e.T, e.I, e.E = c.Gen, %d, int64(x), 0\n%sdone = true\n}\n", rng, ff.Type, setv(f, T+"(x)", "true"))
		}
		g.w("}\n")
	case ff.Type == fast.TypeDecimal && ff.Op == fast.OpNone && !f.in.Split:
		g.w("if q := p + 1; uint(q) < uint(len(b)) && b[p] >= 0x80 {\nexp := fastrt.SignExtend7(b[p])\n")
		if f.in.Nullable {
			g.w("if exp == 0 {\n%sp++\ndone = true\n} else if exp > 0 {\nexp--\n}\n", setv(f, "fastrt.Decimal{}", "false"))
		}
		g.w("if !done && exp >= -63 && exp <= 63 {\n")
		g.w("if b[q] >= 0x80 {\n%sp = q + 1\ndone = true\n", setv(f, "fastrt.Decimal{Mantissa: fastrt.SignExtend7(b[q]), Exponent: int32(exp)}", "true"))
		g.w("} else {\n")
		g.parse(true, "q", false)
		g.w("if n > 0 {\n%sp = q + n\ndone = true\n}\n}\n}\n}\n", setv(f, "fastrt.Decimal{Mantissa: x, Exponent: int32(exp)}", "true"))
	case f.in.Split && ff.Exponent.Op == fast.OpCopy && ff.Mantissa.Op == fast.OpDelta && !ff.Exponent.Info().TypeCheck && !ff.Mantissa.Info().TypeCheck:
		g.w("if ee, me := %s, %s; !pm.Peek(b) && uint(p) < uint(len(b)) && b[p] >= 0x80 && ee.G == c.Gen && me.G == c.Gen {\n", g.slot(ff.Exponent), g.slot(ff.Mantissa))
		// The mantissa's delta added with fastrt.AddDelta's int64 overflow test written out
		// (the sum moves the way the delta's sign says): the call was not inlined here.
		g.w("if d := fastrt.SignExtend7(b[p]); (me.I+d >= me.I) == (d >= 0) {\nm := me.I + d\npm.Next(b)\nme.I = m\n%sp++\ndone = true\n}\n}\n",
			setv(f, "fastrt.Decimal{Mantissa: m, Exponent: int32(ee.I)}", "true"))
		// The exponent present in one byte, the mantissa a delta from an assigned value or
		// from an undefined one without initial value (the first entry of a message).
		if !ff.Mantissa.Info().HasInit {
			g.w("if ee, me := %s, %s; !done && pm.Peek(b) && uint(p+1) < uint(len(b)) && b[p] >= 0x80 && (me.G == c.Gen || me.G != c.Gen+1) {\n", g.slot(ff.Exponent), g.slot(ff.Mantissa))
			g.w("exp := fastrt.SignExtend7(b[p])\n")
			if ff.Exponent.Info().Nullable {
				g.w("if exp > 0 {\nexp--\n}\n")
			}
			g.w("base := int64(0)\nif me.G == c.Gen {\nbase = me.I\n}\n")
			g.w("if q := p + 1; exp >= -63 && exp <= 63 %s {\n", map[bool]string{true: "&& b[p] != 0x80", false: ""}[ff.Exponent.Info().Nullable])
			g.w("d, dn := int64(0), 0\nif b[q] >= 0x80 {\nd, dn = fastrt.SignExtend7(b[q]), 1\n} else {\n")
			g.parse(true, "q", false)
			g.w("d, dn = x, n\n}\n")
			g.w("if m := base + d; (m >= base) == (d >= 0) && dn > 0 {\npm.Next(b)\nee.G, ee.T, ee.I, ee.E = c.Gen, %d, exp, 0\nme.G, me.T, me.I, me.E = c.Gen, %d, m, 0\n%sp = q + dn\ndone = true\n}\n}\n}\n",
				ff.Exponent.Type, ff.Mantissa.Type, setv(f, "fastrt.Decimal{Mantissa: m, Exponent: int32(exp)}", "true"))
		}
	case ff.Type == fast.TypeASCII && ff.Op == fast.OpNone:
		g.w("if uint(p) < uint(len(b)) && b[p]&0x7f != 0 {\n")
		g.asciiScan(f, "")
		g.w("}")
		if f.in.Nullable {
			g.w(" else if uint(p) < uint(len(b)) && b[p] == 0x80 {\n%sp++\ndone = true\n}", setv(f, "nil", "false"))
		}
		g.w("\n")
	case ff.Type == fast.TypeASCII && ff.Op == fast.OpCopy && !f.in.TypeCheck:
		g.w("e := %s\n", g.slot(ff))
		g.w("if !pm.Peek(b) {\nif e.G == c.Gen {\npm.Next(b)\nif e.Msg == c.Msg {\n%s} else {\n%s}\ndone = true\n}\n",
			setv(f, "e.Cur", "true"), setv(f, "c.Copy(e.B)", "true"))
		g.w("} else if uint(p) < uint(len(b)) && b[p]&0x7f != 0 {\n")
		// B is written before the next message (flush), and not at all when the
		// dictionary is reset in between (the feed resets it before every datagram).
		keep := "e.B = append(e.B[:0], w...)\n"
		if bit := g.lazyBit(g.slot(ff)); bit != "" {
			keep = "c.dirty |= " + bit + "\n"
		}
		g.asciiScan(f, fmt.Sprintf("pm.Next(b)\ne.G, e.T, e.Msg, e.Cur = c.Gen, %d, c.Msg, w\n%s", ff.Type, keep))
		g.w("}\n")
	}
	g.w("if !done {\n")
	g.decGeneral(f)
	g.w("}\n}\n")
	g.doneToGoto(st)
}

// doneToGoto rewrites the code of the field written from offset st of the buffer: its
// fast paths jump past the general path (goto) instead of setting a flag the general
// path tests (the compiler kept the flag in a register and tested it, three to five
// instructions per field, and one more live value).
func (g *gen) doneToGoto(st int) {
	code := g.buf.String()[st:]
	g.buf.Truncate(st)
	if !strings.Contains(code, "done = true\n") {
		g.buf.WriteString(strings.Replace(strings.Replace(code, "done := false\n", "", 1), "if !done {\n", "{\n", 1))
		return
	}
	g.labels++
	lbl := fmt.Sprintf("f%d", g.labels)
	code = strings.Replace(code, "done := false\n", "", 1)
	code = strings.ReplaceAll(code, "done = true\n", "goto "+lbl+"\n")
	code = strings.ReplaceAll(code, "if !done {\n", "{\n")
	code = strings.ReplaceAll(code, "!done && ", "")
	if strings.Contains(code, "done") {
		panic("fastgen: done flag left in:\n" + code)
	}
	g.buf.WriteString(code)
	g.w("%s:\n", lbl)
}

// asciiScan writes the scan of a non-empty ASCII string at p (b[p] is neither 0 nor 0x80).
func (g *gen) asciiScan(f *field, onValue string) {
	// The stop bit is found eight bytes at a time; the cleared last byte is written from
	// the input, not read back from the window just copied (a store-forwarding stall).
	// A second word for strings of nine to sixteen bytes (order and trade identifiers).
	g.w("end := p\nif q := b[p:]; len(q) >= 8 {\nif m := %s & 0x8080808080808080; m != 0 {\nend = p + bits.TrailingZeros64(m)>>3\n} else if q := b[p:]; len(q) >= 16 {\nif m := %s & 0x8080808080808080; m != 0 {\nend = p + 8 + bits.TrailingZeros64(m)>>3\n} else {\nend = p + 16\nfor end < len(b) && b[end] < 0x80 {\nend++\n}\n}\n} else {\nend = p + 8\nfor end < len(b) && b[end] < 0x80 {\nend++\n}\n}\n} else {\nfor end < len(b) && b[end] < 0x80 {\nend++\n}\n}\n", le64("q"), le64w("q", 8))
	g.w("if end < len(b) {\nif end >= len(c.Win) {\nc.Extend(b, end)\n}\nwin := c.Win[:end+1 : end+1]\nwin[end] = b[end] &^ 0x80\nw := win[p:]\n")
	g.w("%s%sp = end + 1\ndone = true\n}\n", onValue, setv(f, "w", "true"))
}

func (g *gen) decGeneral(f *field) {
	ff := f.f
	T := goType(ff.Type)
	present := func(x string) string {
		if f.has == "" {
			return ""
		}
		return fmt.Sprintf("v.%s = %s\n", f.has, x)
	}
	switch {
	case isInt(ff.Type):
		g.w("x, ok, np, err := c.Int(b, p, %s, pm, %s)\nif err != nil {\nreturn np, err\n}\n_ = ok\nv.%s = %s(x)\n%sp = np\n", f.fv, g.slot(ff), f.name, T, present("ok"))
	case ff.Type == fast.TypeDecimal && f.in.Split:
		g.w("m, e, ok, np, err := c.SplitDecimal(b, p, %s, pm, %s, %s)\nif err != nil {\nreturn np, err\n}\n_ = ok\nv.%s = fastrt.Decimal{Mantissa: m, Exponent: e}\n%sp = np\n",
			f.fv, g.slot(ff.Exponent), g.slot(ff.Mantissa), f.name, present("ok"))
	case ff.Type == fast.TypeDecimal:
		g.w("m, e, ok, np, err := c.Decimal(b, p, %s, pm, %s)\nif err != nil {\nreturn np, err\n}\n_ = ok\nv.%s = fastrt.Decimal{Mantissa: m, Exponent: e}\n%sp = np\n",
			f.fv, g.slot(ff), f.name, present("ok"))
	case isVector(ff.Type):
		g.w("x, ok, np, err := c.Vector(b, p, %s, pm, %s)\nif err != nil {\nreturn np, err\n}\n_ = ok\nv.%s = x\n%sp = np\n", f.fv, g.slot(ff), f.name, present("ok"))
	}
}

func (g *gen) decSequence(f *field) {
	ff := f.f
	lf := ff.Length
	in := ff.Info()
	g.w("{\nn := -1\n")
	if lf.Op == fast.OpNone && !lf.Info().Nullable {
		g.w("if uint(p) < uint(len(b)) && b[p] >= 0x80 {\nn = int(b[p] & 0x7f)\np++\n} else {\n")
	} else {
		g.w("{\n")
	}
	g.w("x, ok, np, err := c.Int(b, p, %s, pm, %s)\nif err != nil {\nreturn np, err\n}\np = np\nif ok {\nn = int(x)\n}\n}\n", g.fvar(lf), g.slot(lf))
	g.w("if n < 0 {\nv.%s = v.%s[:0]\n", f.name, f.name)
	if f.has != "" {
		g.w("v.%s = false\n", f.has)
	}
	// The length and depth checks written out, fastrt called for the errors only.
	check := "n > len(b)-p+64"
	if in.MinBytes > 0 {
		check = fmt.Sprintf("n > (len(b)-p)/%d", in.MinBytes)
	}
	g.w("} else {\nif %s {\nif err := fastrt.SeqCheck(n, p, len(b), %d, %s); err != nil {\nreturn p, err\n}\n}\n", check, in.MinBytes, f.fv)
	g.w("%s", decEnter(f.fv))
	g.w("if cap(v.%s) < n {\nv.%s = make([]%s, n)\n} else {\nv.%s = v.%s[:n]\n}\n", f.name, f.name, f.elem.typeName, f.name, f.name)
	// Elements with a presence map in a register are written out in the loop; elements
	// without a presence map (MOEX ASTS trades: 24 fields, no operator) are decoded by a
	// function of their own, one call per element: written out, the loop's back edge
	// reloaded the parent's spilled values at every branch of the body (about 70
	// instructions per element), and the call costs less (MOEX 3 trades -7%).
	if inlinable(f.elem) && f.elem.ownPmap {
		f.elem.inlined = true
		g.w("es := v.%s\nfor j := range es {\nv := &es[j]\n%s}\nc.Depth--\n", f.name, g.decBody(f.elem, true))
	} else {
		g.w("for j := range v.%s {\nif p, err = c.d%d(b, p, &v.%s[j], pm); err != nil {\nreturn p, err\n}\n}\nc.Depth--\n", f.name, f.elem.id, f.name)
	}
	if f.has != "" {
		g.w("v.%s = true\n", f.has)
	}
	g.w("}\n}\n")
}

// decEnter is c.Enter(p, fv) written out: a call only for the error.
func decEnter(fv string) string {
	return fmt.Sprintf("if c.Depth < fastrt.MaxDepth {\nc.Depth++\n} else if err := c.Enter(p, %s); err != nil {\nreturn p, err\n}\n", fv)
}

func (g *gen) decGroup(f *field) {
	if f.has != "" {
		g.w("if v.%s = pm.Next(b); v.%s {\n", f.has, f.has)
	} else {
		g.w("{\n")
	}
	g.w("%s", decEnter(f.fv))
	if inlinable(f.elem) {
		f.elem.inlined = true
		g.w("{\nv := &v.%s\n%s}\nc.Depth--\n}\n", f.name, g.decBody(f.elem, true))
		return
	}
	g.w("if p, err = c.d%d(b, p, &v.%s, pm); err != nil {\nreturn p, err\n}\nc.Depth--\n}\n", f.elem.id, f.name)
}

// parse writes the parse of a stop-bit integer at b[at:] into new variables x (int64 or
// uint64) and n (0 if the short forms do not apply): two to four bytes with a branch per
// byte (which a feed's steady value lengths let the CPU predict), also at the end of the
// input; five to eight bytes from one 64-bit load without a branch per byte (nine, for a
// uInt64 when nine says so, with the ninth byte after the load) (fastrt.UintWord and
// IntWord written out: the inliner takes only the smallest functions into the large ones
// of generated code); longer values through fastrt.
func (g *gen) parse(signed bool, at string, nine bool) {
	if signed {
		g.w("x, n := int64(0), 0\nif q := b[%s:]; len(q) >= 2 && !fastrt.Overlong(q[0], q[1]) {\nx = int64(int8(q[0]<<1) >> 1)\n", at)
		g.w("if q[1] >= 0x80 {\nx, n = x<<7|int64(q[1]&0x7f), 2\n} else if len(q) >= 3 && q[2] >= 0x80 {\nx, n = x<<14|int64(q[1])<<7|int64(q[2]&0x7f), 3\n} else if len(q) >= 4 && q[3] >= 0x80 {\nx, n = x<<21|int64(q[1])<<14|int64(q[2])<<7|int64(q[3]&0x7f), 4\n}")
		g.w(" else if len(q) >= 8 {\nw := %s\n", le64("q"))
		g.w("if m := w & 0x8080808080808080; m != 0 {\n")
		g.w("k := uint(bits.TrailingZeros64(m) >> 3)\nu := bits.ReverseBytes64(w) >> (56 - 8*k)\n%s\nx, n = int64(u<<(57-7*k))>>(57-7*k), int(k)+1\n}\n}\n}\n", pack7)
		g.w("if n == 0 {\nx, n = fastrt.Int(b, %s)\n}\n", at)
		return
	}
	g.w("x, n := uint64(0), 0\nif q := b[%s:]; len(q) >= 2 && q[0] != 0 {\n", at)
	g.w("if q[1] >= 0x80 {\nx, n = uint64(q[0])<<7|uint64(q[1]&0x7f), 2\n} else if len(q) >= 3 && q[2] >= 0x80 {\nx, n = uint64(q[0])<<14|uint64(q[1])<<7|uint64(q[2]&0x7f), 3\n} else if len(q) >= 4 && q[3] >= 0x80 {\nx, n = uint64(q[0])<<21|uint64(q[1])<<14|uint64(q[2])<<7|uint64(q[3]&0x7f), 4\n}")
	g.w(" else if len(q) >= 8 {\nw := %s\n", le64("q"))
	g.w("if m := w & 0x8080808080808080; m != 0 && w&0xff != 0 {\nk := uint(bits.TrailingZeros64(m) >> 3)\nu := bits.ReverseBytes64(w) >> (56 - 8*k)\n%s\nx, n = u, int(k)+1\n}", pack7)
	if nine {
		// Nine bytes (a uInt64 of 57 to 63 bits: nanoseconds since 1970): the eight of the
		// word and the ninth with the stop bit.
		g.w(" else if m == 0 && w&0xff != 0 && len(q) >= 9 && q[8] >= 0x80 {\nu := bits.ReverseBytes64(w)\n%s\nx, n = u<<7|uint64(q[8]&0x7f), 9\n}", pack7)
	}
	g.w("\n}\n}\n")
	g.w("if n == 0 {\nx, n = fastrt.Uint(b, %s)\n}\n", at)
}

// pack7 is fastrt.Pack7 of u written out, for the same reason as le64.
const pack7 = "u &= 0x7f7f7f7f7f7f7f7f\nu = u&0x007f007f007f007f | (u&0x7f007f007f007f00)>>1\nu = u&0x00003fff00003fff | (u&0x3fff00003fff0000)>>2\nu = u&0x000000000fffffff | (u&0x0fffffff00000000)>>4"

// le64w is le64 of q[at:at+8].
func le64w(q string, at int) string {
	var parts []string
	for i := range 8 {
		parts = append(parts, fmt.Sprintf("uint64(%s[%d])<<%d", q, at+i, 8*i))
	}
	return "(" + strings.Join(parts, " | ") + ")"
}

// le64 is the little-endian load of q[0:8] (len(q) >= 8), written out: the compiler
// combines it into one load, and it needs no call in the large functions of generated code,
// where the inliner takes only the smallest functions (binary.LittleEndian.Uint64 is not
// among them).
func le64(q string) string {
	return fmt.Sprintf("(uint64(%[1]s[0]) | uint64(%[1]s[1])<<8 | uint64(%[1]s[2])<<16 | uint64(%[1]s[3])<<24 | uint64(%[1]s[4])<<32 | uint64(%[1]s[5])<<40 | uint64(%[1]s[6])<<48 | uint64(%[1]s[7])<<56)", q)
}
