package moexsim

import (
	"bytes"
	"context"
	"io"
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
	watch   *watchedReplay
	trades  []byte
	capture []byte
}

// liveOpts shape a run: the exchange's loss, whether to record it, a slow (ReplayDelay)
// or silent (accepts, never answers) replay service, the client's timeout, new days.
type liveOpts struct {
	Loss          Loss
	Record        bool
	ReplayDelay   time.Duration
	Silent        bool
	ClientTimeout time.Duration // default 1s
	Steps         int           // default 3000
	Linger        time.Duration // default 400ms
	NewDayAfter   int
	TLSTrades     int // moex-sim's Config.TLSTrades
}

// waited is what the engine did while one replay request was out.
type waited struct {
	Conn      string
	Beg, End  uint32
	Err       error
	Took      time.Duration
	Datagrams uint64 // received
	Applied   uint64 // order, trade and statistic entries applied
}

// watchedReplay wraps the replay client: around each request it reads the engine's
// counters through Do (served by the run loop between batches), so a request that
// stalled the receive loop would show no datagram received while it was out.
type watchedReplay struct {
	r     moex.Replayer
	e     *moex.Engine
	mu    sync.Mutex
	waits []waited
}

func (w *watchedReplay) stats(ctx context.Context) (moex.Stats, bool) {
	c := make(chan moex.Stats, 1)
	if err := w.e.Do(ctx, func() { c <- w.e.Stats() }); err != nil {
		return moex.Stats{}, false
	}
	return <-c, true
}

func (w *watchedReplay) Replay(ctx context.Context, conn string, beg, end uint32, deliver func(uint32, []byte)) error {
	s0, ok0 := w.stats(ctx)
	t0 := time.Now()
	err := w.r.Replay(ctx, conn, beg, end, deliver)
	took := time.Since(t0)
	if s1, ok1 := w.stats(ctx); ok0 && ok1 {
		w.mu.Lock()
		w.waits = append(w.waits, waited{Conn: conn, Beg: beg, End: end, Err: err, Took: took, Datagrams: s1.Datagrams - s0.Datagrams,
			Applied: s1.Orders + s1.Trades + s1.Statistics - s0.Orders - s0.Trades - s0.Statistics})
		w.mu.Unlock()
	}
	return err
}

