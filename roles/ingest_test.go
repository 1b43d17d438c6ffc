package roles

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
	"fastfeed/replay"
)

const (
	moexConfig    = "../../shared/conformance/moex-config/asts_config_test.xml"
	moexTemplates = "../../shared/conformance/exchange-templates/moex_asts_FIX50SP2-2017-Mar.xml"
)

// TestIngestCapture: a FOND capture (OLR on A and B, TLR on A only with one datagram
// lost) through fastfeed ingest gives the books, trades and counters expected.
func TestIngestCapture(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "moex.pcapng")
	writeIngestCapture(t, capture, false)
	books, trades, stats := filepath.Join(dir, "books"), filepath.Join(dir, "trades"), filepath.Join(dir, "stats")
	var stderr bytes.Buffer
	err := Ingest(context.Background(), []string{"--moex-config", moexConfig, "--market", "FOND", "--capture", capture,
		"--templates", moexTemplates, "--dump-books", books, "--dump-trades", trades, "--stats-out", stats}, discard{}, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "operator HTTP view") {
		t.Errorf("ingest served HTTP without --http:\n%s", stderr.String())
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got, want := read(books), `{"symbol":"SBER","rptseq":2,"stale":false,"bids":[["101.25","300",1]],"asks":[["101.3","50",1]]}`+"\n"; got != want {
		t.Errorf("books %s want %s", got, want)
	}
	wantTrades := `{"seq":1,"symbol":"SBER","rptseq":1,"id":"1","type":"z","action":0,"price":"101.25","size":"100"}` + "\n" +
		`{"seq":3,"symbol":"SBER","rptseq":3,"id":"3","type":"z","action":0,"price":"101.25","size":"300"}` + "\n"
	if got := read(trades); got != wantTrades {
		t.Errorf("trades %s want %s", got, wantTrades)
	}
	var st IngestStats
	if err := json.Unmarshal([]byte(read(stats)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Channels["TLR"].Gaps != 1 || st.Channels["OLR"].Duplicates != 1 || st.Gaps["SBER"].Trades != 1 ||
		st.Gaps["SBER"].MissedTrades != 1 || st.Engine.Trades != 2 || st.Books != 1 || st.Packets != 4 {
		t.Errorf("stats %+v", st)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestIngestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--market", "FOND", "--capture", "x"}, "--moex-config is required"},
		{[]string{"--moex-config", moexConfig, "--capture", "x"}, "--market is required"},
		{[]string{"--moex-config", moexConfig, "--market", "FOND", "--capture", "x", "--duration", "1s"}, "not with --capture"},
		{[]string{"--moex-config", moexConfig, "--market", "FOND", "--capture", "x", "--map-source", "1.2.3.4"}, "--map-source"},
		{[]string{"--moex-config", moexConfig, "--market", "SPOT", "--capture", "x"}, `--market "SPOT"`},
		{[]string{"--moex-config", moexConfig, "--market", "FOND", "--capture", "x", "--templates", "../fixtures/templates.xml"}, "not the ASTS templates file"},
	} {
		err := Ingest(context.Background(), tc.args, discard{}, discard{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
		var ue *UsageError
		if isUsage := errors.As(err, &ue); isUsage == strings.Contains(tc.want, "templates") {
			t.Errorf("%v: usage error %v", tc.args, isUsage)
		}
	}
}

// writeIngestCapture writes TestIngestCapture's capture to path; with gazpLoss, GAZP's
// orders follow with a datagram lost on both lines.
func writeIngestCapture(t *testing.T, capture string, gazpLoss bool) {
	t.Helper()
	f, err := os.Create(capture)
	if err != nil {
		t.Fatal(err)
	}
	w, err := replay.NewWriter(f, replay.PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	enc := moexasts.NewEncoder()
	src := netip.MustParseAddrPort("10.50.129.200:5000")
	now := int64(1e18)
	put := func(dst string, seq uint32, m *moexasts.Message) {
		enc.Reset()
		b, err := enc.Encode(binary.LittleEndian.AppendUint32(nil, seq), m)
		if err != nil {
			t.Fatal(err)
		}
		now += 1e3
		if err := w.WriteUDP(now, src, netip.MustParseAddrPort(dst), b); err != nil {
			t.Fatal(err)
		}
	}
	d := func(m int64, e int32) fastrt.Decimal { return fastrt.Decimal{Mantissa: m, Exponent: e} }
	olr := &moexasts.Message{ID: moexasts.IDXOLRFOND}
	olr.XOLRFOND.MsgSeqNum = 1
	olr.XOLRFOND.GroupMDEntries = []moexasts.XOLRFONDGroupMDEntries{
		{HasMDUpdateAction: true, MDEntryType: []byte("0"), HasMDEntryType: true, MDEntryID: []byte("7"), HasMDEntryID: true,
			Symbol: []byte("SBER"), HasSymbol: true, RptSeq: 1, HasRptSeq: true, MDEntryPx: d(10125, -2), HasMDEntryPx: true, MDEntrySize: d(300, 0), HasMDEntrySize: true},
		{HasMDUpdateAction: true, MDEntryType: []byte("1"), HasMDEntryType: true, MDEntryID: []byte("8"), HasMDEntryID: true,
			Symbol: []byte("SBER"), HasSymbol: true, RptSeq: 2, HasRptSeq: true, MDEntryPx: d(1013, -1), HasMDEntryPx: true, MDEntrySize: d(50, 0), HasMDEntrySize: true},
	}
	put("239.192.113.1:9111", 1, olr) // OLR line A
	put("239.192.113.129:9311", 1, olr)
	for i := uint32(1); i <= 3; i++ {
		tlr := &moexasts.Message{ID: moexasts.IDXTLRFOND}
		tlr.XTLRFOND.MsgSeqNum = i
		tlr.XTLRFOND.GroupMDEntries = []moexasts.XTLRFONDGroupMDEntries{{MDUpdateAction: 0, HasMDUpdateAction: true,
			MDEntryType: []byte("z"), MDEntryID: []byte{'0' + byte(i)}, HasMDEntryID: true, Symbol: []byte("SBER"), HasSymbol: true,
			RptSeq: int32(i), HasRptSeq: true, MDEntryPx: d(10125, -2), HasMDEntryPx: true, MDEntrySize: d(int64(i)*100, 0), HasMDEntrySize: true}}
		if i != 2 {
			put("239.192.113.5:9115", i, tlr) // TLR line A only; 2 is lost
		}
	}
	if gazpLoss {
		// GAZP's book on OLR 2..4, 3 lost on both lines: a channel gap, then an RptSeq
		// hole in GAZP's orders, which leaves its book stale.
		for seq := uint32(2); seq <= 4; seq++ {
			m := &moexasts.Message{ID: moexasts.IDXOLRFOND}
			m.XOLRFOND.MsgSeqNum = seq
			m.XOLRFOND.GroupMDEntries = []moexasts.XOLRFONDGroupMDEntries{
				{HasMDUpdateAction: true, MDEntryType: []byte("0"), HasMDEntryType: true, MDEntryID: []byte{'a' + byte(seq)}, HasMDEntryID: true,
					Symbol: []byte("GAZP"), HasSymbol: true, RptSeq: int32(seq - 1), HasRptSeq: true, MDEntryPx: d(15000+int64(seq), -2), HasMDEntryPx: true,
					MDEntrySize: d(10, 0), HasMDEntrySize: true}}
			if seq != 3 {
				put("239.192.113.1:9111", seq, m)
				put("239.192.113.129:9311", seq, m)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
