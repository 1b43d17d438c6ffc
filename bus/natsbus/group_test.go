package natsbus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"fastfeed/feed"
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
