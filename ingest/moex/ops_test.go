package moex

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/replay"
)

// TestDoWhileRunning: reads through Do while RunCapture feeds the engine run on its
// goroutine (go test -race checks that they do not race with the datagrams): they see
// the counters only grow, and once the run is over Do runs at once and sees the final
// books. A Do whose context ends returns its error.
func TestDoWhileRunning(t *testing.T) {
	data, _ := benchCapture(t, 5000)
	e, err := NewEngine(fond(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := RunCapture(context.Background(), r, e)
		done <- err
	}()
	var reads, during int
	var last uint64
	ctx := context.Background()
	for running := true; running; reads++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		var st Stats
		var conns []ConnectionOps
		var books string
		if err := e.Do(ctx, func() {
			st, conns = e.Stats(), e.Connections()
			if running && reads%8 != 0 {
				return
			}
			var b strings.Builder
			if err := WriteBooks(&b, e); err != nil {
				t.Error(err)
			}
			books = b.String()
		}); err != nil {
			t.Fatal(err)
		}
		if st.Datagrams < last {
			t.Fatalf("datagrams went from %d to %d", last, st.Datagrams)
		}
		if st.Datagrams > 0 && running {
			during++
		}
		last = st.Datagrams
		var sum uint64
		for _, c := range conns {
			sum += c.Datagrams[0] + c.Datagrams[1]
		}
		if sum > st.Datagrams {
			t.Fatalf("connections count %d datagrams of %d", sum, st.Datagrams)
		}
		if !running && books != dumpBooks(t, e) {
			t.Errorf("Do after the run read other books than the engine's")
		}
	}
	if last != e.Stats().Datagrams || last == 0 {
		t.Errorf("the last read saw %d datagrams, the engine %d", last, e.Stats().Datagrams)
	}
	t.Logf("%d reads, %d while the capture ran", reads, during)

	// A run loop that is serving but busy: a Do with an ended context gives up.
	e.startServing(nil)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := e.Do(cctx, func() {}); err != context.DeadlineExceeded {
		t.Errorf("Do with nobody serving and an ended context: %v", err)
	}
	e.stopServing() // runs the abandoned function
	if n := e.ops.pending.Load(); n != 0 {
		t.Errorf("%d functions left queued", n)
	}
}

// BenchmarkOpsRead: how long a read of the operator's view (fastfeed ingest --http) stops
// the engine's loop, on 3,000 instruments: the page's sample (counters, connections, book
// counts and stale books, four books at depth 10), and, for comparison, the sorted list of
// every instrument that a first version scanned for the stale books.
func BenchmarkOpsRead(b *testing.B) {
	data, symbols := benchCapture(b, 60000)
	e, err := NewEngine(fond(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	r, err := replay.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := RunCapture(context.Background(), r, e); err != nil {
		b.Fatal(err)
	}
	watched := symbols[:4]
	b.Run("sample", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = e.Stats()
			_ = e.Connections()
			books, stale := e.BookCounts()
			if books == 0 || len(stale) != 0 {
				b.Fatalf("%d books, %d stale", books, len(stale))
			}
			for _, s := range watched {
				in, _ := e.Instrument(s)
				_ = book.DumpDepth(s, in.Book, 10)
			}
		}
	})
	b.Run("sorted-instruments", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, in := range e.Instruments() {
				if in.Book != nil && in.Book.Stale() {
					n++
				}
			}
		}
	})
}
