package fastrt

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"fastfeed/fast"
)

// PMapW is a presence map being written: Size bytes reserved in the output at Start. A map
// of up to 63 bits collects its bits in Reg; a longer one sets them in the reserved bytes.
type PMapW struct {
	Start, Size int
	Reg         uint64
	N           int
	big         bool
}

// Reserve starts a map of at most bits bits at the end of out.
func Reserve(out []byte, p *PMapW, bits int) []byte {
	p.Start, p.Reg, p.N = len(out), 0, 0
	p.Size = max(1, (bits+6)/7)
	p.big = bits > 63
	for range p.Size {
		out = append(out, 0)
	}
	return out
}

// Bit appends one bit.
func (p *PMapW) Bit(out []byte, set bool) {
	if p.big {
		if set {
			out[p.Start+p.N/7] |= 0x40 >> (p.N % 7)
		}
		p.N++
		return
	}
	p.Reg <<= 1
	if set {
		p.Reg |= 1
	}
	p.N++
}

// Finish writes the map's bits and the stop bit on the last byte that carries a set bit,
// and removes the reserved bytes it does not need, so that the map is never overlong.
func Finish(out []byte, p *PMapW) []byte {
	if p.Size == 1 && !p.big {
		out[p.Start] = byte(p.Reg<<(7-p.N)) | stopBit
		return out
	}
	if !p.big {
		for i := 0; i < p.Size; i++ {
			var b byte
			if shift := p.N - 7*(i+1); shift >= 0 {
				b = byte(p.Reg>>shift) & 0x7f
			} else if -shift < 7 {
				b = byte(p.Reg<<(-shift)) & 0x7f
			}
			out[p.Start+i] = b
		}
	}
	used := 1
	for i := p.Size - 1; i > 0; i-- {
		if out[p.Start+i] != 0 {
			used = i + 1
			break
		}
	}
	out[p.Start+used-1] |= stopBit
	if used < p.Size {
		n := copy(out[p.Start+used:], out[p.Start+p.Size:])
		out = out[:p.Start+used+n]
	}
	return out
}

// Enc is the encoding state of a generated codec besides its dictionary entries.
type Enc struct {
	Dict
	Depth int
}

// EncErr returns an encoder error (offset -1).
func EncErr(code fast.Code, f *Field, msg string) error { return Err(code, -1, f, msg) }

// Missing is the error of a mandatory field without a value.
func Missing(f *Field) error { return EncErr(fast.Missing, f, "mandatory field has no value") }

