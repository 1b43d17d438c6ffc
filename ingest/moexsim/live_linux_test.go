package moexsim

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastfeed/ingest/moex"
	"fastfeed/internal/netns"
	"fastfeed/mcast"
	"fastfeed/replay"
)

// liveRun is one moex-sim -> ingest run over multicast in the private namespace.
type liveRun struct {
	x       *Exchange
	e       *moex.Engine
	client  *moex.ReplayClient
	trades  []byte
	capture []byte
}

// runLive runs the exchange (its config's groups, the source 10.50.129.200 mapped onto
// 127.0.0.2, the replay service on loopback) and an engine joined to every line with the
// replay client; record also captures every datagram with the project's recorder.
func runLive(t *testing.T, loss Loss, record bool) *liveRun {
	t.Helper()
	if !netns.Inside() {
		t.Fatal("not inside a private network namespace")
	}
	orig := fond(t)
	m := orig.MapAddresses(map[netip.Addr]netip.Addr{netip.MustParseAddr("10.50.129.200"): netip.MustParseAddr("127.0.0.2")})
	if err := CheckAddresses(orig, m, netns.Inside()); err != nil {
		t.Fatal(err)
	}
	out, err := NewMulticastOutput(m)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	x, err := New(Config{Market: m, Instruments: 8, Seed: 5, BLag: 1, Loss: loss, Username: "demo", Password: "demo"}, out)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := x.ServeReplay(ctx, ln); err != nil {
			t.Error(err)
		}
	}()

	lr := &liveRun{x: x, client: &moex.ReplayClient{Addr: netip.MustParseAddrPort(ln.Addr().String()),
		Username: "demo", Password: "demo", Timeout: time.Second}}
	lr.e, err = moex.NewEngine(m, moex.Options{GapWait: int64(30 * time.Millisecond), GapWindow: 4096,
		Replay: lr.client, MaxReplayGap: 50})
	if err != nil {
		t.Fatal(err)
	}
	lr.e.OnTrade = func(tr *moex.Trade) { lr.trades = moex.AppendTrade(lr.trades, tr) }
	ictx, icancel := context.WithCancel(context.Background())
	defer icancel()
	done := make(chan error, 1)
	go func() { done <- moex.RunLive(ictx, lr.e, moex.LiveConfig{ReadBuffer: 4 << 20}) }()

	var capBuf bytes.Buffer
	recDone := make(chan error, 1)
	if record {
		p, err := mcast.NewPoller(mcast.PollerConfig{ReadBuffer: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, cn := range m.Connections {
			for _, l := range cn.Lines {
				if _, err := p.JoinGroup(l.Group); err != nil {
					t.Fatal(err)
				}
			}
		}
		w, err := replay.NewWriter(&capBuf, replay.PcapNG)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := replay.Record(ictx, replay.RecordConfig{Poller: p, Writer: w})
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			recDone <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // the joins

	if err := x.Run(ctx, RunConfig{Steps: 3000, Rate: 5000, CycleEvery: 10000, Linger: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	icancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if record {
		if err := <-recDone; err != nil {
			t.Fatal(err)
		}
		lr.capture = capBuf.Bytes()
	}
	cancel()
	wg.Wait()
	if st := lr.e.Stats(); st.DecodeErrors != 0 || st.WrongSource != 0 || st.Unrouted != 0 || st.Truncated != 0 {
		t.Errorf("ingest: %+v", st)
	}
	return lr
}

// TestLiveEveryRecoveryPath: moex-sim -> ingest live in the private namespace with loss
// injected on the exchange's side: every 5th datagram of OLR, TLR and MSR lost on line A
// (filled by line B), every 37th lost on both lines (a short hole: filled by the
// historical replay service), bursts of 120 OLR datagrams lost on both lines (longer
// than the 50 asked of the replay service: the books wait for the snapshot feed; the
// bursts fall between two snapshot cycles, so the hole is given up before the next). Each
// path is counted; the books equal moex-sim's ground truth and the trades its trade
// list, in order, none twice.
func TestLiveEveryRecoveryPath(t *testing.T) {
	lr := runLive(t, Loss{EveryA: 5, EveryBoth: 37, BurstEvery: 1000, BurstFirst: 1000, BurstLen: 120}, false)
	checkSame(t, lr.x, lr.e, lr.trades)
	xs, st, ch, rs := lr.x.Stats(), lr.e.Stats(), lr.e.Channels(), lr.client.Stats()
	for _, id := range []string{"OLR", "TLR", "MSR"} {
		c := ch[id]
		if xs.LostA[id] == 0 || xs.LostBoth[id] == 0 {
			t.Errorf("%s: no loss injected: %+v", id, xs)
		}
		if c.RecoveredAB == 0 || c.RecoveredReplay == 0 || c.ReplayFailed != 0 {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if c := ch["OLR"]; c.SnapshotGaps == 0 || c.Missed == 0 || st.BooksRecovered == 0 || st.SnapshotWaits == 0 {
		t.Errorf("snapshot path not taken: OLR %+v, engine %+v", c, st)
	}
	if c := ch["TLR"]; c.Gaps != 0 {
		t.Errorf("TLR gaps %+v: a trade lost", c)
	}
	if rs.Requests == 0 || rs.Filled != rs.Requests || rs.Messages == 0 || xs.Replayed != rs.Messages {
		t.Errorf("replay client %+v, service replayed %d", rs, xs.Replayed)
	}
	t.Logf("exchange %+v", xs)
	t.Logf("OLR %+v TLR %+v; replay %+v; books recovered %d", ch["OLR"], ch["TLR"], rs, st.BooksRecovered)
}

// TestLiveCapture: a run with losses on line A and on both lines of OLR, recorded by
// the project's recorder; live ingest and the capture run through ingest's capture path
// both give moex-sim's books and trades (the capture has no replay service: its OLR
// holes are repaired by the snapshot cycles in it).
func TestLiveCapture(t *testing.T) {
	lr := runLive(t, Loss{EveryA: 6, EveryBoth: 41, Conns: []string{"OLR"}, BurstEvery: 1000, BurstFirst: 1000, BurstLen: 100}, true)
	checkSame(t, lr.x, lr.e, lr.trades)
	if len(lr.capture) == 0 {
		t.Fatal("empty capture")
	}
	e, trades := captureIngest(t, fond(t).MapAddresses(map[netip.Addr]netip.Addr{
		netip.MustParseAddr("10.50.129.200"): netip.MustParseAddr("127.0.0.2")}), lr.capture)
	checkSame(t, lr.x, e, trades)
	if c := e.Channels()["OLR"]; c.RecoveredAB == 0 || c.SnapshotGaps == 0 || e.Stats().BooksRecovered == 0 {
		t.Errorf("capture: OLR %+v engine %+v", c, e.Stats())
	}
}
