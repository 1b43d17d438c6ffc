package fast

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// Codes of encoder errors that the specification does not number.
const (
	Missing     Code = "MISSING"     // mandatory field without a value
	Unencodable Code = "UNENCODABLE" // value the field's operator cannot express
)

// Encoder encodes Messages with a set of templates, keeping the dictionaries between
// messages exactly as a Decoder does; call Reset where the feed resets them. An Encoder is
// not safe for concurrent use.
type Encoder struct {
	ts    *Templates
	dict  dictionary
	out   []byte
	m     *Message
	depth int
	tmpl  *Template

	// generalOnly turns the fast paths of fields off, for the test that checks they
	// write exactly what the general path writes.
	generalOnly bool
}

// NewEncoder returns an encoder for ts with empty dictionaries.
func NewEncoder(ts *Templates) *Encoder {
	return &Encoder{ts: ts, dict: newDictionary(ts.slots)}
}

// Reset makes every dictionary entry undefined.
func (e *Encoder) Reset() { e.dict.reset() }

// pmapW is a presence map being written: bytes reserved in the output at start. Maps of
// up to 63 bits (nearly all) collect their bits in a register and are written out by
// finish; longer ones set bits in the reserved bytes as they go.
type pmapW struct {
	start, size int
	reg         uint64 // bits so far, the first in the highest position used
	n           int    // bits so far
	big         bool   // more than 63 bits possible: bits go straight into the bytes
}

// reserve starts the map p of at most bits bits. It fills in *p rather than returning a
// pmapW: copying a struct just written field by field stalls on store forwarding, which
// cost more than the rest of a sequence element's map.
func (e *Encoder) reserve(p *pmapW, bits int) {
	p.start, p.reg, p.n = len(e.out), 0, 0
	if bits <= 7 { // the common one-byte map, without the loop below
		p.size, p.big = 1, false
		e.out = append(e.out, 0)
		return
	}
	p.size, p.big = (bits+6)/7, bits > 63
	for range p.size {
		e.out = append(e.out, 0)
	}
}

func (e *Encoder) bit(p *pmapW, set bool) {
	if p.big {
		e.bigBit(p, set)
		return
	}
	p.reg <<= 1
	if set {
		p.reg |= 1
	}
	p.n++
}

// bigBit sets bit p.n of a long map in its bytes, inserting a byte if the reserved ones
// ran out (which the sizes computed at load time prevent; it stays correct anyway). It is
// kept out of line so that bit stays cheap enough to inline.
//
//go:noinline
func (e *Encoder) bigBit(p *pmapW, set bool) {
	i := p.n / 7
	if i >= p.size {
		e.out = append(e.out, 0)
		copy(e.out[p.start+p.size+1:], e.out[p.start+p.size:len(e.out)-1])
		e.out[p.start+p.size] = 0
		p.size++
	}
	if set {
		e.out[p.start+i] |= 0x40 >> (p.n % 7)
	}
	p.n++
}

// finish writes the map's bits, sets the stop bit on the last byte that carries a set bit
// and removes the unused reserved bytes, so the map is never overlong.
func (e *Encoder) finish(p *pmapW) {
	if !p.big {
		if p.n > 7*p.size {
			// More bits than reserved (not possible with load-time sizes): write them
			// through the general path.
			reg, n := p.reg, p.n
			p.big, p.n = true, 0
			clear(e.out[p.start : p.start+p.size])
			for k := n - 1; k >= 0; k-- {
				e.bigBit(p, reg>>k&1 == 1)
			}
		} else {
			for i := 0; i < p.size; i++ {
				var b byte
				if shift := p.n - 7*(i+1); shift >= 0 {
					b = byte(p.reg>>shift) & 0x7f
				} else if -shift < 7 {
					b = byte(p.reg<<(-shift)) & 0x7f
				}
				e.out[p.start+i] = b
			}
		}
	}
	used := 1
	for i := p.size - 1; i > 0; i-- {
		if e.out[p.start+i] != 0 {
			used = i + 1
			break
		}
	}
	e.out[p.start+used-1] |= stopBit
	if used < p.size {
		n := copy(e.out[p.start+used:], e.out[p.start+p.size:])
		e.out = e.out[:p.start+used+n]
	}
}

