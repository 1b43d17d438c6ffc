package moexsim

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"fastfeed/ingest/moex"
	"fastfeed/replay"
)

const conformanceConfig = "../../../shared/conformance/moex-config/asts_config_test.xml"

func fond(t testing.TB) *moex.Market { return market(t, "FOND") }

func market(t testing.TB, id string) *moex.Market {
	t.Helper()
	c, err := moex.LoadConfig(conformanceConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Market(id)
	if !ok {
		t.Fatalf("no %s market", id)
	}
	return m
}

func groundTruth(t testing.TB, x *Exchange) string {
	t.Helper()
	var b strings.Builder
	if err := x.WriteBooks(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func engineBooks(t testing.TB, e *moex.Engine) string {
	t.Helper()
	var b strings.Builder
	if err := moex.WriteBooks(&b, e); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkSame fails the test unless the engine's books equal the exchange's ground truth
// and its trades the exchange's trade list, in order, none twice.
func checkSame(t *testing.T, x *Exchange, e *moex.Engine, trades []byte) {
	t.Helper()
	want := groundTruth(t, x)
	if got := engineBooks(t, e); got != want {
		t.Errorf("books differ from the ground truth:\n got %s\nwant %s", got, want)
	}
	if len(x.Trades()) == 0 {
		t.Error("no trades")
	}
	if !bytes.Equal(trades, x.Trades()) {
		t.Errorf("trades differ: got %d bytes, want %d", len(trades), len(x.Trades()))
		gl, wl := strings.Split(string(trades), "\n"), strings.Split(string(x.Trades()), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Errorf("first difference at line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
				break
			}
		}
	}
}

// TestCaptureLineBAndSnapshot: the exchange writes a capture (no sockets) with datagrams
// lost on line A (filled by B) and bursts lost on both lines of OLR (too long for
// anything but the snapshot feed); the engine's books equal the ground truth, its
// trades the trade list, and each path is counted; for FOND and CURR (their templates).
func TestCaptureLineBAndSnapshot(t *testing.T) {
	for _, id := range []string{"FOND", "CURR"} {
		t.Run(id, func(t *testing.T) { captureLineBAndSnapshot(t, market(t, id)) })
	}
}

func captureLineBAndSnapshot(t *testing.T, m *moex.Market) {
	var buf bytes.Buffer
	w, err := replay.NewWriter(&buf, replay.PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	x, err := New(Config{Market: m, Instruments: 6, Seed: 3,
		BLag: 3, Loss: Loss{EveryA: 4, BurstEvery: 500, BurstLen: 90}}, &CaptureOutput{W: w, Now: 1e18})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Open(); err != nil {
		t.Fatal(err)
	}
	x.SetLoss(true)
	for i := 1; i <= 2000; i++ {
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
	if err := x.Heartbeat(); err != nil {
		t.Fatal(err)
	}
	if err := x.FlushLate(); err != nil {
		t.Fatal(err)
	}
	if err := x.Cycle(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	e, trades := captureIngest(t, m, buf.Bytes())
	checkSame(t, x, e, trades)
	st, olr := e.Stats(), e.Channels()["OLR"]
	xs := x.Stats()
	if olr.RecoveredAB == 0 || olr.SnapshotGaps == 0 || st.BooksRecovered == 0 || st.SnapshotWaits == 0 {
		t.Errorf("recovery paths not all taken: OLR %+v, engine %+v", olr, st)
	}
	if xs.LostA["OLR"] == 0 || xs.LostBoth["OLR"] == 0 || xs.LostA["TLR"] == 0 {
		t.Errorf("losses not injected: %+v", xs)
	}
	if got, want := olr.Missed, xs.LostBoth["OLR"]; got != want {
		t.Errorf("OLR missed %d, lost on both lines %d", got, want)
	}
}

func captureIngest(t *testing.T, m *moex.Market, capture []byte) (*moex.Engine, []byte) {
	t.Helper()
	e, err := moex.NewEngine(m, moex.Options{GapWait: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	var trades []byte
	e.OnTrade = func(tr *moex.Trade) { trades = moex.AppendTrade(trades, tr) }
	r, err := replay.NewReader(bytes.NewReader(capture), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := moex.RunCapture(context.Background(), r, e); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.DecodeErrors != 0 || st.WrongSource != 0 || st.Unrouted != 0 || st.BookErrors != 0 {
		t.Errorf("capture ingest: %+v", st)
	}
	return e, trades
}

// TestCheckAddresses: outside a private namespace the exchange's own addresses are
// refused until every one is mapped onto loopback or an administratively scoped group.
func TestCheckAddresses(t *testing.T) {
	m := fond(t)
	if err := CheckAddresses(m, m, false); err == nil || !strings.Contains(err.Error(), "exchange's own address") {
		t.Fatalf("unmapped: %v", err)
	}
	if err := CheckAddresses(m, m, true); err != nil {
		t.Fatalf("inside: %v", err)
	}
	to := map[netip.Addr]netip.Addr{}
	i := 1
	for a := range m.Addresses() {
		switch {
		case a.IsMulticast():
			to[a] = netip.AddrFrom4([4]byte{239, 255, 77, byte(i)})
		default:
			to[a] = netip.AddrFrom4([4]byte{127, 0, 0, 2})
		}
		i++
	}
	if err := CheckAddresses(m, m.MapAddresses(to), false); err != nil {
		t.Fatalf("all mapped: %v", err)
	}
	delete(to, netip.MustParseAddr("239.192.112.1"))
	// FOND's groups differ from CURR's; drop one of FOND's own.
	for _, cn := range m.Connections {
		if cn.ID == "OLR" {
			delete(to, cn.Lines[0].Group.Addr())
		}
	}
	if err := CheckAddresses(m, m.MapAddresses(to), false); err == nil {
		t.Fatal("one group unmapped: no error")
	}
}
