package fixsession

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/quickfixgo/quickfix"
)

// backend is one quickfix acceptor behind a guard, listening on a loopback port.
type backend struct {
	addr string
	qf   *quickfix.Acceptor
	stop func() // stops qf; called once

	refs             int // relays using it
	retired, stopped bool
}

// backendRetry is the wait before another attempt to start a backend after one failed.
const backendRetry = time.Second

// backends are the quickfix acceptors of a guard: the current one, which takes new
// connections, and retired ones still serving their sessions. quickfix v0.9.7's accept
// loop ends on its first accept error and cannot be restarted, so a backend whose loop
// has ended is retired and replaced by a new one, started when next needed.
type backends struct {
	g     *guard
	start func() (*backend, error)
	// beforeDial, if set, is called before each connection to a backend (tests).
	beforeDial func()

	bmu      sync.Mutex
	cur      *backend
	all      map[*backend]bool // not stopped yet
	closed   bool
	nextTry  time.Time // after a failed start
	stopping sync.WaitGroup
}

func (bs *backends) init(g *guard, start func() (*backend, error)) {
	bs.g, bs.start, bs.all = g, start, make(map[*backend]bool)
}

// setCurrent makes b, started by the caller, the current backend.
func (bs *backends) setCurrent(b *backend) {
	bs.bmu.Lock()
	bs.cur = b
	bs.all[b] = true
	bs.bmu.Unlock()
}

// acquire returns the current backend, started if there is none, for one more relay;
// the relay releases it when done.
func (bs *backends) acquire() (*backend, error) {
	bs.bmu.Lock()
	defer bs.bmu.Unlock()
	if bs.closed {
		return nil, errors.New("acceptor stopping")
	}
	if bs.cur == nil {
		if now := time.Now(); now.Before(bs.nextTry) {
			return nil, fmt.Errorf("quickfix failed to start, next attempt in %v", bs.nextTry.Sub(now).Round(time.Millisecond))
		}
		b, err := bs.start()
		if err != nil {
			bs.g.app.stats.backendFailures.Add(1)
			bs.nextTry = time.Now().Add(backendRetry)
			bs.g.app.logger.Error("fix acceptor: quickfix failed to start, retrying at the next connection", "error", err, "retry_after", backendRetry)
			return nil, err
		}
		bs.g.app.logger.Info("fix acceptor: quickfix restarted", "backend", b.addr)
		bs.cur = b
		bs.all[b] = true
	}
	bs.cur.refs++
	return bs.cur, nil
}

// release ends a relay's use of b.
func (bs *backends) release(b *backend) {
	bs.bmu.Lock()
	defer bs.bmu.Unlock()
	b.refs--
	bs.stopIfDone(b)
}

// retire takes b out of service for new connections because of err; it is stopped when
// its last relay ends.
func (bs *backends) retire(b *backend, err error) {
	bs.bmu.Lock()
	defer bs.bmu.Unlock()
	if b.retired {
		return
	}
	b.retired = true
	if bs.cur == b {
		bs.cur = nil
		bs.g.app.stats.backendRestarts.Add(1)
		bs.g.app.logger.Warn("fix acceptor: quickfix stopped accepting, starting another", "backend", b.addr, "error", err)
	}
	bs.stopIfDone(b)
}

// stopIfDone stops b, retired, once no relay uses it. bs.bmu is held.
func (bs *backends) stopIfDone(b *backend) {
	if !b.retired || b.refs > 0 || b.stopped {
		return
	}
	b.stopped = true
	delete(bs.all, b)
	bs.stopping.Add(1)
	go func() {
		defer bs.stopping.Done()
		b.stop()
	}()
}

// stopAll stops every backend, logging out their sessions, and starts no more.
func (bs *backends) stopAll() {
	bs.bmu.Lock()
	bs.closed = true
	var todo []*backend
	for b := range bs.all {
		b.stopped = true
		todo = append(todo, b)
	}
	clear(bs.all)
	bs.cur = nil
	bs.bmu.Unlock()
	for _, b := range todo {
		b.stop()
	}
}

// wait waits for the stops of retired backends.
func (bs *backends) wait() { bs.stopping.Wait() }

// isRefused reports whether err is a refused connection: nothing listens any more.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
