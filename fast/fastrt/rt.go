// Package fastrt is the runtime of the FAST codecs that fast/fastgen generates: the
// dictionary entry, presence maps, and the general decoding and encoding paths of the field
// instructions that generated code does not write out inline (rare operators, long values,
// every error). Its semantics are those of the interpreter in package fast, which a
// differential test in fast/fastgen checks.
package fastrt

import (
	"math"
	"strconv"

	"fastfeed/fast"
)

const stopBit = 0x80

// Entry is one dictionary entry. G holds the generation of the dictionary when the entry
// was last written: the entry is assigned when G equals the dictionary's generation, empty
// when it equals the generation plus one, and undefined otherwise, so that a reset is one
// increment of the generation (by two).
type Entry struct {
	I   int64     // integer (unsigned as bits) or decimal mantissa
	E   int32     // decimal exponent
	G   uint32    // generation, see above
	T   fast.Type // type of the value, for slots shared by fields of different types (D4)
	B   []byte    // vector value, owned (decoder: stale while Cur is current, see Dec.Value)
	Cur []byte    // decoder: the value in the current message's buffers when Msg is current
	Msg uint32
}

// Field describes a field instruction to the general paths.
type Field struct {
	Name      string
	Type      fast.Type
	Op        fast.Operator
	Optional  bool
	Nullable  bool
	HasInit   bool
	TypeCheck bool
	InitInt   int64
	InitExp   int32
	InitBytes []byte
	Key       string
	// Decimal with individual operators.
	Exponent, Mantissa *Field
	Entry              int // index of the field's dictionary entry in the codec, for tests; -1 if none
}

// Err returns a *fast.Error with the code, the byte offset and the field's name.
func Err(code fast.Code, off int, f *Field, msg string) error {
	e := &fast.Error{Code: code, Offset: off, Msg: msg}
	if f != nil {
		e.Field = f.Name
	}
	return e
}

// SetTemplate records the template name in err (a *fast.Error) and returns it.
func SetTemplate(err error, name string) error {
	if fe, ok := err.(*fast.Error); ok && fe.Template == "" {
		fe.Template = name
	}
	return err
}

// Dict is the state shared by a generated codec's dictionary entries.
type Dict struct {
	Gen uint32 // current generation, even, never 0
}

// Reset makes every entry undefined. It returns true when the generation wrapped and the
// caller must clear every entry's G (once in 2^31 resets).
func (d *Dict) Reset() (wrapped bool) {
	d.Gen += 2
	if d.Gen == 0 {
		d.Gen = 2
		return true
	}
	return false
}

// Assigned reports whether e holds a value.
func (d *Dict) Assigned(e *Entry) bool { return e.G == d.Gen }

// SetInt assigns an integer or decimal value.
func (d *Dict) SetInt(e *Entry, t fast.Type, v int64, exp int32) {
	e.G, e.T, e.I, e.E = d.Gen, t, v, exp
}

// SetEmpty assigns the empty value.
func (d *Dict) SetEmpty(e *Entry, t fast.Type) { e.G, e.T = d.Gen+1, t }

// SetBytes assigns a vector value, copying it.
func (d *Dict) SetBytes(e *Entry, t fast.Type, b []byte) {
	e.G, e.T, e.Msg = d.Gen, t, 0
	e.B = append(e.B[:0], b...)
}

type state uint8

const (
	undefined state = iota
	empty
	assigned
)

func (d *Dict) state(e *Entry) state {
	switch e.G {
	case d.Gen:
		return assigned
	case d.Gen + 1:
		return empty
	}
	return undefined
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

func isSigned(t fast.Type) bool { return t == fast.TypeInt32 || t == fast.TypeInt64 }

func rangeMsg(t fast.Type, v int64) string {
	if t == fast.TypeUint32 {
		return strconv.FormatUint(uint64(v), 10) + " exceeds uInt32"
	}
	return strconv.FormatInt(v, 10) + " exceeds int32"
}

// AddDelta adds a signed delta to a base of type t, reporting overflow of the 64-bit type.
func AddDelta(t fast.Type, base, delta int64) (int64, bool) {
	if t == fast.TypeUint64 || t == fast.TypeUint32 {
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

// SubDelta is the delta that AddDelta adds to base to give value.
func SubDelta(t fast.Type, value, base int64) (int64, bool) {
	if t == fast.TypeUint64 || t == fast.TypeUint32 {
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

// SignExtend7 sign-extends the seven data bits of a one-byte signed integer.
func SignExtend7(c byte) int64 { return int64(int8(c<<1) >> 1) }

// Overlong reports whether a signed integer starting with b0, b1 has a redundant
// sign-extension byte (R6).
func Overlong(b0, b1 byte) bool {
	return (b0 == 0x00 && b1&0x40 == 0) || (b0 == 0x7f && b1&0x40 != 0)
}
