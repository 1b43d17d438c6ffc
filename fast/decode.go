package fast

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting of groups, sequences and dynamic template references.
const maxDepth = 32

// Decoder decodes FAST messages with a set of templates. It keeps the dictionaries between
// messages, as a FAST stream requires; call Reset where the feed resets them (fastfeed resets
// at the start of every datagram). A Decoder is not safe for concurrent use.
type Decoder struct {
	ts    *Templates
	dict  dictionary
	buf   []byte
	pos   int
	m     *Message
	depth int
	tmpl  *Template // template being decoded, for errors
	msgID uint32    // counts Decode calls, to tell which dictionary values are in m's arena

	// generalOnly turns the fast paths of fields off, for the test that checks they
	// decode exactly what the general path decodes.
	generalOnly bool
}

// NewDecoder returns a decoder for ts with empty dictionaries.
func NewDecoder(ts *Templates) *Decoder {
	return &Decoder{ts: ts, dict: newDictionary(ts.slots)}
}

// Reset makes every dictionary entry undefined.
func (d *Decoder) Reset() { d.dict.reset() }

// pmap is the read cursor of a presence map. A map of up to nine bytes (63 bits: nearly
// all) is held as a register of the bits not yet read, the next one in the top bit, so that
// reading a bit is a shift and a sign test; a longer map is read from the input.
type pmap struct {
	bits     uint64 // short map: unread bits, left-aligned, then zeros
	pos, end int    // long map: current and one-past-last presence map byte in the input
	mask     byte   // long map: current bit within buf[pos]
	long     bool
}

func (p *pmap) next(buf []byte) bool {
	if !p.long {
		set := int64(p.bits) < 0
		p.bits <<= 1
		return set
	}
	return p.nextLong(buf)
}

// peek returns the bit next would return, without consuming it.
func (p *pmap) peek(buf []byte) bool {
	if !p.long {
		return int64(p.bits) < 0
	}
	q := *p
	return q.nextLong(buf)
}

// nextLong is next for a long map, out of line to keep next small where it is inlined.
//
//go:noinline
func (p *pmap) nextLong(buf []byte) bool {
	if p.pos >= p.end {
		return false
	}
	set := buf[p.pos]&p.mask != 0
	p.mask >>= 1
	if p.mask == 0 {
		p.mask = 0x40
		p.pos++
	}
	return set
}

// leftover reports whether bits not consumed by the segment are set (R8).
func (p *pmap) leftover(buf []byte) bool {
	if !p.long {
		return p.bits != 0
	}
	if p.pos >= p.end {
		return false
	}
	if buf[p.pos]&(p.mask<<1-1) != 0 {
		return true
	}
	for i := p.pos + 1; i < p.end; i++ {
		if buf[i]&0x7f != 0 {
			return true
		}
	}
	return false
}

// Decode decodes the message at the start of b into m and returns the number of bytes it
// used. On error m holds what was decoded before it, and the error is a *Error with the
// byte offset in b.
func (d *Decoder) Decode(b []byte, m *Message) (int, error) {
	d.buf, d.pos, d.m, d.depth, d.tmpl = b, 0, m, 0, nil
	d.msgID++
	if d.msgID == 0 { // wrapped: forget every arena position
		for i := range d.dict.entries {
			d.dict.entries[i].msg = 0
		}
		d.msgID = 1
	}
	var pm pmap
	t, err := d.header(&pm)
	if err != nil {
		m.Template = nil
		return 0, err
	}
	d.tmpl = t
	m.Reset(t)
	if t.ResetEach {
		d.dict.reset()
	}
	if err := d.fields(t.Fields, &pm, 0); err != nil {
		return 0, err
	}
	if pm.leftover(b) {
		return 0, d.errf(R8, nil, "presence map has more bits than the template uses")
	}
	if t.Reset {
		d.dict.reset()
	}
	d.buf = nil
	return d.pos, nil
}

// header reads a segment's presence map into *pm and its template identifier.
func (d *Decoder) header(pm *pmap) (*Template, error) {
	if err := d.pmap(pm); err != nil {
		return nil, err
	}
	var id uint64
	tidAt := d.pos
	if pm.next(d.buf) {
		var n int
		id, n = ConsumeUint(d.buf[d.pos:])
		if n < 0 {
			return nil, d.intErr(n, nil)
		}
		if id > math.MaxUint32 {
			return nil, d.errf(D2, nil, "template identifier "+strconv.FormatUint(id, 10)+" exceeds uInt32")
		}
		d.pos += n
		d.dict.setInt(d.ts.tidKey, TypeUint32, int64(id), 0)
	} else {
		st, e := d.dict.state(d.ts.tidKey)
		if st != assigned {
			return nil, d.errf(D5, nil, "template identifier absent and no previous one")
		}
		id = uint64(e.i)
	}
	t := d.ts.ByID(uint32(id))
	if t == nil {
		d.pos = tidAt // point at the identifier
		return nil, d.errf(D9, nil, "unknown template identifier "+strconv.FormatUint(id, 10))
	}
	return t, nil
}

