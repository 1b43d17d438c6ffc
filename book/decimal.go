package book

import (
	"errors"
	"fmt"

	"fastfeed/internal/decfmt"

	"github.com/shopspring/decimal"
)

// FormatDecimal appends mantissa * 10^exp to dst as the shortest exact
// decimal string in plain notation and returns the extended slice: "101.3"
// for 10130 at -2, "500" for 5 at 2, "-0.5" for -5 at -1, "0" for zero. It is
// exact for every int64 mantissa. An exponent outside [MinExp, MaxExp], which
// no book has, is written in e-notation ("5e100") to bound the output.
func FormatDecimal(dst []byte, mantissa int64, exp int) []byte {
	return decfmt.Append(dst, mantissa, exp)
}

var errSyntax = errors.New("not a plain decimal number")

// ParseDecimal returns the mantissa of the decimal string s at exponent exp:
// ParseDecimal("101.3", -2) is 10130. s is a plain decimal: an optional '-',
// digits, and optionally '.' and more digits; trailing zeros are allowed. It
// fails if s is malformed, its value is not a multiple of 10^exp, or the
// mantissa does not fit in an int64.
func ParseDecimal(s string, exp int) (int64, error) {
	d, err := decfmt.Scan(s, decfmt.Rules{Strict: true})
	if err != nil {
		return 0, fmt.Errorf("book: parse decimal %q: %w", s, err)
	}
	m, ok := d.At(exp)
	if !ok {
		return 0, fmt.Errorf("book: parse decimal %q: not a multiple of 1e%d, or out of int64 range there", s, exp)
	}
	return m, nil
}

// splitDecimal splits a plain decimal into its sign, integer digits and
// fraction digits.
func splitDecimal(s string) (neg bool, intPart, fracPart string, err error) {
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	intPart = s[:i]
	if intPart == "" {
		return false, "", "", errSyntax
	}
	if i == len(s) {
		return neg, intPart, "", nil
	}
	if s[i] != '.' {
		return false, "", "", errSyntax
	}
	j := i + 1
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	if j == i+1 || j != len(s) {
		return false, "", "", errSyntax
	}
	return neg, intPart, s[i+1:], nil
}

// isCanonicalDecimal reports whether s is what FormatDecimal writes for some
// value: plain notation, no superfluous zeros, no "-0".
func isCanonicalDecimal(s string) bool {
	neg, intPart, fracPart, err := splitDecimal(s)
	if err != nil {
		return false
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return false
	}
	if fracPart != "" && fracPart[len(fracPart)-1] == '0' {
		return false
	}
	if neg && intPart == "0" && fracPart == "" {
		return false
	}
	return true
}

// compareDecimal compares two canonical decimal strings by value.
func compareDecimal(a, b string) int {
	an, ai, af, _ := splitDecimal(a)
	bn, bi, bf, _ := splitDecimal(b)
	if an != bn {
		if an {
			return -1
		}
		return 1
	}
	c := compareMagnitude(ai, af, bi, bf)
	if an {
		return -c
	}
	return c
}

func compareMagnitude(ai, af, bi, bf string) int {
	if len(ai) != len(bi) {
		if len(ai) < len(bi) {
			return -1
		}
		return 1
	}
	if ai != bi {
		if ai < bi {
			return -1
		}
		return 1
	}
	// Same integer part; canonical fractions compare as strings once the
	// shorter is padded with zeros, which string comparison does by prefix.
	switch {
	case af < bf:
		return -1
	case af > bf:
		return 1
	}
	return 0
}

// DecimalLevel is a level with shopspring decimals, for API edges.
type DecimalLevel struct {
	Price  decimal.Decimal
	Size   decimal.Decimal
	Orders int64
}

// DecimalLevels returns the levels of a side of a book, best first, with
// prices and sizes as decimals. It allocates: use it at API edges, never on
// the update path.
func DecimalLevels(v View, side Side) []DecimalLevel {
	levels := v.AppendLevels(nil, side)
	out := make([]DecimalLevel, len(levels))
	pe, se := int32(v.PriceExp()), int32(v.SizeExp())
	for i, l := range levels {
		out[i] = DecimalLevel{
			Price:  decimal.New(l.Price, pe),
			Size:   decimal.New(l.Size, se),
			Orders: l.Orders,
		}
	}
	return out
}
