package feed

import (
	"encoding/binary"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/gap"
	"fastfeed/mcast"
	"fastfeed/md"
)

// snapChannelDriver hands an engine the script's datagrams and W datagrams of the
// snapshot channels, as a publisher with --snapshot-channels would send them.
type snapChannelDriver struct {
	t       *testing.T
	s       *script
	e       *Engine
	now     int64
	snapSeq map[string]uint32
}

func (d *snapChannelDriver) hand(sym string, seq uint32) {
	d.t.Helper()
	ch := mcast.ChannelName(channelOf(sym))
	if !d.e.Receive(channelOf(sym), d.s.sent[ch][seq], d.now) {
		d.t.Fatalf("Receive refused %s's channel", sym)
	}
	d.work(time.Microsecond)
}

func (d *snapChannelDriver) work(dt time.Duration) {
	d.now += int64(dt)
	d.e.DoWork(d.now)
}

// sendW multicasts symbol's ground-truth W (valid at its channel's last number) on the
// snapshot channel and reports whether the engine had joined it.
func (d *snapChannelDriver) sendW(sym string) bool {
	d.t.Helper()
	snap := d.s.snapshot(sym)
	addr, err := mcast.SnapshotChannel(channelOf(sym), mcast.DefaultSnapshotPortOffset)
	if err != nil {
		d.t.Fatal(err)
	}
	d.snapSeq[sym]++
	snap.SeqNum = d.snapSeq[sym]
	b, err := d.s.codec.AppendSnapshot(binary.LittleEndian.AppendUint32(nil, snap.SeqNum), &snap)
	if err != nil {
		d.t.Fatal(err)
	}
	ok := d.e.Receive(addr, b, d.now)
	d.work(time.Microsecond)
	return ok
}

func (d *snapChannelDriver) updates(syms []string, n int, deliver bool) {
	for i := range n {
		for j, sym := range syms {
			seq := d.s.update(sym, md.New, md.Bid, int64(10000+j*1000+len(d.s.sent[mcast.ChannelName(channelOf(sym))])+i), 10)
			if deliver {
				d.hand(sym, seq)
			}
		}
	}
}

// TestSnapshotChannelLateJoin: a handler that joins late takes its books from the
// snapshot channels, with no snapshot request to the recovery service, applies what it
// held after each W's LastMsgSeqNumProcessed, leaves the snapshot channels, and its
// books equal the ground truth.
func TestSnapshotChannelLateJoin(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER", "GAZP"}
	rec := &fakeRecovery{s: s}
	e, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, Recovery: rec, SnapshotChannels: true})
	if err != nil {
		t.Fatal(err)
	}
	d := &snapChannelDriver{t: t, s: s, e: e, now: 1e9, snapSeq: map[string]uint32{}}
	d.updates(syms, 50, false) // before the handler started
	if d.sendW("SBER") {
		t.Fatal("the engine took a snapshot channel datagram before joining it")
	}
	d.updates(syms, 10, true) // the late join: held, books unknown
	d.work(time.Millisecond)
	if st := e.Stats(); st.SnapshotChannelJoins != 2 {
		t.Fatalf("%d snapshot channel joins, want 2; stats %+v", st.SnapshotChannelJoins, st)
	}
	if !d.sendW("SBER") {
		t.Fatal("snapshot channel not joined")
	}
	d.updates(syms, 10, true)
	if !d.sendW("GAZP") {
		t.Fatal("snapshot channel not joined")
	}
	d.updates(syms, 10, true)
	if d.sendW("SBER") {
		t.Error("the snapshot channel was not left")
	}
	d.work(time.Millisecond)
	if diff := book.DiffDumps(e.Dump(), s.truthDump(syms...)); diff != "" {
		t.Fatalf("books:\n%s", diff)
	}
	st := e.Stats()
	rec.mu.Lock()
	requests := rec.snapRequests
	rec.mu.Unlock()
	if requests != 0 || st.Snapshots != 0 || st.SnapshotsDone != 2 || st.SnapshotChannelW != 2 || st.SnapshotChannelLeaves != 2 || st.StaleBooks != 0 {
		t.Fatalf("%d TCP snapshot requests; stats %+v", requests, st)
	}
	for _, c := range e.Channels() {
		if c.State != gap.Live.String() {
			t.Errorf("channel %s %s", c.Channel, c.State)
		}
	}
}

// TestSnapshotChannelLargeLoss: a hole of more than SnapshotAfter datagrams goes to the
// snapshot channel; a smaller one to a FIX retransmission.
func TestSnapshotChannelLargeLoss(t *testing.T) {
	s := newScript(t)
	syms := []string{"SBER"}
	rec := &fakeRecovery{s: s}
	e, err := NewEngine(Config{Topics: syms, Templates: templates(t), Port: port, Recovery: rec,
		SnapshotChannels: true, SnapshotAfter: 5})
	if err != nil {
		t.Fatal(err)
	}
	d := &snapChannelDriver{t: t, s: s, e: e, now: 1e9, snapSeq: map[string]uint32{}}
	d.updates(syms, 10, true)
	d.updates(syms, 3, false) // a small hole: FIX
	d.updates(syms, 5, true)
	for i := 0; e.Stats().RecoveredFIX < 3; i++ {
		if i > 2000 {
			t.Fatal("the retransmission did not end")
		}
		time.Sleep(time.Millisecond / 2)
		d.work(time.Millisecond)
	}
	d.updates(syms, 20, false) // a large hole: the snapshot channel
	d.updates(syms, 5, true)
	d.work(10 * time.Millisecond)
	d.work(time.Millisecond)
	if st := e.Stats(); st.SnapshotChannelJoins != 1 || st.Retransmits != 1 {
		t.Fatalf("after the large hole: stats %+v", st)
	}
	d.updates(syms, 3, true)
	if !d.sendW("SBER") {
		t.Fatal("snapshot channel not joined")
	}
	d.updates(syms, 3, true)
	d.work(time.Millisecond)
	if diff := book.DiffDumps(e.Dump(), s.truthDump(syms...)); diff != "" {
		t.Fatalf("books:\n%s", diff)
	}
	st := e.Stats()
	rec.mu.Lock()
	retx, snaps := len(rec.retransmits), rec.snapRequests
	rec.mu.Unlock()
	if retx != 1 || snaps != 0 || st.SnapshotChannelLeaves != 1 || st.SnapshotsDone != 1 || st.RecoveredFIX != 3 || st.Skipped != 28 { // 20 lost, 8 held behind them: the W is valid after all
		t.Fatalf("%d retransmissions, %d TCP snapshot requests; stats %+v", retx, snaps, st)
	}
}