// pmap reads a presence map into *pm. It fills in *pm rather than returning a pmap: copying
// a struct just written field by field stalls on store forwarding, which cost more than
// reading the map.
func (d *Decoder) pmap(pm *pmap) error {
	start := d.pos
	var acc uint64
	for i := start; i < len(d.buf); i++ {
		c := d.buf[i]
		acc = acc<<7 | uint64(c&0x7f)
		if c&stopBit != 0 {
			if i > start && c == stopBit {
				return d.errf(R7, nil, "overlong presence map")
			}
			d.pos = i + 1
			if n := i + 1 - start; n <= 9 {
				pm.bits, pm.long = acc<<(64-7*n), false
				return nil
			}
			pm.bits, pm.long, pm.pos, pm.end, pm.mask = 0, true, start, i+1, 0x40
			return nil
		}
	}
	return d.errf(Truncated, nil, "input ends inside a presence map")
}

func (d *Decoder) errf(code Code, f *Field, msg string) error {
	e := &Error{Code: code, Offset: d.pos, Msg: msg}
	if d.tmpl != nil {
		e.Template = d.tmpl.Name
	}
	if f != nil {
		e.Field = f.Name
	}
	return e
}

func (d *Decoder) intErr(n int, f *Field) error {
	switch n {
	case errTruncated:
		return d.errf(Truncated, f, "input ends inside an integer")
	case errOverlong:
		return d.errf(R6, f, "overlong integer encoding")
	}
	return d.errf(D2, f, "integer overflows 64 bits")
}

