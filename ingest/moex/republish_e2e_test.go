package moex_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/ingest/moex"
	"fastfeed/roles"
)

// logBuffer is a log that tests read while the command writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) waitFor(t *testing.T, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func readDumpFile(t *testing.T, path string) book.Dump {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := book.ReadDump(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestIngestRepublishEndToEnd: a synthetic MOEX capture -> fastfeed ingest --republish
// (its FIX recovery service, --nats embedded) -> fastfeed feed --all, unchanged, losing 5%
// of the bus's datagrams on purpose and recovering them from ingest's recovery service,
// and a NATS consumer; ingest's --http serves the books. The handler's --dump-books and the consumer's books equal
// ingest's --dump-books (the books as republished), every book whole.
func TestIngestRepublishEndToEnd(t *testing.T) {
	data, syms := moex.RepublishCaptureForTest(t, 11)
	dir := t.TempDir()
	capture := filepath.Join(dir, "moex.pcapng")
	if err := os.WriteFile(capture, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fixAddr, natsAddr, httpAddr := freePort(t), freePort(t), freePort(t)
	ingestDump, feedDump := filepath.Join(dir, "ingest.jsonl"), filepath.Join(dir, "feed.jsonl")
	ingestStats, feedStats := filepath.Join(dir, "ingest-stats.json"), filepath.Join(dir, "feed-stats.json")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	var feedLog, ingestLog logBuffer
	feedDone := make(chan error, 1)
	go func() {
		feedDone <- roles.Feed(ctx, []string{"--all", "--fix-connect", fixAddr, "--duration", "8s",
			"--inject-loss", "0.05", "--inject-seed", "7", "--dump-books", feedDump, "--stats-out", feedStats}, &feedLog, &feedLog)
	}()
	feedLog.waitFor(t, "feed handler started", 20*time.Second)

	ictx, icancel := context.WithCancel(ctx)
	defer icancel()
	ingestDone := make(chan error, 1)
	go func() {
		ingestDone <- roles.Ingest(ictx, []string{"--moex-config", moex.ConformanceConfigForTest, "--market", "FOND",
			"--capture", capture, "--republish", "--capture-rate", "1000", "--capture-batch", "8",
			"--fix-listen", fixAddr, "--linger", "40s", "--nats", "embedded", "--nats-listen", natsAddr,
			"--http", httpAddr, "--dump-books", ingestDump, "--stats-out", ingestStats}, &ingestLog, &ingestLog)
	}()
	ingestLog.waitFor(t, "books dumped", 30*time.Second) // the input has ended: the dump is written

	// The NATS consumer, while ingest lingers.
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatalf("%v\n%s", err, ingestLog.String())
	}
	defer nc.Close()
	cons, err := natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: nc, Patterns: []feed.Pattern{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cons.Stop()

	if err := <-feedDone; err != nil {
		t.Fatalf("feed: %v\n%s", err, feedLog.String())
	}
	want := readDumpFile(t, ingestDump)
	if len(want) != len(syms) {
		t.Fatalf("ingest dumped %d books, want %d", len(want), len(syms))
	}
	for _, b := range want {
		if b.Stale {
			t.Errorf("%s stale at the end", b.Symbol)
		}
	}
	if d := book.DiffDumps(readDumpFile(t, feedDump), want); d != "" {
		t.Errorf("the handler's books differ from ingest's:\n%s\nfeed log:\n%s", d, feedLog.String())
	}
	var fst feed.Stats
	raw, err := os.ReadFile(feedStats)
	if err == nil {
		err = json.Unmarshal(raw, &fst)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Recovered over FIX: retransmissions, or snapshots (263=0) where a hole came with a
	// late join.
	if fst.InjectedLoss == 0 || fst.RecoveredFIX+fst.SnapshotsDone == 0 || fst.StaleBooks != 0 {
		t.Errorf("feed counters %+v", fst)
	}
	t.Logf("feed: injected loss %d, gaps %d, recovered by FIX %d, snapshots %d", fst.InjectedLoss, fst.Gaps, fst.RecoveredFIX, fst.SnapshotsDone)

	deadline := time.Now().Add(30 * time.Second)
	for {
		var got book.Dump
		if err := cons.Do(ctx, func() { got = cons.Dump() }); err != nil {
			t.Fatal(err)
		}
		d := book.DiffDumps(got, want)
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS consumer's books differ from ingest's:\n%s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The operator's view: the books as republished.
	resp, err := http.Get("http://" + httpAddr + "/api/books")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || strings.Count(string(body), "\n") != len(syms) {
		t.Errorf("/api/books: %v %d %q", err, resp.StatusCode, body)
	}

	icancel() // ends the linger
	if err := <-ingestDone; err != nil {
		t.Fatalf("ingest: %v\n%s", err, ingestLog.String())
	}
	var ist roles.IngestStats
	raw, err = os.ReadFile(ingestStats)
	if err == nil {
		err = json.Unmarshal(raw, &ist)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r := ist.Republish; r == nil || r.Instruments != uint64(len(syms)) || r.Bus.Requests == 0 || r.Bus.Retransmitted+r.Bus.Snapshots == 0 {
		t.Errorf("ingest's republish counters %+v", ist.Republish)
	}
}
