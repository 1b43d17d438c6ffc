package fastrt

import (
	"encoding/binary"
	"math/bits"

	"fastfeed/fast"
)

// Decimal is a decimal value: Mantissa times ten to the power Exponent.
type Decimal struct {
	Mantissa int64
	Exponent int32
}

// Uint parses an unsigned integer of two to nine bytes at b[p:] (one byte is inline in
// generated code). It returns n == 0 for anything else: longer, overlong, truncated; the
// general path then decides.
func Uint(b []byte, p int) (x uint64, n int) {
	if uint(p) >= uint(len(b)) || b[p] == 0 {
		return 0, 0
	}
	end := min(len(b), p+9)
	for i := p; i < end; i++ {
		c := b[i]
		x = x<<7 | uint64(c&0x7f)
		if c&stopBit != 0 {
			return x, i + 1 - p
		}
	}
	return 0, 0
}

// UintWord parses a stop-bit unsigned integer of one to eight bytes from w, the next eight
// input bytes read little-endian, without a branch per byte: the stop bit is found in the
// word and the seven-bit groups are packed together with masks and shifts. It returns
// n == 0 when w holds no stop bit or starts with 0x00 (a longer or overlong value: Uint or
// the general path decides). Small enough to be inlined.
func UintWord(w uint64) (x uint64, n int) {
	m := w & 0x8080808080808080
	if m == 0 || w&0xff == 0 {
		return 0, 0
	}
	n = bits.TrailingZeros64(m)>>3 + 1
	return Pack7(bits.ReverseBytes64(w) >> (64 - 8*uint(n))), n
}

// IntWord is UintWord for a signed integer; n == 0 also for an overlong encoding (R6),
// as Int.
func IntWord(w uint64) (x int64, n int) {
	m := w & 0x8080808080808080
	if t := w & 0x407f; m == 0 || m&0x80 == 0 && (t == 0 || t == 0x407f) {
		return 0, 0
	}
	k := uint(bits.TrailingZeros64(m) >> 3) // n - 1
	return int64(Pack7(bits.ReverseBytes64(w)>>(56-8*k))<<(57-7*k)) >> (57 - 7*k), int(k) + 1
}

// Pack7 packs the low seven bits of each byte of u (the first at the top) together.
func Pack7(u uint64) uint64 {
	u &= 0x7f7f7f7f7f7f7f7f
	u = u&0x007f007f007f007f | (u&0x7f007f007f007f00)>>1
	u = u&0x00003fff00003fff | (u&0x3fff00003fff0000)>>2
	return u&0x000000000fffffff | (u&0x0fffffff00000000)>>4
}

// Int parses a signed integer of at most nine bytes at b[p:]; n == 0 as for Uint.
func Int(b []byte, p int) (int64, int) {
	if uint(p) >= uint(len(b)) {
		return 0, 0
	}
	x := -int64(b[p] >> 6 & 1)
	end := min(len(b), p+9)
	for i := p; i < end; i++ {
		c := b[i]
		x = x<<7 | int64(c&0x7f)
		if c&stopBit != 0 {
			n := i + 1 - p
			if n > 1 {
				if y := x >> (7*n - 8); y == 0 || y == -1 {
					return 0, 0
				}
			}
			return x, n
		}
	}
	return 0, 0
}

// AppendInt appends a stop-bit signed integer. Unlike fast.AppendInt, whose one-byte case
// is inlined into the interpreter's small functions, it writes up to three bytes in one
// call: generated functions are too large for the inliner to take fast.AppendInt, and a
// second call for two- and three-byte values (prices, sizes) costs more. Unsigned integers
// use fast.AppendUint, which writes up to four bytes in one call.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= -1<<6 && v < 1<<6:
		return append(b, byte(v)&0x7f|stopBit)
	case v >= -1<<13 && v < 1<<13:
		return append(b, byte(v>>7)&0x7f, byte(v)&0x7f|stopBit)
	case v >= -1<<20 && v < 1<<20:
		return append(b, byte(v>>14)&0x7f, byte(v>>7)&0x7f, byte(v)&0x7f|stopBit)
	}
	return appendIntLong(b, v)
}

func appendIntLong(b []byte, v int64) []byte {
	n := 1
	for x := v >> 6; x != 0 && x != -1; x >>= 7 {
		n++
	}
	l := len(b)
	if cap(b)-l < n {
		nb := make([]byte, l, 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	b = b[:l+n]
	o := b[l:]
	u := uint64(v)
	o[n-1] = byte(u)&0x7f | stopBit
	for i := n - 2; i >= 0; i-- {
		u = uint64(int64(u) >> 7)
		o[i] = byte(u) & 0x7f
	}
	return b
}

// AppendASCII appends s as an ASCII string (nullable shifts the empty and NUL strings); ok
// is false, and nothing appended, if s holds a byte of 0x80 or more. One call from
// generated code, fast.IsASCII and fast.AppendASCII inlined into it.
func AppendASCII(b []byte, s []byte, nullable bool) ([]byte, bool) {
	if !fast.IsASCII(s) {
		return b, false
	}
	return fast.AppendASCII(b, s, nullable), true
}

// Eq reports whether a and b hold the same bytes: one and four bytes (entry types, sides,
// symbols) in one compare, others in a byte loop. It makes no call (memequal's made the
// generated encoder spill its live registers before every copy-string comparison).
func Eq(a, b []byte) bool {
	n := len(a)
	switch {
	case n != len(b):
		return false
	case n == 1:
		return a[0] == b[0]
	case n == 4:
		return binary.LittleEndian.Uint32(a) == binary.LittleEndian.Uint32(b)
	}
	b = b[:n]
	for i, ch := range a {
		if b[i] != ch {
			return false
		}
	}
	return true
}

// PutASCII writes x, a string of one byte or more whose first byte is not NUL, into dst
// (len(x) bytes of spare capacity) with the stop bit on its last byte, as AppendASCII
// would, and reports whether every byte was 7-bit. On false, dst holds garbage and the
// caller takes its general path. Inlined, it saves AppendASCII's calls.
func PutASCII(dst, x []byte) bool {
	if len(x) == 4 && len(dst) == 4 {
		w := binary.LittleEndian.Uint32(x)
		binary.LittleEndian.PutUint32(dst, w|0x80<<24)
		return w&0x80808080 == 0
	}
	dst = dst[:len(x)]
	var or byte
	for i, ch := range x {
		dst[i] = ch
		or |= ch
	}
	if or >= 0x80 || len(dst) == 0 {
		return false
	}
	dst[len(dst)-1] |= 0x80
	return true
}

// CopyShort copies x into d (as long as x): one and four bytes without a loop.
func CopyShort(d, x []byte) {
	switch {
	case len(x) == 1 && len(d) == 1:
		d[0] = x[0]
	case len(x) == 4 && len(d) == 4:
		binary.LittleEndian.PutUint32(d, binary.LittleEndian.Uint32(x))
	default:
		for i, ch := range x {
			d[i] = ch
		}
	}
}
