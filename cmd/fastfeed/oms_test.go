package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/internal/fixsession"
	"fastfeed/roles"
)

func readOMSStats(t *testing.T, path string) roles.OMSStats {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s roles.OMSStats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// TestOMSEntitlements runs a handler serving OMS clients over FIX (--serve-fix, users from
// fixtures/bus.json), two `fastfeed oms` clients with different entitlements subscribing
// to overlapping sets, and a publisher, each a separate process in the test's private
// network namespace. Each client's books, rebuilt only from what it received, must equal
// the handler's for exactly the instruments it is entitled to; bad requests are rejected
// with reasons.
func TestOMSEntitlements(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topics := []string{"AAPL", "GAZP", "GMKN", "LKOH", "MSFT", "NVDA", "SBER", "USD000UTSTOM"}
	path := func(name string) string { return filepath.Join(dir, name) }
	h := start(t, ctx, bin, "feed", "--topics", strings.Join(topics, ","), "--serve-fix", "127.0.0.1:9871",
		"--fix-max-connections", "16", "--fix-max-connections-per-source", "4", "--fix-max-logon-size", "2048", "--fix-logon-timeout", "3s",
		"--duration", "14s", "--dump-books", path("feed.jsonl"), "--stats-out", path("feed.json"))
	h.waitFor(t, "feed handler started")
	// demo is entitled to everything; equities to SBER GAZP LKOH AAPL MSFT NVDA.
	demo := start(t, ctx, bin, "oms", "--username", "demo", "--password", "demo", "--comp-id", "OMS-DEMO",
		"--subscribe", "SB*,G*,SBER", "--duration", "10s", "--interval", "0",
		"--dump-books", path("demo.jsonl"), "--stats-out", path("demo.json"))
	eq := start(t, ctx, bin, "oms", "--username", "equities", "--password", "equities", "--comp-id", "OMS-EQ",
		"--subscribe", "*,SB*,USD000UTSTOM,NOPE", "--duration", "10s", "--interval", "0",
		"--dump-books", path("eq.jsonl"), "--stats-out", path("eq.json"))
	demo.waitFor(t, "oms request sent")
	eq.waitFor(t, "oms request sent")
	p := start(t, ctx, bin, "pub", "--instruments", "8", "--count", "2000", "--rate", "1000", "--dump-books", path("pub.jsonl"))
	p.wait(t, "pub")
	demo.wait(t, "oms demo")
	eq.wait(t, "oms equities")
	h.wait(t, "feed")

	fed, truth := readDump(t, path("feed.jsonl")), readDump(t, path("pub.jsonl"))
	if d := book.DiffDumps(fed, subset(truth, topics)); d != "" {
		t.Fatalf("handler's books differ from the publisher's:\n%s", d)
	}
	for _, c := range []struct {
		name    string
		symbols []string
		rejects []string
	}{
		{"demo", []string{"GAZP", "GMKN", "SBER"}, nil},
		{"eq", []string{"AAPL", "GAZP", "LKOH", "MSFT", "NVDA", "SBER"}, []string{
			`oms-3 3 insufficient permissions user "equities" is not entitled to "USD000UTSTOM"`,
			`oms-4 0 unknown symbol unknown symbol "NOPE"`,
		}},
	} {
		got := readDump(t, path(c.name+".jsonl"))
		if d := book.DiffDumps(got, subset(fed, c.symbols)); d != "" {
			t.Errorf("%s: books differ from the handler's for %v:\n%s", c.name, c.symbols, d)
		}
		st := readOMSStats(t, path(c.name+".json"))
		var rejects []string
		for _, r := range st.Rejects {
			rejects = append(rejects, r.MDReqID+" "+r.Reason+" "+r.Text)
		}
		slices.Sort(rejects)
		if !slices.Equal(rejects, c.rejects) {
			t.Errorf("%s: rejects %q, want %q", c.name, rejects, c.rejects)
		}
		if st.Gaps != 0 || st.Entries == 0 || st.Duplicates == 0 || len(st.Errors) != 0 {
			t.Errorf("%s: %+v", c.name, st)
		}
	}
	if st := readStats(t, path("feed.json")); st.Gaps != 0 || st.KernelDrops != 0 || st.StaleBooks != 0 {
		t.Errorf("handler counters %+v", st)
	}
	b, err := os.ReadFile(path("feed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var oms struct {
		FIX *fixsession.AcceptorStats `json:"oms_fix"`
	}
	if err := json.Unmarshal(b, &oms); err != nil || oms.FIX == nil {
		t.Fatalf("feed --stats-out without oms_fix (%v): %s", err, b)
	}
	if oms.FIX.Connections < 2 || oms.FIX.Refused != 0 || oms.FIX.Malformed != 0 || oms.FIX.LogonsRefused != 0 {
		t.Errorf("oms_fix %+v, want the 2 clients' connections and nothing refused", *oms.FIX)
	}
	if !strings.Contains(h.stderr.String(), "max_connections=16 max_connections_per_source=4 max_logon_size=2048 logon_timeout=3s") {
		t.Errorf("the OMS service did not log the limits of the command line:\n%s", h.stderr.String())
	}
}
