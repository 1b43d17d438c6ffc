package book

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func mustMBO(t testing.TB, cfg Config) *MBO {
	t.Helper()
	b, err := NewMBO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newOrder(id string, typ EntryType, price, size int64) OrderUpdate {
	return OrderUpdate{Action: ActionNew, Type: typ, ID: []byte(id), Price: price, Size: size}
}

// orderIDs returns the IDs of a side's orders in priority order.
func orderIDs(b *MBO, side Side) []string {
	ids := []string{}
	for _, o := range b.AppendOrders(nil, side) {
		ids = append(ids, o.ID.String())
	}
	return ids
}

func TestMBOApply(t *testing.T) {
	// Bids: a 101x10, b 101x5, c 100x7; asks: x 102x3, y 103x4.
	start := []OrderUpdate{
		newOrder("a", EntryBid, 101, 10), newOrder("b", EntryBid, 101, 5), newOrder("c", EntryBid, 100, 7),
		newOrder("x", EntryOffer, 102, 3), newOrder("y", EntryOffer, 103, 4),
	}
	startBids := []Level{lv(101, 15, 2), lv(100, 7, 1)}
	startAsks := []Level{lv(102, 3, 1), lv(103, 4, 1)}
	long := string(make([]byte, MaxIDLen+1))
	tests := []struct {
		name      string
		maxLevels int
		maxOrders int
		u         OrderUpdate
		wantErr   error
		wantBids  []Level
		wantAsks  []Level
		bidIDs    []string // priority order
		want      Counters
	}{
		{name: "new joins a level",
			u:        newOrder("d", EntryBid, 100, 1),
			wantBids: []Level{lv(101, 15, 2), lv(100, 8, 2)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c", "d"}},
		{name: "new makes a top level",
			u:        newOrder("d", EntryBid, 105, 1),
			wantBids: []Level{lv(105, 1, 1), lv(101, 15, 2), lv(100, 7, 1)}, wantAsks: startAsks,
			bidIDs: []string{"d", "a", "b", "c"}},
		{name: "new for an existing ID replaces and requeues",
			u:        newOrder("a", EntryBid, 101, 2),
			wantBids: []Level{lv(101, 7, 2), lv(100, 7, 1)}, wantAsks: startAsks,
			bidIDs: []string{"b", "a", "c"}, want: Counters{Duplicates: 1}},
		{name: "change size keeps priority",
			u:        OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("a"), Price: 101, Size: 1},
			wantBids: []Level{lv(101, 6, 2), lv(100, 7, 1)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}},
		{name: "change price moves the order",
			u:        OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("c"), Price: 101, Size: 7},
			wantBids: []Level{lv(101, 22, 3)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}},
		{name: "change price loses priority",
			u:        OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("a"), Price: 100, Size: 10},
			wantBids: []Level{lv(101, 5, 1), lv(100, 17, 2)}, wantAsks: startAsks,
			bidIDs: []string{"b", "c", "a"}},
		{name: "change side",
			u:        OrderUpdate{Action: ActionChange, Type: EntryOffer, ID: []byte("c"), Price: 103, Size: 1},
			wantBids: []Level{lv(101, 15, 2)}, wantAsks: []Level{lv(102, 3, 1), lv(103, 5, 2)},
			bidIDs: []string{"a", "b"}},
		{name: "change missing",
			u:       OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("z"), Price: 101, Size: 1},
			wantErr: ErrNoOrder, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{ChangeMissing: 1}},
		{name: "delete leaves the level",
			u:        OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: []byte("a")},
			wantBids: []Level{lv(101, 5, 1), lv(100, 7, 1)}, wantAsks: startAsks,
			bidIDs: []string{"b", "c"}},
		{name: "delete the last order of a level",
			u:        OrderUpdate{Action: ActionDelete, Type: EntryOffer, ID: []byte("x"), Price: 999, Size: 999},
			wantBids: startBids, wantAsks: []Level{lv(103, 4, 1)},
			bidIDs: []string{"a", "b", "c"}},
		{name: "delete ignores the side given",
			u:        OrderUpdate{Action: ActionDelete, Type: EntryOffer, ID: []byte("c")},
			wantBids: []Level{lv(101, 15, 2)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b"}},
		{name: "delete missing",
			u:       OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: []byte("zz")},
			wantErr: ErrNoOrder, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{DeleteMissing: 1}},
		{name: "trade is a no-op",
			u:        OrderUpdate{Action: ActionDelete, Type: EntryTrade, ID: []byte("a")},
			wantBids: startBids, wantAsks: startAsks, bidIDs: []string{"a", "b", "c"}},
		{name: "trade with empty ID is a no-op",
			u:        OrderUpdate{Action: ActionNew, Type: EntryTrade, Price: 1, Size: 1},
			wantBids: startBids, wantAsks: startAsks, bidIDs: []string{"a", "b", "c"}},
		{name: "empty ID",
			u:       newOrder("", EntryBid, 101, 1),
			wantErr: ErrBadID, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "ID too long",
			u:       newOrder(long, EntryBid, 101, 1),
			wantErr: ErrBadID, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "ID of MaxIDLen bytes",
			u:        newOrder(long[1:], EntryBid, 100, 1),
			wantBids: []Level{lv(101, 15, 2), lv(100, 8, 2)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c", long[1:]}},
		{name: "bad action",
			u:       OrderUpdate{Action: 9, Type: EntryBid, ID: []byte("a")},
			wantErr: ErrBadAction, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "negative size",
			u:       OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("a"), Price: 101, Size: -3},
			wantErr: ErrNegative, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "order table full", maxOrders: 5,
			u:       newOrder("d", EntryBid, 101, 1),
			wantErr: ErrFull, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Full: 1}},
		{name: "order table full still replaces", maxOrders: 5,
			u:        newOrder("c", EntryBid, 100, 1),
			wantBids: []Level{lv(101, 15, 2), lv(100, 1, 1)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Duplicates: 1}},
		{name: "levels full refuses a new level", maxLevels: 2,
			u:       newOrder("d", EntryBid, 99, 1),
			wantErr: ErrFull, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Full: 1}},
		{name: "levels full refuses a move to a new level", maxLevels: 2,
			u:       OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("a"), Price: 99, Size: 10},
			wantErr: ErrFull, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Full: 1}},
		{name: "levels full allows a move that frees a level", maxLevels: 2,
			u:        OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("c"), Price: 99, Size: 7},
			wantBids: []Level{lv(101, 15, 2), lv(99, 7, 1)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}},
		{name: "levels full allows joining a level", maxLevels: 2,
			u:        newOrder("d", EntryBid, 100, 1),
			wantBids: []Level{lv(101, 15, 2), lv(100, 8, 2)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c", "d"}},
		{name: "level size overflow on new",
			u:       newOrder("d", EntryBid, 101, math.MaxInt64-14),
			wantErr: ErrOverflow, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "level size at the int64 limit",
			u:        newOrder("d", EntryBid, 101, math.MaxInt64-15),
			wantBids: []Level{lv(101, math.MaxInt64, 3), lv(100, 7, 1)}, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "d", "c"}},
		{name: "level size overflow on change",
			u:       OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("a"), Price: 101, Size: math.MaxInt64 - 4},
			wantErr: ErrOverflow, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "level size overflow on move",
			u:       OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("c"), Price: 101, Size: math.MaxInt64 - 14},
			wantErr: ErrOverflow, wantBids: startBids, wantAsks: startAsks,
			bidIDs: []string{"a", "b", "c"}, want: Counters{Invalid: 1}},
		{name: "negative prices",
			u:        newOrder("d", EntryOffer, -5, 1),
			wantBids: startBids, wantAsks: []Level{lv(-5, 1, 1), lv(102, 3, 1), lv(103, 4, 1)},
			bidIDs: []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustMBO(t, Config{MaxLevels: tt.maxLevels, MaxOrders: tt.maxOrders})
			if err := b.Replace(start); err != nil {
				t.Fatal(err)
			}
			err := b.Apply(tt.u)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Apply = %v, want %v", err, tt.wantErr)
			}
			checkLevels(t, b, tt.wantBids, tt.wantAsks)
			if got := orderIDs(b, Bid); !slices.Equal(got, tt.bidIDs) {
				t.Errorf("bid orders %q, want %q", got, tt.bidIDs)
			}
			if got := b.Counters(); got != tt.want {
				t.Errorf("counters %+v, want %+v", got, tt.want)
			}
			if n := len(b.AppendOrders(nil, Bid)) + len(b.AppendOrders(nil, Ask)); n != b.Len() {
				t.Errorf("Len %d, but %d orders", b.Len(), n)
			}
		})
	}
}

