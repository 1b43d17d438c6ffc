package fast

// Primitive FAST 1.1 transfer encodings as plain functions in the style of protowire:
// Append* writes a value, Consume* reads one and returns the number of bytes used, or a
// negative error code (see the err* constants). No state, no allocation.

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

const stopBit = 0x80

// Negative byte counts returned by the Consume functions.
const (
	errTruncated = -1 // input ended before the stop bit
	errOverflow  = -2 // value does not fit in 64 bits (or its type, for the callers)
	errOverlong  = -3 // redundant leading bytes (R6 for integers, R9 for strings)
)

// AppendUint appends v as a stop-bit encoded unsigned integer.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<7:
		return append(b, byte(v)|stopBit)
	case v < 1<<14:
		return append(b, byte(v>>7), byte(v)&0x7f|stopBit)
	case v < 1<<21:
		return append(b, byte(v>>14), byte(v>>7)&0x7f, byte(v)&0x7f|stopBit)
	case v < 1<<28:
		return append(b, byte(v>>21), byte(v>>14)&0x7f, byte(v>>7)&0x7f, byte(v)&0x7f|stopBit)
	}
	return appendGroups(b, v, (bits.Len64(v)+6)/7)
}

// appendGroups appends the low n 7-bit groups of v, most significant first, with the stop
// bit on the last. The capacity is made once and the bytes written by index: a loop of
// appends re-checks the capacity for every byte of a nine-byte timestamp.
func appendGroups(b []byte, v uint64, n int) []byte {
	l := len(b)
	b = slices.Grow(b, n)[:l+n]
	o := b[l:]
	o[n-1] = byte(v)&0x7f | stopBit
	for i := n - 2; i >= 0; i-- {
		v >>= 7
		o[i] = byte(v) & 0x7f
	}
	return b
}

// AppendUintNullable appends v as a nullable unsigned integer (v+1; 0 is NULL). The value
// math.MaxUint64 is encoded as 2^64, which needs ten bytes.
func AppendUintNullable(b []byte, v uint64) []byte {
	if v == ^uint64(0) {
		return append(b, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, stopBit)
	}
	return AppendUint(b, v+1)
}

// AppendNull appends the NULL value of a nullable integer, string or byte vector.
func AppendNull(b []byte) []byte { return append(b, stopBit) }

// AppendInt appends v as a stop-bit encoded signed integer (two's complement, sign in the
// first data bit).
func AppendInt(b []byte, v int64) []byte {
	// One-byte values here, small enough for this function to be inlined at every call;
	// the rest out of line.
	if v >= -1<<6 && v < 1<<6 {
		return append(b, byte(v)&0x7f|stopBit)
	}
	return appendIntLong(b, v)
}

// appendIntLong appends a signed integer of two bytes or more.
func appendIntLong(b []byte, v int64) []byte {
	if v >= -1<<13 && v < 1<<13 {
		return append(b, byte(v>>7)&0x7f, byte(v)&0x7f|stopBit)
	}
	// Number of 7-bit groups needed so that the top group's bit 6 carries the sign.
	n := 1
	for x := v >> 6; x != 0 && x != -1; x >>= 7 {
		n++
	}
	return appendIntGroups(b, v, n)
}

// appendIntGroups is appendGroups for a signed value: the groups are the same bits, except
// that the top group of a ten-byte negative value is all sign (an arithmetic shift).
func appendIntGroups(b []byte, v int64, n int) []byte {
	b = appendGroups(b, uint64(v), n)
	if n == 10 && v < 0 {
		b[len(b)-10] = 0x7f
	}
	return b
}

// AppendIntNullable appends v as a nullable signed integer: non-negative values are
// incremented by one, and 0 is NULL. math.MaxInt64 is encoded as 2^63.
func AppendIntNullable(b []byte, v int64) []byte {
	if v >= 0 {
		if v == 1<<63-1 {
			return append(b, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, stopBit)
		}
		v++
	}
	return AppendInt(b, v)
}

// ConsumeUint parses a stop-bit encoded unsigned integer of at most 64 bits.
func ConsumeUint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0]&stopBit != 0 {
		return uint64(b[0] & 0x7f), 1
	}
	return consumeUintSlow(b, false)
}

// ConsumeUintNullable parses a nullable unsigned integer. It returns null=true for NULL.
func ConsumeUintNullable(b []byte) (v uint64, null bool, n int) {
	var raw uint64
	if len(b) > 0 && b[0]&stopBit != 0 {
		raw, n = uint64(b[0]&0x7f), 1
	} else {
		raw, n = consumeUintSlow(b, true)
		if n < 0 {
			return 0, false, n
		}
		if raw == 0 && n == 10 { // 2^64 wrapped to zero: math.MaxUint64
			return ^uint64(0), false, n
		}
	}
	if raw == 0 {
		return 0, true, n
	}
	return raw - 1, false, n
}

func consumeUintSlow(b []byte, nullable bool) (uint64, int) {
	var v uint64
	for i, c := range b {
		if i == 1 && b[0] == 0 {
			return 0, errOverlong
		}
		if v>>57 != 0 {
			// Only 2^64 itself (nullable MaxUint64) may carry past 64 bits.
			if !(nullable && v == 1<<57 && c == stopBit && i == 9) {
				return 0, errOverflow
			}
		}
		v = v<<7 | uint64(c&0x7f)
		if c&stopBit != 0 {
			return v, i + 1
		}
	}
	return 0, errTruncated
}

