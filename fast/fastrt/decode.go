package fastrt

import (
	"math"
	"strconv"
	"unicode/utf8"

	"fastfeed/fast"
)

// MaxDepth bounds the nesting of groups and sequences, as the interpreter does.
const MaxDepth = 32

// PMap is the read cursor of a presence map: up to nine bytes (63 bits) in a register of
// the bits not yet read, the next one in the top bit; a longer map is read from the input.
type PMap struct {
	Bits     uint64
	pos, end int
	mask     byte
	long     bool
}

// Next returns the next bit.
func (p *PMap) Next(b []byte) bool {
	if !p.long {
		set := int64(p.Bits) < 0
		p.Bits <<= 1
		return set
	}
	return p.nextLong(b)
}

// Peek returns the bit Next would return, without consuming it.
func (p *PMap) Peek(b []byte) bool {
	if !p.long {
		return int64(p.Bits) < 0
	}
	q := *p
	return q.nextLong(b)
}

//go:noinline
func (p *PMap) nextLong(b []byte) bool {
	if p.pos >= p.end {
		return false
	}
	set := b[p.pos]&p.mask != 0
	p.mask >>= 1
	if p.mask == 0 {
		p.mask = 0x40
		p.pos++
	}
	return set
}

// Leftover reports whether bits not consumed by the segment are set (R8).
func (p *PMap) Leftover(b []byte) bool {
	if !p.long {
		return p.Bits != 0
	}
	if p.pos >= p.end {
		return false
	}
	if b[p.pos]&(p.mask<<1-1) != 0 {
		return true
	}
	for i := p.pos + 1; i < p.end; i++ {
		if b[i]&0x7f != 0 {
			return true
		}
	}
	return false
}

// ReadPMap reads a presence map at b[p:] into *pm and returns the position after it.
func ReadPMap(b []byte, p int, pm *PMap) (int, error) {
	start := p
	var acc uint64
	for i := start; i < len(b); i++ {
		c := b[i]
		acc = acc<<7 | uint64(c&0x7f)
		if c&stopBit != 0 {
			if i > start && c == stopBit {
				return p, Err(fast.R7, p, nil, "overlong presence map")
			}
			if n := i + 1 - start; n <= 9 {
				pm.Bits, pm.long = acc<<(64-7*n), false
				return i + 1, nil
			}
			pm.Bits, pm.long, pm.pos, pm.end, pm.mask = 0, true, start, i+1, 0x40
			return i + 1, nil
		}
	}
	return p, Err(fast.Truncated, p, nil, "input ends inside a presence map")
}

// Dec is the decoding state of a generated codec besides its dictionary entries: the
// message counter and the buffers decoded strings live in.
type Dec struct {
	Dict
	Msg uint32 // counts messages, to tell which Entry.Cur are current
	// Win mirrors the start of the input, so that an ASCII string (whose last byte carries
	// the stop bit) is a slice of Win with that bit cleared rather than a copy.
	Win []byte
	// Extra holds the strings that are not in the input: from the dictionary, tails, deltas.
	Extra []byte
	Depth int
}

// WinChunk is how many input bytes Begin mirrors, and Extend adds at a time: the input of
// a decoder may be a whole file, of which a message uses the start.
const WinChunk = 512

// Begin starts a message at b: it mirrors the start of the input and counts the message.
// It returns true when the count wrapped: the caller must then set every entry's Msg to 0,
// or an Entry.Cur of 2^32 messages ago would look current.
func (s *Dec) Begin(b []byte) (wrapped bool) {
	s.Win = append(s.Win[:0], b[:min(len(b), WinChunk)]...)
	s.Extra = s.Extra[:0]
	s.Depth = 0
	s.Msg++
	if s.Msg == 0 {
		s.Msg = 1
		return true
	}
	return false
}

