package scenario

import (
	"bytes"
	"net"
	"sync"
)

// faultRelay is a TCP relay between FIX recovery clients and the recovery service, for
// the scenarios: it can "kill" the service as the clients see it (every connection reset,
// the port refusing connections) and bring it back, and cut the sessions once in the
// middle of a replay. It watches the FIX stream only for message types; it does not
// parse or change it.
type faultRelay struct {
	listen, target string

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
	requests int    // MarketDataRequests (35=V) from clients
	replies  int    // incrementals (35=X) to clients since the relay started
	trigger  int    // run onReq at this request count
	onReq    func() // run once, without the lock held
	cutAt    int    // cut every session when replies reaches this (0: never)
	kills    int
	cuts     int
	wg       sync.WaitGroup
	closed   bool
	accepted chan struct{}
}

func newFaultRelay(listen, target string) (*faultRelay, error) {
	r := &faultRelay{listen: listen, target: target, conns: map[net.Conn]bool{}}
	return r, r.restart()
}

// onRequest runs fn (once) when the n-th MarketDataRequest has been passed on.
func (r *faultRelay) onRequest(n int, fn func()) {
	r.mu.Lock()
	r.trigger, r.onReq = n, fn
	r.mu.Unlock()
}

// cutAfterReplies resets every session once, when n incremental refreshes (35=X, the
// retransmitted messages) have been passed to the clients.
func (r *faultRelay) cutAfterReplies(n int) {
	r.mu.Lock()
	r.cutAt = n
	r.mu.Unlock()
}

// counts returns how many times the relay was killed and the sessions cut.
func (r *faultRelay) counts() (kills, cuts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kills, r.cuts
}

// restart listens again after kill (or for the first time).
func (r *faultRelay) restart() error {
	ln, err := net.Listen("tcp", r.listen)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	r.ln = ln
	r.wg.Add(1)
	r.mu.Unlock()
	go r.accept(ln)
	return nil
}

// kill resets every connection and stops listening: to a client, the service crashed.
func (r *faultRelay) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kills++
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	r.resetLocked()
}

func (r *faultRelay) resetLocked() {
	for c := range r.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as from a dead process's kernel
		}
		c.Close()
		delete(r.conns, c)
	}
}

// Close stops the relay and waits for its goroutines.
func (r *faultRelay) Close() {
	r.mu.Lock()
	r.closed = true
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	r.resetLocked()
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *faultRelay) accept(ln net.Listener) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		if r.ln != ln { // killed meanwhile
			r.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		r.conns[c], r.conns[s] = true, true
		r.wg.Add(2)
		r.mu.Unlock()
		go r.pipe(s, c, "\x0135=V\x01", r.sawRequest)
		go r.pipe(c, s, "\x0135=X\x01", r.sawReply)
	}
}

// pipe copies src to dst until either fails, calling seen for each occurrence of
// pattern in the stream (found across reads), then closes both.
func (r *faultRelay) pipe(dst, src net.Conn, pattern string, seen func()) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, dst)
		delete(r.conns, src)
		r.mu.Unlock()
		dst.Close()
		src.Close()
	}()
	buf := make([]byte, 32<<10)
	var carry []byte // the end of the previous read, for a pattern split across reads
	for {
		n, err := src.Read(buf)
		if n > 0 {
			window := append(carry, buf[:n]...)
			for i := 0; ; {
				j := bytes.Index(window[i:], []byte(pattern))
				if j < 0 {
					break
				}
				seen()
				i += j + len(pattern)
			}
			keep := min(len(window), len(pattern)-1)
			carry = append(carry[:0], window[len(window)-keep:]...)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a reset: the other direction is closed with it
		}
	}
}

func (r *faultRelay) sawRequest() {
	r.mu.Lock()
	r.requests++
	var fn func()
	if r.onReq != nil && r.requests >= r.trigger {
		fn, r.onReq = r.onReq, nil
	}
	r.mu.Unlock()
	if fn != nil {
		go fn() // not on the pipe: it closes this very connection
	}
}

func (r *faultRelay) sawReply() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies++
	if r.cutAt > 0 && r.replies == r.cutAt {
		r.cuts++
		r.resetLocked()
	}
}
