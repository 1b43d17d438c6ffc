package main

import (
	"strings"
	"testing"

	"fastfeed/book"
)

// TestFeedRecovers runs the handler with its own injected receive faults (loss,
// reordering and duplication together); its books must end equal to the publisher's
// ground truth and its counters must say how they got there. The scenarios of
// scenario.go cover bursts, snapshots, late joins, restarts and FIX faults.
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
