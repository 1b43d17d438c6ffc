// Package decfmt is fastfeed's one decimal text codec: Append formats scaled integers
// (mantissa × 10^exponent) as exact decimal strings in plain notation, and Scan parses
// them back (for book, fast, md and bus alike), without floating point and without
// allocating.
package decfmt

import "strconv"

// Append appends mantissa * 10^exp to dst as the shortest exact
// decimal string in plain notation and returns the extended slice: "101.3"
// for 10130 at -2, "500" for 5 at 2, "-0.5" for -5 at -1, "0" for zero. It is
// exact for every int64 mantissa. An exponent outside [MinExp, MaxExp], which
// no book has, is written in e-notation ("5e100") to bound the output.
func Append(dst []byte, mantissa int64, exp int) []byte {
	if mantissa == 0 {
		return append(dst, '0')
	}
	var buf [20]byte
	mag := uint64(mantissa)
	if mantissa < 0 {
		dst = append(dst, '-')
		mag = -mag // exact for math.MinInt64 too
	}
	digits := strconv.AppendUint(buf[:0], mag, 10)
	if exp < -63 || exp > 63 {
		dst = append(dst, digits...)
		dst = append(dst, 'e')
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp >= 0 {
		dst = append(dst, digits...)
		for ; exp > 0; exp-- {
			dst = append(dst, '0')
		}
		return dst
	}
	frac := -exp
	for frac > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		frac--
	}
	if frac == 0 {
		return append(dst, digits...)
	}
	if n := len(digits) - frac; n > 0 {
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		return append(dst, digits[n:]...)
	}
	dst = append(dst, '0', '.')
	for n := frac - len(digits); n > 0; n-- {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// String returns Append's result as a string.
func String(mantissa int64, exp int) string {
	return string(Append(nil, mantissa, exp))
}