// fields decodes a list of instructions into the values starting at base. The values are
// zero (absent) on entry, so a decoder only writes what is present.
func (d *Decoder) fields(fs []*Field, pm *pmap, base int) error {
	if d.generalOnly {
		for i, f := range fs {
			if err := d.field(f, pm, base+i); err != nil {
				return err
			}
		}
		return nil
	}
	vals := d.m.vals[base : base+len(fs) : base+len(fs)]
	buf := d.buf
	// The read position lives in a local for the whole loop, so that it can stay in a
	// register: through d, every field waited for the store of the previous one. It is
	// written back around every call that reads or moves it.
	pos := d.pos
	for i, f := range fs {
		v := &vals[i]
		switch f.code {
		case cConstNum:
			v.Int, v.Exp, v.Present = f.initInt, f.initExp, true
			continue
		case cConstBytes:
			// As vector does for a mandatory constant; the initial value was checked at
			// load time, so there is nothing to validate.
			off := len(d.m.data)
			d.m.data = append(d.m.data, f.initBytes...)
			v.Off, v.Len, v.Present = uint32(off), uint32(len(f.initBytes)), true
			continue
		case cUint:
			if x, n := shortUint(buf, pos); n > 0 && (f.Type == TypeUint64 || x <= 1<<32-1) {
				v.Int, v.Present = int64(x), true
				pos += n
				continue
			}
		case cInt:
			if p := pos; p < len(buf) && buf[p]&stopBit != 0 {
				v.Int, v.Present = signExtend7(buf[p]), true
				pos++
				continue
			}
			// Longer values out of line (shortInt is too big to inline), still cheaper
			// than the general path.
			if x, n := shortInt(buf, pos); n > 0 && (f.Type == TypeInt64 || (x >= -1<<31 && x <= 1<<31-1)) {
				v.Int, v.Present = x, true
				pos += n
				continue
			}
		case cUintNull:
			if x, n := shortUint(buf, pos); n > 0 && (f.Type == TypeUint64 || x <= 1<<32) {
				if x != 0 {
					v.Int, v.Present = int64(x-1), true
				}
				pos += n
				continue
			}
		case cIntNull:
			x, n := int64(0), 0
			if p := pos; p < len(buf) && buf[p]&stopBit != 0 {
				x, n = signExtend7(buf[p]), 1
			} else {
				x, n = shortInt(buf, pos)
			}
			if n > 0 && (f.Type == TypeInt64 || (x >= -1<<31 && x <= 1<<31)) {
				if x > 0 {
					v.Int, v.Present = x-1, true
				} else if x < 0 {
					v.Int, v.Present = x, true
				}
				pos += n
				continue
			}
		case cASCII, cASCIINull:
			if p := pos; p < len(buf) && buf[p] != 0 {
				if buf[p] == stopBit {
					pos++
					if f.code == cASCII {
						v.Off, v.Present = uint32(len(d.m.data)), true
					}
					continue
				}
				end := p
				for end < len(buf) && buf[end]&stopBit == 0 {
					end++
				}
				if end < len(buf) {
					off := len(d.m.data)
					d.m.data = append(d.m.data, buf[p:end+1]...)
					d.m.data[len(d.m.data)-1] &^= stopBit
					v.Off, v.Len, v.Present = uint32(off), uint32(end+1-p), true
					pos = end + 1
					continue
				}
			}
		case cCopyInt, cIncInt:
			if !pm.next(buf) {
				e := &d.dict.entries[f.slot]
				if e.gen == d.dict.gen && !e.empty && !f.typeCheck {
					x := e.i
					if f.code == cIncInt {
						x++
						if (f.Type == TypeUint32 && uint64(x) > 1<<32-1) || (f.Type == TypeInt32 && x > 1<<31-1) ||
							(f.Type == TypeUint64 && x == 0) || (f.Type == TypeInt64 && x == -1<<63) {
							d.pos = pos
							return d.errf(D2, f, "increment overflows "+f.Type.String())
						}
						e.i = x
					}
					v.Int, v.Present = x, true
					continue
				}
				d.pos = pos
				if err := d.fromDict(f, v); err != nil {
					return err
				}
				pos = d.pos
				continue
			}
			if !f.nullable && !f.Type.isSigned() {
				if x, n := shortUint(buf, pos); n > 0 && (f.Type == TypeUint64 || x <= 1<<32-1) {
					pos += n
					e := &d.dict.entries[f.slot]
					e.gen, e.empty, e.typ, e.i = d.dict.gen, false, f.Type, int64(x)
					v.Int, v.Present = int64(x), true
					continue
				}
			}
			d.pos = pos
			if err := d.intPresent(f, v); err != nil {
				return err
			}
			pos = d.pos
			continue
		case cCopyASCII:
			if !pm.next(buf) {
				e := &d.dict.entries[f.slot]
				if e.gen == d.dict.gen && !e.empty && !f.typeCheck {
					if e.msg == d.msgID {
						// The value is already in this message's arena: share it.
						v.Off, v.Len, v.Present = e.off, uint32(len(e.b)), true
						continue
					}
					off := len(d.m.data)
					d.m.data = append(d.m.data, e.b...)
					v.Off, v.Len, v.Present = uint32(off), uint32(len(e.b)), true
					continue
				}
				d.pos = pos
				if err := d.vectorFromDict(f, v); err != nil {
					return err
				}
				pos = d.pos
				continue
			}
			// Fast path: a non-empty string without a leading zero byte.
			if p := pos; p < len(buf) && buf[p] != 0 && buf[p] != stopBit {
				end := p
				for end < len(buf) && buf[end]&stopBit == 0 {
					end++
				}
				if end < len(buf) {
					off := len(d.m.data)
					d.m.data = append(d.m.data, buf[p:end+1]...)
					d.m.data[len(d.m.data)-1] &^= stopBit
					n := uint32(end + 1 - p)
					e := &d.dict.entries[f.slot]
					e.gen, e.empty, e.typ = d.dict.gen, false, f.Type
					e.b = append(e.b[:0], d.m.data[off:]...)
					e.msg, e.off = d.msgID, uint32(off)
					v.Off, v.Len, v.Present = uint32(off), n, true
					pos = end + 1
					continue
				}
			}
			d.pos = pos
			if err := d.vectorPresent(f, v); err != nil {
				return err
			}
			pos = d.pos
			continue
		case cDecimal, cDecimalNull:
			// Fast path: one-byte exponent and mantissa of up to three bytes. (The 1-3 byte
			// parse is written out here and in the split-decimal path below: a shared
			// function cannot be inlined and costs about 4% of a message's decode.)
			p := pos
			if p+1 < len(buf) && buf[p]&stopBit != 0 {
				exp := signExtend7(buf[p])
				if f.code == cDecimalNull {
					if exp == 0 {
						pos++
						continue
					}
					if exp > 0 {
						exp--
					}
				}
				var mant int64
				q := p + 1
				switch {
				case buf[q]&stopBit != 0:
					mant, q = signExtend7(buf[q]), q+1
				case q+1 < len(buf) && buf[q+1]&stopBit != 0 && !overlong(buf[q], buf[q+1]):
					mant, q = signExtend7(buf[q])<<7|int64(buf[q+1]&0x7f), q+2
				case q+2 < len(buf) && buf[q+1]&stopBit == 0 && buf[q+2]&stopBit != 0 && !overlong(buf[q], buf[q+1]):
					mant, q = signExtend7(buf[q])<<14|int64(buf[q+1])<<7|int64(buf[q+2]&0x7f), q+3
				default:
					q = -1
				}
				if q > 0 && exp >= -63 && exp <= 63 {
					v.Int, v.Exp, v.Present = mant, int32(exp), true
					pos = q
					continue
				}
			}
		case cSplitDecimal:
			// Fast path: exponent copied from an assigned value, mantissa a one-byte delta
			// from an assigned value.
			if x, mt := f.Exponent, f.Mantissa; x.Op == OpCopy && mt.Op == OpDelta && !x.typeCheck && !mt.typeCheck {
				ee, me := &d.dict.entries[x.slot], &d.dict.entries[mt.slot]
				if p := pos; !pm.peek(buf) && p < len(buf) && buf[p]&stopBit != 0 &&
					ee.gen == d.dict.gen && !ee.empty && me.gen == d.dict.gen && !me.empty {
					if m, ok := addDelta(TypeInt64, me.i, signExtend7(buf[p])); ok {
						pm.next(buf)
						me.i = m
						v.Int, v.Exp, v.Present = m, int32(ee.i), true
						pos++
						continue
					}
				}
				// Fast path: exponent present in one byte, mantissa a delta of up to three bytes
				// from an assigned or undefined previous value (the first entry of a message).
				if p := pos; pm.peek(buf) && p+1 < len(buf) && buf[p]&stopBit != 0 && me.gen != d.dict.gen && !mt.hasInit {
					exp := signExtend7(buf[p])
					if x.nullable && exp > 0 {
						exp--
					}
					q := p + 1
					var delta int64
					switch {
					case buf[q]&stopBit != 0:
						delta, q = signExtend7(buf[q]), q+1
					case q+1 < len(buf) && buf[q+1]&stopBit != 0 && !overlong(buf[q], buf[q+1]):
						delta, q = signExtend7(buf[q])<<7|int64(buf[q+1]&0x7f), q+2
					case q+2 < len(buf) && buf[q+1]&stopBit == 0 && buf[q+2]&stopBit != 0 && !overlong(buf[q], buf[q+1]):
						delta, q = signExtend7(buf[q])<<14|int64(buf[q+1])<<7|int64(buf[q+2]&0x7f), q+3
					default:
						q = -1
					}
					if q > 0 && (!x.nullable || buf[p] != stopBit) && exp >= -63 && exp <= 63 {
						pm.next(buf)
						ee.gen, ee.empty, ee.typ, ee.i = d.dict.gen, false, x.Type, exp
						me.gen, me.empty, me.typ, me.i = d.dict.gen, false, mt.Type, delta
						v.Int, v.Exp, v.Present = delta, int32(exp), true
						pos = q
						continue
					}
				}
			}
			d.pos = pos
			if err := d.splitDecimal(f, pm, v); err != nil {
				return err
			}
			pos = d.pos
			continue
		}
		d.pos = pos
		if err := d.field(f, pm, base+i); err != nil {
			return err
		}
		pos = d.pos
		if f.Type >= TypeSequence {
			vals = d.m.vals[base : base+len(fs) : base+len(fs)] // a sequence or group may have grown the array
		}
	}
	d.pos = pos
	return nil
}