// end is finish with the common case, a one-byte map, inline at the call: its bits,
// left-aligned, and the stop bit.
func (e *Encoder) end(p *pmapW) {
	if p.size == 1 && p.n <= 7 {
		e.out[p.start] = byte(p.reg<<(7-p.n)) | stopBit
		return
	}
	e.finish(p)
}

func (e *Encoder) errf(code Code, f *Field, msg string) error {
	er := &Error{Code: code, Offset: -1, Msg: msg}
	if e.tmpl != nil {
		er.Template = e.tmpl.Name
	}
	if f != nil {
		er.Field = f.Name
	}
	return er
}

// Encode appends the encoding of m to dst. On error the returned slice is dst unchanged
// (the dictionaries may have advanced; reset them before the next message of a datagram).
func (e *Encoder) Encode(dst []byte, m *Message) ([]byte, error) {
	t := m.Template
	if t == nil {
		return dst, e.errf(Missing, nil, "message has no template")
	}
	e.out, e.m, e.depth, e.tmpl = dst, m, 0, t
	if err := e.message(t, 0); err != nil {
		e.out = nil
		return dst, err
	}
	out := e.out
	e.out, e.m = nil, nil
	return out, nil
}

// message writes a presence map, the template identifier and the fields of t.
func (e *Encoder) message(t *Template, base int) error {
	var p pmapW
	e.reserve(&p, t.pmapBits)
	if st, en := e.dict.state(e.ts.tidKey); st == assigned && uint32(en.i) == t.ID {
		e.bit(&p, false)
	} else {
		e.bit(&p, true)
		e.out = AppendUint(e.out, uint64(t.ID))
		e.dict.setInt(e.ts.tidKey, TypeUint32, int64(t.ID), 0)
	}
	if t.ResetEach {
		e.dict.reset()
	}
	if err := e.fields(t.Fields, &p, base); err != nil {
		return err
	}
	e.end(&p)
	if t.Reset {
		e.dict.reset()
	}
	return nil
}

