package decfmt

import "fmt"

// Rules are what Scan accepts beyond the common syntax.
type Rules struct {
	// MaxDigits is how many significant digits the mantissa may have, 1..19 (every
	// 19-digit magnitude fits a uint64); 0 means 19.
	MaxDigits int
	// Strict wants digits on both sides of a decimal point: ".5" and "5." are refused.
	Strict bool
}

// Scanned is a scanned decimal: (-1 if Neg) × Mag × 10^Exp, with Digits significant
// digits in Mag (0 for zero).
type Scanned struct {
	Neg    bool
	Mag    uint64
	Exp    int
	Digits int
}

// SyntaxError says why Scan refused its input.
type SyntaxError struct{ Problem string }

func (e *SyntaxError) Error() string { return e.Problem }

// Scan is fastfeed's one decimal parser. It reads plain notation: an optional '-',
// digits with at most one '.', no exponent and nothing else. The written scale is kept:
// "101.20" is 10120 at exponent -2 (the exponent is minus the number of fractional
// digits), except that trailing zeros the mantissa has no room for (beyond MaxDigits)
// move into the exponent: "1" and 20 zeros is 1 at exponent 20. Zero keeps its written
// scale too ("0.00" is 0 at -2). More significant digits than MaxDigits is an error; the
// exponent is not bounded here (a caller checks its own range). Scan does not allocate
// unless it fails.
func Scan[T ~string | ~[]byte](s T, r Rules) (Scanned, error) {
	maxDigits := r.MaxDigits
	if maxDigits <= 0 || maxDigits > 19 {
		maxDigits = 19
	}
	var d Scanned
	i := 0
	if len(s) > 0 && s[0] == '-' {
		d.Neg, i = true, 1
	}
	var (
		zeros  int // zeros seen after the last non-zero digit, not yet in Mag
		frac   int // digits after the point
		point  = -1
		before int // digits before the point
		any    bool
	)
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if point >= 0 {
				return Scanned{}, &SyntaxError{"more than one decimal point"}
			}
			point = i
		case '0' <= c && c <= '9':
			any = true
			if point >= 0 {
				frac++
			} else {
				before++
			}
			if c == '0' {
				if d.Digits > 0 {
					zeros++
				}
				continue
			}
			if d.Digits+zeros+1 > maxDigits {
				return Scanned{}, &SyntaxError{fmt.Sprintf("more than %d significant digits", maxDigits)}
			}
			for ; zeros > 0; zeros-- {
				d.Mag *= 10
				d.Digits++
			}
			d.Mag = d.Mag*10 + uint64(c-'0')
			d.Digits++
		default:
			return Scanned{}, &SyntaxError{fmt.Sprintf("invalid character %q", c)}
		}
	}
	if !any {
		return Scanned{}, &SyntaxError{"no digits"}
	}
	if r.Strict && point >= 0 && (before == 0 || frac == 0) {
		return Scanned{}, &SyntaxError{"digits wanted on both sides of the decimal point"}
	}
	// Trailing zeros go into the mantissa while it has room, keeping the written scale.
	for ; zeros > 0 && d.Digits > 0 && d.Digits < maxDigits; zeros-- {
		d.Mag *= 10
		d.Digits++
	}
	if d.Digits == 0 {
		zeros = 0 // the value is zero: keep the written scale
	}
	d.Exp = zeros - frac
	return d, nil
}

// Int64 returns d's mantissa as an int64, and false if it does not fit.
func (d Scanned) Int64() (int64, bool) {
	if d.Neg {
		if d.Mag > 1<<63 {
			return 0, false
		}
		return -int64(d.Mag), true // -(1<<63) wraps to math.MinInt64
	}
	if d.Mag > 1<<63-1 {
		return 0, false
	}
	return int64(d.Mag), true
}

// At returns d's value as a mantissa at exponent exp, and false if it is not a multiple
// of 10^exp or does not fit an int64.
func (d Scanned) At(exp int) (int64, bool) {
	mag := d.Mag
	if mag != 0 {
		for e := d.Exp; e < exp; e++ {
			if mag%10 != 0 {
				return 0, false
			}
			mag /= 10
		}
		for e := d.Exp; e > exp; e-- {
			if mag > (1<<63)/10 {
				return 0, false
			}
			mag *= 10
		}
	}
	return Scanned{Neg: d.Neg, Mag: mag}.Int64()
}
