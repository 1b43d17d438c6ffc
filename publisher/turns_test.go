package publisher

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// waiters returns how many wait for a turn.
func (t *turns) waiters() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.waiting)
}

func waitWaiters(t *testing.T, tu *turns, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); tu.waiters() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting for a turn, want %d", tu.waiters(), n)
		}
	}
}

// TestTurnsRoundRobin checks that sessions that each want several turns get them in
// turn, A B C A B C, not one session all its turns first; that a waiter that gives up
// takes no turn from the others; and that n turns run at once.
func TestTurnsRoundRobin(t *testing.T) {
	ctx := context.Background()
	tu := newTurns(1)
	if err := tu.acquire(ctx); err != nil { // held while the sessions line up
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order strings.Builder
	var wg sync.WaitGroup
	for i, name := range []string{"A", "B", "C"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if err := tu.acquire(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order.WriteString(name)
				mu.Unlock()
				tu.release()
			}
		}()
		waitWaiters(t, tu, i+1)
	}
	// A waiter that gives up leaves its place to the others.
	gaveUp, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- tu.acquire(gaveUp) }()
	waitWaiters(t, tu, 4)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire after its context ended: %v", err)
	}
	tu.release()
	wg.Wait()
	if got, want := order.String(), "ABCABCABCABC"; got != want {
		t.Errorf("turns taken in the order %s, want %s", got, want)
	}
	if tu.free != 1 || tu.waiters() != 0 {
		t.Errorf("after every release: %d free, %d waiting; want 1 and 0", tu.free, tu.waiters())
	}

	// Serving 2: two turns at once, a third waits.
	two := newTurns(2)
	for range 2 {
		if err := two.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	third := make(chan error, 1)
	go func() { third <- two.acquire(ctx) }()
	waitWaiters(t, two, 1)
	two.release()
	if err := <-third; err != nil {
		t.Fatal(err)
	}
}