// shortInt parses a signed integer of at most nine bytes (63 bits and the sign, so it
// cannot overflow) at buf[p:]. It returns n == 0 for anything else (longer, overlong,
// truncated), which the general path then reports.
func shortInt(buf []byte, p int) (int64, int) {
	if p >= len(buf) {
		return 0, 0
	}
	x := -int64(buf[p] >> 6 & 1) // the sign, from the first data bit
	for i := p; i < len(buf) && i < p+9; i++ {
		c := buf[i]
		x = x<<7 | int64(c&0x7f)
		if c&stopBit != 0 {
			n := i + 1 - p
			if n > 1 {
				// Overlong if the value fits in one byte less.
				if y := x >> (7*n - 8); y == 0 || y == -1 {
					return 0, 0
				}
			}
			return x, n
		}
	}
	return 0, 0
}

// shortUint parses an unsigned integer of at most nine bytes (63 bits, so it cannot
// overflow) at buf[p:]. It returns n == 0 for anything else (longer, overlong, truncated),
// which the general path then reports.
func shortUint(buf []byte, p int) (uint64, int) {
	if p >= len(buf) || buf[p] == 0 {
		return 0, 0
	}
	var x uint64
	for i := p; i < len(buf) && i < p+9; i++ {
		c := buf[i]
		x = x<<7 | uint64(c&0x7f)
		if c&stopBit != 0 {
			return x, i + 1 - p
		}
	}
	return 0, 0
}

// overlong reports whether a signed integer starting with bytes b0, b1 has a redundant
// sign-extension byte (R6).
func overlong(b0, b1 byte) bool {
	return (b0 == 0x00 && b1&0x40 == 0) || (b0 == 0x7f && b1&0x40 != 0)
}

// field decodes one instruction by the general path.
func (d *Decoder) field(f *Field, pm *pmap, idx int) error {
	switch f.Type {
	case TypeUint32, TypeInt32, TypeUint64, TypeInt64:
		return d.integer(f, pm, &d.m.vals[idx])
	case TypeDecimal:
		if f.split {
			return d.splitDecimal(f, pm, &d.m.vals[idx])
		}
		return d.decimal(f, pm, &d.m.vals[idx])
	case TypeASCII, TypeUnicode, TypeBytes:
		return d.vector(f, pm, &d.m.vals[idx])
	case TypeSequence:
		return d.sequence(f, pm, idx)
	case TypeGroup:
		return d.group(f, pm, idx)
	case TypeTemplateRef:
		return d.templateRef(f, idx)
	}
	return nil
}

// readInt reads an integer of f's type from the stream, honouring nullability.
func (d *Decoder) readInt(f *Field) (v int64, null bool, err error) {
	if p := d.pos; p < len(d.buf) && d.buf[p]&stopBit != 0 && !f.nullable {
		d.pos++
		if f.Type.isSigned() {
			return signExtend7(d.buf[p]), false, nil
		}
		return int64(d.buf[p] & 0x7f), false, nil
	}
	var n int
	b := d.buf[d.pos:]
	if f.Type.isSigned() {
		if f.nullable {
			v, null, n = ConsumeIntNullable(b)
		} else {
			v, n = ConsumeInt(b)
		}
	} else {
		var u uint64
		if f.nullable {
			u, null, n = ConsumeUintNullable(b)
		} else {
			u, n = ConsumeUint(b)
		}
		v = int64(u)
	}
	if n < 0 {
		return 0, false, d.intErr(n, f)
	}
	if !null {
		if err := d.checkRange(f, v); err != nil {
			return 0, false, err
		}
	}
	d.pos += n
	return v, null, nil
}

