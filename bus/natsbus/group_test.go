package natsbus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/md"
)

// TestGroup: consumers sharing one connection in a Group, with different patterns, one
// started while the data flows and one stopped midway; every remaining member's books,
// rebuilt from what the group handed it, equal the ground truth for its patterns, and the
// connection holds one subscription per distinct filter.
func TestGroup(t *testing.T) {
	c := startChain(t, chainConfig{instruments: 8, rate: 1000, count: 3000})
	nc, err := ConnConfig{URL: c.url}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	g, err := NewGroup(nc, 0, logger())
	if err != nil {
		t.Fatal(err)
	}
	g.Start(c.ctx)
	t.Cleanup(g.Stop)
	all := make([]*Consumer, 6)
	for i := range all {
		all[i] = c.consumer(t, ConsumerConfig{Group: g}, ConnConfig{})
	}
	sber := c.consumer(t, ConsumerConfig{Group: g, Patterns: []feed.Pattern{"SBER"}}, ConnConfig{})
	gs := c.consumer(t, ConsumerConfig{Group: g, Patterns: []feed.Pattern{"G*"}}, ConnConfig{}) // a prefix: md.> and filter
	c.publish()
	time.Sleep(800 * time.Millisecond)
	late := c.consumer(t, ConsumerConfig{Group: g}, ConnConfig{})
	all[5].Stop()
	stopped := all[5].Stats().Entries
	c.waitData(t)
	truth := c.truth(t, nil)
	for i, cons := range append(append([]*Consumer(nil), all[:5]...), late) {
		waitBooks(t, fmt.Sprintf("member %d", i), cons, truth)
	}
	waitBooks(t, "SBER", sber, c.truth(t, func(s string) bool { return s == "SBER" }))
	waitBooks(t, "G*", gs, c.truth(t, func(s string) bool { return strings.HasPrefix(s, "G") }))
	if n := all[5].Stats().Entries; n != stopped {
		t.Errorf("a stopped member applied %d entries after Stop", n-stopped)
	}
	if err := all[5].Do(context.Background(), func() {}); err == nil {
		t.Error("Do on a stopped member: no error")
	}
	st := g.Stats()
	// md.>, snap.>, status.> for "*" and "G*"; md.*.SBER, snap.*.SBER, status.*.SBER.
	if st.Members != 8 || st.Subscriptions != 6 || st.Messages == 0 || st.SlowConsumer != 0 {
		t.Errorf("group %+v", st)
	}
	if ls := late.Stats(); ls.LVCReads == 0 || ls.Gaps != 0 && ls.Resyncs == 0 {
		t.Errorf("late member %+v", ls)
	}
	for _, cons := range all[:5] {
		if s := cons.Stats(); s.Gaps != 0 || s.ParseErrors != 0 || s.BookErrors != 0 || s.Synchronised != 8 {
			t.Errorf("member %+v", s)
		}
	}
	g.Stop()
	if err := late.Do(context.Background(), func() {}); err == nil {
		t.Error("Do on a member of a stopped group: no error")
	}
}

// TestGroupSlots: a group numbers the symbols it sees so that its members find their
// instruments by index; members with different patterns, over more symbols than the
// group numbers (the rest found by name), each get every message of their symbols
// applied to that symbol's own book, and no member's index outgrows the bound.
func TestGroupSlots(t *testing.T) {
	g, err := NewGroup(&nats.Conn{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = maxGroupSlots + 40
	sym := func(i int) string { return fmt.Sprintf("S%04d", i) }
	all, _ := NewConsumer(ConsumerConfig{Group: g})
	late, _ := NewConsumer(ConsumerConfig{Group: g, Patterns: []feed.Pattern{feed.Pattern(sym(n - 1)), feed.Pattern(sym(3))}})
	few, _ := NewConsumer(ConsumerConfig{Group: g, Patterns: []feed.Pattern{"S000*"}})
	members := []*Consumer{all, late, few}
	for round := range 2 {
		for i := range n {
			s := sym(i)
			if round == 0 {
				w := md.Snapshot{Symbol: []byte(s), RptSeq: 0}
				g.dispatch(members, &nats.Msg{Subject: "snap.G1." + s, Data: AppendW(nil, &w, -2, 0, 1)})
				continue
			}
			e := []md.Entry{{Action: md.New, Type: md.Bid, RptSeq: 1, Price: md.Dec(int64(100+i), -2), Size: md.Dec(int64(1+i), 0), Orders: 1}}
			g.dispatch(members, &nats.Msg{Subject: "md.G1." + s, Data: AppendX(nil, s, e, time.Now().UnixNano())})
		}
	}
	for name, tc := range map[string]struct {
		c    *Consumer
		want func(i int) bool
	}{
		"*":     {all, func(int) bool { return true }},
		"late":  {late, func(i int) bool { return i == n-1 || i == 3 }},
		"S000*": {few, func(i int) bool { return i < 10 }},
	} {
		c := tc.c
		if len(c.bySlot) > maxGroupSlots {
			t.Errorf("%s: index of %d instruments", name, len(c.bySlot))
		}
		for i := range n {
			in := c.insts[sym(i)]
			if !tc.want(i) {
				if in != nil {
					t.Errorf("%s: has %s", name, sym(i))
				}
				continue
			}
			if in == nil {
				t.Errorf("%s: no %s", name, sym(i))
				continue
			}
			lv := in.book.AppendLevels(nil, book.Side(0))
			if len(lv) != 1 || lv[0].Price != int64(100+i) || lv[0].Size != int64(1+i) || in.rptSeq != 1 {
				t.Errorf("%s: %s book %+v, RptSeq %d", name, sym(i), lv, in.rptSeq)
			}
		}
		if st := c.Stats(); st.Gaps != 0 || st.BookErrors != 0 || st.ParseErrors != 0 {
			t.Errorf("%s: %+v", name, st)
		}
	}
}
