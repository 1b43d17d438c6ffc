package book

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestFormatDecimal(t *testing.T) {
	tests := []struct {
		m    int64
		exp  int
		want string
	}{
		{0, 0, "0"},
		{0, -5, "0"},
		{0, 7, "0"},
		{10125, -2, "101.25"},
		{10130, -2, "101.3"},
		{10100, -2, "101"},
		{300, 0, "300"},
		{5, 2, "500"},
		{-5, -1, "-0.5"},
		{-5, 0, "-5"},
		{-5, 1, "-50"},
		{1, -1, "0.1"},
		{1, -3, "0.001"},
		{-1, -3, "-0.001"},
		{100, -3, "0.1"},
		{12345, -5, "0.12345"},
		{12345, -4, "1.2345"},
		{120, -1, "12"},
		{1, 18, "1000000000000000000"},
		{1, -18, "0.000000000000000001"},
		{math.MaxInt64, 0, "9223372036854775807"},
		{math.MaxInt64, -18, "9.223372036854775807"},
		{math.MaxInt64, -19, "0.9223372036854775807"},
		{math.MaxInt64, -20, "0.09223372036854775807"},
		{math.MinInt64, 0, "-9223372036854775808"},
		{math.MinInt64, -3, "-9223372036854775.808"},
		{math.MinInt64, -18, "-9.223372036854775808"},
		{math.MinInt64, -19, "-0.9223372036854775808"},
		{math.MinInt64, 2, "-922337203685477580800"},
		{math.MinInt64, 18, "-9223372036854775808000000000000000000"},
		{1000000, -6, "1"},
		{-1000000, -7, "-0.1"},
		{7, MaxExp, "7" + strings.Repeat("0", MaxExp)},
		{7, MinExp, "0." + strings.Repeat("0", -MinExp-1) + "7"},
		{5, 100, "5e100"}, // outside [MinExp, MaxExp]: bounded e-notation
		{-5, -64, "-5e-64"},
	}
	for _, tt := range tests {
		if got := string(FormatDecimal(nil, tt.m, tt.exp)); got != tt.want {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", tt.m, tt.exp, got, tt.want)
		}
	}
	if got := string(FormatDecimal([]byte("x="), 15, -1)); got != "x=1.5" {
		t.Errorf("FormatDecimal does not append: %q", got)
	}
}

// refFormat formats m * 10^exp with math/big.
func refFormat(m int64, exp int) string {
	if exp >= 0 {
		v := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)
		return v.Mul(v, big.NewInt(m)).String()
	}
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil)
	s := new(big.Rat).SetFrac(big.NewInt(m), den).FloatString(-exp)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" || s == "" {
		s = "0"
	}
	return s
}

// TestFormatDecimalMatchesBig checks FormatDecimal and ParseDecimal against
// math/big over interesting mantissas and every exponent in -18..18.
func TestFormatDecimalMatchesBig(t *testing.T) {
	mantissas := []int64{0, 1, -1, 9, 10, -10, 99, 100, 101, 12345678901234, math.MaxInt64, math.MinInt64,
		math.MaxInt64 - 1, math.MinInt64 + 1, 1e18, -1e18, 5e17, 1 << 62}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		m := int64(rng.Uint64()) >> rng.IntN(64)
		mantissas = append(mantissas, m, m/1000*1000)
	}
	for _, m := range mantissas {
		for exp := -18; exp <= 18; exp++ {
			got := string(FormatDecimal(nil, m, exp))
			if want := refFormat(m, exp); got != want {
				t.Fatalf("FormatDecimal(%d, %d) = %q, want %q", m, exp, got, want)
			}
			if !isCanonicalDecimal(got) {
				t.Fatalf("FormatDecimal(%d, %d) = %q, not canonical", m, exp, got)
			}
			back, err := ParseDecimal(got, exp)
			if err != nil || back != m {
				t.Fatalf("ParseDecimal(%q, %d) = %d, %v; want %d", got, exp, back, err, m)
			}
		}
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		s    string
		exp  int
		want int64
		ok   bool
	}{
		{"101.25", -2, 10125, true},
		{"101.3", -2, 10130, true},
		{"101.30", -2, 10130, true},
		{"101.300000", -2, 10130, true},
		{"0101.3", -2, 10130, true},
		{"500", 2, 5, true},
		{"500", 0, 500, true},
		{"510", 2, 0, false}, // not a multiple of 100
		{"101.25", -1, 0, false},
		{"-0.5", -1, -5, true},
		{"-0", 0, 0, true},
		{"0", 5, 0, true},
		{"0.000", -1, 0, true},
		{"9223372036854775807", 0, math.MaxInt64, true},
		{"9223372036854775808", 0, 0, false},
		{"-9223372036854775808", 0, math.MinInt64, true},
		{"-9223372036854775809", 0, 0, false},
		{"-9.223372036854775808", -18, math.MinInt64, true},
		{"9.223372036854775808", -18, 0, false},
		{"922337203685477580800", 2, 0, false}, // 9223372036854775808 > MaxInt64
		{"922337203685477580700", 2, 9223372036854775807, true},
		{"1", -18, 1e18, true},
		{"1", -19, 0, false},
		{"1", -1000, 0, false},
		{"0.1", 1000, 0, false},
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{".5", -1, 0, false},
		{"5.", -1, 0, false},
		{"+5", 0, 0, false},
		{"1e3", 0, 0, false},
		{" 1", 0, 0, false},
		{"1 ", 0, 0, false},
		{"1.2.3", -2, 0, false},
		{"--1", 0, 0, false},
		{"1,5", -1, 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDecimal(tt.s, tt.exp)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseDecimal(%q, %d) = %d, %v; want %d ok=%v", tt.s, tt.exp, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tt.s) {
			t.Errorf("ParseDecimal(%q) error %q does not name the input", tt.s, err)
		}
	}
}