func (d *Decoder) checkRange(f *Field, v int64) error {
	if f.Type == TypeUint64 || f.Type == TypeInt64 {
		return nil
	}
	return d.checkRange32(f, v)
}

func (d *Decoder) checkRange32(f *Field, v int64) error {
	switch f.Type {
	case TypeUint32:
		if uint64(v) > math.MaxUint32 {
			return d.errf(D2, f, strconv.FormatUint(uint64(v), 10)+" exceeds uInt32")
		}
	case TypeInt32:
		if v < math.MinInt32 || v > math.MaxInt32 {
			return d.errf(D2, f, strconv.FormatInt(v, 10)+" exceeds int32")
		}
	}
	return nil
}

func (d *Decoder) checkType(f *Field, e *entry) error {
	if f.typeCheck && e.typ != f.Type {
		return d.errf(D4, f, "dictionary entry "+f.key+" holds a "+e.typ.String()+", field is "+f.Type.String())
	}
	return nil
}

// integer decodes an integer field (also the parts of a split decimal and sequence lengths).
func (d *Decoder) integer(f *Field, pm *pmap, v *Value) error {
	switch f.Op {
	case OpNone:
		x, null, err := d.readInt(f)
		if err != nil || null {
			return err
		}
		*v = Value{Int: x, Present: true}
	case OpConstant:
		if !f.Optional || pm.next(d.buf) {
			*v = Value{Int: f.initInt, Present: true}
		}
	case OpDefault:
		if pm.next(d.buf) {
			x, null, err := d.readInt(f)
			if err != nil || null {
				return err
			}
			*v = Value{Int: x, Present: true}
		} else if f.hasInit {
			*v = Value{Int: f.initInt, Present: true}
		}
	case OpCopy, OpIncrement:
		if pm.next(d.buf) {
			return d.intPresent(f, v)
		}
		if e := &d.dict.entries[f.slot]; f.Op == OpCopy && e.gen == d.dict.gen && !e.empty && !f.typeCheck {
			v.Int, v.Present = e.i, true
			return nil
		}
		return d.fromDict(f, v)
	case OpDelta:
		// Fast path: a one-byte delta from an assigned previous value of a 64-bit field.
		if p := d.pos; p < len(d.buf) && d.buf[p]&stopBit != 0 && !f.nullable && (f.Type == TypeInt64 || f.Type == TypeUint64) {
			if e := &d.dict.entries[f.slot]; e.gen == d.dict.gen && !e.empty && !f.typeCheck {
				if x, ok := addDelta(f.Type, e.i, signExtend7(d.buf[p])); ok {
					d.pos++
					e.i = x
					v.Int, v.Present = x, true
					return nil
				}
			}
		}
		var delta int64
		var null bool
		var n int
		if f.nullable {
			delta, null, n = ConsumeIntNullable(d.buf[d.pos:])
		} else {
			delta, n = ConsumeInt(d.buf[d.pos:])
		}
		if n < 0 {
			return d.intErr(n, f)
		}
		d.pos += n
		if null {
			return nil
		}
		base := f.initInt
		st, e := d.dict.state(f.slot)
		switch st {
		case empty:
			return d.errf(D6, f, "delta base value is empty")
		case assigned:
			if err := d.checkType(f, e); err != nil {
				return err
			}
			base = e.i
		}
		x, ok := addDelta(f.Type, base, delta)
		if !ok {
			return d.errf(D2, f, "delta result overflows "+f.Type.String())
		}
		if err := d.checkRange(f, x); err != nil {
			return err
		}
		d.dict.setInt(f.slot, f.Type, x, 0)
		*v = Value{Int: x, Present: true}
	}
	return nil
}

// intPresent reads a copy or increment integer whose bit is set and records it.
func (d *Decoder) intPresent(f *Field, v *Value) error {
	if !f.nullable && !f.Type.isSigned() {
		if x, n := shortUint(d.buf, d.pos); n > 0 && (f.Type == TypeUint64 || x <= 1<<32-1) {
			d.pos += n
			d.dict.setInt(f.slot, f.Type, int64(x), 0)
			v.Int, v.Present = int64(x), true
			return nil
		}
	}
	x, null, err := d.readInt(f)
	if err != nil {
		return err
	}
	if null {
		d.dict.setEmpty(f.slot, f.Type)
		return nil
	}
	d.dict.setInt(f.slot, f.Type, x, 0)
	*v = Value{Int: x, Present: true}
	return nil
}

// fromDict gives a copy or increment integer whose bit is clear its value from the
// dictionary.
func (d *Decoder) fromDict(f *Field, v *Value) error {
	e, init, err := d.implied(f)
	switch {
	case err != nil || (e == nil && !init):
		return err
	case init:
		d.dict.setInt(f.slot, f.Type, f.initInt, 0)
		*v = Value{Int: f.initInt, Present: true}
		return nil
	}
	x := e.i
	if f.Op == OpIncrement {
		x++
		if err := d.checkRange(f, x); err != nil {
			return err
		}
		if (f.Type == TypeUint64 && x == 0) || (f.Type == TypeInt64 && x == math.MinInt64) {
			return d.errf(D2, f, "increment overflows "+f.Type.String())
		}
		e.i = x
	}
	*v = Value{Int: x, Present: true}
	return nil
}

