package publisher

import (
	"context"
	"slices"
	"sync"
)

// turns hands out turns, at most n at once, in the order they were asked for:
// a session that had its turn and asks again waits behind every session that
// asked meanwhile, so sessions with work take turns round robin. A waiter
// blocks on a channel of its own; nothing polls.
type turns struct {
	mu      sync.Mutex
	free    int
	waiting []chan struct{} // in the order asked; closed to grant
}

func newTurns(n int) *turns { return &turns{free: max(n, 1)} }

// acquire waits for a turn, or until ctx ends. A turn acquired must be released.
func (t *turns) acquire(ctx context.Context) error {
	t.mu.Lock()
	if t.free > 0 && len(t.waiting) == 0 {
		t.free--
		t.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	t.waiting = append(t.waiting, ch)
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		if i := slices.Index(t.waiting, ch); i >= 0 {
			t.waiting = slices.Delete(t.waiting, i, i+1)
			t.mu.Unlock()
			return ctx.Err()
		}
		t.mu.Unlock()
		t.release() // granted meanwhile: pass it on
		return ctx.Err()
	}
}

// release ends a turn, handing it to the longest waiter.
func (t *turns) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.waiting) > 0 {
		close(t.waiting[0])
		t.waiting = slices.Delete(t.waiting, 0, 1)
		return
	}
	t.free++
}
