package roles

import (
	"errors"
	"slices"
	"testing"
)

// TestFanoutRateFlags: --fanout-rates takes ascending rates (empty: no capacity step,
// not the default); the counts flags take an empty list as no row.
func TestFanoutRateFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float64
		err  bool
	}{
		{"1000,2000,4000,8000", []float64{1000, 2000, 4000, 8000}, false},
		{" 500 , 1500", []float64{500, 1500}, false},
		{"", []float64{}, false},
		{"2000,1000", nil, true},
		{"1000,1000", nil, true},
		{"0", nil, true},
		{"fast", nil, true},
		{"200000", nil, true},
	} {
		got, err := capacityRates(tc.in)
		var ue *UsageError
		if tc.err != (err != nil) || (err != nil && !errors.As(err, &ue)) {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if !tc.err && (got == nil || !slices.Equal(got, tc.want)) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
	if got, err := counts("--fanout-bus", ""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("counts of \"\": %v, %v (want empty, not nil: no row)", got, err)
	}
}