// implied applies the rules for a copy, increment or tail field whose presence bit is
// clear, which depend on the state of its dictionary entry: undefined takes the initial
// value (init), or makes an optional field absent (and the entry empty); empty makes an
// optional field absent; assigned returns the entry. A mandatory field without a value
// is an error (D5 or D6).
func (d *Decoder) implied(f *Field) (e *entry, init bool, err error) {
	st, e := d.dict.state(f.slot)
	switch st {
	case undefined:
		if f.hasInit {
			return nil, true, nil
		}
		if !f.Optional {
			return nil, false, d.errf(D5, f, "mandatory field absent with no previous value and no initial value")
		}
		d.dict.setEmpty(f.slot, f.Type)
		return nil, false, nil
	case empty:
		if err := d.checkType(f, e); err != nil {
			return nil, false, err
		}
		if !f.Optional {
			return nil, false, d.errf(D6, f, "mandatory field absent and previous value empty")
		}
		return nil, false, nil
	}
	if err := d.checkType(f, e); err != nil {
		return nil, false, err
	}
	return e, false, nil
}

// addDelta adds a signed delta to a base of type t, reporting overflow of the 64-bit type.
func addDelta(t Type, base, delta int64) (int64, bool) {
	if t == TypeUint64 || t == TypeUint32 {
		u := uint64(base)
		if delta >= 0 {
			r := u + uint64(delta)
			return int64(r), r >= u
		}
		dm := uint64(-(delta + 1)) + 1
		return int64(u - dm), dm <= u
	}
	r := base + delta
	if (delta > 0 && r < base) || (delta < 0 && r > base) {
		return 0, false
	}
	return r, true
}

// readDecimal reads exponent and mantissa of a decimal with a single operator.
func (d *Decoder) readDecimal(f *Field) (Value, bool, error) {
	var exp int64
	var null bool
	var n int
	if f.nullable {
		exp, null, n = ConsumeIntNullable(d.buf[d.pos:])
	} else {
		exp, n = ConsumeInt(d.buf[d.pos:])
	}
	if n < 0 {
		return Value{}, false, d.intErr(n, f)
	}
	if !null && (exp < -63 || exp > 63) {
		return Value{}, false, d.errf(R1, f, "decimal exponent "+strconv.FormatInt(exp, 10)+" outside -63..63")
	}
	d.pos += n
	if null {
		return Value{}, true, nil
	}
	mant, n := ConsumeInt(d.buf[d.pos:])
	if n < 0 {
		return Value{}, false, d.intErr(n, f)
	}
	d.pos += n
	return Value{Int: mant, Exp: int32(exp), Present: true}, false, nil
}

func (d *Decoder) decimal(f *Field, pm *pmap, v *Value) error {
	switch f.Op {
	case OpNone:
		x, null, err := d.readDecimal(f)
		if err != nil || null {
			return err
		}
		*v = x
	case OpConstant:
		if !f.Optional || pm.next(d.buf) {
			*v = Value{Int: f.initInt, Exp: f.initExp, Present: true}
		}
	case OpDefault:
		if pm.next(d.buf) {
			x, null, err := d.readDecimal(f)
			if err != nil || null {
				return err
			}
			*v = x
		} else if f.hasInit {
			*v = Value{Int: f.initInt, Exp: f.initExp, Present: true}
		}
	case OpCopy:
		if pm.next(d.buf) {
			x, null, err := d.readDecimal(f)
			if err != nil {
				return err
			}
			if null {
				d.dict.setEmpty(f.slot, f.Type)
				return nil
			}
			d.dict.setInt(f.slot, f.Type, x.Int, x.Exp)
			*v = x
			return nil
		}
		e, init, err := d.implied(f)
		switch {
		case err != nil:
			return err
		case init:
			d.dict.setInt(f.slot, f.Type, f.initInt, f.initExp)
			*v = Value{Int: f.initInt, Exp: f.initExp, Present: true}
		case e != nil:
			*v = Value{Int: e.i, Exp: e.e, Present: true}
		}
	case OpDelta:
		var dexp int64
		var null bool
		var n int
		if f.nullable {
			dexp, null, n = ConsumeIntNullable(d.buf[d.pos:])
		} else {
			dexp, n = ConsumeInt(d.buf[d.pos:])
		}
		if n < 0 {
			return d.intErr(n, f)
		}
		d.pos += n
		if null {
			return nil
		}
		dmant, n := ConsumeInt(d.buf[d.pos:])
		if n < 0 {
			return d.intErr(n, f)
		}
		d.pos += n
		bm, be := f.initInt, f.initExp
		st, e := d.dict.state(f.slot)
		switch st {
		case empty:
			return d.errf(D6, f, "delta base value is empty")
		case assigned:
			if err := d.checkType(f, e); err != nil {
				return err
			}
			bm, be = e.i, e.e
		}
		exp := int64(be) + dexp
		if exp < -63 || exp > 63 {
			return d.errf(R1, f, "decimal exponent "+strconv.FormatInt(exp, 10)+" outside -63..63")
		}
		mant, ok := addDelta(TypeInt64, bm, dmant)
		if !ok {
			return d.errf(R1, f, "decimal mantissa overflows int64")
		}
		d.dict.setInt(f.slot, f.Type, mant, int32(exp))
		*v = Value{Int: mant, Exp: int32(exp), Present: true}
	}
	return nil
}