func (e *Encoder) fields(fs []*Field, p *pmapW, base int) error {
	if p.big || e.generalOnly {
		return e.fieldsGeneral(fs, p, base)
	}
	// The output slice and the presence map bits live in locals for the whole loop, so
	// that the fast paths below work in registers rather than through e and p; they are
	// written back around every call of the general path.
	out := e.out
	reg, n := p.reg, p.n
	vals := e.m.vals[base : base+len(fs) : base+len(fs)]
	for i, f := range fs {
		v := &vals[i]
		// Fast paths for the common instructions; everything else, and every case that
		// needs checking, takes the general path below.
		switch f.code {
		case cConstNum:
			if !v.Present || (v.Int == f.initInt && v.Exp == f.initExp) {
				continue
			}
		case cConstBytes:
			if !v.Present || string(e.m.data[v.Off:v.Off+v.Len]) == string(f.initBytes) {
				continue
			}
		case cUint:
			if v.Present && (f.Type == TypeUint64 || uint64(v.Int) <= 1<<32-1) {
				out = appendUint(out, uint64(v.Int))
				continue
			}
		case cInt:
			if v.Present && (f.Type == TypeInt64 || (v.Int >= -1<<31 && v.Int <= 1<<31-1)) {
				out = AppendInt(out, v.Int)
				continue
			}
		case cASCII, cASCIINull:
			if v.Present {
				b := e.m.data[v.Off : v.Off+v.Len]
				if IsASCII(b) {
					out = AppendASCII(out, b, f.code == cASCIINull)
					continue
				}
			} else if f.code == cASCIINull {
				out = append(out, stopBit)
				continue
			}
		case cUintNull:
			if !v.Present {
				out = append(out, stopBit)
				continue
			}
			if uint64(v.Int) < 0x7f {
				out = append(out, byte(v.Int+1)|stopBit)
				continue
			}
			if f.Type == TypeUint64 || uint64(v.Int) <= 1<<32-1 {
				out = AppendUintNullable(out, uint64(v.Int))
				continue
			}
		case cIntNull:
			if !v.Present {
				out = append(out, stopBit)
				continue
			}
			if f.Type == TypeInt64 || (v.Int >= -1<<31 && v.Int <= 1<<31-1) {
				out = AppendIntNullable(out, v.Int)
				continue
			}
		case cCopyInt, cIncInt:
			if v.Present && !f.typeCheck {
				en := &e.dict.entries[f.slot]
				if en.gen == e.dict.gen && !en.empty {
					if f.code == cCopyInt && en.i == v.Int {
						reg <<= 1
						n++
						continue
					}
					if f.code == cIncInt && en.i+1 == v.Int && en.i+1 > en.i && !(f.Type == TypeUint64 && v.Int == 0) && inRange(f.Type, v.Int) {
						en.i = v.Int
						reg <<= 1
						n++
						continue
					}
				}
				if (en.gen == e.dict.gen || !f.hasInit) && inRange(f.Type, v.Int) {
					// The decoder cannot infer the value: send it.
					reg = reg<<1 | 1
					n++
					switch {
					case !f.nullable && !f.Type.isSigned():
						out = appendUint(out, uint64(v.Int))
					case !f.nullable:
						out = AppendInt(out, v.Int)
					case f.Type.isSigned():
						out = AppendIntNullable(out, v.Int)
					default:
						out = AppendUintNullable(out, uint64(v.Int))
					}
					en.gen, en.empty, en.typ, en.i, en.e = e.dict.gen, false, f.Type, v.Int, 0
					continue
				}
			}
		case cCopyASCII:
			if v.Present && !f.typeCheck {
				b := e.m.data[v.Off : v.Off+v.Len]
				en := &e.dict.entries[f.slot]
				if en.gen == e.dict.gen && !en.empty && equalShort(en.b, b) {
					reg <<= 1
					n++
					continue
				}
				if (en.gen == e.dict.gen || !f.hasInit) && IsASCII(b) {
					reg = reg<<1 | 1
					n++
					out = AppendASCII(out, b, f.nullable)
					e.dict.setBytes(f.slot, f.Type, b)
					continue
				}
			}
		case cDecimalNull:
			if !v.Present {
				out = append(out, stopBit)
				continue
			}
			if v.Exp >= -63 && v.Exp <= 63 {
				exp := int64(v.Exp)
				if exp >= 0 {
					exp++
				}
				out = AppendInt(out, exp)
				out = AppendInt(out, v.Int)
				continue
			}
		case cDecimal:
			if v.Present && v.Exp >= -63 && v.Exp <= 63 {
				out = AppendInt(out, int64(v.Exp))
				out = AppendInt(out, v.Int)
				continue
			}
		case cSplitDecimal:
			// Fast path: exponent copy, mantissa delta from an assigned (or, with no initial
			// value, undefined) previous mantissa.
			if x, m := f.Exponent, f.Mantissa; v.Present && v.Exp >= -63 && v.Exp <= 63 && x.Op == OpCopy && m.Op == OpDelta &&
				!x.typeCheck && !m.typeCheck && !m.hasInit {
				ex, mn := &e.dict.entries[x.slot], &e.dict.entries[m.slot]
				if mn.gen != e.dict.gen || !mn.empty {
					base := int64(0)
					if mn.gen == e.dict.gen {
						base = mn.i
					}
					if d, ok := subInt64(v.Int, base); ok {
						if ex.gen == e.dict.gen && !ex.empty && ex.i == int64(v.Exp) {
							reg <<= 1
							n++
						} else if ex.gen == e.dict.gen || !x.hasInit {
							reg = reg<<1 | 1
							n++
							if x.nullable {
								out = AppendIntNullable(out, int64(v.Exp))
							} else {
								out = AppendInt(out, int64(v.Exp))
							}
							ex.gen, ex.empty, ex.typ, ex.i = e.dict.gen, false, x.Type, int64(v.Exp)
						} else {
							goto general
						}
						out = AppendInt(out, d)
						mn.gen, mn.empty, mn.typ, mn.i = e.dict.gen, false, m.Type, v.Int
						continue
					}
				}
			}
		}
	general:
		e.out, p.reg, p.n = out, reg, n
		if f.Type == TypeSequence {
			// Straight to sequence: the one general case of every message of a feed.
			if err := e.sequence(f, p, *v); err != nil {
				return err
			}
		} else if err := e.field(f, p, v); err != nil {
			return err
		}
		out, reg, n = e.out, p.reg, p.n
	}
	e.out, p.reg, p.n = out, reg, n
	return nil
}

