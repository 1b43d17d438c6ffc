package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
)

// TestFeedRecovers runs the handler with its own injected receive faults, and with
// scenarios where only snapshots can help; in every case its books must end equal to the
// publisher's ground truth and its counters must say how they got there.
func TestFeedRecovers(t *testing.T) {
	symbols := []string{"AAPL", "GAZP", "GMKN", "LKOH", "MSFT", "NVDA", "SBER", "USD000UTSTOM"}
	topics := strings.Join(symbols, ",")
	t.Run("loss, reorder and duplication recovered over FIX", func(t *testing.T) {
		pub, fed, st := runPubAndFeed(t, 8, 4000,
			[]string{"--rate", "2000", "--fix-listen", "127.0.0.1:9870", "--linger", "4s"},
			[]string{"--topics", topics, "--fix-connect", "127.0.0.1:9870", "--duration", "6s",
				"--inject-loss", "0.03", "--inject-reorder", "0.02", "--inject-dup", "0.02", "--inject-seed", "3"})
		if d := book.DiffDumps(fed, subset(pub, symbols)); d != "" {
			t.Fatalf("books differ from ground truth:\n%s", d)
		}
		if st.InjectedLoss == 0 || st.Gaps == 0 || st.RecoveredFIX == 0 || st.Duplicates == 0 || st.StaleBooks != 0 {
			t.Errorf("counters %+v", st)
		}
	})
	t.Run("retention too short: snapshots", func(t *testing.T) {
		pub, fed, st := runPubAndFeed(t, 8, 4000,
			[]string{"--rate", "2000", "--fix-listen", "127.0.0.1:9870", "--linger", "4s", "--retention", "8"},
			[]string{"--topics", topics, "--fix-connect", "127.0.0.1:9870", "--duration", "6s",
				"--inject-loss", "0.05", "--inject-seed", "5", "--gap-wait", "20ms"})
		if d := book.DiffDumps(fed, subset(pub, symbols)); d != "" {
			t.Fatalf("books differ from ground truth:\n%s", d)
		}
		if st.SnapshotsDone == 0 || st.RecoveryFails == 0 || st.StaleBooks != 0 {
			t.Errorf("counters %+v", st)
		}
	})
}

// TestFeedLateJoin starts the handler while the publisher is already running; it must
// buffer, ask for snapshots and converge.
func TestFeedLateJoin(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedDump, pubDump, stats := filepath.Join(dir, "feed.jsonl"), filepath.Join(dir, "pub.jsonl"), filepath.Join(dir, "stats.json")
	p := start(t, ctx, bin, "pub", "--instruments", "6", "--rate", "1000", "--count", "5000", "--dump-books", pubDump,
		"--fix-listen", "127.0.0.1:9870", "--linger", "3s", "--definitions-interval", "500ms")
	p.waitFor(t, "msg=publishing")
	time.Sleep(time.Second) // a second of data the handler never sees
	h := start(t, ctx, bin, "feed", "--all", "--fix-connect", "127.0.0.1:9870", "--duration", "7s",
		"--dump-books", feedDump, "--stats-out", stats)
	p.wait(t, "pub")
	h.wait(t, "feed")
	want, got, st := readDump(t, pubDump), readDump(t, feedDump), readStats(t, stats)
	if d := book.DiffDumps(got, want); d != "" {
		t.Fatalf("books differ from ground truth:\n%s", d)
	}
	if st.SnapshotsDone == 0 || st.Instruments != 6 || st.StaleBooks != 0 {
		t.Errorf("counters %+v", st)
	}
}

// TestFeedSingleGroup puts every topic on one group: the handler filters other topics'
// entries, and snapshot recovery must cope with the instruments of one channel.
func TestFeedSingleGroup(t *testing.T) {
	pub, fed, st := runPubAndFeed(t, 24, 3000,
		[]string{"--rate", "2000", "--single-group", "--group-base", "239.1.1.1", "--fix-listen", "127.0.0.1:9870", "--linger", "4s"},
		[]string{"--topics", "SBER,GAZP,LKOH", "--single-group", "--group-base", "239.1.1.1", "--fix-connect", "127.0.0.1:9870",
			"--duration", "6s", "--inject-loss", "0.05", "--inject-seed", "9"})
	if d := book.DiffDumps(fed, subset(pub, []string{"GAZP", "LKOH", "SBER"})); d != "" {
		t.Fatalf("books differ from ground truth:\n%s", d)
	}
	if st.Filtered == 0 || st.Channels != 1 || st.StaleBooks != 0 {
		t.Errorf("counters %+v", st)
	}
}

// TestFeedPublisherRestart restarts the publisher under a running handler: the new
// publisher's SequenceReset must clear the books, and the handler must end with the second
// publisher's books.
func TestFeedPublisherRestart(t *testing.T) {
	bin := fastfeedBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedDump, pubDump, stats := filepath.Join(dir, "feed.jsonl"), filepath.Join(dir, "pub.jsonl"), filepath.Join(dir, "stats.json")
	topics := "AAPL,GAZP,LKOH,MSFT,SBER"
	h := start(t, ctx, bin, "feed", "--topics", topics, "--duration", "6s", "--dump-books", feedDump, "--stats-out", stats)
	h.waitFor(t, "feed handler started")
	first := start(t, ctx, bin, "pub", "--instruments", "5", "--rate", "2000", "--count", "1500", "--seed", "1")
	first.wait(t, "first pub")
	second := start(t, ctx, bin, "pub", "--instruments", "5", "--rate", "2000", "--count", "1500", "--seed", "2", "--dump-books", pubDump)
	second.wait(t, "second pub")
	h.wait(t, "feed")
	want, got, st := readDump(t, pubDump), readDump(t, feedDump), readStats(t, stats)
	if d := book.DiffDumps(got, want); d != "" {
		t.Fatalf("books differ from the second publisher's:\n%s", d)
	}
	if st.Resets < 10 || st.StaleBooks != 0 || st.Gaps != 0 {
		t.Errorf("counters %+v", st)
	}
}