func TestMBOLookupAndReplace(t *testing.T) {
	b := mustMBO(t, Config{PriceExp: -1, SizeExp: 2, MaxOrders: 3, MaxLevels: 2})
	if b.PriceExp() != -1 || b.SizeExp() != 2 {
		t.Errorf("exponents %d %d", b.PriceExp(), b.SizeExp())
	}
	id := []byte("123456")
	if err := b.Apply(OrderUpdate{Action: ActionNew, Type: EntryOffer, ID: id, Price: 7, Size: 9}); err != nil {
		t.Fatal(err)
	}
	id[0] = 'X' // the book must have copied the ID
	o, ok := b.Lookup([]byte("123456"))
	if !ok || o.ID.String() != "123456" || o.Side != Ask || o.Price != 7 || o.Size != 9 {
		t.Errorf("Lookup = %+v %v", o, ok)
	}
	if got := string(o.ID.AppendTo([]byte("id:"))); got != "id:123456" {
		t.Errorf("AppendTo = %q", got)
	}
	for _, id := range [][]byte{[]byte("X23456"), nil, make([]byte, MaxIDLen+1)} {
		if _, ok := b.Lookup(id); ok {
			t.Errorf("Lookup(%q) found an order", id)
		}
	}

	b.SetStale(true)
	b.SetRptSeq(42)
	// Too many orders: refused before anything changes.
	err := b.Replace([]OrderUpdate{newOrder("1", EntryBid, 1, 1), newOrder("2", EntryBid, 1, 1),
		newOrder("3", EntryBid, 1, 1), newOrder("4", EntryBid, 1, 1)})
	if !errors.Is(err, ErrFull) || b.Len() != 1 {
		t.Errorf("Replace of 4 orders with MaxOrders 3 = %v, Len %d", err, b.Len())
	}
	for _, bad := range [][]OrderUpdate{
		{newOrder("", EntryBid, 1, 1)},
		{newOrder("1", EntryBid, 1, -1)},
	} {
		if err := b.Replace(bad); err == nil || b.Len() != 1 {
			t.Errorf("Replace(%+v) = %v, Len %d", bad, err, b.Len())
		}
	}
	// Too many levels: found while applying; the book is left empty.
	err = b.Replace([]OrderUpdate{newOrder("1", EntryBid, 1, 1), newOrder("2", EntryBid, 2, 1), newOrder("3", EntryBid, 3, 1)})
	if !errors.Is(err, ErrFull) || b.Len() != 0 || b.Depth(Bid) != 0 || b.Depth(Ask) != 0 {
		t.Errorf("Replace of 3 bid levels with MaxLevels 2 = %v, Len %d", err, b.Len())
	}
	// Trades are skipped and do not count against MaxOrders; duplicates keep the last.
	err = b.Replace([]OrderUpdate{newOrder("1", EntryBid, 1, 1), newOrder("t", EntryTrade, 2, 1),
		newOrder("2", EntryOffer, 2, 1), newOrder("1", EntryBid, 1, 5)})
	if err != nil {
		t.Fatal(err)
	}
	checkLevels(t, b, []Level{lv(1, 5, 1)}, []Level{lv(2, 1, 1)})
	if !b.Stale() || b.RptSeq() != 42 {
		t.Errorf("Replace changed caller state: stale %v rptseq %d", b.Stale(), b.RptSeq())
	}
	if got, want := b.Counters(), (Counters{Full: 2, Invalid: 2, Duplicates: 1}); got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	b.ResetCounters()
	if b.Counters() != (Counters{}) {
		t.Error("ResetCounters did not reset")
	}
	b.Clear()
	if b.Len() != 0 || b.Depth(Bid) != 0 || len(b.AppendOrders(nil, Ask)) != 0 {
		t.Error("Clear left orders")
	}
	if _, ok := b.Lookup([]byte("1")); ok {
		t.Error("Lookup found an order after Clear")
	}
	if got := b.AppendOrders(nil, Side(3)); got != nil {
		t.Errorf("AppendOrders(invalid side) = %v", got)
	}
	if got := b.AppendLevels(nil, Side(3)); got != nil || b.Depth(Side(3)) != 0 {
		t.Errorf("AppendLevels(invalid side) = %v", got)
	}
}

