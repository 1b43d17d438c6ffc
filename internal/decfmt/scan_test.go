package decfmt

import (
	"math"
	"math/big"
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	tests := []struct {
		in     string
		r      Rules
		mant   int64
		exp    int
		errHas string
	}{
		{in: "101.20", mant: 10120, exp: -2},
		{in: "-0.5", mant: -5, exp: -1},
		{in: "500", mant: 500},
		{in: "0.00", mant: 0, exp: -2},
		{in: "-0", mant: 0},
		{in: "007", mant: 7},
		{in: ".5", mant: 5, exp: -1},
		{in: "5.", mant: 5},
		{in: "1" + strings.Repeat("0", 20), mant: 1e18, exp: 2},
		{in: "9223372036854775807", mant: math.MaxInt64},
		{in: "-9223372036854775808", mant: math.MinInt64},
		{in: "1000000000000000001", r: Rules{MaxDigits: 18}, errHas: "more than 18 significant digits"},
		{in: "1.0000000000000000001", r: Rules{MaxDigits: 18}, errHas: "more than 18 significant digits"},
		{in: "10000000000000000000000", r: Rules{MaxDigits: 18}, mant: 1e17, exp: 5},
		{in: ".5", r: Rules{Strict: true}, errHas: "both sides"},
		{in: "5.", r: Rules{Strict: true}, errHas: "both sides"},
		{in: "1.2.3", errHas: "more than one decimal point"},
		{in: "1e3", errHas: "invalid character 'e'"},
		{in: "+5", errHas: "invalid character '+'"},
		{in: "--5", errHas: "invalid character '-'"},
		{in: "", errHas: "no digits"},
		{in: "-", errHas: "no digits"},
		{in: ".", errHas: "no digits"},
	}
	for _, tt := range tests {
		d, err := Scan(tt.in, tt.r)
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Scan(%q) = %+v, %v; want an error with %q", tt.in, d, err, tt.errHas)
			}
			continue
		}
		m, ok := d.Int64()
		if err != nil || !ok || m != tt.mant || d.Exp != tt.exp {
			t.Errorf("Scan(%q) = %+v (%d, %v), %v; want %d e%d", tt.in, d, m, ok, err, tt.mant, tt.exp)
		}
		if b, err := Scan([]byte(tt.in), tt.r); err != nil || b != d {
			t.Errorf("Scan([]byte(%q)) = %+v, %v; the string gave %+v", tt.in, b, err, d)
		}
	}
	for _, c := range []struct {
		d    Scanned
		exp  int
		want int64
		ok   bool
	}{
		{Scanned{Mag: 10130, Exp: -3}, -2, 1013, true},
		{Scanned{Mag: 10131, Exp: -3}, -2, 0, false},
		{Scanned{Mag: 5, Exp: 2}, 0, 500, true},
		{Scanned{Neg: true, Mag: 1 << 63}, 0, math.MinInt64, true},
		{Scanned{Mag: 1 << 63}, 0, 0, false},
		{Scanned{Mag: 1}, -19, 0, false},
		{Scanned{}, -1000, 0, true},
	} {
		if got, ok := c.d.At(c.exp); got != c.want || ok != c.ok {
			t.Errorf("%+v.At(%d) = %d, %v; want %d, %v", c.d, c.exp, got, ok, c.want, c.ok)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = Scan("-101.25", Rules{}) }); a != 0 {
		t.Errorf("%.0f allocations per Scan", a)
	}
}

// FuzzScan: Scan never panics; what it accepts is exactly the value math/big reads
// from the same text, within the digits it allows, and formats back to that value.
func FuzzScan(f *testing.F) {
	for _, s := range []string{"101.20", "-0.5", "0.00", "1e3", ".5", "5.", "9223372036854775808", "1" + strings.Repeat("0", 30), "-", "1.2.3"} {
		f.Add(s, uint8(0), false)
	}
	f.Fuzz(func(t *testing.T, s string, digits uint8, strict bool) {
		r := Rules{MaxDigits: int(digits % 20), Strict: strict}
		d, err := Scan(s, r)
		if err != nil {
			return
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok || strings.ContainsAny(s, "eE+/") {
			t.Fatalf("Scan(%q) accepted what is not a plain decimal: %+v", s, d)
		}
		max := r.MaxDigits
		if max == 0 {
			max = 19
		}
		if d.Digits > max || (d.Mag == 0) != (d.Digits == 0) {
			t.Fatalf("Scan(%q) = %+v: digits over %d", s, d, max)
		}
		got := new(big.Rat).SetInt(new(big.Int).SetUint64(d.Mag))
		scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(d.Exp))), nil))
		if d.Exp >= 0 {
			got.Mul(got, scale)
		} else {
			got.Quo(got, scale)
		}
		if d.Neg {
			got.Neg(got)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("Scan(%q) = %+v = %v, want %v", s, d, got.RatString(), want.RatString())
		}
		if m, ok := d.Int64(); ok && d.Exp >= -63 && d.Exp <= 63 {
			back, err := Scan(Append(nil, m, d.Exp), Rules{})
			if m2, _ := back.At(d.Exp); err != nil || m2 != m {
				t.Fatalf("Scan(%q) = %d e%d formats as %q, which scans to %+v, %v", s, m, d.Exp, Append(nil, m, d.Exp), back, err)
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