// ConsumeInt parses a stop-bit encoded signed integer of at most 64 bits.
func ConsumeInt(b []byte) (int64, int) {
	if len(b) > 0 && b[0]&stopBit != 0 {
		return signExtend7(b[0]), 1
	}
	v, _, n := consumeIntSlow(b, false)
	return v, n
}

// signExtend7 sign-extends the seven data bits of a single-byte signed integer.
func signExtend7(c byte) int64 { return int64(int8(c<<1) >> 1) }

// ConsumeIntNullable parses a nullable signed integer. It returns null=true for NULL.
func ConsumeIntNullable(b []byte) (v int64, null bool, n int) {
	if len(b) > 0 && b[0]&stopBit != 0 {
		v, n = signExtend7(b[0]), 1
	} else {
		var big bool
		v, big, n = consumeIntSlow(b, true)
		if n < 0 {
			return 0, false, n
		}
		if big { // 2^63: math.MaxInt64
			return 1<<63 - 1, false, n
		}
	}
	switch {
	case v == 0:
		return 0, true, n
	case v > 0:
		return v - 1, false, n
	}
	return v, false, n
}

// consumeIntSlow accumulates in an unsigned register so that overflow is detected exactly.
// big reports the value 2^63, which only a nullable field may carry.
func consumeIntSlow(b []byte, nullable bool) (v int64, big bool, n int) {
	if len(b) == 0 {
		return 0, false, errTruncated
	}
	var acc uint64
	neg := b[0]&0x40 != 0
	if neg {
		acc = ^uint64(0)
	}
	for i, c := range b {
		if i == 1 {
			// Redundant sign-extension byte: 0x00 before a positive group, 0x7f before a
			// negative one.
			if (b[0] == 0x00 && c&0x40 == 0) || (b[0] == 0x7f && c&0x40 != 0) {
				return 0, false, errOverlong
			}
		}
		top := acc >> 56
		if neg {
			if top != 0xff {
				return 0, false, errOverflow
			}
		} else if top != 0 && !(nullable && top == 1) {
			// A positive value may reach bit 63 only as the nullable 2^63, checked below.
			return 0, false, errOverflow
		}
		acc = acc<<7 | uint64(c&0x7f)
		if c&stopBit != 0 {
			if !neg && acc > 1<<63-1 {
				if nullable && acc == 1<<63 {
					return 0, true, i + 1
				}
				return 0, false, errOverflow
			}
			return int64(acc), false, i + 1
		}
	}
	return 0, false, errTruncated
}

// IsASCII reports whether every byte of b is 7-bit, eight bytes at a time.
func IsASCII(b []byte) bool {
	var or uint64
	for len(b) >= 8 {
		or |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	if len(b) >= 4 {
		or |= uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	for _, c := range b {
		or |= uint64(c)
	}
	return or&0x8080808080808080 == 0
}

// AppendASCII appends s as a stop-bit encoded ASCII string. Every byte of s must be 7-bit;
// the caller checks (the encoder reports R3 otherwise). A nullable field passes
// nullable=true, which shifts the empty and NUL strings as the spec requires.
func AppendASCII(b []byte, s []byte, nullable bool) []byte {
	switch {
	case len(s) == 0:
		if nullable {
			return append(b, 0x00, stopBit)
		}
		return append(b, stopBit)
	case len(s) == 1 && s[0] == 0:
		if nullable {
			return append(b, 0x00, 0x00, stopBit)
		}
		return append(b, 0x00, stopBit)
	}
	b = append(b, s...)
	b[len(b)-1] |= stopBit
	return b
}

// ConsumeASCII parses a stop-bit encoded ASCII string and appends its characters to dst.
// For a nullable field, null reports NULL. The overlong forms (R9) return errOverlong.
func ConsumeASCII(dst, b []byte, nullable bool) (out []byte, null bool, n int) {
	end := -1
	for i, c := range b {
		if c&stopBit != 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return dst, false, errTruncated
	}
	n = end + 1
	if b[0] == stopBit { // 0x80
		if nullable {
			return dst, true, n
		}
		return dst, false, n
	}
	if b[0] == 0x00 {
		// 0x00 0x80 is "" (nullable) or "\x00" (mandatory); nullable "\x00" is 0x00 0x00 0x80.
		switch {
		case n == 2 && b[1] == stopBit:
			if nullable {
				return dst, false, n
			}
			return append(dst, 0), false, n
		case nullable && n == 3 && b[1] == 0x00 && b[2] == stopBit:
			return append(dst, 0), false, n
		}
		return dst, false, errOverlong
	}
	dst = append(dst, b[:n]...)
	dst[len(dst)-1] &^= stopBit
	return dst, false, n
}

// AppendBytes appends a byte vector: its length as an unsigned integer (nullable for an
// optional field), then the bytes.
func AppendBytes(b []byte, v []byte, nullable bool) []byte {
	if nullable {
		b = AppendUintNullable(b, uint64(len(v)))
	} else {
		b = AppendUint(b, uint64(len(v)))
	}
	return append(b, v...)
}

// ConsumeBytes parses a byte vector and returns a slice of b holding its bytes. The length
// is checked against the input before anything is read, so a hostile length costs nothing.
func ConsumeBytes(b []byte, nullable bool) (v []byte, null bool, n int) {
	var size uint64
	if nullable {
		size, null, n = ConsumeUintNullable(b)
	} else {
		size, n = ConsumeUint(b)
	}
	if n < 0 || null {
		return nil, null, n
	}
	if size > uint64(len(b)-n) {
		return nil, false, errTruncated
	}
	end := n + int(size)
	return b[n:end], false, end
}