// splitDecimal decodes a decimal whose exponent and mantissa have their own operators. The
// mantissa is in the stream only when the exponent is present.
func (d *Decoder) splitDecimal(f *Field, pm *pmap, v *Value) error {
	var ev, mv Value
	if err := d.integer(f.Exponent, pm, &ev); err != nil || !ev.Present {
		return err
	}
	if ev.Int < -63 || ev.Int > 63 {
		return d.errf(R1, f, "decimal exponent "+strconv.FormatInt(ev.Int, 10)+" outside -63..63")
	}
	if err := d.integer(f.Mantissa, pm, &mv); err != nil {
		return err
	}
	*v = Value{Int: mv.Int, Exp: int32(ev.Int), Present: true}
	return nil
}

// readVector reads a string or byte vector body and appends it to the message's arena. It
// returns the offset of the appended bytes.
func (d *Decoder) readVector(f *Field, nullable bool) (off int, null bool, err error) {
	off = len(d.m.data)
	var n int
	if f.Type == TypeASCII {
		d.m.data, null, n = ConsumeASCII(d.m.data, d.buf[d.pos:], nullable)
		if n == errOverlong {
			return 0, false, d.errf(R9, f, "overlong string encoding")
		}
	} else {
		var b []byte
		b, null, n = ConsumeBytes(d.buf[d.pos:], nullable)
		if n >= 0 {
			d.m.data = append(d.m.data, b...)
		}
	}
	switch {
	case n == errTruncated:
		return 0, false, d.errf(Truncated, f, "input ends inside a "+f.Type.String())
	case n == errOverflow || n == errOverlong:
		return 0, false, d.intErr(n, f)
	}
	d.pos += n
	return off, null, nil
}

// setVector makes v the bytes appended to the arena since off, checking unicode fields.
func (d *Decoder) setVector(f *Field, v *Value, off int) error {
	*v = Value{Off: uint32(off), Len: uint32(len(d.m.data) - off), Present: true}
	if f.Type == TypeUnicode && !utf8.Valid(d.m.data[off:]) {
		return d.errf(R2, f, "unicode string is not valid UTF-8")
	}
	return nil
}

func (d *Decoder) vector(f *Field, pm *pmap, v *Value) error {
	switch f.Op {
	case OpNone:
		off, null, err := d.readVector(f, f.nullable)
		if err != nil || null {
			return err
		}
		return d.setVector(f, v, off)
	case OpConstant:
		if !f.Optional || pm.next(d.buf) {
			off := len(d.m.data)
			d.m.data = append(d.m.data, f.initBytes...)
			return d.setVector(f, v, off)
		}
	case OpDefault:
		if pm.next(d.buf) {
			off, null, err := d.readVector(f, f.nullable)
			if err != nil || null {
				return err
			}
			return d.setVector(f, v, off)
		}
		if f.hasInit {
			off := len(d.m.data)
			d.m.data = append(d.m.data, f.initBytes...)
			return d.setVector(f, v, off)
		}
	case OpCopy, OpTail:
		if pm.next(d.buf) {
			return d.vectorPresent(f, v)
		}
		return d.vectorFromDict(f, v)
	case OpDelta:
		var sub int64
		var null bool
		var n int
		if f.nullable {
			sub, null, n = ConsumeIntNullable(d.buf[d.pos:])
		} else {
			sub, n = ConsumeInt(d.buf[d.pos:])
		}
		if n < 0 {
			return d.intErr(n, f)
		}
		d.pos += n
		if null {
			return nil
		}
		if sub < math.MinInt32 || sub > math.MaxInt32 {
			return d.errf(D7, f, "subtraction length outside int32")
		}
		var base []byte
		if f.hasInit {
			base = f.initBytes
		}
		st, e := d.dict.state(f.slot)
		switch st {
		case empty:
			return d.errf(D6, f, "delta base value is empty")
		case assigned:
			if err := d.checkType(f, e); err != nil {
				return err
			}
			base = e.b
		}
		front := sub < 0
		if front {
			sub = -sub - 1
		}
		if sub > int64(len(base)) {
			return d.errf(D7, f, "subtraction length "+strconv.FormatInt(sub, 10)+" exceeds base length "+strconv.Itoa(len(base)))
		}
		off := len(d.m.data)
		if front {
			// The delta goes in front of what remains of the base.
			_, _, err := d.readVector(f, false)
			if err != nil {
				return err
			}
			d.m.data = append(d.m.data, base[sub:]...)
		} else {
			d.m.data = append(d.m.data, base[:int64(len(base))-sub]...)
			_, _, err := d.readVector(f, false)
			if err != nil {
				return err
			}
		}
		d.dict.setBytes(f.slot, f.Type, d.m.data[off:])
		return d.setVector(f, v, off)
	}
	return nil
}