// refMBO is the reference model: maps of orders and of levels.
type refOrder struct {
	side        Side
	price, size int64
	seq         uint64
}

type refAgg struct{ size, orders int64 }

type refMBO struct {
	orders               map[string]refOrder
	levels               [2]map[int64]refAgg
	maxOrders, maxLevels int
	seq                  uint64
	counters             Counters
}

func newRefMBO(maxOrders, maxLevels int) *refMBO {
	r := &refMBO{maxOrders: maxOrders, maxLevels: maxLevels}
	r.clear()
	return r
}

func (r *refMBO) clear() {
	r.orders = map[string]refOrder{}
	r.levels = [2]map[int64]refAgg{{}, {}}
}

func (r *refMBO) addLevel(side Side, price, size int64) error {
	a, ok := r.levels[side][price]
	switch {
	case ok && a.size > math.MaxInt64-size:
		return ErrOverflow
	case !ok && len(r.levels[side]) >= r.maxLevels:
		return ErrFull
	}
	r.levels[side][price] = refAgg{a.size + size, a.orders + 1}
	return nil
}

func (r *refMBO) removeLevel(side Side, price, size int64) {
	a := r.levels[side][price]
	if a.orders == 1 {
		delete(r.levels[side], price)
		return
	}
	r.levels[side][price] = refAgg{a.size - size, a.orders - 1}
}

