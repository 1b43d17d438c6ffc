package md

import "errors"

// AppendFIXDecimal appends d as a FIX Float in plain notation, keeping the exponent's
// fractional digits (Dec(10120, -2) is "101.20"). It allocates nothing beyond dst's growth.
func AppendFIXDecimal(dst []byte, d Decimal) []byte { return appendFIXDecimal(dst, d) }

// errFIXDecimal is returned by ParseFIXDecimal; callers add what and where.
var errFIXDecimal = errors.New("not a FIX decimal (digits, one '.', an optional '-', at most 18 significant digits)")

// ParseFIXDecimal parses a FIX Float as the FIX readers do ("101.20" is 10120e-2). The
// error names no field: the caller wraps it with the tag and the message.
func ParseFIXDecimal(b []byte) (Decimal, error) {
	if !plainDecimal(b) {
		return Decimal{}, errFIXDecimal
	}
	d, reason := parseFIXDecimal(b)
	if reason != "" {
		return Decimal{}, errFIXDecimal
	}
	return d, nil
}

// plainDecimal reports whether b has the characters of a FIX decimal, so that
// parseFIXDecimal does not build an error text (which allocates) for common garbage.
func plainDecimal(b []byte) bool {
	i, digits, point := 0, 0, false
	if len(b) > 0 && b[0] == '-' {
		i = 1
	}
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '.':
			if point {
				return false
			}
			point = true
		case '0' <= c && c <= '9':
			digits++
		default:
			return false
		}
	}
	return digits > 0
}