// Enter counts a nesting level.
func (s *Enc) Enter(f *Field) error {
	s.Depth++
	if s.Depth > MaxDepth {
		return EncErr(fast.Limit, f, "nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	return nil
}

func writeInt(out []byte, f *Field, v int64, present bool) []byte {
	switch {
	case !present:
		return append(out, stopBit)
	case isSigned(f.Type):
		if f.Nullable {
			return fast.AppendIntNullable(out, v)
		}
		return fast.AppendInt(out, v)
	case f.Nullable:
		return fast.AppendUintNullable(out, uint64(v))
	}
	return fast.AppendUint(out, uint64(v))
}

// impliedNum is the value a decoder infers for a copy or increment field whose bit is clear.
func (s *Enc) impliedNum(f *Field, e *Entry) (i int64, exp int32, present, ok bool) {
	switch s.state(e) {
	case undefined:
		if f.HasInit {
			return f.InitInt, f.InitExp, true, true
		}
		return 0, 0, false, f.Optional
	case empty:
		return 0, 0, false, f.Optional && e.T == f.Type
	}
	if e.T != f.Type {
		return 0, 0, false, false
	}
	x := e.I
	if f.Op == fast.OpIncrement {
		x++
		if !inRange(f.Type, x) || (f.Type == fast.TypeUint64 && x == 0) || (f.Type == fast.TypeInt64 && x == -1<<63) {
			return 0, 0, false, false
		}
	}
	return x, e.E, true, true
}

func same(ai int64, ae int32, ap bool, bi int64, be int32, bp bool) bool {
	if !ap || !bp {
		return ap == bp
	}
	return ai == bi && ae == be
}

func (s *Enc) setNum(e *Entry, f *Field, v int64, exp int32, present bool) {
	if present {
		s.SetInt(e, f.Type, v, exp)
	} else {
		s.SetEmpty(e, f.Type)
	}
}

// Int encodes an integer field with any operator (e is nil without a dictionary entry).
func (s *Enc) Int(out []byte, f *Field, pm *PMapW, e *Entry, v int64, present bool) ([]byte, error) {
	if present {
		if !inRange(f.Type, v) {
			return out, EncErr(fast.D2, f, rangeMsg(f.Type, v))
		}
	} else if !f.Optional && f.Op != fast.OpConstant {
		return out, Missing(f)
	}
	switch f.Op {
	case fast.OpNone:
		out = writeInt(out, f, v, present)
	case fast.OpConstant:
		if present && v != f.InitInt {
			return out, EncErr(fast.Unencodable, f, "value differs from the constant "+strconv.FormatInt(f.InitInt, 10))
		}
		if f.Optional {
			pm.Bit(out, present)
		}
	case fast.OpDefault:
		if (present && f.HasInit && v == f.InitInt) || (!present && !f.HasInit) {
			pm.Bit(out, false)
			return out, nil
		}
		pm.Bit(out, true)
		out = writeInt(out, f, v, present)
	case fast.OpCopy, fast.OpIncrement:
		if iv, ie, ip, ok := s.impliedNum(f, e); ok && same(iv, ie, ip, v, 0, present) {
			pm.Bit(out, false)
			s.setNum(e, f, v, 0, present)
			return out, nil
		}
		pm.Bit(out, true)
		out = writeInt(out, f, v, present)
		s.setNum(e, f, v, 0, present)
	case fast.OpDelta:
		if !present {
			return append(out, stopBit), nil
		}
		base := f.InitInt
		switch s.state(e) {
		case empty:
			return out, EncErr(fast.D6, f, "delta base value is empty")
		case assigned:
			if e.T != f.Type {
				return out, EncErr(fast.D4, f, "dictionary entry "+f.Key+" holds a "+e.T.String())
			}
			base = e.I
		}
		d, ok := SubDelta(f.Type, v, base)
		if !ok {
			return out, EncErr(fast.R4, f, "delta from the previous value does not fit in int64")
		}
		if f.Nullable {
			out = fast.AppendIntNullable(out, d)
		} else {
			out = fast.AppendInt(out, d)
		}
		s.SetInt(e, f.Type, v, 0)
	}
	return out, nil
}

func writeDecimal(out []byte, f *Field, m int64, exp int32, present bool) []byte {
	if !present {
		return append(out, stopBit)
	}
	if f.Nullable {
		out = fast.AppendIntNullable(out, int64(exp))
	} else {
		out = fast.AppendInt(out, int64(exp))
	}
	return fast.AppendInt(out, m)
}

func checkDecimal(f *Field, exp int32, present bool) error {
	if present && (exp < -63 || exp > 63) {
		return EncErr(fast.R1, f, "decimal exponent "+strconv.Itoa(int(exp))+" outside -63..63")
	}
	return nil
}

// Decimal encodes a decimal field with a single operator (or none).
func (s *Enc) Decimal(out []byte, f *Field, pm *PMapW, e *Entry, m int64, exp int32, present bool) ([]byte, error) {
	if err := checkDecimal(f, exp, present); err != nil {
		return out, err
	}
	if !present && !f.Optional && f.Op != fast.OpConstant {
		return out, Missing(f)
	}
	switch f.Op {
	case fast.OpNone:
		out = writeDecimal(out, f, m, exp, present)
	case fast.OpConstant:
		if present && (m != f.InitInt || exp != f.InitExp) {
			return out, EncErr(fast.Unencodable, f, "value differs from the constant")
		}
		if f.Optional {
			pm.Bit(out, present)
		}
	case fast.OpDefault:
		if same(f.InitInt, f.InitExp, f.HasInit, m, exp, present) {
			pm.Bit(out, false)
			return out, nil
		}
		pm.Bit(out, true)
		out = writeDecimal(out, f, m, exp, present)
	case fast.OpCopy:
		if iv, ie, ip, ok := s.impliedNum(f, e); ok && same(iv, ie, ip, m, exp, present) {
			pm.Bit(out, false)
			s.setNum(e, f, m, exp, present)
			return out, nil
		}
		pm.Bit(out, true)
		out = writeDecimal(out, f, m, exp, present)
		s.setNum(e, f, m, exp, present)
	case fast.OpDelta:
		if !present {
			return append(out, stopBit), nil
		}
		bm, be := f.InitInt, f.InitExp
		switch s.state(e) {
		case empty:
			return out, EncErr(fast.D6, f, "delta base value is empty")
		case assigned:
			if e.T != f.Type {
				return out, EncErr(fast.D4, f, "dictionary entry "+f.Key+" holds a "+e.T.String())
			}
			bm, be = e.I, e.E
		}
		dm, ok := SubDelta(fast.TypeInt64, m, bm)
		if !ok {
			return out, EncErr(fast.R1, f, "mantissa delta does not fit in int64")
		}
		dexp := int64(exp) - int64(be)
		if f.Nullable {
			out = fast.AppendIntNullable(out, dexp)
		} else {
			out = fast.AppendInt(out, dexp)
		}
		out = fast.AppendInt(out, dm)
		s.SetInt(e, f.Type, m, exp)
	}
	return out, nil
}

// SplitDecimal encodes a decimal with individual exponent and mantissa operators.
func (s *Enc) SplitDecimal(out []byte, f *Field, pm *PMapW, ee, me *Entry, m int64, exp int32, present bool) ([]byte, error) {
	if err := checkDecimal(f, exp, present); err != nil {
		return out, err
	}
	if x, mt := f.Exponent, f.Mantissa; present && x.Op == fast.OpCopy && mt.Op == fast.OpDelta && !x.TypeCheck && !mt.TypeCheck {
		if ee.G == s.Gen && ee.I == int64(exp) && me.G == s.Gen {
			if d, ok := SubDelta(fast.TypeInt64, m, me.I); ok {
				pm.Bit(out, false)
				out = fast.AppendInt(out, d)
				me.I = m
				return out, nil
			}
		}
	}
	if !present && !f.Optional {
		return out, Missing(f)
	}
	out, err := s.Int(out, f.Exponent, pm, ee, int64(exp), present)
	if err != nil || !present {
		return out, err
	}
	return s.Int(out, f.Mantissa, pm, me, m, true)
}

func writeVector(out []byte, f *Field, b []byte, present, nullable bool) []byte {
	switch {
	case !present:
		return append(out, stopBit)
	case f.Type == fast.TypeASCII:
		return fast.AppendASCII(out, b, nullable)
	}
	return fast.AppendBytes(out, b, nullable)
}

func (s *Enc) impliedVector(f *Field, e *Entry) (b []byte, present, ok bool) {
	switch s.state(e) {
	case undefined:
		if f.HasInit {
			return f.InitBytes, true, true
		}
		return nil, false, f.Optional
	case empty:
		return nil, false, f.Optional && e.T == f.Type
	}
	return e.B, true, e.T == f.Type
}

// Vector encodes a string or byte vector field with any operator.
func (s *Enc) Vector(out []byte, f *Field, pm *PMapW, e *Entry, b []byte, present bool) ([]byte, error) {
	if !present {
		b = nil
	}
	switch f.Type {
	case fast.TypeASCII:
		for _, c := range b {
			if c >= 0x80 {
				return out, EncErr(fast.R3, f, "non-ASCII byte in an ASCII string")
			}
		}
	case fast.TypeUnicode:
		if !utf8.Valid(b) {
			return out, EncErr(fast.R2, f, "unicode string is not valid UTF-8")
		}
	}
	if !present && !f.Optional && f.Op != fast.OpConstant {
		return out, Missing(f)
	}
	switch f.Op {
	case fast.OpNone:
		out = writeVector(out, f, b, present, f.Nullable)
	case fast.OpConstant:
		if present && !bytes.Equal(b, f.InitBytes) {
			return out, EncErr(fast.Unencodable, f, "value differs from the constant "+strconv.Quote(string(f.InitBytes)))
		}
		if f.Optional {
			pm.Bit(out, present)
		}
	case fast.OpDefault:
		if (present && f.HasInit && bytes.Equal(b, f.InitBytes)) || (!present && !f.HasInit) {
			pm.Bit(out, false)
			return out, nil
		}
		pm.Bit(out, true)
		out = writeVector(out, f, b, present, f.Nullable)
	case fast.OpCopy:
		if ib, ip, ok := s.impliedVector(f, e); ok && ip == present && bytes.Equal(ib, b) {
			pm.Bit(out, false)
		} else {
			pm.Bit(out, true)
			out = writeVector(out, f, b, present, f.Nullable)
		}
		if present {
			s.SetBytes(e, f.Type, b)
		} else {
			s.SetEmpty(e, f.Type)
		}
	case fast.OpTail:
		if ib, ip, ok := s.impliedVector(f, e); ok && ip == present && bytes.Equal(ib, b) {
			pm.Bit(out, false)
			if present {
				s.SetBytes(e, f.Type, b)
			} else {
				s.SetEmpty(e, f.Type)
			}
			return out, nil
		}
		pm.Bit(out, true)
		if !present {
			return append(out, stopBit), nil
		}
		var base []byte
		if f.HasInit {
			base = f.InitBytes
		}
		if s.state(e) == assigned && e.T == f.Type {
			base = e.B
		}
		tail := b
		if len(b) < len(base) {
			return out, EncErr(fast.Unencodable, f, "tail operator cannot shorten the previous value")
		}
		if len(b) == len(base) {
			i := 0
			for i < len(b) && b[i] == base[i] {
				i++
			}
			tail = b[i:]
		}
		out = writeVector(out, f, tail, true, f.Nullable)
		s.SetBytes(e, f.Type, b)
	case fast.OpDelta:
		if !present {
			return append(out, stopBit), nil
		}
		var base []byte
		if f.HasInit {
			base = f.InitBytes
		}
		switch s.state(e) {
		case empty:
			return out, EncErr(fast.D6, f, "delta base value is empty")
		case assigned:
			if e.T != f.Type {
				return out, EncErr(fast.D4, f, "dictionary entry "+f.Key+" holds a "+e.T.String())
			}
			base = e.B
		}
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
		if f.Nullable {
			out = fast.AppendIntNullable(out, sub)
		} else {
			out = fast.AppendInt(out, sub)
		}
		out = writeVector(out, f, diff, true, false)
		s.SetBytes(e, f.Type, b)
	}
	return out, nil
}