func TestCanonicalAndCompare(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "1": true, "-1": true, "101.3": true, "-0.5": true, "500": true, "0.001": true,
		"-0": false, "00": false, "01": false, "1.0": false, "101.30": false, "0.": false, ".1": false,
		"": false, "-": false, "1e2": false, "+1": false, "-0.0": false, "1.": false,
	} {
		if got := isCanonicalDecimal(s); got != want {
			t.Errorf("isCanonicalDecimal(%q) = %v, want %v", s, got, want)
		}
	}
	ordered := []string{"-100", "-99.99", "-1", "-0.51", "-0.5", "-0.05", "0", "0.001", "0.01", "0.1", "0.11", "0.2", "1", "9.99", "10", "10.5", "100"}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareDecimal(a, b); got != want {
				t.Errorf("compareDecimal(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestDecimalLevels(t *testing.T) {
	b := mustMBP(t, Config{PriceExp: -2, SizeExp: 3})
	b.Apply(Update{Action: ActionNew, Type: EntryBid, Price: 10125, Size: 3, Orders: 2})
	b.Apply(Update{Action: ActionNew, Type: EntryBid, Price: -50, Size: 1})
	got := DecimalLevels(b, Bid)
	want := []struct{ p, s string }{{"101.25", "3000"}, {"-0.5", "1000"}}
	if len(got) != len(want) {
		t.Fatalf("DecimalLevels = %v", got)
	}
	for i, w := range want {
		if !got[i].Price.Equal(decimal.RequireFromString(w.p)) || !got[i].Size.Equal(decimal.RequireFromString(w.s)) {
			t.Errorf("level %d = %v %v, want %s %s", i, got[i].Price, got[i].Size, w.p, w.s)
		}
	}
	if got[0].Orders != 2 {
		t.Errorf("orders %d", got[0].Orders)
	}
	if got := DecimalLevels(b, Ask); len(got) != 0 {
		t.Errorf("asks %v", got)
	}
}

// FuzzDecimal checks that FormatDecimal output is canonical and parses back,
// and that ParseDecimal never panics and agrees with FormatDecimal.
func FuzzDecimal(f *testing.F) {
	f.Add(int64(10130), -2, "101.3")
	f.Add(int64(math.MinInt64), -19, "-0.9223372036854775808")
	f.Add(int64(5), 2, "500")
	f.Add(int64(-5), -1, "-0.50")
	f.Add(int64(0), 0, "00.000")
	f.Add(int64(1), -63, "1e5")
	f.Fuzz(func(t *testing.T, m int64, exp int, s string) {
		exp %= MaxExp + 1 // keep it in [MinExp, MaxExp]
		out := string(FormatDecimal(nil, m, exp))
		if !isCanonicalDecimal(out) {
			t.Fatalf("FormatDecimal(%d, %d) = %q, not canonical", m, exp, out)
		}
		if back, err := ParseDecimal(out, exp); err != nil || back != m {
			t.Fatalf("ParseDecimal(%q, %d) = %d, %v; want %d", out, exp, back, err, m)
		}
		if v, err := ParseDecimal(s, exp); err == nil {
			// s has an exact value at exp; it formats to the canonical form of s.
			canon := string(FormatDecimal(nil, v, exp))
			if back, err := ParseDecimal(canon, exp); err != nil || back != v {
				t.Fatalf("ParseDecimal(%q) = %d, but its format %q parses to %d, %v", s, v, canon, back, err)
			}
			if isCanonicalDecimal(s) && canon != s {
				t.Fatalf("canonical %q parsed to %d at %d, which formats as %q", s, v, exp, canon)
			}
		}
	})
}
