package book

import "testing"

// TestUpdatesDoNotAllocate checks the hot path allocates nothing once a book
// has grown to its working size, rejected updates included.
func TestUpdatesDoNotAllocate(t *testing.T) {
	mbp := mustMBP(t, Config{PriceExp: -2, MaxLevels: 30})
	for i := range int64(30) {
		mbp.Apply(Update{Action: ActionNew, Type: EntryBid, Price: 1000 - i, Size: 1})
		mbp.Apply(Update{Action: ActionNew, Type: EntryOffer, Price: 1001 + i, Size: 1})
	}
	mbp.Apply(Update{Action: ActionDelete, Type: EntryBid, Price: 995})
	levels := make([]Level, 0, 64)
	mbo := mustMBO(t, Config{PriceExp: -2})
	mbo.Apply(newOrder("warm", EntryBid, 999, 1))
	mbo.Apply(OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: []byte("warm")})
	mbo.Apply(newOrder("1", EntryBid, 1000, 1))
	id := []byte("2")
	long := make([]byte, MaxIDLen+1)
	buf := make([]byte, 0, 64)
	for name, f := range map[string]func(){
		"mbp change": func() { mbp.Apply(Update{Action: ActionChange, Type: EntryBid, Price: 1000, Size: 7}) },
		"mbp new+delete": func() {
			mbp.Apply(Update{Action: ActionNew, Type: EntryBid, Price: 995})
			mbp.Apply(Update{Action: ActionDelete, Type: EntryBid, Price: 995})
		},
		"mbp change missing": func() { mbp.Apply(Update{Action: ActionChange, Type: EntryBid, Price: 1, Size: 7}) },
		"mbp full":           func() { mbp.Apply(Update{Action: ActionNew, Type: EntryOffer, Price: 1, Size: 7}) },
		"mbp bad action":     func() { mbp.Apply(Update{Action: 9, Type: EntryOffer}) },
		"mbp levels":         func() { levels = mbp.AppendLevels(levels[:0], Ask) },
		"mbo new+delete": func() {
			mbo.Apply(newOrder("2", EntryBid, 999, 1))
			mbo.Apply(OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: id})
		},
		"mbo change": func() {
			mbo.Apply(OrderUpdate{Action: ActionChange, Type: EntryBid, ID: []byte("1"), Price: 1000, Size: 3})
		},
		"mbo missing":    func() { mbo.Apply(OrderUpdate{Action: ActionDelete, Type: EntryBid, ID: id}) },
		"mbo bad id":     func() { mbo.Apply(OrderUpdate{Action: ActionNew, Type: EntryBid, ID: long}) },
		"mbo levels":     func() { levels = mbo.AppendLevels(levels[:0], Bid) },
		"format decimal": func() { buf = FormatDecimal(buf[:0], -9223372036854775808, -7) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}
