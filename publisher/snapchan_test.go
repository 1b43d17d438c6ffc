package publisher

import (
	"fmt"
	"testing"
	"time"

	"net/netip"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// TestSnapshotChannelsCycle runs the loop with snapshot channels and checks every W:
// on its channel's snapshot channel (same group, port + offset), numbered 1, 2, 3, ...
// per snapshot channel, each cycle covering every instrument, and equal to the book
// rebuilt from the channel's incrementals up to its LastMsgSeqNumProcessed, with that
// book's RptSeq.
func TestSnapshotChannelsCycle(t *testing.T) {
	ins := generate(t, 30)
	p := newPublisher(t, Config{
		Instruments: ins, Mapping: mustMapping(t, "239.192.0.1", 8),
		Rate: 20000, Count: 4000, Seed: 3, Heartbeat: 20 * time.Millisecond,
		SnapshotChannels: true, SnapshotRate: 5000, SnapshotPortOffset: 7,
	})
	got := runCaptured(t, p)
	c := newCodec(t)
	snapOf := map[netip.AddrPort]string{}
	chanOf := map[netip.AddrPort]string{}
	for _, info := range p.Channels() {
		if info.Definitions {
			continue
		}
		a, ok := p.SnapshotChannelOf(info.Name)
		want, _ := mcast.SnapshotChannel(info.Group, 7)
		if !ok || a != want || a.Port() != info.Group.Port()+7 || a.Addr() != info.Group.Addr() {
			t.Fatalf("snapshot channel of %s: %v %v, want %v", info.Name, a, ok, want)
		}
		snapOf[a] = info.Name
		chanOf[info.Group] = info.Name
	}
	exps := map[string][2]int8{}
	for _, in := range ins {
		exps[in.Symbol] = [2]int8{in.PriceExp, in.SizeExp}
	}
	books := map[string]*book.MBP{}
	rpt := map[string]uint32{}
	last := map[string]uint32{}    // channel -> last incremental seq
	snapSeq := map[string]uint32{} // channel -> last snapshot seq
	var cycle []string
	cycles, ws := 0, 0
	for _, d := range got {
		seq, kind, err := DecodeDatagram(c, d.data)
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := chanOf[d.addr]; ok {
			if kind == md.KindIncremental || kind == md.KindStatus {
				last[name] = seq
			}
			if kind != md.KindIncremental {
				continue
			}
			for _, e := range c.Incremental.Entries {
				sym := string(e.Symbol)
				rpt[sym] = e.RptSeq
				if !mdbook.Changes(e.Type) {
					continue
				}
				b := books[sym]
				if b == nil {
					b, _ = book.NewMBP(book.Config{PriceExp: int(exps[sym][0]), SizeExp: int(exps[sym][1])})
					books[sym] = b
				}
				u, err := toUpdate(&e, exps[sym][0], exps[sym][1])
				if err == nil {
					err = b.Apply(u)
				}
				if err != nil {
					t.Fatalf("%s: %v", sym, err)
				}
			}
			continue
		}
		name, ok := snapOf[d.addr]
		if !ok {
			continue // the definitions channel
		}
		ws++
		s := &c.Snapshot
		if kind != md.KindSnapshot || seq != snapSeq[name]+1 || s.SeqNum != seq {
			t.Fatalf("W %d on %s: %v seq %d (header %d), want seq %d", ws, name, kind, seq, s.SeqNum, snapSeq[name]+1)
		}
		snapSeq[name] = seq
		sym := string(s.Symbol)
		if ch, _ := p.ChannelOf(sym); ch != name {
			t.Fatalf("W of %s on the snapshot channel of %s, not of %s", sym, name, ch)
		}
		if s.LastMsgSeqNumProcessed != last[name] || s.RptSeq != rpt[sym] {
			t.Fatalf("W %d of %s: 369=%d RptSeq %d, want %d and %d", ws, sym, s.LastMsgSeqNumProcessed, s.RptSeq, last[name], rpt[sym])
		}
		var want []md.Entry
		if b := books[sym]; b != nil {
			want, _ = mdbook.Entries(nil, b, nil)
		}
		if g, w := entriesString(s.Entries), entriesString(want); g != w {
			t.Fatalf("W %d of %s at %d:\n got %s\nwant %s", ws, sym, s.LastMsgSeqNumProcessed, g, w)
		}
		cycle = append(cycle, sym)
		if len(cycle) == len(ins) {
			seen := map[string]bool{}
			for _, s := range cycle {
				seen[s] = true
			}
			if len(seen) != len(ins) {
				t.Fatalf("cycle %d covers %d instruments of %d", cycles, len(seen), len(ins))
			}
			cycle, cycles = cycle[:0], cycles+1
		}
	}
	st := p.Stats()
	if cycles < 2 || st.SnapshotDatagrams != uint64(ws) || st.SnapshotCycles != uint64(cycles) || st.SnapshotOversize != 0 {
		t.Fatalf("%d W in %d full cycles; stats %+v", ws, cycles, st)
	}
}

func entriesString(es []md.Entry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("[%v %v %v %d]", e.Type, e.Price, e.Size, e.Orders)
	}
	return s
}

// TestSnapshotPacing checks the pacing count on a clock set by hand: W due at the rate
// since the start, none more once sent, and the wake time of the next.
func TestSnapshotPacing(t *testing.T) {
	p := newPublisher(t, Config{Instruments: generate(t, 7), SnapshotChannels: true, SnapshotRate: 1000})
	w := &captureWriter{}
	p.w = w
	p.snap.start = time.Second
	for _, step := range []struct {
		now  time.Duration
		want int64
	}{{time.Second, 0}, {time.Second + 10*time.Millisecond, 10}, {time.Second + 10*time.Millisecond, 0}, {time.Second + 35*time.Millisecond, 25}} {
		p.now = step.now
		due := p.snapshotsDue()
		if due != step.want {
			t.Fatalf("at %v: %d due, want %d", step.now, due, step.want)
		}
		p.snapshots(int(due))
		if p.snapshotsDue() != 0 {
			t.Fatalf("at %v: still due after sending", step.now)
		}
		if wake := p.snapshotWake(); wake <= p.now || wake > p.now+time.Millisecond {
			t.Fatalf("at %v: next W at %v", step.now, wake)
		}
	}
	p.send()
	if got := len(w.datagrams()); got != 35 || p.snap.cursor != 35%7 || p.st.SnapshotCycles != 5 {
		t.Fatalf("%d datagrams, cursor %d, %d cycles; want 35, 0, 5", got, p.snap.cursor, p.st.SnapshotCycles)
	}
}

// TestSnapshotChannelConfig checks the address rule's errors.
func TestSnapshotChannelConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"port overflow": {Instruments: generate(t, 3), Port: 65000, SnapshotChannels: true},
		"clash with B":  {Instruments: generate(t, 3), Port: 30001, B: BLine{Port: 31001}, SnapshotChannels: true},
		"too deep":      {Instruments: generate(t, 3), MaxDepth: 200, MinDepth: 5, PayloadLimit: MinPayloadLimit, SnapshotChannels: true},
		"bad rate":      {Instruments: generate(t, 3), SnapshotChannels: true, SnapshotRate: -1},
	} {
		cfg.Templates = loadTemplates(t)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
