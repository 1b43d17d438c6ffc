package decfmt

import (
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		mant int64
		exp  int
		want string
	}{
		{0, 0, "0"},
		{0, -5, "0"},
		{943, -1, "94.3"},
		{10130, -2, "101.3"},
		{10125, -2, "101.25"},
		{300, 0, "300"},
		{5, 2, "500"},
		{-5, -1, "-0.5"},
		{5, -3, "0.005"},
		{50, -3, "0.05"},
		{-12, 3, "-12000"},
		{942755, 2, "94275500"},
		{1, -18, "0.000000000000000001"},
		{math.MaxInt64, 0, "9223372036854775807"},
		{math.MinInt64, 0, "-9223372036854775808"},
		{math.MinInt64, -19, "-0.9223372036854775808"},
		{math.MinInt64, -20, "-0.09223372036854775808"},
		{100, -2, "1"},
		{-100, -3, "-0.1"},
	}
	for _, tt := range tests {
		if got := String(tt.mant, tt.exp); got != tt.want {
			t.Errorf("String(%d, %d) = %q, want %q", tt.mant, tt.exp, got, tt.want)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	buf := make([]byte, 0, 32)
	for b.Loop() {
		buf = Append(buf[:0], 10125, -2)
	}
}