// vectorPresent reads a copy or tail string whose bit is set and records it.
func (d *Decoder) vectorPresent(f *Field, v *Value) error {
	off, null, err := d.readVector(f, f.nullable)
	if err != nil {
		return err
	}
	if null {
		if f.Op == OpCopy {
			d.dict.setEmpty(f.slot, f.Type)
		}
		return nil
	}
	if f.Op == OpTail {
		d.applyTail(f, off)
	}
	d.dict.setBytes(f.slot, f.Type, d.m.data[off:])
	e := &d.dict.entries[f.slot]
	e.msg, e.off = d.msgID, uint32(off)
	return d.setVector(f, v, off)
}

// vectorFromDict gives a copy or tail string whose bit is clear its value from the
// dictionary.
func (d *Decoder) vectorFromDict(f *Field, v *Value) error {
	e, init, err := d.implied(f)
	switch {
	case err != nil || (e == nil && !init):
		return err
	case init:
		d.dict.setBytes(f.slot, f.Type, f.initBytes)
		off := len(d.m.data)
		d.m.data = append(d.m.data, f.initBytes...)
		return d.setVector(f, v, off)
	}
	off := len(d.m.data)
	d.m.data = append(d.m.data, e.b...)
	return d.setVector(f, v, off)
}

// applyTail combines the tail just appended at off with the field's base value, in place in
// the arena: the tail replaces as many trailing bytes of the base.
func (d *Decoder) applyTail(f *Field, off int) {
	var base []byte
	if f.hasInit {
		base = f.initBytes
	}
	if st, e := d.dict.state(f.slot); st == assigned && e.typ == f.Type {
		base = e.b
	}
	tail := len(d.m.data) - off
	if tail >= len(base) {
		return
	}
	keep := len(base) - tail
	d.m.data = append(d.m.data, base[:keep]...) // grow by keep bytes
	copy(d.m.data[off+keep:], d.m.data[off:off+tail])
	copy(d.m.data[off:], base[:keep])
}

func (d *Decoder) enter(f *Field) error {
	d.depth++
	if d.depth > maxDepth {
		return d.errf(Limit, f, "nesting deeper than "+strconv.Itoa(maxDepth))
	}
	return nil
}

func (d *Decoder) sequence(f *Field, pm *pmap, idx int) error {
	var lv Value
	if x, n := shortUint(d.buf, d.pos); f.Length.code == cUint && n > 0 && x <= 1<<32-1 {
		lv, d.pos = Value{Int: int64(x), Present: true}, d.pos+n // the common length: no operator
	} else if err := d.integer(f.Length, pm, &lv); err != nil || !lv.Present {
		return err
	}
	n := int(lv.Int)
	remaining := len(d.buf) - d.pos
	if f.minBytes > 0 && n > remaining/f.minBytes {
		return d.errf(Truncated, f, "sequence of "+strconv.Itoa(n)+" elements does not fit in the "+strconv.Itoa(remaining)+" bytes left")
	}
	if f.minBytes == 0 && n > remaining+64 {
		return d.errf(Limit, f, "sequence of "+strconv.Itoa(n)+" empty elements")
	}
	if err := d.enter(f); err != nil {
		return err
	}
	k := len(f.Fields)
	base := len(d.m.vals)
	d.m.vals = grow(d.m.vals, n*k)
	d.m.vals[idx] = Value{Int: int64(n), Off: uint32(base), Present: true}
	for j := 0; j < n; j++ {
		if err := d.segment(f, pm, base+j*k); err != nil {
			return err
		}
	}
	d.depth--
	return nil
}

// segment decodes one sequence element or group, with its own presence map if it has one.
func (d *Decoder) segment(f *Field, outer *pmap, base int) error {
	if !f.segPmap {
		return d.fields(f.Fields, outer, base)
	}
	var pm pmap
	if err := d.pmap(&pm); err != nil {
		return err
	}
	if err := d.fields(f.Fields, &pm, base); err != nil {
		return err
	}
	if pm.leftover(d.buf) {
		return d.errf(R8, f, "presence map has more bits than the segment uses")
	}
	return nil
}

func (d *Decoder) group(f *Field, pm *pmap, idx int) error {
	if f.Optional && !pm.next(d.buf) {
		return nil
	}
	if err := d.enter(f); err != nil {
		return err
	}
	base := len(d.m.vals)
	d.m.vals = grow(d.m.vals, len(f.Fields))
	d.m.vals[idx] = Value{Off: uint32(base), Present: true}
	if err := d.segment(f, pm, base); err != nil {
		return err
	}
	d.depth--
	return nil
}

func (d *Decoder) templateRef(f *Field, idx int) error {
	if err := d.enter(f); err != nil {
		return err
	}
	var pm pmap
	t, err := d.header(&pm)
	if err != nil {
		return err
	}
	base := len(d.m.vals)
	d.m.vals = grow(d.m.vals, len(t.Fields))
	d.m.refs = append(d.m.refs, t)
	d.m.vals[idx] = Value{Int: int64(t.ID), Exp: int32(len(d.m.refs) - 1), Off: uint32(base), Present: true}
	if t.ResetEach {
		d.dict.reset()
	}
	if err := d.fields(t.Fields, &pm, base); err != nil {
		return err
	}
	if pm.leftover(d.buf) {
		return d.errf(R8, f, "presence map has more bits than template "+t.Name+" uses")
	}
	if t.Reset {
		d.dict.reset()
	}
	d.depth--
	return nil
}