func (r *refMBO) fail(err error) error {
	if err == ErrFull {
		r.counters.Full++
	} else {
		r.counters.Invalid++
	}
	return err
}

func (r *refMBO) apply(u OrderUpdate) error {
	if u.Type != EntryBid && u.Type != EntryOffer {
		return nil
	}
	side := Side(u.Type)
	if len(u.ID) == 0 || len(u.ID) > MaxIDLen {
		return r.fail(ErrBadID)
	}
	id := string(u.ID)
	o, exists := r.orders[id]
	switch u.Action {
	case ActionNew, ActionChange:
		if u.Size < 0 {
			return r.fail(ErrNegative)
		}
		if !exists {
			if u.Action == ActionChange {
				r.counters.ChangeMissing++
				return ErrNoOrder
			}
			if len(r.orders) >= r.maxOrders {
				return r.fail(ErrFull)
			}
			if err := r.addLevel(side, u.Price, u.Size); err != nil {
				return r.fail(err)
			}
			r.seq++
			r.orders[id] = refOrder{side, u.Price, u.Size, r.seq}
			return nil
		}
		requeue := u.Action == ActionNew
		if requeue {
			r.counters.Duplicates++
		}
		if o.side == side && o.price == u.Price {
			if a := r.levels[side][u.Price]; a.size-o.size > math.MaxInt64-u.Size {
				return r.fail(ErrOverflow)
			}
			r.levels[side][u.Price] = refAgg{r.levels[side][u.Price].size - o.size + u.Size, r.levels[side][u.Price].orders}
		} else {
			r.removeLevel(o.side, o.price, o.size)
			if err := r.addLevel(side, u.Price, u.Size); err != nil {
				r.addLevel(o.side, o.price, o.size)
				return r.fail(err)
			}
			requeue = true
		}
		if requeue {
			r.seq++
			o.seq = r.seq
		}
		o.side, o.price, o.size = side, u.Price, u.Size
		r.orders[id] = o
	case ActionDelete:
		if !exists {
			r.counters.DeleteMissing++
			return ErrNoOrder
		}
		r.removeLevel(o.side, o.price, o.size)
		delete(r.orders, id)
	default:
		return r.fail(ErrBadAction)
	}
	return nil
}

func (r *refMBO) levelsOf(side Side) []Level {
	out := []Level{}
	for p, a := range r.levels[side] {
		out = append(out, lv(p, a.size, a.orders))
	}
	sortLevels(out, side)
	return out
}

func sortLevels(l []Level, side Side) {
	slices.SortFunc(l, func(a, b Level) int {
		if side == Bid {
			return cmp.Compare(b.Price, a.Price)
		}
		return cmp.Compare(a.Price, b.Price)
	})
}