// fieldsGeneral encodes fields by the general path only: for the rare presence maps of
// more than 63 bits, whose bits go straight into the output, and for tests.
func (e *Encoder) fieldsGeneral(fs []*Field, p *pmapW, base int) error {
	vals := e.m.vals[base : base+len(fs) : base+len(fs)]
	for i, f := range fs {
		if err := e.field(f, p, &vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// appendUint is AppendUint with the one-byte case inline. Every call in Encoder.fields
// costs more than the call itself: Go keeps no register across a call, so the loop's
// state is stored before it and loaded again after.
func appendUint(b []byte, v uint64) []byte {
	if v < 1<<7 {
		return append(b, byte(v)|stopBit)
	}
	return AppendUint(b, v)
}

// subInt64 is subDelta for int64, small enough to inline in Encoder.fields.
func subInt64(value, base int64) (int64, bool) {
	d := value - base
	// Overflow iff the operands have different signs and the result's sign differs
	// from value's.
	return d, (value^base)&(value^d) >= 0
}

// equalShort compares two short strings (symbols, entry types) without the call of
// runtime.memequal that comparing them as strings makes, which costs more than the
// comparison itself at these lengths.
func equalShort(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 16 {
		return string(a) == string(b)
	}
	b = b[:len(a)] // no bounds check in the loop
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// inRange reports whether x fits in the integer type t.
func inRange(t Type, x int64) bool {
	switch t {
	case TypeUint32:
		return uint64(x) <= math.MaxUint32
	case TypeInt32:
		return x >= math.MinInt32 && x <= math.MaxInt32
	}
	return true
}

// field encodes one instruction by the general path.
func (e *Encoder) field(f *Field, p *pmapW, v *Value) error {
	switch f.Type {
	case TypeUint32, TypeInt32, TypeUint64, TypeInt64:
		return e.integer(f, p, *v)
	case TypeDecimal:
		if f.split {
			return e.splitDecimal(f, p, *v)
		}
		return e.decimal(f, p, *v)
	case TypeASCII, TypeUnicode, TypeBytes:
		return e.vector(f, p, *v)
	case TypeSequence:
		return e.sequence(f, p, *v)
	case TypeGroup:
		return e.group(f, p, *v)
	case TypeTemplateRef:
		return e.templateRef(f, *v)
	}
	return nil
}

func (e *Encoder) missing(f *Field) error {
	return e.errf(Missing, f, "mandatory field has no value")
}

func (e *Encoder) checkRange(f *Field, x int64) error {
	switch f.Type {
	case TypeUint32:
		if uint64(x) > math.MaxUint32 {
			return e.errf(D2, f, strconv.FormatUint(uint64(x), 10)+" exceeds uInt32")
		}
	case TypeInt32:
		if x < math.MinInt32 || x > math.MaxInt32 {
			return e.errf(D2, f, strconv.FormatInt(x, 10)+" exceeds int32")
		}
	}
	return nil
}

func (e *Encoder) writeInt(f *Field, v Value) {
	switch {
	case !v.Present:
		e.out = AppendNull(e.out)
	case f.Type.isSigned():
		if f.nullable {
			e.out = AppendIntNullable(e.out, v.Int)
		} else {
			e.out = AppendInt(e.out, v.Int)
		}
	default:
		if f.nullable {
			e.out = AppendUintNullable(e.out, uint64(v.Int))
		} else {
			e.out = AppendUint(e.out, uint64(v.Int))
		}
	}
}

// implied returns the value a decoder infers for a copy or increment field whose bit is
// clear, and whether that is possible at all.
func (e *Encoder) impliedInt(f *Field) (Value, bool) {
	st, en := e.dict.state(f.slot)
	switch st {
	case undefined:
		if f.hasInit {
			return Value{Int: f.initInt, Exp: f.initExp, Present: true}, true
		}
		return Value{}, f.Optional
	case empty:
		return Value{}, f.Optional && en.typ == f.Type
	}
	if en.typ != f.Type {
		return Value{}, false
	}
	x := en.i
	if f.Op == OpIncrement {
		x++
		if e.checkRange(f, x) != nil || (f.Type == TypeUint64 && x == 0) || (f.Type == TypeInt64 && x == math.MinInt64) {
			return Value{}, false
		}
	}
	return Value{Int: x, Exp: en.e, Present: true}, true
}

func sameNumber(a, b Value) bool {
	if !a.Present || !b.Present {
		return a.Present == b.Present
	}
	return a.Int == b.Int && a.Exp == b.Exp
}

// setDict records v as the field's previous value.
func (e *Encoder) setDict(f *Field, v Value) {
	if v.Present {
		e.dict.setInt(f.slot, f.Type, v.Int, v.Exp)
	} else {
		e.dict.setEmpty(f.slot, f.Type)
	}
}

func (e *Encoder) integer(f *Field, p *pmapW, v Value) error {
	if v.Present {
		if err := e.checkRange(f, v.Int); err != nil {
			return err
		}
	} else if !f.Optional && f.Op != OpConstant {
		return e.missing(f)
	}
	switch f.Op {
	case OpNone:
		e.writeInt(f, v)
	case OpConstant:
		if v.Present && v.Int != f.initInt {
			return e.errf(Unencodable, f, "value differs from the constant "+strconv.FormatInt(f.initInt, 10))
		}
		if f.Optional {
			e.bit(p, v.Present)
		}
	case OpDefault:
		if (v.Present && f.hasInit && v.Int == f.initInt) || (!v.Present && !f.hasInit) {
			e.bit(p, false)
			return nil
		}
		e.bit(p, true)
		e.writeInt(f, v)
	case OpCopy, OpIncrement:
		if iv, ok := e.impliedInt(f); ok && sameNumber(iv, v) {
			e.bit(p, false)
			e.setDict(f, v)
			return nil
		}
		e.bit(p, true)
		e.writeInt(f, v)
		e.setDict(f, v)
	case OpDelta:
		if !v.Present {
			e.out = AppendNull(e.out)
			return nil
		}
		base := f.initInt
		st, en := e.dict.state(f.slot)
		switch st {
		case empty:
			return e.errf(D6, f, "delta base value is empty")
		case assigned:
			if en.typ != f.Type {
				return e.errf(D4, f, "dictionary entry "+f.key+" holds a "+en.typ.String())
			}
			base = en.i
		}
		delta, ok := subDelta(f.Type, v.Int, base)
		if !ok {
			return e.errf(R4, f, "delta from the previous value does not fit in int64")
		}
		if f.nullable {
			e.out = AppendIntNullable(e.out, delta)
		} else {
			e.out = AppendInt(e.out, delta)
		}
		e.dict.setInt(f.slot, f.Type, v.Int, 0)
	}
	return nil
}

// subDelta computes value-base as a signed delta, reporting when it does not fit.
func subDelta(t Type, value, base int64) (int64, bool) {
	if t == TypeUint64 || t == TypeUint32 {
		u, b := uint64(value), uint64(base)
		if u >= b {
			d := u - b
			return int64(d), d <= math.MaxInt64
		}
		d := b - u
		return -int64(d), d <= 1<<63
	}
	d := value - base
	if (base < 0 && value > 0 && d < 0) || (base > 0 && value < 0 && d > 0) {
		return 0, false
	}
	return d, true
}

func (e *Encoder) checkDecimal(f *Field, v Value) error {
	if v.Present && (v.Exp < -63 || v.Exp > 63) {
		return e.errf(R1, f, "decimal exponent "+strconv.Itoa(int(v.Exp))+" outside -63..63")
	}
	return nil
}

func (e *Encoder) writeDecimal(f *Field, v Value) {
	if !v.Present {
		e.out = AppendNull(e.out)
		return
	}
	if f.nullable {
		e.out = AppendIntNullable(e.out, int64(v.Exp))
	} else {
		e.out = AppendInt(e.out, int64(v.Exp))
	}
	e.out = AppendInt(e.out, v.Int)
}

func (e *Encoder) decimal(f *Field, p *pmapW, v Value) error {
	if err := e.checkDecimal(f, v); err != nil {
		return err
	}
	if !v.Present && !f.Optional && f.Op != OpConstant {
		return e.missing(f)
	}
	switch f.Op {
	case OpNone:
		e.writeDecimal(f, v)
	case OpConstant:
		if v.Present && (v.Int != f.initInt || v.Exp != f.initExp) {
			return e.errf(Unencodable, f, "value differs from the constant")
		}
		if f.Optional {
			e.bit(p, v.Present)
		}
	case OpDefault:
		init := Value{Int: f.initInt, Exp: f.initExp, Present: f.hasInit}
		if sameNumber(init, v) {
			e.bit(p, false)
			return nil
		}
		e.bit(p, true)
		e.writeDecimal(f, v)
	case OpCopy:
		if iv, ok := e.impliedInt(f); ok && sameNumber(iv, v) {
			e.bit(p, false)
			e.setDict(f, v)
			return nil
		}
		e.bit(p, true)
		e.writeDecimal(f, v)
		e.setDict(f, v)
	case OpDelta:
		if !v.Present {
			e.out = AppendNull(e.out)
			return nil
		}
		bm, be := f.initInt, f.initExp
		st, en := e.dict.state(f.slot)
		switch st {
		case empty:
			return e.errf(D6, f, "delta base value is empty")
		case assigned:
			if en.typ != f.Type {
				return e.errf(D4, f, "dictionary entry "+f.key+" holds a "+en.typ.String())
			}
			bm, be = en.i, en.e
		}
		dm, ok := subDelta(TypeInt64, v.Int, bm)
		if !ok {
			return e.errf(R1, f, "mantissa delta does not fit in int64")
		}
		dexp := int64(v.Exp) - int64(be)
		if f.nullable {
			e.out = AppendIntNullable(e.out, dexp)
		} else {
			e.out = AppendInt(e.out, dexp)
		}
		e.out = AppendInt(e.out, dm)
		e.dict.setInt(f.slot, f.Type, v.Int, v.Exp)
	}
	return nil
}

func (e *Encoder) splitDecimal(f *Field, p *pmapW, v Value) error {
	if err := e.checkDecimal(f, v); err != nil {
		return err
	}
	// Fast path: exponent copied unchanged, mantissa as a delta from an assigned value.
	if x, m := f.Exponent, f.Mantissa; v.Present && x.Op == OpCopy && m.Op == OpDelta && !x.typeCheck && !m.typeCheck {
		ex, mn := &e.dict.entries[x.slot], &e.dict.entries[m.slot]
		if ex.gen == e.dict.gen && !ex.empty && ex.i == int64(v.Exp) && mn.gen == e.dict.gen && !mn.empty {
			if d, ok := subDelta(TypeInt64, v.Int, mn.i); ok {
				e.bit(p, false)
				e.out = AppendInt(e.out, d)
				mn.i = v.Int
				return nil
			}
		}
	}
	if !v.Present && !f.Optional {
		return e.missing(f)
	}
	if err := e.integer(f.Exponent, p, Value{Int: int64(v.Exp), Present: v.Present}); err != nil {
		return err
	}
	if !v.Present {
		return nil
	}
	return e.integer(f.Mantissa, p, Value{Int: v.Int, Present: true})
}

func (e *Encoder) bytesOf(v Value) []byte {
	if !v.Present {
		return nil
	}
	return e.m.data[v.Off : v.Off+v.Len]
}

func (e *Encoder) writeVector(f *Field, b []byte, present, nullable bool) {
	switch {
	case !present:
		e.out = AppendNull(e.out)
	case f.Type == TypeASCII:
		e.out = AppendASCII(e.out, b, nullable)
	default:
		e.out = AppendBytes(e.out, b, nullable)
	}
}

func (e *Encoder) checkVector(f *Field, b []byte) error {
	switch f.Type {
	case TypeASCII:
		if !IsASCII(b) {
			return e.errf(R3, f, "non-ASCII byte in an ASCII string")
		}
	case TypeUnicode:
		if !utf8.Valid(b) {
			return e.errf(R2, f, "unicode string is not valid UTF-8")
		}
	}
	return nil
}

// impliedVector returns what a decoder infers for a copy or tail field whose bit is clear.
func (e *Encoder) impliedVector(f *Field) (b []byte, present, ok bool) {
	st, en := e.dict.state(f.slot)
	switch st {
	case undefined:
		if f.hasInit {
			return f.initBytes, true, true
		}
		return nil, false, f.Optional
	case empty:
		return nil, false, f.Optional && en.typ == f.Type
	}
	return en.b, true, en.typ == f.Type
}

func (e *Encoder) vector(f *Field, p *pmapW, v Value) error {
	b := e.bytesOf(v)
	if err := e.checkVector(f, b); err != nil {
		return err
	}
	if !v.Present && !f.Optional && f.Op != OpConstant {
		return e.missing(f)
	}
	switch f.Op {
	case OpNone:
		e.writeVector(f, b, v.Present, f.nullable)
	case OpConstant:
		if v.Present && !bytes.Equal(b, f.initBytes) {
			return e.errf(Unencodable, f, "value differs from the constant "+strconv.Quote(string(f.initBytes)))
		}
		if f.Optional {
			e.bit(p, v.Present)
		}
	case OpDefault:
		if (v.Present && f.hasInit && bytes.Equal(b, f.initBytes)) || (!v.Present && !f.hasInit) {
			e.bit(p, false)
			return nil
		}
		e.bit(p, true)
		e.writeVector(f, b, v.Present, f.nullable)
	case OpCopy:
		if ib, ipresent, ok := e.impliedVector(f); ok && ipresent == v.Present && bytes.Equal(ib, b) {
			e.bit(p, false)
		} else {
			e.bit(p, true)
			e.writeVector(f, b, v.Present, f.nullable)
		}
		if v.Present {
			e.dict.setBytes(f.slot, f.Type, b)
		} else {
			e.dict.setEmpty(f.slot, f.Type)
		}
	case OpTail:
		if ib, ipresent, ok := e.impliedVector(f); ok && ipresent == v.Present && bytes.Equal(ib, b) {
			e.bit(p, false)
			if v.Present {
				e.dict.setBytes(f.slot, f.Type, b)
			} else {
				e.dict.setEmpty(f.slot, f.Type)
			}
			return nil
		}
		e.bit(p, true)
		if !v.Present {
			e.out = AppendNull(e.out) // absent; the previous value stays as it is
			return nil
		}
		var base []byte
		if f.hasInit {
			base = f.initBytes
		}
		if st, en := e.dict.state(f.slot); st == assigned && en.typ == f.Type {
			base = en.b
		}
		tail := b
		if len(b) < len(base) {
			return e.errf(Unencodable, f, "tail operator cannot shorten the previous value")
		}
		if len(b) == len(base) {
			i := 0
			for i < len(b) && b[i] == base[i] {
				i++
			}
			tail = b[i:]
		}
		e.writeVector(f, tail, true, f.nullable)
		e.dict.setBytes(f.slot, f.Type, b)
	case OpDelta:
		if !v.Present {
			e.out = AppendNull(e.out)
			return nil
		}
		var base []byte
		if f.hasInit {
			base = f.initBytes
		}
		st, en := e.dict.state(f.slot)
		switch st {
		case empty:
			return e.errf(D6, f, "delta base value is empty")
		case assigned:
			if en.typ != f.Type {
				return e.errf(D4, f, "dictionary entry "+f.key+" holds a "+en.typ.String())
			}
			base = en.b
		}
		// Keep the longer of the common prefix and the common suffix; on a tie, the prefix.
		pre := 0
		for pre < len(b) && pre < len(base) && b[pre] == base[pre] {
			pre++
		}
		suf := 0
		for suf < len(b) && suf < len(base) && b[len(b)-1-suf] == base[len(base)-1-suf] {
			suf++
		}
		var sub int64
		var diff []byte
		if pre >= suf {
			sub, diff = int64(len(base)-pre), b[pre:]
		} else {
			sub, diff = -int64(len(base)-suf)-1, b[:len(b)-suf]
		}
		if f.nullable {
			e.out = AppendIntNullable(e.out, sub)
		} else {
			e.out = AppendInt(e.out, sub)
		}
		e.writeVector(f, diff, true, false)
		e.dict.setBytes(f.slot, f.Type, b)
	}
	return nil
}

func (e *Encoder) enter(f *Field) error {
	e.depth++
	if e.depth > maxDepth {
		return e.errf(Limit, f, "nesting deeper than "+strconv.Itoa(maxDepth))
	}
	return nil
}

func (e *Encoder) sequence(f *Field, p *pmapW, v Value) error {
	lv := Value{Int: v.Int, Present: v.Present}
	if !v.Present && !f.Optional {
		return e.missing(f)
	}
	if f.Length.code == cUint && v.Present {
		e.out = AppendUint(e.out, uint64(v.Int)) // the common length: no operator
	} else if err := e.integer(f.Length, p, lv); err != nil {
		return err
	}
	if !v.Present {
		return nil
	}
	if err := e.enter(f); err != nil {
		return err
	}
	k := len(f.Fields)
	if f.segPmap && f.segBits <= 7 {
		// Elements with a one-byte presence map (the usual case): segment written out,
		// one call less per element.
		var ep pmapW
		for j := 0; j < int(v.Int); j++ {
			ep = pmapW{start: len(e.out), size: 1}
			e.out = append(e.out, 0)
			if err := e.fields(f.Fields, &ep, int(v.Off)+j*k); err != nil {
				return err
			}
			e.end(&ep)
		}
		e.depth--
		return nil
	}
	for j := 0; j < int(v.Int); j++ {
		if err := e.segment(f, p, int(v.Off)+j*k); err != nil {
			return err
		}
	}
	e.depth--
	return nil
}

func (e *Encoder) segment(f *Field, outer *pmapW, base int) error {
	if !f.segPmap {
		return e.fields(f.Fields, outer, base)
	}
	var p pmapW
	e.reserve(&p, f.segBits)
	if err := e.fields(f.Fields, &p, base); err != nil {
		return err
	}
	e.end(&p)
	return nil
}

func (e *Encoder) group(f *Field, p *pmapW, v Value) error {
	if f.Optional {
		e.bit(p, v.Present)
	}
	if !v.Present {
		if !f.Optional {
			return e.missing(f)
		}
		return nil
	}
	if err := e.enter(f); err != nil {
		return err
	}
	if err := e.segment(f, p, int(v.Off)); err != nil {
		return err
	}
	e.depth--
	return nil
}

func (e *Encoder) templateRef(f *Field, v Value) error {
	if !v.Present {
		return e.missing(f)
	}
	if err := e.enter(f); err != nil {
		return err
	}
	if err := e.message(e.m.refTemplate(&v), int(v.Off)); err != nil {
		return err
	}
	e.depth--
	return nil
}
