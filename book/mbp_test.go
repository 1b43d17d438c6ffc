package book

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustMBP(t testing.TB, cfg Config) *MBP {
	t.Helper()
	b, err := NewMBP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func levelsOf(v View, side Side) []Level {
	return v.AppendLevels([]Level{}, side)
}

func lv(price, size, orders int64) Level { return Level{Price: price, Size: size, Orders: orders} }

func TestMBPApply(t *testing.T) {
	bids3 := []Level{lv(101, 10, 1), lv(100, 20, 2), lv(99, 30, 3)}
	asks3 := []Level{lv(102, 11, 1), lv(103, 21, 2), lv(104, 31, 3)}
	tests := []struct {
		name     string
		max      int
		bids     []Level // initial, best first
		asks     []Level
		u        Update
		wantErr  error
		wantBids []Level
		wantAsks []Level
		want     Counters
	}{
		{name: "new bid into empty",
			u:        Update{Action: ActionNew, Type: EntryBid, Price: 100, Size: 5, Orders: 1},
			wantBids: []Level{lv(100, 5, 1)}},
		{name: "new ask into empty",
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: 100, Size: 5, Orders: 1},
			wantAsks: []Level{lv(100, 5, 1)}},
		{name: "new bid at top", bids: bids3, asks: asks3,
			u:        Update{Action: ActionNew, Type: EntryBid, Price: 1015, Size: 1, Orders: 1},
			wantBids: []Level{lv(1015, 1, 1), lv(101, 10, 1), lv(100, 20, 2), lv(99, 30, 3)}, wantAsks: asks3},
		{name: "new bid in middle", bids: []Level{lv(101, 10, 1), lv(99, 30, 3)},
			u:        Update{Action: ActionNew, Type: EntryBid, Price: 100, Size: 20, Orders: 2},
			wantBids: bids3},
		{name: "new bid at bottom", bids: bids3,
			u:        Update{Action: ActionNew, Type: EntryBid, Price: 98, Size: 1, Orders: 1},
			wantBids: append(slices.Clone(bids3), lv(98, 1, 1))},
		{name: "new ask at top", bids: bids3, asks: asks3,
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: 101, Size: 1, Orders: 1},
			wantBids: bids3, wantAsks: []Level{lv(101, 1, 1), lv(102, 11, 1), lv(103, 21, 2), lv(104, 31, 3)}},
		{name: "new ask in middle", asks: []Level{lv(102, 11, 1), lv(104, 31, 3)},
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: 103, Size: 21, Orders: 2},
			wantAsks: asks3},
		{name: "new ask at bottom", asks: asks3,
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: 200, Size: 1},
			wantAsks: append(slices.Clone(asks3), lv(200, 1, 0))},
		{name: "new on existing level replaces", bids: bids3,
			u:        Update{Action: ActionNew, Type: EntryBid, Price: 100, Size: 7, Orders: 9},
			wantBids: []Level{lv(101, 10, 1), lv(100, 7, 9), lv(99, 30, 3)},
			want:     Counters{Duplicates: 1}},
		{name: "change top bid", bids: bids3,
			u:        Update{Action: ActionChange, Type: EntryBid, Price: 101, Size: 15, Orders: 4},
			wantBids: []Level{lv(101, 15, 4), lv(100, 20, 2), lv(99, 30, 3)}},
		{name: "change bottom ask", asks: asks3,
			u:        Update{Action: ActionChange, Type: EntryOffer, Price: 104, Size: 0, Orders: 0},
			wantAsks: []Level{lv(102, 11, 1), lv(103, 21, 2), lv(104, 0, 0)}},
		{name: "change missing level", bids: bids3, asks: asks3,
			u:       Update{Action: ActionChange, Type: EntryBid, Price: 102, Size: 1, Orders: 1},
			wantErr: ErrNoLevel, wantBids: bids3, wantAsks: asks3, want: Counters{ChangeMissing: 1}},
		{name: "change bid price that is only an ask", bids: bids3, asks: asks3,
			u:       Update{Action: ActionChange, Type: EntryOffer, Price: 101, Size: 1, Orders: 1},
			wantErr: ErrNoLevel, wantBids: bids3, wantAsks: asks3, want: Counters{ChangeMissing: 1}},
		{name: "delete top bid", bids: bids3,
			u:        Update{Action: ActionDelete, Type: EntryBid, Price: 101},
			wantBids: []Level{lv(100, 20, 2), lv(99, 30, 3)}},
		{name: "delete middle ask", asks: asks3,
			u:        Update{Action: ActionDelete, Type: EntryOffer, Price: 103, Size: 999},
			wantAsks: []Level{lv(102, 11, 1), lv(104, 31, 3)}},
		{name: "delete bottom bid", bids: bids3,
			u:        Update{Action: ActionDelete, Type: EntryBid, Price: 99},
			wantBids: []Level{lv(101, 10, 1), lv(100, 20, 2)}},
		{name: "delete last level", asks: []Level{lv(5, 1, 1)},
			u: Update{Action: ActionDelete, Type: EntryOffer, Price: 5}},
		{name: "delete missing level", bids: bids3, asks: asks3,
			u:       Update{Action: ActionDelete, Type: EntryOffer, Price: 101},
			wantErr: ErrNoLevel, wantBids: bids3, wantAsks: asks3, want: Counters{DeleteMissing: 1}},
		{name: "delete on empty book",
			u:       Update{Action: ActionDelete, Type: EntryBid, Price: 1},
			wantErr: ErrNoLevel, want: Counters{DeleteMissing: 1}},
		{name: "trade is a no-op", bids: bids3, asks: asks3,
			u:        Update{Action: ActionNew, Type: EntryTrade, Price: 101, Size: 5},
			wantBids: bids3, wantAsks: asks3},
		{name: "trade delete is a no-op", bids: bids3,
			u:        Update{Action: ActionDelete, Type: EntryTrade, Price: 101},
			wantBids: bids3},
		{name: "other entry type with bad action is a no-op", bids: bids3,
			u:        Update{Action: 7, Type: EntryOther, Price: 101},
			wantBids: bids3},
		{name: "invalid action", bids: bids3,
			u:       Update{Action: 5, Type: EntryBid, Price: 101, Size: 1},
			wantErr: ErrBadAction, wantBids: bids3, want: Counters{Invalid: 1}},
		{name: "negative size", bids: bids3,
			u:       Update{Action: ActionChange, Type: EntryBid, Price: 101, Size: -1},
			wantErr: ErrNegative, wantBids: bids3, want: Counters{Invalid: 1}},
		{name: "negative orders", bids: bids3,
			u:       Update{Action: ActionNew, Type: EntryBid, Price: 105, Size: 1, Orders: -1},
			wantErr: ErrNegative, wantBids: bids3, want: Counters{Invalid: 1}},
		{name: "negative bid prices order", bids: []Level{lv(-5, 1, 1), lv(-100, 1, 1)},
			u:        Update{Action: ActionNew, Type: EntryBid, Price: -50, Size: 2, Orders: 2},
			wantBids: []Level{lv(-5, 1, 1), lv(-50, 2, 2), lv(-100, 1, 1)}},
		{name: "negative ask prices order", asks: []Level{lv(-100, 1, 1), lv(5, 1, 1)},
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: -50, Size: 2, Orders: 2},
			wantAsks: []Level{lv(-100, 1, 1), lv(-50, 2, 2), lv(5, 1, 1)}},
		{name: "extreme ask prices", asks: []Level{lv(math.MinInt64, 1, 1), lv(0, 1, 1)},
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: math.MaxInt64, Size: 2},
			wantAsks: []Level{lv(math.MinInt64, 1, 1), lv(0, 1, 1), lv(math.MaxInt64, 2, 0)}},
		{name: "extreme bid prices", bids: []Level{lv(math.MaxInt64, 1, 1), lv(0, 1, 1)},
			u:        Update{Action: ActionNew, Type: EntryBid, Price: math.MinInt64, Size: 2},
			wantBids: []Level{lv(math.MaxInt64, 1, 1), lv(0, 1, 1), lv(math.MinInt64, 2, 0)}},
		{name: "full side refuses a new level", max: 3, bids: bids3, asks: asks3,
			u:       Update{Action: ActionNew, Type: EntryBid, Price: 200, Size: 1},
			wantErr: ErrFull, wantBids: bids3, wantAsks: asks3, want: Counters{Full: 1}},
		{name: "full side still replaces", max: 3, bids: bids3,
			u:        Update{Action: ActionNew, Type: EntryBid, Price: 99, Size: 1, Orders: 1},
			wantBids: []Level{lv(101, 10, 1), lv(100, 20, 2), lv(99, 1, 1)}, want: Counters{Duplicates: 1}},
		{name: "full bid side does not limit asks", max: 3, bids: bids3,
			u:        Update{Action: ActionNew, Type: EntryOffer, Price: 200, Size: 1},
			wantBids: bids3, wantAsks: []Level{lv(200, 1, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustMBP(t, Config{PriceExp: -2, MaxLevels: tt.max})
			if err := b.Replace(tt.bids, tt.asks); err != nil {
				t.Fatalf("Replace: %v", err)
			}
			err := b.Apply(tt.u)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Apply(%+v) = %v, want %v", tt.u, err, tt.wantErr)
			}
			checkLevels(t, b, tt.wantBids, tt.wantAsks)
			if got := b.Counters(); got != tt.want {
				t.Errorf("counters %+v, want %+v", got, tt.want)
			}
		})
	}
}

