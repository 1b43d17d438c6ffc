package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
)

// TestNATSEndToEnd runs, each as a separate process in the test's private network
// namespace: a handler publishing on an embedded NATS server (feed --nats embedded), a
// FIX gateway fed from NATS (gateway), an OMS subscribing over NATS directly (oms
// --nats), an OMS subscribing over FIX to the gateway, and the publisher. Every
// client's books, rebuilt only from what it received, equal the publisher's ground truth
// for its instruments.
func TestNATSEndToEnd(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topics := []string{"AAPL", "GAZP", "GMKN", "LKOH", "MSFT", "NVDA", "SBER", "USD000UTSTOM"}
	path := func(name string) string { return filepath.Join(dir, name) }
	const url = "nats://127.0.0.1:4222"
	feedHTTP := freeAddr(t)
	h := start(t, ctx, bin, "feed", "--topics", strings.Join(topics, ","), "--nats", "embedded", "--nats-snapshot-every", "500ms",
		"--duration", "13s", "--http", feedHTTP, "--dump-books", path("feed.jsonl"), "--stats-out", path("feed.json"))
	h.waitFor(t, "feed handler started")
	gw := start(t, ctx, bin, "gateway", "--nats", url, "--serve-fix", "127.0.0.1:9872", "--duration", "12s",
		"--stats-out", path("gw.json"), "--dump-books", path("gw.jsonl"))
	gw.waitFor(t, "gateway started")
	direct := start(t, ctx, bin, "oms", "--nats", url, "--subscribe", "SB*,GAZP", "--duration", "10s", "--interval", "0",
		"--dump-books", path("direct.jsonl"), "--stats-out", path("direct.json"))
	viaGW := start(t, ctx, bin, "oms", "--connect", "127.0.0.1:9872", "--username", "equities", "--password", "equities",
		"--comp-id", "OMS-GW", "--subscribe", "*", "--duration", "10s", "--interval", "0", "--dump-books", path("viagw.jsonl"),
		"--stats-out", path("viagw.json"))
	direct.waitFor(t, "oms subscribed over NATS")
	viaGW.waitFor(t, "oms request sent")
	p := start(t, ctx, bin, "pub", "--instruments", "8", "--count", "2000", "--rate", "1000", "--dump-books", path("pub.jsonl"))
	p.wait(t, "pub")
	// feed --nats --http: its publisher's connection and counters in /metrics.
	if code, body := httpGet(t, "http://"+feedHTTP+"/metrics"); code != 200 ||
		!strings.Contains(body, `fastfeed_nats_sessions{role="feed"} 1`+"\n") ||
		!strings.Contains(body, `fastfeed_nats_session_state{role="feed",session="publisher",state="connected"} 1`+"\n") ||
		!regexp.MustCompile(`fastfeed_nats_messages_total\{role="feed"\} [1-9]`).MatchString(body) {
		t.Errorf("feed --nats /metrics: %d\n%s", code, body)
	}
	direct.wait(t, "oms --nats")
	viaGW.wait(t, "oms via the gateway")
	gw.wait(t, "gateway")
	h.wait(t, "feed")

	truth := readDump(t, path("pub.jsonl"))
	for _, c := range []struct {
		name    string
		symbols []string
	}{
		{"feed", topics},
		{"gw", topics},
		{"direct", []string{"GAZP", "SBER"}},
		{"viagw", []string{"AAPL", "GAZP", "LKOH", "MSFT", "NVDA", "SBER"}},
	} {
		if d := book.DiffDumps(readDump(t, path(c.name+".jsonl")), subset(truth, c.symbols)); d != "" {
			t.Errorf("%s: books differ from the publisher's ground truth:\n%s", c.name, d)
		}
	}
	var fs struct {
		natsbus.PublisherStats
		Gaps uint64 `json:"gaps"`
	}
	readJSONInto(t, path("feed.json"), &fs)
	if fs.Messages == 0 || fs.Entries == 0 || fs.Conflations != 0 || fs.PublishErrors != 0 {
		t.Errorf("feed's NATS counters: %+v", fs.PublisherStats)
	}
	var ds natsbus.ConsumerStats
	readJSONInto(t, path("direct.json"), &ds)
	if ds.Instruments != 2 || ds.Entries == 0 || ds.ParseErrors != 0 {
		t.Errorf("oms --nats counters: %+v", ds)
	}
	if st := readOMSStats(t, path("viagw.json")); st.Gaps != 0 || st.Entries == 0 || len(st.Errors) != 0 || len(st.Rejects) != 0 {
		t.Errorf("oms via the gateway: %+v", st)
	}
}

func readJSONInto(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
