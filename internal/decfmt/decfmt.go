// Package decfmt formats scaled integers (mantissa × 10^exponent) as exact decimal strings
// in plain notation, without floating point and without allocating.
package decfmt

import "strconv"

// Append appends mantissa × 10^exp to dst as the shortest exact decimal string in plain
// notation: trailing fractional zeros are dropped, a positive exponent is written out as
// zeros (5e2 is "500"), and a value below one keeps its leading zero ("0.05").
func Append(dst []byte, mantissa int64, exp int) []byte {
	if mantissa == 0 {
		return append(dst, '0')
	}
	var u uint64
	if mantissa < 0 {
		dst = append(dst, '-')
		u = uint64(-(mantissa + 1)) + 1 // safe for math.MinInt64
	} else {
		u = uint64(mantissa)
	}
	for exp < 0 && u%10 == 0 {
		u /= 10
		exp++
	}
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], u, 10)
	if exp >= 0 {
		dst = append(dst, digits...)
		for range exp {
			dst = append(dst, '0')
		}
		return dst
	}
	frac := -exp
	if frac >= len(digits) {
		dst = append(dst, '0', '.')
		for range frac - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-frac]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-frac:]...)
}

// String returns Append's result as a string.
func String(mantissa int64, exp int) string {
	return string(Append(nil, mantissa, exp))
}