// Extend mirrors more of the input b, so that Win covers b[:end+1], and returns Win. The
// strings already sliced from Win stay valid (a larger Win is a new array).
func (s *Dec) Extend(b []byte, end int) []byte {
	if end < len(s.Win) {
		return s.Win
	}
	s.Win = append(s.Win, b[len(s.Win):min(len(b), end+1+WinChunk)]...)
	return s.Win
}

// ASCII returns the string b[p:end+1] (end holds the stop bit) as a slice without it.
func (s *Dec) ASCII(b []byte, p, end int) []byte {
	w := s.Extend(b, end)[p : end+1 : end+1]
	w[len(w)-1] = b[end] &^ stopBit
	return w
}

// Value returns the vector value of e: Cur when it is current (set in this message), else
// B. A generated decoder may leave B stale while Cur is current, and copy Cur into B
// before the next message (or not at all, when the dictionary was reset in between).
func (s *Dec) Value(e *Entry) []byte {
	if e.Msg == s.Msg {
		return e.Cur
	}
	return e.B
}

// Append copies v into Extra and returns the copy, clearing the stop bit of its last byte
// if it has one (ASCII).
func (s *Dec) Append(v []byte) []byte {
	off := len(s.Extra)
	s.Extra = append(s.Extra, v...)
	w := s.Extra[off:len(s.Extra):len(s.Extra)]
	if len(w) > 0 {
		w[len(w)-1] &^= stopBit
	}
	return w
}

// Copy copies v into Extra and returns the copy.
func (s *Dec) Copy(v []byte) []byte {
	off := len(s.Extra)
	s.Extra = append(s.Extra, v...)
	return s.Extra[off:len(s.Extra):len(s.Extra)]
}