func checkLevels(t *testing.T, v View, bids, asks []Level) {
	t.Helper()
	if got := levelsOf(v, Bid); !slices.Equal(got, bids) {
		t.Errorf("bids %v, want %v", got, bids)
	}
	if got := levelsOf(v, Ask); !slices.Equal(got, asks) {
		t.Errorf("asks %v, want %v", got, asks)
	}
}

func TestMBPAccessors(t *testing.T) {
	b := mustMBP(t, Config{PriceExp: -2, SizeExp: 1})
	if b.PriceExp() != -2 || b.SizeExp() != 1 {
		t.Errorf("exponents %d %d", b.PriceExp(), b.SizeExp())
	}
	if _, ok := b.Best(Bid); ok {
		t.Error("Best on empty side reported a level")
	}
	for _, p := range []int64{100, 102, 101} {
		if err := b.Apply(Update{Action: ActionNew, Type: EntryBid, Price: p, Size: p}); err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(Update{Action: ActionNew, Type: EntryOffer, Price: p + 10, Size: p}); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := b.Best(Bid); !ok || got != lv(102, 102, 0) {
		t.Errorf("Best(Bid) = %v %v", got, ok)
	}
	if got, ok := b.Best(Ask); !ok || got != lv(110, 100, 0) {
		t.Errorf("Best(Ask) = %v %v", got, ok)
	}
	if b.Depth(Bid) != 3 || b.Depth(Ask) != 3 || b.Depth(Side(9)) != 0 {
		t.Errorf("Depth %d %d %d", b.Depth(Bid), b.Depth(Ask), b.Depth(Side(9)))
	}
	if got := b.At(Ask, 2); got != lv(112, 102, 0) {
		t.Errorf("At(Ask, 2) = %v", got)
	}
	before := slices.Concat(b.AppendLevels(nil, Bid), b.AppendLevels(nil, Ask))
	if got, want := b.Touch(), int64(102+101+100)+^int64(110)+^int64(111)+^int64(112); got != want {
		t.Errorf("Touch = %d, want the sum of the keys %d", got, want)
	}
	if after := slices.Concat(b.AppendLevels(nil, Bid), b.AppendLevels(nil, Ask)); !slices.Equal(after, before) {
		t.Errorf("Touch changed the book: %v, was %v", after, before)
	}
	if got := b.AppendLevels([]Level{lv(1, 1, 1)}, Side(2)); len(got) != 1 {
		t.Errorf("AppendLevels of invalid side appended %v", got)
	}
	// AppendLevels appends.
	got := b.AppendLevels([]Level{lv(1, 1, 1)}, Bid)
	if want := []Level{lv(1, 1, 1), lv(102, 102, 0), lv(101, 101, 0), lv(100, 100, 0)}; !slices.Equal(got, want) {
		t.Errorf("AppendLevels = %v, want %v", got, want)
	}

	b.SetStale(true)
	b.SetRptSeq(812)
	b.Apply(Update{Action: ActionDelete, Type: EntryBid, Price: 1})
	b.Clear()
	if b.Depth(Bid) != 0 || b.Depth(Ask) != 0 {
		t.Error("Clear left levels")
	}
	if !b.Stale() || b.RptSeq() != 812 || b.Counters().DeleteMissing != 1 {
		t.Errorf("Clear changed caller state: stale %v rptseq %d counters %+v", b.Stale(), b.RptSeq(), b.Counters())
	}
	b.ResetCounters()
	if b.Counters() != (Counters{}) {
		t.Errorf("ResetCounters left %+v", b.Counters())
	}
}

func TestMBPReplace(t *testing.T) {
	b := mustMBP(t, Config{MaxLevels: 3})
	b.Apply(Update{Action: ActionNew, Type: EntryBid, Price: 50, Size: 1})
	// Any order; a duplicate keeps its last level.
	err := b.Replace(
		[]Level{lv(99, 1, 1), lv(101, 1, 1), lv(100, 1, 1), lv(101, 2, 2)},
		[]Level{lv(103, 3, 1), lv(102, 2, 1)})
	if err == nil || !errors.Is(err, ErrFull) {
		t.Fatalf("Replace of 4 bids with MaxLevels 3 = %v, want ErrFull", err)
	}
	checkLevels(t, b, []Level{lv(50, 1, 0)}, nil)

	err = b.Replace(
		[]Level{lv(101, 1, 1), lv(100, 1, 1), lv(101, 2, 2)},
		[]Level{lv(103, 3, 1), lv(102, 2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	checkLevels(t, b, []Level{lv(101, 2, 2), lv(100, 1, 1)}, []Level{lv(102, 2, 1), lv(103, 3, 1)})
	if got := b.Counters(); got != (Counters{Duplicates: 1, Full: 1}) {
		t.Errorf("counters %+v", got)
	}

	if err := b.Replace(nil, []Level{lv(1, -1, 0)}); !errors.Is(err, ErrNegative) {
		t.Errorf("Replace with a negative size = %v, want ErrNegative", err)
	}
	checkLevels(t, b, []Level{lv(101, 2, 2), lv(100, 1, 1)}, []Level{lv(102, 2, 1), lv(103, 3, 1)})

	if err := b.Replace(nil, nil); err != nil {
		t.Fatal(err)
	}
	checkLevels(t, b, []Level{}, []Level{})
}

func TestNewConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{PriceExp: 64}, {PriceExp: -64}, {SizeExp: 100}, {MaxLevels: -1},
		{MaxLevels: MaxMaxLevels + 1}, {MaxOrders: -1}, {MaxOrders: MaxMaxOrders + 1},
	} {
		if _, err := NewMBP(cfg); err == nil {
			t.Errorf("NewMBP(%+v) succeeded", cfg)
		}
		if _, err := NewMBO(cfg); err == nil {
			t.Errorf("NewMBO(%+v) succeeded", cfg)
		}
	}
	for _, cfg := range []Config{{}, {PriceExp: -63, SizeExp: 63, MaxLevels: 1, MaxOrders: 1}} {
		if _, err := NewMBP(cfg); err != nil {
			t.Errorf("NewMBP(%+v): %v", cfg, err)
		}
	}
}

// refMBP is the reference model: a map per side, sorted on read.
type refMBP struct {
	sides    [2]map[int64]Level
	max      int
	counters Counters
}

func newRefMBP(max int) *refMBP {
	return &refMBP{sides: [2]map[int64]Level{{}, {}}, max: max}
}

func (r *refMBP) apply(u Update) error {
	if u.Type != EntryBid && u.Type != EntryOffer {
		return nil
	}
	m := r.sides[u.Type]
	_, exists := m[u.Price]
	switch u.Action {
	case ActionNew, ActionChange:
		if u.Size < 0 || u.Orders < 0 {
			r.counters.Invalid++
			return ErrNegative
		}
		switch {
		case u.Action == ActionChange && !exists:
			r.counters.ChangeMissing++
			return ErrNoLevel
		case u.Action == ActionNew && exists:
			r.counters.Duplicates++
		case u.Action == ActionNew && len(m) >= r.max:
			r.counters.Full++
			return ErrFull
		}
		m[u.Price] = Level{Price: u.Price, Size: u.Size, Orders: u.Orders}
	case ActionDelete:
		if !exists {
			r.counters.DeleteMissing++
			return ErrNoLevel
		}
		delete(m, u.Price)
	default:
		r.counters.Invalid++
		return ErrBadAction
	}
	return nil
}

func (r *refMBP) levels(side Side) []Level {
	out := []Level{}
	for _, l := range r.sides[side] {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Level) int {
		if side == Bid {
			return cmp.Compare(b.Price, a.Price)
		}
		return cmp.Compare(a.Price, b.Price)
	})
	return out
}

func (r *refMBP) replace(bids, asks []Level) {
	r.sides = [2]map[int64]Level{{}, {}}
	for s, in := range [2][]Level{bids, asks} {
		for _, l := range in {
			if _, ok := r.sides[s][l.Price]; ok {
				r.counters.Duplicates++
			}
			r.sides[s][l.Price] = l
		}
	}
}

func randomLevels(rng *rand.Rand, n int, lo, hi int64) []Level {
	out := make([]Level, n)
	for i := range out {
		out[i] = lv(lo+rng.Int64N(hi-lo+1), rng.Int64N(1000), rng.Int64N(10))
	}
	return out
}

// TestMBPMatchesReference applies 100k random updates to a book and to the
// reference model and compares errors, counters and every level after each.
func TestMBPMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ops    int
		max    int
		lo, hi int64 // price range
		every  int   // compare every level every so many ops, the depths after each
	}{
		{"shallow", 100_000, 40, -60, 60, 1},                           // depth up to 40: top scan and binary search, Full often
		{"deep", 30_000, 1000, -1500, 1500, 50},                        // deep book: mostly binary search
		{"extremes", 20_000, 20, math.MaxInt64 - 30, math.MaxInt64, 1}, // keys near the int64 edges
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.max)))
			b := mustMBP(t, Config{PriceExp: -2, MaxLevels: tc.max})
			ref := newRefMBP(tc.max)
			price := func() int64 {
				p := tc.lo + rng.Int64N(tc.hi-tc.lo+1)
				if tc.name == "extremes" && rng.IntN(2) == 0 {
					p = ^p // near MinInt64
				}
				return p
			}
			var buf []Level
			for i := range tc.ops {
				if i%10_000 == 5_000 {
					n := rng.IntN(tc.max + 1)
					bids, asks := randomLevels(rng, n, tc.lo, tc.hi), randomLevels(rng, n/2, tc.lo, tc.hi)
					if err := b.Replace(bids, asks); err != nil {
						t.Fatalf("op %d: Replace: %v", i, err)
					}
					ref.replace(bids, asks)
				}
				u := Update{Type: EntryType(rng.IntN(2)), Price: price(), Size: rng.Int64N(1000), Orders: rng.Int64N(20)}
				switch r := rng.IntN(100); {
				case r < 38:
					u.Action = ActionNew
				case r < 70:
					u.Action = ActionChange
				case r < 97:
					u.Action = ActionDelete
				case r < 98:
					u.Type = EntryTrade
				case r < 99:
					u.Action = Action(3 + rng.IntN(250))
				default:
					u.Size = -1
				}
				err, want := b.Apply(u), ref.apply(u)
				if err != want {
					t.Fatalf("op %d: Apply(%+v) = %v, reference %v", i, u, err, want)
				}
				for _, side := range []Side{Bid, Ask} {
					if i%tc.every != 0 {
						if b.Depth(side) != len(ref.sides[side]) {
							t.Fatalf("op %d: after %+v: %v depth %d, reference %d", i, u, side, b.Depth(side), len(ref.sides[side]))
						}
						continue
					}
					buf = b.AppendLevels(buf[:0], side)
					if want := ref.levels(side); !slices.Equal(buf, want) {
						t.Fatalf("op %d: after %+v: %v levels\n got %v\nwant %v", i, u, side, buf, want)
					}
				}
				if b.Counters() != ref.counters {
					t.Fatalf("op %d: counters %+v, reference %+v", i, b.Counters(), ref.counters)
				}
			}
			c := b.Counters()
			t.Logf("counters %+v, final depth %d/%d", c, b.Depth(Bid), b.Depth(Ask))
			if c.Duplicates == 0 || c.ChangeMissing == 0 || c.DeleteMissing == 0 || c.Invalid == 0 {
				t.Errorf("random test did not reach every anomaly: %+v", c)
			}
			if tc.name == "shallow" && c.Full == 0 {
				t.Errorf("random test never reached MaxLevels: %+v", c)
			}
		})
	}
}