// aggregate computes a side's levels from the orders alone.
func (r *refMBO) aggregate(side Side) []Level {
	m := map[int64]Level{}
	for _, o := range r.orders {
		if o.side == side {
			l := m[o.price]
			m[o.price] = lv(o.price, l.Size+o.size, l.Orders+1)
		}
	}
	out := []Level{}
	for _, l := range m {
		out = append(out, l)
	}
	sortLevels(out, side)
	return out
}

func (r *refMBO) ordersOf(side Side) []Order {
	out := []Order{}
	for id, o := range r.orders {
		if o.side == side {
			var oid OrderID
			oid.n = uint8(copy(oid.b[:], id))
			out = append(out, Order{ID: oid, Side: side, Price: o.price, Size: o.size, Priority: o.seq})
		}
	}
	if side == Bid {
		slices.SortFunc(out, cmpBidOrders)
	} else {
		slices.SortFunc(out, cmpAskOrders)
	}
	return out
}

func randomIDs(rng *rand.Rand, n int) [][]byte {
	seen := map[string]bool{}
	var ids [][]byte
	for len(ids) < n {
		var id []byte
		if rng.IntN(2) == 0 {
			id = strconv.AppendUint(nil, rng.Uint64N(1e6), 10)
		} else {
			id = make([]byte, 1+rng.IntN(MaxIDLen))
			for i := range id {
				id[i] = byte(rng.IntN(256))
			}
		}
		if !seen[string(id)] {
			seen[string(id)] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// TestMBOMatchesReference applies 100k random updates to a book and to the
// reference model and compares errors, counters, order count and levels after
// each, and the orders, lookups and from-scratch aggregation regularly.
func TestMBOMatchesReference(t *testing.T) {
	const ops, maxOrders, maxLevels = 100_000, 1000, 60
	rng := rand.New(rand.NewPCG(7, 11))
	b := mustMBO(t, Config{PriceExp: -2, MaxOrders: maxOrders, MaxLevels: maxLevels})
	ref := newRefMBO(maxOrders, maxLevels)
	ids := randomIDs(rng, 3000)
	var levels []Level
	var orders []Order
	peak := 0
	for i := range ops {
		if i%10_000 == 9_999 {
			var snap []OrderUpdate
			for range rng.IntN(maxOrders) {
				snap = append(snap, newOrder(string(ids[rng.IntN(len(ids))]), EntryType(rng.IntN(3)), rng.Int64N(50), 1+rng.Int64N(100)))
			}
			if err := b.Replace(snap); err != nil {
				// Too many levels is possible; the book is then empty.
				if !errors.Is(err, ErrFull) {
					t.Fatalf("op %d: Replace: %v", i, err)
				}
				ref.counters.Full++
				snap = nil
			}
			ref.clear()
			for _, u := range snap {
				ref.apply(u)
			}
		}
		u := OrderUpdate{
			Type:  EntryType(rng.IntN(2)),
			ID:    ids[rng.IntN(len(ids))],
			Price: rng.Int64N(101) - 50,
			Size:  rng.Int64N(1000),
		}
		switch r := rng.IntN(1000); {
		case r < 400:
			u.Action = ActionNew
		case r < 650:
			u.Action = ActionChange
		case r < 960:
			u.Action = ActionDelete
		case r < 970:
			u.Type = EntryTrade
		case r < 975:
			u.Action = Action(3 + rng.IntN(250))
		case r < 980:
			u.Size = -1 - rng.Int64N(5)
		case r < 985:
			u.ID = make([]byte, rng.IntN(2)*(MaxIDLen+1))
		default:
			u.Action = Action(rng.IntN(2))
			u.Size = math.MaxInt64/2 - rng.Int64N(1000) // overflows on the second or third
		}
		peak = max(peak, b.Len())
		err, want := b.Apply(u), ref.apply(u)
		if err != want {
			t.Fatalf("op %d: Apply(%+v) = %v, reference %v", i, u, err, want)
		}
		if b.Counters() != ref.counters {
			t.Fatalf("op %d: after %+v: counters %+v, reference %+v", i, u, b.Counters(), ref.counters)
		}
		if b.Len() != len(ref.orders) {
			t.Fatalf("op %d: after %+v: Len %d, reference %d", i, u, b.Len(), len(ref.orders))
		}
		for _, side := range []Side{Bid, Ask} {
			levels = b.AppendLevels(levels[:0], side)
			if want := ref.levelsOf(side); !slices.Equal(levels, want) {
				t.Fatalf("op %d: after %+v: %v levels\n got %v\nwant %v", i, u, side, levels, want)
			}
		}
		if i%1000 == 0 || i == ops-1 {
			for _, side := range []Side{Bid, Ask} {
				levels = b.AppendLevels(levels[:0], side)
				if want := ref.aggregate(side); !slices.Equal(levels, want) {
					t.Fatalf("op %d: %v levels\n got %v\ndiffer from the orders' aggregate\nwant %v", i, side, levels, want)
				}
				orders = b.AppendOrders(orders[:0], side)
				if want := ref.ordersOf(side); !slices.Equal(orders, want) {
					t.Fatalf("op %d: %v orders\n got %v\nwant %v", i, side, orders, want)
				}
			}
			for id, o := range ref.orders {
				got, ok := b.Lookup([]byte(id))
				if !ok || got.Price != o.price || got.Size != o.size || got.Side != o.side || got.Priority != o.seq {
					t.Fatalf("op %d: Lookup(%q) = %+v %v, reference %+v", i, id, got, ok, o)
				}
			}
		}
	}
	c := b.Counters()
	t.Logf("counters %+v, peak orders %d, final orders %d, depth %d/%d", c, peak, b.Len(), b.Depth(Bid), b.Depth(Ask))
	if peak != maxOrders {
		t.Errorf("random test never filled the order table: peak %d of %d", peak, maxOrders)
	}
	if c.Duplicates == 0 || c.ChangeMissing == 0 || c.DeleteMissing == 0 || c.Invalid == 0 || c.Full == 0 {
		t.Errorf("random test did not reach every anomaly: %+v", c)
	}
}

// TestMBOIndexCollisions packs IDs whose hashes share the last positions of a
// 16-entry index, so that probe runs wrap around its end, and deletes them in
// random orders: every remaining order must stay reachable.
func TestMBOIndexCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		b := mustMBO(t, Config{})
		if len(b.index) != minIndex {
			t.Fatalf("index of %d entries, want %d", len(b.index), minIndex)
		}
		// IDs whose home position is 13, 14, 15 or 0.
		var ids []string
		for n := 0; len(ids) < 8; n++ {
			id := strconv.Itoa(trial*100000 + n)
			if h := b.hash([]byte(id)) & (minIndex - 1); h >= 13 || h == 0 {
				ids = append(ids, id)
			}
		}
		live := map[string]bool{}
		for _, id := range ids {
			if err := b.Apply(newOrder(id, EntryBid, int64(len(id)), 1)); err != nil {
				t.Fatal(err)
			}
			live[id] = true
		}
		if len(b.index) != minIndex {
			t.Fatalf("index grew to %d with %d orders", len(b.index), b.Len())
		}
		for _, i := range rng.Perm(len(ids)) {
			if err := b.Apply(OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: []byte(ids[i])}); err != nil {
				t.Fatalf("trial %d: delete %s: %v", trial, ids[i], err)
			}
			delete(live, ids[i])
			for _, id := range ids {
				if _, ok := b.Lookup([]byte(id)); ok != live[id] {
					t.Fatalf("trial %d: after deleting %s: Lookup(%s) = %v, want %v", trial, ids[i], id, ok, live[id])
				}
			}
			checkIndex(t, b)
		}
	}
}

// checkIndex checks the index invariant: every entry is reachable from its
// home position without crossing an empty entry, and refers to a live order.
func checkIndex(t *testing.T, b *MBO) {
	t.Helper()
	mask := len(b.index) - 1
	n := 0
	for i, e := range b.index {
		if e.slot == 0 {
			continue
		}
		n++
		if b.orders[e.slot-1].n == 0 {
			t.Fatalf("index entry %d refers to a free slot", i)
		}
		for k := int(e.tag) & mask; k != i; k = (k + 1) & mask {
			if b.index[k].slot == 0 {
				t.Fatalf("index entry %d unreachable from its home %d: empty at %d", i, int(e.tag)&mask, k)
			}
		}
	}
	if n != b.Len() {
		t.Fatalf("index holds %d entries for %d orders", n, b.Len())
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[fmtStringer]string{
		Bid: "bid", Ask: "ask", Side(7): "Side(7)",
		ActionNew: "new", ActionChange: "change", ActionDelete: "delete", Action(9): "Action(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

type fmtStringer interface{ String() string }