// Enter counts a nesting level.
func (s *Dec) Enter(p int, f *Field) error {
	s.Depth++
	if s.Depth > MaxDepth {
		return Err(fast.Limit, p, f, "nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	return nil
}

// IntErr converts a negative count of a Consume function into an error.
func IntErr(n int, p int, f *Field) error {
	switch n {
	case -1:
		return Err(fast.Truncated, p, f, "input ends inside an integer")
	case -3:
		return Err(fast.R6, p, f, "overlong integer encoding")
	}
	return Err(fast.D2, p, f, "integer overflows 64 bits")
}

// ReadInt reads an integer of f's type (no operator), honouring nullability.
func ReadInt(b []byte, p int, f *Field) (v int64, null bool, np int, err error) {
	var n int
	if p > len(b) {
		p = len(b)
	}
	in := b[p:]
	if isSigned(f.Type) {
		if f.Nullable {
			v, null, n = fast.ConsumeIntNullable(in)
		} else {
			v, n = fast.ConsumeInt(in)
		}
	} else {
		var u uint64
		if f.Nullable {
			u, null, n = fast.ConsumeUintNullable(in)
		} else {
			u, n = fast.ConsumeUint(in)
		}
		v = int64(u)
	}
	if n < 0 {
		return 0, false, p, IntErr(n, p, f)
	}
	if !null && !inRange(f.Type, v) {
		return 0, false, p, Err(fast.D2, p, f, rangeMsg(f.Type, v))
	}
	return v, null, p + n, nil
}

func (s *Dec) checkType(p int, f *Field, e *Entry) error {
	if f.TypeCheck && e.T != f.Type {
		return Err(fast.D4, p, f, "dictionary entry "+f.Key+" holds a "+e.T.String()+", field is "+f.Type.String())
	}
	return nil
}

// implied applies the rules for a copy, increment or tail field whose bit is clear.
func (s *Dec) implied(p int, f *Field, e *Entry) (assignedEntry, init bool, err error) {
	switch s.state(e) {
	case undefined:
		if f.HasInit {
			return false, true, nil
		}
		if !f.Optional {
			return false, false, Err(fast.D5, p, f, "mandatory field absent with no previous value and no initial value")
		}
		s.SetEmpty(e, f.Type)
		return false, false, nil
	case empty:
		if err := s.checkType(p, f, e); err != nil {
			return false, false, err
		}
		if !f.Optional {
			return false, false, Err(fast.D6, p, f, "mandatory field absent and previous value empty")
		}
		return false, false, nil
	}
	if err := s.checkType(p, f, e); err != nil {
		return false, false, err
	}
	return true, false, nil
}

// Int decodes an integer field with any operator (e is nil without a dictionary entry).
func (s *Dec) Int(b []byte, p int, f *Field, pm *PMap, e *Entry) (v int64, present bool, np int, err error) {
	switch f.Op {
	case fast.OpNone:
		x, null, np, err := ReadInt(b, p, f)
		return x, err == nil && !null, np, err
	case fast.OpConstant:
		if !f.Optional || pm.Next(b) {
			return f.InitInt, true, p, nil
		}
		return 0, false, p, nil
	case fast.OpDefault:
		if pm.Next(b) {
			x, null, np, err := ReadInt(b, p, f)
			return x, err == nil && !null, np, err
		}
		return f.InitInt, f.HasInit, p, nil
	case fast.OpCopy, fast.OpIncrement:
		if pm.Next(b) {
			x, null, np, err := ReadInt(b, p, f)
			if err != nil {
				return 0, false, p, err
			}
			if null {
				s.SetEmpty(e, f.Type)
				return 0, false, np, nil
			}
			s.SetInt(e, f.Type, x, 0)
			return x, true, np, nil
		}
		asg, init, err := s.implied(p, f, e)
		switch {
		case err != nil:
			return 0, false, p, err
		case init:
			s.SetInt(e, f.Type, f.InitInt, 0)
			return f.InitInt, true, p, nil
		case !asg:
			return 0, false, p, nil
		}
		x := e.I
		if f.Op == fast.OpIncrement {
			x++
			if !inRange(f.Type, x) {
				return 0, false, p, Err(fast.D2, p, f, rangeMsg(f.Type, x))
			}
			if (f.Type == fast.TypeUint64 && x == 0) || (f.Type == fast.TypeInt64 && x == math.MinInt64) {
				return 0, false, p, Err(fast.D2, p, f, "increment overflows "+f.Type.String())
			}
			e.I = x
		}
		return x, true, p, nil
	case fast.OpDelta:
		var delta int64
		var null bool
		var n int
		in := b[min(p, len(b)):]
		if f.Nullable {
			delta, null, n = fast.ConsumeIntNullable(in)
		} else {
			delta, n = fast.ConsumeInt(in)
		}
		if n < 0 {
			return 0, false, p, IntErr(n, p, f)
		}
		p += n
		if null {
			return 0, false, p, nil
		}
		base := f.InitInt
		switch s.state(e) {
		case empty:
			return 0, false, p, Err(fast.D6, p, f, "delta base value is empty")
		case assigned:
			if err := s.checkType(p, f, e); err != nil {
				return 0, false, p, err
			}
			base = e.I
		}
		x, ok := AddDelta(f.Type, base, delta)
		if !ok {
			return 0, false, p, Err(fast.D2, p, f, "delta result overflows "+f.Type.String())
		}
		if !inRange(f.Type, x) {
			return 0, false, p, Err(fast.D2, p, f, rangeMsg(f.Type, x))
		}
		s.SetInt(e, f.Type, x, 0)
		return x, true, p, nil
	}
	return 0, false, p, nil
}

func readDecimal(b []byte, p int, f *Field) (m int64, exp int32, null bool, np int, err error) {
	var x int64
	var n int
	in := b[min(p, len(b)):]
	if f.Nullable {
		x, null, n = fast.ConsumeIntNullable(in)
	} else {
		x, n = fast.ConsumeInt(in)
	}
	if n < 0 {
		return 0, 0, false, p, IntErr(n, p, f)
	}
	if !null && (x < -63 || x > 63) {
		return 0, 0, false, p, Err(fast.R1, p, f, "decimal exponent "+strconv.FormatInt(x, 10)+" outside -63..63")
	}
	p += n
	if null {
		return 0, 0, true, p, nil
	}
	mant, n := fast.ConsumeInt(b[p:])
	if n < 0 {
		return 0, 0, false, p, IntErr(n, p, f)
	}
	return mant, int32(x), false, p + n, nil
}

// Decimal decodes a decimal field with a single operator (or none).
func (s *Dec) Decimal(b []byte, p int, f *Field, pm *PMap, e *Entry) (m int64, exp int32, present bool, np int, err error) {
	switch f.Op {
	case fast.OpNone:
		m, exp, null, np, err := readDecimal(b, p, f)
		return m, exp, err == nil && !null, np, err
	case fast.OpConstant:
		if !f.Optional || pm.Next(b) {
			return f.InitInt, f.InitExp, true, p, nil
		}
		return 0, 0, false, p, nil
	case fast.OpDefault:
		if pm.Next(b) {
			m, exp, null, np, err := readDecimal(b, p, f)
			return m, exp, err == nil && !null, np, err
		}
		return f.InitInt, f.InitExp, f.HasInit, p, nil
	case fast.OpCopy:
		if pm.Next(b) {
			m, exp, null, np, err := readDecimal(b, p, f)
			if err != nil {
				return 0, 0, false, p, err
			}
			if null {
				s.SetEmpty(e, f.Type)
				return 0, 0, false, np, nil
			}
			s.SetInt(e, f.Type, m, exp)
			return m, exp, true, np, nil
		}
		asg, init, err := s.implied(p, f, e)
		switch {
		case err != nil:
			return 0, 0, false, p, err
		case init:
			s.SetInt(e, f.Type, f.InitInt, f.InitExp)
			return f.InitInt, f.InitExp, true, p, nil
		case asg:
			return e.I, e.E, true, p, nil
		}
		return 0, 0, false, p, nil
	case fast.OpDelta:
		var dexp int64
		var null bool
		var n int
		in := b[min(p, len(b)):]
		if f.Nullable {
			dexp, null, n = fast.ConsumeIntNullable(in)
		} else {
			dexp, n = fast.ConsumeInt(in)
		}
		if n < 0 {
			return 0, 0, false, p, IntErr(n, p, f)
		}
		p += n
		if null {
			return 0, 0, false, p, nil
		}
		dmant, n := fast.ConsumeInt(b[p:])
		if n < 0 {
			return 0, 0, false, p, IntErr(n, p, f)
		}
		p += n
		bm, be := f.InitInt, f.InitExp
		switch s.state(e) {
		case empty:
			return 0, 0, false, p, Err(fast.D6, p, f, "delta base value is empty")
		case assigned:
			if err := s.checkType(p, f, e); err != nil {
				return 0, 0, false, p, err
			}
			bm, be = e.I, e.E
		}
		x := int64(be) + dexp
		if x < -63 || x > 63 {
			return 0, 0, false, p, Err(fast.R1, p, f, "decimal exponent "+strconv.FormatInt(x, 10)+" outside -63..63")
		}
		mant, ok := AddDelta(fast.TypeInt64, bm, dmant)
		if !ok {
			return 0, 0, false, p, Err(fast.R1, p, f, "decimal mantissa overflows int64")
		}
		s.SetInt(e, f.Type, mant, int32(x))
		return mant, int32(x), true, p, nil
	}
	return 0, 0, false, p, nil
}

// SplitDecimal decodes a decimal with individual exponent and mantissa operators.
func (s *Dec) SplitDecimal(b []byte, p int, f *Field, pm *PMap, ee, me *Entry) (m int64, exp int32, present bool, np int, err error) {
	x, ok, p, err := s.Int(b, p, f.Exponent, pm, ee)
	if err != nil || !ok {
		return 0, 0, false, p, err
	}
	if x < -63 || x > 63 {
		return 0, 0, false, p, Err(fast.R1, p, f, "decimal exponent "+strconv.FormatInt(x, 10)+" outside -63..63")
	}
	mv, _, p, err := s.Int(b, p, f.Mantissa, pm, me)
	if err != nil {
		return 0, 0, false, p, err
	}
	return mv, int32(x), true, p, nil
}

// readVector reads a string or byte vector body. ASCII strings are slices of Win or copies
// in Extra; byte vectors and unicode strings are slices of b.
func (s *Dec) readVector(b []byte, p int, f *Field, nullable bool) (v []byte, null bool, np int, err error) {
	in := b[min(p, len(b)):]
	var n int
	if f.Type == fast.TypeASCII {
		end := -1
		for i, c := range in {
			if c&stopBit != 0 {
				end = i
				break
			}
		}
		if end < 0 {
			return nil, false, p, Err(fast.Truncated, p, f, "input ends inside a "+f.Type.String())
		}
		n = end + 1
		switch {
		case in[0] == stopBit:
			if nullable {
				return nil, true, p + n, nil
			}
			return s.Win[:0:0], false, p + n, nil
		case in[0] == 0x00:
			switch {
			case n == 2 && in[1] == stopBit:
				if nullable {
					return s.Win[:0:0], false, p + n, nil
				}
				return s.Copy([]byte{0}), false, p + n, nil
			case nullable && n == 3 && in[1] == 0x00 && in[2] == stopBit:
				return s.Copy([]byte{0}), false, p + n, nil
			}
			return nil, false, p, Err(fast.R9, p, f, "overlong string encoding")
		}
		return s.ASCII(b, p, p+end), false, p + n, nil
	}
	v, null, n = fast.ConsumeBytes(in, nullable)
	switch {
	case n == -1:
		return nil, false, p, Err(fast.Truncated, p, f, "input ends inside a "+f.Type.String())
	case n < 0:
		return nil, false, p, IntErr(n, p, f)
	}
	if v != nil {
		v = v[:len(v):len(v)]
	}
	return v, null, p + n, nil
}

func checkVector(p int, f *Field, v []byte) error {
	if f.Type == fast.TypeUnicode && !utf8.Valid(v) {
		return Err(fast.R2, p, f, "unicode string is not valid UTF-8")
	}
	return nil
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// Vector decodes a string or byte vector field with any operator.
func (s *Dec) Vector(b []byte, p int, f *Field, pm *PMap, e *Entry) (v []byte, present bool, np int, err error) {
	switch f.Op {
	case fast.OpNone:
		v, null, np, err := s.readVector(b, p, f, f.Nullable)
		if err != nil || null {
			return nil, false, np, err
		}
		return v, true, np, checkVector(np, f, v)
	case fast.OpConstant:
		if !f.Optional || pm.Next(b) {
			return nonNil(f.InitBytes), true, p, nil
		}
		return nil, false, p, nil
	case fast.OpDefault:
		if pm.Next(b) {
			v, null, np, err := s.readVector(b, p, f, f.Nullable)
			if err != nil || null {
				return nil, false, np, err
			}
			return v, true, np, checkVector(np, f, v)
		}
		if f.HasInit {
			return nonNil(f.InitBytes), true, p, nil
		}
		return nil, false, p, nil
	case fast.OpCopy, fast.OpTail:
		if pm.Next(b) {
			v, null, np, err := s.readVector(b, p, f, f.Nullable)
			if err != nil {
				return nil, false, p, err
			}
			if null {
				if f.Op == fast.OpCopy {
					s.SetEmpty(e, f.Type)
				}
				return nil, false, np, nil
			}
			if f.Op == fast.OpTail {
				var base []byte
				if f.HasInit {
					base = f.InitBytes
				}
				if s.state(e) == assigned && e.T == f.Type {
					base = s.Value(e)
				}
				if len(v) < len(base) {
					keep := len(base) - len(v)
					off := len(s.Extra)
					s.Extra = append(s.Extra, base[:keep]...)
					s.Extra = append(s.Extra, v...)
					v = s.Extra[off:len(s.Extra):len(s.Extra)]
				}
			}
			s.SetBytes(e, f.Type, v)
			e.Cur, e.Msg = v, s.Msg
			return v, true, np, checkVector(np, f, v)
		}
		asg, init, err := s.implied(p, f, e)
		switch {
		case err != nil:
			return nil, false, p, err
		case init:
			s.SetBytes(e, f.Type, f.InitBytes)
			return nonNil(f.InitBytes), true, p, checkVector(p, f, f.InitBytes)
		case asg:
			v := s.Copy(s.Value(e))
			return v, true, p, checkVector(p, f, v)
		}
		return nil, false, p, nil
	case fast.OpDelta:
		var sub int64
		var null bool
		var n int
		in := b[min(p, len(b)):]
		if f.Nullable {
			sub, null, n = fast.ConsumeIntNullable(in)
		} else {
			sub, n = fast.ConsumeInt(in)
		}
		if n < 0 {
			return nil, false, p, IntErr(n, p, f)
		}
		p += n
		if null {
			return nil, false, p, nil
		}
		if sub < math.MinInt32 || sub > math.MaxInt32 {
			return nil, false, p, Err(fast.D7, p, f, "subtraction length outside int32")
		}
		var base []byte
		if f.HasInit {
			base = f.InitBytes
		}
		switch s.state(e) {
		case empty:
			return nil, false, p, Err(fast.D6, p, f, "delta base value is empty")
		case assigned:
			if err := s.checkType(p, f, e); err != nil {
				return nil, false, p, err
			}
			base = s.Value(e)
		}
		front := sub < 0
		if front {
			sub = -sub - 1
		}
		if sub > int64(len(base)) {
			return nil, false, p, Err(fast.D7, p, f, "subtraction length "+strconv.FormatInt(sub, 10)+" exceeds base length "+strconv.Itoa(len(base)))
		}
		d, _, np, err := s.readVector(b, p, f, false)
		if err != nil {
			return nil, false, p, err
		}
		off := len(s.Extra)
		if front {
			s.Extra = append(s.Extra, d...)
			s.Extra = append(s.Extra, base[sub:]...)
		} else {
			s.Extra = append(s.Extra, base[:int64(len(base))-sub]...)
			s.Extra = append(s.Extra, d...)
		}
		v := s.Extra[off:len(s.Extra):len(s.Extra)]
		s.SetBytes(e, f.Type, v)
		return v, true, np, checkVector(np, f, v)
	}
	return nil, false, p, nil
}

// SeqCheck bounds a sequence length by the input left: n elements of at least minBytes
// bytes each must fit (a hostile length costs nothing).
func SeqCheck(n, p, size, minBytes int, f *Field) error {
	remaining := size - p
	if minBytes > 0 && n > remaining/minBytes {
		return Err(fast.Truncated, p, f, "sequence of "+strconv.Itoa(n)+" elements does not fit in the "+strconv.Itoa(remaining)+" bytes left")
	}
	if minBytes == 0 && n > remaining+64 {
		return Err(fast.Limit, p, f, "sequence of "+strconv.Itoa(n)+" empty elements")
	}
	return nil
}

// ReadPMapShort reads a presence map at b[p:] for a segment that uses at most 63 bits:
// the first 63 bits in a register, and extra reporting whether any later bit is set (which
// the segment cannot use: R8 when it ends).
func ReadPMapShort(b []byte, p int) (bits uint64, extra bool, np int, err error) {
	var pm PMap
	if np, err = ReadPMap(b, p, &pm); err != nil {
		return 0, false, p, err
	}
	bits, extra = pm.Short(b)
	return bits, extra, np, nil
}

// Short returns the unread bits of the map as ReadPMapShort does.
func (p *PMap) Short(b []byte) (bits uint64, extra bool) {
	if !p.long {
		return p.Bits, false
	}
	q := *p
	for i := 0; i < 63; i++ {
		if q.nextLong(b) {
			bits |= 1 << (63 - i)
		}
	}
	return bits, q.Leftover(b)
}
