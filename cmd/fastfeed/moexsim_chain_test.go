package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/roles"
)

// TestMoexSimRepublishChain is issue 17's chain end to end, every link a fastfeed
// process in the test's private network namespace: `fastfeed moex-sim` (the config's
// groups; losses on line A, on both lines of OLR and MSR, and OLR bursts longer than
// the replay limit; a snapshot cycle every 1,000 events; the replay service) ->
// `fastfeed ingest --replay --republish --nats embedded` (live, each recovery path
// counted) -> an unchanged `fastfeed feed --all` losing 5% of the bus on purpose and
// recovering over FIX from ingest, and `fastfeed oms --nats` subscribed to every
// instrument. The handler's, the NATS consumer's and ingest's books equal moex-sim's
// ground truth level for level (price, size, order count, stale flag; not the rptseq:
// the bus numbers its own entries), and the handler's and the consumer's equal the
// bus's own dump, rptseq included; ingest's trades equal moex-sim's trade list byte
// for byte. The data lasts about 2 s: the handlers log on to the recovery service at
// their first hole (up to a second with quickfix), and must follow the rest live, not
// only take the final books as snapshots.
func TestMoexSimRepublishChain(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "conformance", "moex-config", "asts_config_test.xml"))
	p := func(name string) string { return filepath.Join(dir, name) }
	const addrMap = "10.50.129.200=127.0.0.2,1.1.7.200=127.0.0.1"
	fixAddr, natsAddr := freeAddr(t), freeAddr(t)

	// The handler first: it joins the bus on the definitions and recovers what it lost
	// from ingest's recovery service.
	fd := start(t, ctx, bin, "feed", "--all", "--fix-connect", fixAddr, "--duration", "10s",
		"--inject-loss", "0.05", "--inject-seed", "7", "--dump-books", p("feed-books.jsonl"), "--stats-out", p("feed-stats.json"))
	fd.waitFor(t, "feed handler started")
	// ingest's live input ends after --duration (moex-sim is done well before), the
	// books as republished are dumped, and the bus lingers, heartbeating and serving
	// recovery, until interrupted.
	ing := start(t, ctx, bin, "ingest", "--moex-config", cfg, "--market", "FOND", "--map", addrMap,
		"--replay", "--replay-user", "demo", "--replay-password", "demo", "--replay-max-gap", "50",
		"--gap-wait", "30ms", "--gap-window", "4096", "--duration", "6s",
		"--republish", "--fix-listen", fixAddr, "--heartbeat", "100ms", "--linger", "30s",
		"--nats", "embedded", "--nats-listen", natsAddr,
		"--dump-books", p("ingest-books.jsonl"), "--dump-trades", p("ingest-trades.jsonl"), "--stats-out", p("ingest-stats.json"))
	ing.waitFor(t, "connected to NATS") // the feeds joined, the bus and NATS up
	oms := start(t, ctx, bin, "oms", "--nats", "nats://"+natsAddr, "--subscribe", "*", "--duration", "8s", "--interval", "0",
		"--dump-books", p("oms-books.jsonl"), "--stats-out", p("oms-stats.json"))
	oms.waitFor(t, "oms subscribed over NATS")

	code, _, simLog := fastfeed(t, ctx, bin, "moex-sim", "--moex-config", cfg, "--market", "FOND",
		"--map", addrMap, "--steps", "3000", "--rate", "1500", "--snapshot-every", "1000",
		"--loss-a", "5", "--loss-both", "37", "--loss-conns", "OLR,MSR", "--loss-burst", "1000:120@1000",
		"--replay-user", "demo", "--replay-password", "demo", "--linger", "600ms",
		"--dump-books", p("sim-books.jsonl"), "--dump-trades", p("sim-trades.jsonl"), "--stats-out", p("sim-stats.json"))
	if code != 0 {
		t.Fatalf("moex-sim: exit %d\n%s", code, simLog)
	}
	if strings.Contains(ing.stderr.String(), "books dumped") {
		t.Fatalf("ingest's --duration ended before moex-sim did: make it longer\n%s", ing.stderr.String())
	}
	ing.waitFor(t, "books dumped")
	fd.wait(t, "feed")
	oms.wait(t, "oms --nats")
	ing.interrupt(t, "ingest") // ends the linger

	wantTrades := read(t, p("sim-trades.jsonl"))
	truth := readDump(t, p("sim-books.jsonl"))
	if len(wantTrades) == 0 || len(truth) != 8 {
		t.Fatalf("moex-sim's ground truth: %d bytes of trades, %d books", len(wantTrades), len(truth))
	}
	if got := read(t, p("ingest-trades.jsonl")); !bytes.Equal(got, wantTrades) {
		t.Errorf("ingest's trades differ from moex-sim's (%d bytes, want %d)", len(got), len(wantTrades))
	}
	want := levelsOf(truth)
	for _, c := range []string{"ingest", "feed", "oms"} {
		got := readDump(t, p(c+"-books.jsonl"))
		for _, b := range got {
			if b.Stale {
				t.Errorf("%s: %s stale at the end", c, b.Symbol)
			}
		}
		if d := book.DiffDumps(levelsOf(got), want); d != "" {
			t.Errorf("%s: books differ from moex-sim's ground truth:\n%s", c, d)
		}
	}
	// The handler and the NATS consumer follow the bus: its rptseq too.
	busBooks := readDump(t, p("ingest-books.jsonl"))
	for _, c := range []string{"feed", "oms"} {
		if d := book.DiffDumps(readDump(t, p(c+"-books.jsonl")), busBooks); d != "" {
			t.Errorf("%s: books differ from the bus's (ingest --dump-books):\n%s", c, d)
		}
	}

	var st roles.IngestStats
	readJSONInto(t, p("ingest-stats.json"), &st)
	olr, msr := st.Channels["OLR"], st.Channels["MSR"]
	if olr.RecoveredAB == 0 || olr.RecoveredReplay == 0 || olr.SnapshotGaps == 0 || msr.RecoveredReplay == 0 ||
		st.Engine.BooksRecovered == 0 || st.Replay == nil || st.Replay.Filled == 0 || st.Stale != 0 {
		t.Errorf("ingest stats: OLR %+v MSR %+v engine %+v replay %+v", olr, msr, st.Engine, st.Replay)
	}
	if r := st.Republish; r == nil || r.Instruments != 8 || r.Precision != 0 || r.Incomplete != 0 ||
		r.Bus.Requests == 0 || r.Bus.Retransmitted+r.Bus.Snapshots == 0 {
		t.Errorf("ingest's republish counters %+v", st.Republish)
	}
	fst := readStats(t, p("feed-stats.json"))
	if fst.InjectedLoss == 0 || fst.Messages == 0 || fst.RecoveredFIX+fst.SnapshotsDone == 0 || fst.StaleBooks != 0 || fst.BookErrors != 0 {
		t.Errorf("feed counters %+v\n%s", fst, fd.stderr.String())
	}
	var ost natsbus.ConsumerStats
	readJSONInto(t, p("oms-stats.json"), &ost)
	if ost.Instruments != 8 || ost.Entries == 0 || ost.ParseErrors != 0 {
		t.Errorf("oms --nats counters %+v\ningest log:\n%s\noms log:\n%s", ost, ing.stderr.String(), oms.stderr.String())
	}
	t.Logf("ingest: OLR line B %d, replay %d, snapshot gaps %d; MSR replay %d; books recovered %d; bus FIX requests %d; "+
		"feed: injected loss %d, gaps %d, recovered by FIX %d, snapshots %d; oms: entries %d, snapshots %d",
		olr.RecoveredAB, olr.RecoveredReplay, olr.SnapshotGaps, msr.RecoveredReplay, st.Engine.BooksRecovered, st.Republish.Bus.Requests,
		fst.InjectedLoss, fst.Gaps, fst.RecoveredFIX, fst.SnapshotsDone, ost.Entries, ost.Snapshots)
}

// levelsOf is d with the rptseq left out: moex-sim's is MOEX's order RptSeq, the bus
// numbers its own entries (docs/moex-ingest.md, "Republish").
func levelsOf(d book.Dump) book.Dump {
	out := make(book.Dump, len(d))
	for i, b := range d {
		b.RptSeq = 0
		out[i] = b
	}
	return out
}
