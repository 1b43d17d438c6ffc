package moexsim

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"fastfeed/ingest/moex"
	"fastfeed/replay"
)

var tradeLine = regexp.MustCompile(`^\{"seq":(\d+),"symbol":"([^"]*)","rptseq":(\d+),(.*)$`)

type tradeLn struct {
	seq  uint64
	rpt  int
	rest string
}

func tradesBySymbol(t *testing.T, b []byte) map[string][]tradeLn {
	t.Helper()
	out := map[string][]tradeLn{}
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		m := tradeLine.FindSubmatch(l)
		if m == nil {
			t.Fatalf("trade line %q", l)
		}
		seq, _ := strconv.ParseUint(string(m[1]), 10, 32)
		rpt, _ := strconv.Atoi(string(m[3]))
		out[string(m[2])] = append(out[string(m[2])], tradeLn{seq, rpt, string(m[4])})
	}
	return out
}

// checkTradesRecovered fails the test unless got (ingest's trade lines) holds every
// trade of want (moex-sim's) but lost of them, none twice, each instrument's in RptSeq
// order once the ones taken from TLS snapshots (seq 0) are put in their place; a trade
// received from TLR has want's line exactly. It returns how many came from snapshots.
func checkTradesRecovered(t *testing.T, got, want []byte, lost uint64) uint64 {
	t.Helper()
	g, w := tradesBySymbol(t, got), tradesBySymbol(t, want)
	var missing, fromSnap uint64
	for sym, wl := range w {
		gl := slices.Clone(g[sym])
		for _, x := range gl {
			if x.seq == 0 {
				fromSnap++
			}
		}
		// The TLR trades come in RptSeq order; the snapshot's fill the holes later.
		var live []tradeLn
		for _, x := range gl {
			if x.seq != 0 {
				live = append(live, x)
			}
		}
		if !slices.IsSortedFunc(live, func(a, b tradeLn) int { return a.rpt - b.rpt }) {
			t.Errorf("%s: TLR trades out of order", sym)
		}
		slices.SortStableFunc(gl, func(a, b tradeLn) int { return a.rpt - b.rpt })
		i := 0
		for _, x := range wl {
			if i < len(gl) && gl[i].rpt == x.rpt {
				if gl[i].rest != x.rest || (gl[i].seq != 0 && gl[i].seq != x.seq) {
					t.Errorf("%s rptseq %d: got %+v, want %+v", sym, x.rpt, gl[i], x)
				}
				i++
				continue
			}
			missing++
		}
		if i != len(gl) {
			t.Errorf("%s: %d trades not in the trade list (twice, or unknown): %+v", sym, len(gl)-i, gl[i:])
		}
	}
	for sym := range g {
		if _, ok := w[sym]; !ok {
			t.Errorf("trades of %s, unknown", sym)
		}
	}
	if missing != lost {
		t.Errorf("%d trades missing, %d counted lost", missing, lost)
	}
	return fromSnap
}

// checkStatistics fails the test unless every instrument's statistics are moex-sim's:
// the traded volume (B), not stale.
func checkStatistics(t *testing.T, x *Exchange, e *moex.Engine) {
	t.Helper()
	for sym, v := range x.Volumes() {
		in, ok := e.Instrument(sym)
		if v.Mantissa == 0 {
			continue
		}
		if !ok || in.StatsStale || len(in.Stats) != 1 || in.Stats[0].Type != "B" || !in.Stats[0].HasSz || in.Stats[0].Size != v {
			t.Errorf("%s statistics: got %+v, want B %v", sym, in, v)
		}
	}
}

// TestCaptureTLSAndMSS: moex-sim writes a capture (no replay service) whose TLR and MSR
// lose bursts of datagrams on both lines (with OLR's): each hole is left to the snapshot
// feeds. With TLS snapshots carrying 64 trades, every trade of the holes is taken from the
// next TLS snapshot: the trade list is complete, none twice; with 2 trades, the older
// ones are lost, exactly as counted. The statistics equal moex-sim's after the MSS
// snapshots; the books too.
func TestCaptureTLSAndMSS(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tlsTrades int
		lost      bool
	}{{"covered", 64, false}, {"lost", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			m := fond(t)
			var buf bytes.Buffer
			w, err := replay.NewWriter(&buf, replay.PcapNG)
			if err != nil {
				t.Fatal(err)
			}
			x, err := New(Config{Market: m, Instruments: 6, Seed: 3, BLag: 3, TLSTrades: tc.tlsTrades,
				Loss: Loss{EveryA: 4, BurstEvery: 200, BurstLen: 40, BurstConns: []string{"OLR", "TLR", "MSR"}}},
				&CaptureOutput{W: w, Now: 1e18})
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Open(); err != nil {
				t.Fatal(err)
			}
			x.SetLoss(true)
			for i := 1; i <= 3000; i++ {
				if err := x.Step(); err != nil {
					t.Fatal(err)
				}
				if i%300 == 0 {
					if err := x.Cycle(); err != nil {
						t.Fatal(err)
					}
				}
			}
			x.SetLoss(false)
			for _, f := range []func() error{x.Heartbeat, x.FlushLate, x.Cycle} {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			e, trades := captureIngest(t, m, buf.Bytes())
			if got, want := engineBooks(t, e), groundTruth(t, x); got != want {
				t.Errorf("books differ:\n got %s\nwant %s", got, want)
			}
			checkStatistics(t, x, e)
			st, ch, xs := e.Stats(), e.Channels(), x.Stats()
			fromSnap := checkTradesRecovered(t, trades, x.Trades(), st.TradesLost)
			tls, mss, tlr, msr := ch["TLS"], ch["MSS"], ch["TLR"], ch["MSR"]
			if xs.LostBoth["TLR"] == 0 || xs.LostBoth["MSR"] == 0 || tlr.SnapshotGaps == 0 || msr.SnapshotGaps == 0 {
				t.Errorf("no TLR/MSR hole left to the snapshot feeds: exchange %+v, TLR %+v, MSR %+v", xs, tlr, msr)
			}
			if fromSnap != tls.TLSRecoveredTrades || tls.TLSRecoveredTrades == 0 || st.TradesRecovered == 0 {
				t.Errorf("%d trades from snapshots; TLS %+v; engine %+v", fromSnap, tls, st)
			}
			if tc.lost != (st.TradesLost > 0) || tls.TradesLost != st.TradesLost {
				t.Errorf("trades lost: TLS %+v, engine %d", tls, st.TradesLost)
			}
			if mss.MSSRecovered == 0 || st.StatsWaits == 0 || st.StatsRecovered != st.StatsWaits {
				t.Errorf("MSS %+v; engine %+v", mss, st)
			}
			for _, in := range e.Instruments() {
				if in.TradesStale || in.StatsStale {
					t.Errorf("%s still waiting: trades %v statistics %v", in.Symbol, in.TradesStale, in.StatsStale)
				}
			}
			t.Logf("TLR %+v; TLS recovered %d lost %d; MSS recovered %d; trades %d", tlr, tls.TLSRecoveredTrades, tls.TradesLost, mss.MSSRecovered, xs.Trades)
		})
	}
}
