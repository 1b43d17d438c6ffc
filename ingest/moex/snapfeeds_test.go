package moex

import (
	"slices"
	"testing"
)

func TestSnapshotReaches(t *testing.T) {
	for _, tc := range []struct {
		name             string
		known, stale     bool
		rpt, first, last int64
		want             bool
	}{
		{"unknown", false, false, 1, 0, 0, true},
		{"newer", true, false, 11, 0, 10, true},
		{"same", true, false, 10, 0, 10, false},
		{"stale reaches the first held", true, true, 14, 15, 20, true},
		{"stale past the first held", true, true, 17, 15, 20, true},
		{"stale short of the first held", true, true, 13, 15, 20, false},
		{"stale, none held", true, true, 20, 0, 20, true},
		{"stale, none held, older", true, true, 19, 0, 20, false},
	} {
		if got := snapshotReaches(tc.known, tc.stale, tc.rpt, tc.first, tc.last); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestFollowOn(t *testing.T) {
	rpt := func(r *int32) int32 { return *r }
	for _, tc := range []struct {
		name     string
		q        []int32
		last     int32
		applied  []int32
		kept     []int32
		wantLast int32
		hole     bool
	}{
		{"all follow", []int32{5, 6, 7}, 4, []int32{5, 6, 7}, nil, 7, false},
		{"some included", []int32{3, 4, 5, 6}, 4, []int32{5, 6}, nil, 6, false},
		{"another hole", []int32{5, 6, 8, 9}, 4, []int32{5, 6}, []int32{8, 9}, 6, true},
		{"hole first", []int32{7, 8}, 4, nil, []int32{7, 8}, 4, true},
		{"empty", nil, 4, nil, nil, 4, false},
	} {
		var applied []int32
		kept, last, hole := followOn(slices.Clone(tc.q), tc.last, rpt, func(r *int32) { applied = append(applied, *r) })
		if !slices.Equal(applied, tc.applied) || !slices.Equal(kept, tc.kept) || last != tc.wantLast || hole != tc.hole {
			t.Errorf("%s: applied %v kept %v last %d hole %v", tc.name, applied, kept, last, hole)
		}
	}
}