// silentService accepts connections and reads them, never answering, until ctx ends.
func silentService(ctx context.Context, ln net.Listener) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// runLive runs the exchange (its config's groups, the source 10.50.129.200 mapped onto
// 127.0.0.2, the replay service on loopback) and an engine joined to every line with the
// replay client; record also captures every datagram with the project's recorder.
func runLive(t *testing.T, lo liveOpts) *liveRun {
	t.Helper()
	if lo.ClientTimeout == 0 {
		lo.ClientTimeout = time.Second
	}
	if lo.Steps == 0 {
		lo.Steps = 3000
	}
	if lo.Linger == 0 {
		lo.Linger = 400 * time.Millisecond
	}
	loss, record := lo.Loss, lo.Record
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
	x, err := New(Config{Market: m, Instruments: 8, Seed: 5, BLag: 1, Loss: loss, Username: "demo", Password: "demo",
		ReplayDelay: lo.ReplayDelay, TLSTrades: lo.TLSTrades}, out)
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
		if lo.Silent {
			silentService(ctx, ln)
			return
		}
		if err := x.ServeReplay(ctx, ln); err != nil {
			t.Error(err)
		}
	}()

	lr := &liveRun{x: x, client: &moex.ReplayClient{Addr: netip.MustParseAddrPort(ln.Addr().String()),
		Username: "demo", Password: "demo", Timeout: lo.ClientTimeout}}
	lr.watch = &watchedReplay{r: lr.client}
	lr.e, err = moex.NewEngine(m, moex.Options{GapWait: int64(30 * time.Millisecond), GapWindow: 4096,
		Replay: lr.watch, MaxReplayGap: 50})
	if err != nil {
		t.Fatal(err)
	}
	lr.watch.e = lr.e
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

	if err := x.Run(ctx, RunConfig{Steps: lo.Steps, Rate: 5000, CycleEvery: 10000, Linger: lo.Linger, NewDayAfter: lo.NewDayAfter}); err != nil {
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
	if st := lr.e.Stats(); st.DecodeErrors != 0 || st.WrongSource != 0 || st.Unrouted != 0 || st.Truncated != 0 || st.KernelDrops != 0 {
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
	lr := runLive(t, liveOpts{Loss: Loss{EveryA: 5, EveryBoth: 37, BurstEvery: 1000, BurstFirst: 1000, BurstLen: 120}})
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
	lr := runLive(t, liveOpts{Loss: Loss{EveryA: 6, EveryBoth: 41, Conns: []string{"OLR"}, BurstEvery: 1000, BurstFirst: 1000, BurstLen: 100}, Record: true})
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

// TestLiveSlowReplay: the replay service answers each request 1.5 s late while the line
// data keeps flowing: the receive loop keeps reading (thousands of datagrams received and
// entries applied while each request is out, no kernel drop), the datagrams behind the
// hole are held and used once the answer comes, and the books equal moex-sim's ground
// truth, the trades its trade list.
func TestLiveSlowReplay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	lr := runLive(t, liveOpts{Loss: Loss{EveryA: 5, EveryBoth: 2500, Conns: []string{"OLR"}}, ReplayDelay: delay,
		ClientTimeout: 3 * time.Second, Steps: 6000, Linger: 2 * time.Second})
	checkSame(t, lr.x, lr.e, lr.trades)
	c, rs := lr.e.Channels()["OLR"], lr.client.Stats()
	if c.RecoveredReplay == 0 || c.ReplayFailed != 0 || c.Gaps != 0 || rs.Filled != rs.Requests {
		t.Errorf("OLR %+v; replay %+v", c, rs)
	}
	lr.watch.mu.Lock()
	defer lr.watch.mu.Unlock()
	if len(lr.watch.waits) == 0 {
		t.Fatal("no request measured")
	}
	for i, w := range lr.watch.waits {
		t.Logf("request %s %d..%d out %v (%v): %d datagrams received, %d entries applied meanwhile", w.Conn, w.Beg, w.End, w.Took.Round(time.Millisecond), w.Err, w.Datagrams, w.Applied)
		// The first hole comes with most of the run still to send; later ones may be
		// answered when only heartbeats come.
		if w.Took < delay || w.Datagrams == 0 || (i == 0 && (w.Datagrams < 1000 || w.Applied < 100)) {
			t.Errorf("the receive loop stalled during a request: %+v", w)
		}
	}
	t.Logf("OLR %+v", c)
}

// TestLiveReplayNeverAnswers: the replay service accepts and never answers: every
// request times out (counted by the client and the connection), the hole is a gap left
// to the snapshot feed, and the books still equal the ground truth.
func TestLiveReplayNeverAnswers(t *testing.T) {
	lr := runLive(t, liveOpts{Loss: Loss{EveryA: 5, EveryBoth: 700, Conns: []string{"OLR"}}, Silent: true,
		ClientTimeout: 300 * time.Millisecond})
	checkSame(t, lr.x, lr.e, lr.trades)
	c, rs, st := lr.e.Channels()["OLR"], lr.client.Stats(), lr.e.Stats()
	if c.ReplayRequests == 0 || c.ReplayFailed != c.ReplayRequests || c.RecoveredReplay != 0 || rs.Timeouts == 0 ||
		c.SnapshotGaps == 0 || st.BooksRecovered == 0 {
		t.Errorf("OLR %+v; replay %+v; engine %+v", c, rs, st)
	}
	lr.watch.mu.Lock()
	defer lr.watch.mu.Unlock()
	for _, w := range lr.watch.waits {
		if w.Datagrams == 0 {
			t.Errorf("the receive loop stalled during a request: %+v", w)
		}
	}
	t.Logf("OLR %+v; replay %+v; books recovered %d", c, rs, st.BooksRecovered)
}

// TestLiveNewDay: moex-sim starts a new trading day halfway (every feed's MsgSeqNum at 1
// again, RptSeqs again, the books entered anew) with loss on line A throughout: every
// connection counts one reset, and the books and trades equal the ground truth after it.
func TestLiveNewDay(t *testing.T) {
	lr := runLive(t, liveOpts{Loss: Loss{EveryA: 5}, Steps: 3000, NewDayAfter: 1500})
	checkSame(t, lr.x, lr.e, lr.trades)
	if n := lr.x.Stats().NewDays; n != 1 {
		t.Fatalf("%d new days", n)
	}
	for id, c := range lr.e.Channels() {
		if c.Resets != 1 || c.Gaps != 0 {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if c := lr.e.Channels()["OLR"]; c.RecoveredAB == 0 {
		t.Errorf("no line-A loss filled by B: %+v", c)
	}
	t.Logf("OLR %+v; trades %d", lr.e.Channels()["OLR"], lr.x.Stats().Trades)
}

// TestLiveSnapshotFeeds: moex-sim -> ingest live with bursts of 60 datagrams lost on
// both lines of OLR, TLR and MSR (longer than the 50 asked of the replay service), with
// line-A and short both-line losses too: the books wait for OLS, the trades of the TLR
// holes come from the TLS snapshots (moex-sim's carry 400 trades: enough), the
// statistics of the MSR holes from MSS. The books equal the ground truth, the trade list
// is complete (none twice, each instrument's in RptSeq order), the statistics equal
// moex-sim's, and the TLS and MSS recoveries are counted.
func TestLiveSnapshotFeeds(t *testing.T) {
	lr := runLive(t, liveOpts{Loss: Loss{EveryA: 5, EveryBoth: 37, BurstEvery: 200, BurstFirst: 150, BurstLen: 60,
		BurstConns: []string{"OLR", "TLR", "MSR"}}, TLSTrades: 400})
	if got, want := engineBooks(t, lr.e), groundTruth(t, lr.x); got != want {
		t.Errorf("books differ:\n got %s\nwant %s", got, want)
	}
	checkStatistics(t, lr.x, lr.e)
	st, ch, xs := lr.e.Stats(), lr.e.Channels(), lr.x.Stats()
	fromSnap := checkTradesRecovered(t, lr.trades, lr.x.Trades(), st.TradesLost)
	for _, id := range []string{"OLR", "TLR", "MSR"} {
		if c := ch[id]; c.SnapshotGaps == 0 || c.RecoveredAB == 0 || c.RecoveredReplay == 0 || xs.LostBoth[id] == 0 {
			t.Errorf("%s: %+v (exchange %+v)", id, c, xs)
		}
	}
	tls, mss := ch["TLS"], ch["MSS"]
	if st.TradesLost != 0 || tls.TLSRecoveredTrades == 0 || fromSnap != tls.TLSRecoveredTrades || st.TradesRecovered == 0 {
		t.Errorf("TLS %+v; engine %+v", tls, st)
	}
	if st.BooksRecovered == 0 || mss.MSSRecovered == 0 || st.StatsRecovered != st.StatsWaits {
		t.Errorf("MSS %+v; engine %+v", mss, st)
	}
	for _, in := range lr.e.Instruments() {
		if in.TradesStale || in.StatsStale {
			t.Errorf("%s still waiting: trades %v statistics %v", in.Symbol, in.TradesStale, in.StatsStale)
		}
	}
	t.Logf("TLR %+v; TLS recovered %d; MSS recovered %d; books recovered %d; trades %d", ch["TLR"], tls.TLSRecoveredTrades, mss.MSSRecovered, st.BooksRecovered, xs.Trades)
}
