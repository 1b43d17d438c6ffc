package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"fastfeed/roles"
)

// TestMoexSimIngest runs `fastfeed moex-sim` (the config's groups inside the test's
// private namespace, its source and replay service mapped onto loopback with --map,
// losses on line A, on both lines of OLR and MSR, and OLR bursts) while `fastfeed ingest`
// joins the feeds live with --replay and tcpdump captures them: ingest's books equal
// moex-sim's ground truth and its trades moex-sim's trade list, each recovery path
// counted; then `ingest --capture` of the tcpdump capture gives the same books and
// trades.
func TestMoexSimIngest(t *testing.T) {
	bin := fastfeedBinary(t)
	env := tcpdumpEnv(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "conformance", "moex-config", "asts_config_test.xml"))
	p := func(name string) string { return filepath.Join(dir, name) }
	const srcMap = "10.50.129.200=127.0.0.2"

	td := startTcpdump(t, ctx, env, p("moex.pcap"))
	ing := start(t, ctx, bin, "ingest", "--moex-config", cfg, "--market", "FOND", "--map", srcMap+",1.1.7.200=127.0.0.1",
		"--replay", "--replay-user", "demo", "--replay-password", "demo", "--replay-max-gap", "50",
		"--gap-wait", "30ms", "--gap-window", "4096",
		"--dump-books", p("ingest-books.jsonl"), "--dump-trades", p("ingest-trades.jsonl"), "--stats-out", p("ingest-stats.json"))
	ing.waitFor(t, "ingest joining")
	time.Sleep(300 * time.Millisecond) // the joins
	code, _, simLog := fastfeed(t, ctx, bin, "moex-sim", "--moex-config", cfg, "--market", "FOND",
		"--map", srcMap+",1.1.7.200=127.0.0.1", "--steps", "3000", "--rate", "5000", "--snapshot-every", "100000",
		"--loss-a", "5", "--loss-both", "37", "--loss-conns", "OLR,MSR", "--loss-burst", "1000:120@1000",
		"--replay-user", "demo", "--replay-password", "demo", "--linger", "600ms",
		"--dump-books", p("sim-books.jsonl"), "--dump-trades", p("sim-trades.jsonl"), "--stats-out", p("sim-stats.json"))
	if code != 0 {
		t.Fatalf("moex-sim: exit %d\n%s", code, simLog)
	}
	time.Sleep(200 * time.Millisecond)
	ing.interrupt(t, "ingest")
	td.interrupt(t, "tcpdump")
	if !regexp.MustCompile(`(?m)^0 packets dropped by kernel`).MatchString(td.stderr.String()) {
		t.Fatalf("tcpdump lost packets:\n%s", td.stderr.String())
	}
	wantBooks, wantTrades := read(t, p("sim-books.jsonl")), read(t, p("sim-trades.jsonl"))
	if len(wantTrades) == 0 || bytes.Count(wantBooks, []byte("\n")) != 8 {
		t.Fatalf("moex-sim's ground truth: %d bytes of trades, books:\n%s", len(wantTrades), wantBooks)
	}
	same := func(name, books, trades string) {
		t.Helper()
		if got := read(t, books); !bytes.Equal(got, wantBooks) {
			t.Errorf("%s: books differ from moex-sim's:\n got %s\nwant %s", name, got, wantBooks)
		}
		if got := read(t, trades); !bytes.Equal(got, wantTrades) {
			t.Errorf("%s: trades differ from moex-sim's (%d bytes, want %d)", name, len(got), len(wantTrades))
		}
	}
	same("live", p("ingest-books.jsonl"), p("ingest-trades.jsonl"))
	var st roles.IngestStats
	readJSONInto(t, p("ingest-stats.json"), &st)
	olr, msr := st.Channels["OLR"], st.Channels["MSR"]
	// Line B supplies what line A lost: as a hole it filled (recovered_ab) or, when B's
	// copy is read first, as messages A never had (which reading A and B in turns makes
	// common: one run had 0 holes filled by B and 536 messages from B alone).
	fromB := olr.RecoveredAB > 0 || olr.Messages > olr.Datagrams[0]+olr.ReplayMessages
	if !fromB || olr.RecoveredReplay == 0 || olr.SnapshotGaps == 0 || msr.RecoveredReplay == 0 ||
		st.Engine.BooksRecovered == 0 || st.Replay == nil || st.Replay.Filled == 0 || st.Stale != 0 {
		t.Errorf("live ingest stats: OLR %+v MSR %+v engine %+v replay %+v", olr, msr, st.Engine, st.Replay)
	}

	code, _, capLog := fastfeed(t, ctx, bin, "ingest", "--moex-config", cfg, "--market", "FOND", "--map-source", srcMap,
		"--capture", p("moex.pcap"), "--dump-books", p("cap-books.jsonl"), "--dump-trades", p("cap-trades.jsonl"), "--stats-out", p("cap-stats.json"))
	if code != 0 {
		t.Fatalf("ingest --capture: exit %d\n%s", code, capLog)
	}
	same("capture", p("cap-books.jsonl"), p("cap-trades.jsonl"))
	var cs roles.IngestStats
	readJSONInto(t, p("cap-stats.json"), &cs)
	if c := cs.Channels["OLR"]; c.RecoveredAB == 0 || c.SnapshotGaps == 0 || cs.Engine.BooksRecovered == 0 || cs.Engine.WrongSource != 0 {
		t.Errorf("capture ingest stats: OLR %+v engine %+v", c, cs.Engine)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
