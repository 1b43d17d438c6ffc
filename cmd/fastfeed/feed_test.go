package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/internal/cpupin"
	"fastfeed/internal/netns"
)

// process is a fastfeed child process in the test's namespace.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func start(t *testing.T, ctx context.Context, bin string, args ...string) *process {
	t.Helper()
	cmd, err := netns.Command(ctx, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = filepath.Join("..", "..")
	p := &process{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	return p
}

// waitFor waits until the process logs want.
func (p *process) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *process) wait(t *testing.T, name string) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop\n%s", name, p.stderr.String())
	}
}

func readDump(t *testing.T, path string) book.Dump {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := book.ReadDump(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

func readStats(t *testing.T, path string) feed.Stats {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s feed.Stats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// subset keeps the books of symbols.
func subset(d book.Dump, symbols []string) book.Dump {
	var out book.Dump
	for _, s := range symbols {
		if b, ok := d.Lookup(s); ok {
			out = append(out, b)
		}
	}
	return out
}

// runPubAndFeed runs a publisher of n instruments for count datagrams and a handler with
// feedArgs started before it, and returns the two dumps and the handler's counters.
func runPubAndFeed(t *testing.T, n, count int, pubArgs, feedArgs []string) (pub, fed book.Dump, st feed.Stats) {
	t.Helper()
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedDump, pubDump, stats := filepath.Join(dir, "feed.jsonl"), filepath.Join(dir, "pub.jsonl"), filepath.Join(dir, "stats.json")
	h := start(t, ctx, bin, append([]string{"feed", "--dump-books", feedDump, "--stats-out", stats}, feedArgs...)...)
	h.waitFor(t, "feed handler started")
	p := start(t, ctx, bin, append([]string{"pub", "--instruments", strconv.Itoa(n), "--count", strconv.Itoa(count), "--dump-books", pubDump}, pubArgs...)...)
	p.wait(t, "pub")
	h.wait(t, "feed")
	return readDump(t, pubDump), readDump(t, feedDump), readStats(t, stats)
}

// TestFeedFollowsPublisher runs a publisher and a handler as separate processes in a
// private network namespace; the handler's books must equal the publisher's ground truth
// for the topics it follows.
func TestFeedFollowsPublisher(t *testing.T) {
	cpus, err := cpupin.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		topics []string
		extra  []string
	}{
		{"subset", []string{"SBER", "LKOH", "AAPL"}, nil},
		{"all topics", []string{"AAPL", "GAZP", "GMKN", "LKOH", "MSFT", "NVDA", "SBER", "USD000UTSTOM"}, nil},
		{"busy poll pinned", []string{"SBER", "GAZP"}, []string{"--busy-poll", "--cpu", strconv.Itoa(cpus[0])}},
		{"shared sockets", []string{"AAPL", "GAZP", "GMKN", "LKOH", "MSFT", "NVDA", "SBER", "USD000UTSTOM"}, []string{"--shared-sockets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, fed, st := runPubAndFeed(t, 8, 3000,
				[]string{"--rate", "3000"},
				append([]string{"--topics", strings.Join(tc.topics, ","), "--duration", "4s"}, tc.extra...))
			want := subset(pub, tc.topics)
			if len(want) != len(tc.topics) {
				t.Fatalf("the publisher's dump has %d of the %d topics", len(want), len(tc.topics))
			}
			if d := book.DiffDumps(fed, want); d != "" {
				t.Fatalf("books differ from ground truth:\n%s", d)
			}
			if st.Messages == 0 || st.Gaps != 0 || st.DecodeErrors != 0 || st.StaleBooks != 0 || st.KernelDrops != 0 {
				t.Errorf("counters %+v", st)
			}
		})
	}
}
