package fixsession

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/quickfixgo/quickfix"
)

// Output flow. quickfix v0.9.7 writes a session's messages to its connection as fast as
// the socket takes them and, while its writer is blocked, spins in its session loop; it
// tells nobody how far the client has read. So the guard does not copy quickfix's output
// straight to the client: it reads it, message by message, into the connection's
// outQueue (at most maxQueued bytes; beyond that it stops reading, and quickfix waits),
// and a writer goroutine writes the queue to the client in pieces of writePiece bytes,
// counting what the client's socket took. An application that sends much (the
// publisher's recovery answers) keeps the queue short with WaitRoom, sees how fast a
// client reads with Written, and ends a client that reads too slowly with
// LogoutAndClose, whose Logout does not wait behind the answer the client is not reading.

const (
	// maxQueued bounds the bytes of quickfix's output queued for one client connection.
	maxQueued = 256 << 10
	// writePiece is the most bytes the writer hands the client's socket at once: its
	// progress (Written) is seen at that grain.
	writePiece = 4 << 10
	// closeGrace bounds the wait for the client to take the rest of its output once the
	// connection is ending (LogoutAndClose, or quickfix closed it after a Logout).
	closeGrace = 5 * time.Second
)

// errQueueClosed is returned by a wait on a connection whose output has ended.
var errQueueClosed = errors.New("connection closed")

// outQueue is the queue of quickfix's output for one client connection, and its writer.
type outQueue struct {
	conn  net.Conn // the client's
	grace time.Duration

	mu      sync.Mutex
	msgs    [][]byte // whole messages; msgs[0][head:] is not yet written
	head    int
	writing bool   // a piece of msgs[0] is being written
	queued  int    // bytes of msgs not yet written
	written uint64 // bytes the client's socket took
	dropped int    // messages dropped because the connection was ending
	closing bool   // LogoutAndClose: only a Logout (5) is queued from now on
	eof     bool   // quickfix's side ended: write what is queued, then close
	done    bool   // the writer has stopped; the client's connection is closed
	changed chan struct{}
}

func newOutQueue(conn net.Conn) *outQueue {
	return &outQueue{conn: conn, grace: closeGrace, changed: make(chan struct{})}
}

// broadcast wakes every waiter; q.mu is held.
func (q *outQueue) broadcast() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// push queues msg, one whole message, waiting while the queue is full. Once the
// connection is ending it queues only a Logout and drops the rest. It reports whether
// msg was queued.
func (q *outQueue) push(msg []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.queued >= maxQueued && !q.done && !q.closing {
		ch := q.changed
		q.mu.Unlock()
		<-ch
		q.mu.Lock()
	}
	if q.done || q.closing && msgType(msg) != "5" {
		q.dropped++
		return false
	}
	q.msgs = append(q.msgs, msg)
	q.queued += len(msg)
	q.broadcast()
	return true
}

// finish reports the end of quickfix's output: the writer writes what is queued, within
// q.grace, and closes the client's connection.
func (q *outQueue) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.eof {
		q.eof = true
		_ = q.conn.SetWriteDeadline(time.Now().Add(q.grace))
		q.broadcast()
	}
}

// beginClose drops every message not yet begun, lets only a Logout through from now on,
// and closes the client's connection once that Logout is written, or after q.grace.
func (q *outQueue) beginClose() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing || q.done {
		return
	}
	q.closing = true
	keep := 0
	if q.head > 0 || q.writing { // finish the message begun: the Logout must start on a message boundary
		keep = 1
	}
	for i := keep; i < len(q.msgs); i++ {
		q.queued -= len(q.msgs[i])
		q.msgs[i] = nil
		q.dropped++
	}
	q.msgs = q.msgs[:keep]
	_ = q.conn.SetWriteDeadline(time.Now().Add(q.grace))
	time.AfterFunc(q.grace, q.stop)
	q.broadcast()
}

// stop closes the client's connection now.
func (q *outQueue) stop() {
	q.mu.Lock()
	q.done = true
	q.broadcast()
	q.mu.Unlock()
	q.conn.Close()
}

// write writes the queue to the client until the connection ends, then closes it.
func (q *outQueue) write() {
	defer q.conn.Close()
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for len(q.msgs) == 0 && !q.eof && !q.done {
			ch := q.changed
			q.mu.Unlock()
			<-ch
			q.mu.Lock()
		}
		if q.done || len(q.msgs) == 0 { // stopped, or all written after the end
			q.done = true
			q.broadcast()
			return
		}
		msg := q.msgs[0]
		piece := msg[q.head:min(len(msg), q.head+writePiece)]
		q.writing = true
		q.mu.Unlock()
		n, err := q.conn.Write(piece)
		q.mu.Lock()
		q.writing = false
		q.head += n
		q.queued -= n
		q.written += uint64(n)
		if q.head == len(msg) {
			q.msgs[0] = nil
			q.msgs = q.msgs[1:]
			q.head = 0
			if q.closing && msgType(msg) == "5" {
				err = errQueueClosed // the Logout is out: close
			}
		}
		if err != nil {
			q.done = true
		}
		q.broadcast()
	}
}

// ended reports whether quickfix's side of the connection, or the client's, has ended.
func (q *outQueue) ended() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.eof || q.done
}

// waitInput waits while the queue is full: the guard reads no more of a client's
// messages while it does not take the answers to those already read, so a client that
// does not read cannot make the acceptor queue more (Rejects, Heartbeats) for it.
func (q *outQueue) waitInput() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.queued >= maxQueued && !q.done && !q.closing && !q.eof {
		ch := q.changed
		q.mu.Unlock()
		<-ch
		q.mu.Lock()
	}
}

// full reports whether waitInput would wait.
func (q *outQueue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued >= maxQueued && !q.done && !q.closing && !q.eof
}

// inFlight returns the bytes queued and not yet taken by the client's socket.
func (q *outQueue) inFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}

// total returns the bytes the client's socket has taken.
func (q *outQueue) total() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.written
}

// waitBelow waits until fewer than n bytes are queued, the connection ends
// (errQueueClosed) or ctx does.
func (q *outQueue) waitBelow(ctx context.Context, n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		switch {
		case q.done || q.closing:
			return errQueueClosed
		case q.queued < n:
			return nil
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
			q.mu.Lock()
		case <-ctx.Done():
			q.mu.Lock()
			return ctx.Err()
		}
	}
}

// readFrames reads quickfix's output from r and queues it message by message until r
// ends. quickfix's output is well-formed; bytes that do not start a FIX message are
// queued as they come, without message boundaries.
func readFrames(r io.Reader, q *outQueue) {
	buf := make([]byte, 64<<10)
	n := 0 // bytes in buf
	for {
		if n == len(buf) { // a message longer than the buffer
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := r.Read(buf[n:])
		n += m
		start := 0
		for start < n {
			size := frameLen(buf[start:n])
			if size == 0 {
				break
			}
			if size < 0 {
				size = n - start
			}
			q.push(bytes.Clone(buf[start : start+size]))
			start += size
		}
		if start > 0 { // move an incomplete message to the front
			n = copy(buf, buf[start:n])
		}
		if err != nil {
			if n > 0 {
				q.push(bytes.Clone(buf[:n]))
			}
			return
		}
	}
}

// frameLen returns the length of the FIX message at the start of b, 0 when b does not
// hold all of it yet, and -1 when b does not start with BeginString and BodyLength.
func frameLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	if b[0] != '8' || b[1] != '=' {
		return -1
	}
	i := bytes.IndexByte(b, soh)
	switch {
	case i < 0 && len(b) > 2+maxBeginString:
		return -1
	case i < 0:
		return 0
	}
	j := i + 1
	if len(b) < j+2 {
		return 0
	}
	if b[j] != '9' || b[j+1] != '=' {
		return -1
	}
	body := 0
	k := j + 2
	for ; k < len(b) && b[k] != soh; k++ {
		if b[k] < '0' || b[k] > '9' || k-j-2 >= maxLengthDigits {
			return -1
		}
		body = body*10 + int(b[k]-'0')
	}
	switch {
	case k == len(b):
		return 0
	case k == j+2:
		return -1
	}
	size := k + 1 + body + trailerLen
	if len(b) < size {
		return 0
	}
	return size
}

// outbound carries quickfix's output from back to client through q until back ends and
// what was queued is written, or the client's connection ends.
func (g *guard) outbound(client, back net.Conn, q *outQueue) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.write()
	}()
	readFrames(back, q)
	q.finish()
	<-done
	client.Close()
}

// clientQueue makes the output queue of a client connection, with its kernel send
// buffer set to g.sendBuffer bytes if that is not 0.
func (g *guard) clientQueue(client net.Conn) *outQueue {
	g.setSendBuffer(client)
	return newOutQueue(client)
}

// setSendBuffer sets the kernel send buffer of a client's TCP connection to
// g.sendBuffer bytes if that is not 0 (a TLS connection's is set before the handshake).
func (g *guard) setSendBuffer(client net.Conn) {
	if tc, ok := client.(*net.TCPConn); ok && g.sendBuffer > 0 {
		_ = tc.SetWriteBuffer(g.sendBuffer)
	}
}

// outRegistry finds the output queue of a logged-on client by its SenderCompID.
type outRegistry struct {
	mu       sync.Mutex
	bySender map[string][]*outQueue
}

func (r *outRegistry) attach(sender string, q *outQueue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bySender == nil {
		r.bySender = make(map[string][]*outQueue)
	}
	r.bySender[sender] = append(r.bySender[sender], q)
}

func (r *outRegistry) detach(sender string, q *outQueue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	qs := r.bySender[sender]
	for i, x := range qs {
		if x == q {
			qs = append(qs[:i], qs[i+1:]...)
			break
		}
	}
	if len(qs) == 0 {
		delete(r.bySender, sender)
		return
	}
	r.bySender[sender] = qs
}

// lookup returns the queue of sender's oldest connection whose quickfix side has not
// ended: quickfix serves one connection per session, the first (a later one's Logon is
// refused, and quickfix closes it); a connection whose session ended may still be
// writing its last output when the client connects again.
func (r *outRegistry) lookup(sender string) *outQueue {
	r.mu.Lock()
	qs := slices.Clone(r.bySender[sender])
	r.mu.Unlock()
	for _, q := range qs {
		if !q.ended() {
			return q
		}
	}
	if len(qs) > 0 {
		return qs[len(qs)-1]
	}
	return nil
}

// queue returns the output queue of session id's connection, or ErrNotLoggedOn.
func (a *Acceptor) queue(id quickfix.SessionID) (*outQueue, error) {
	a.mu.Lock()
	g := a.guard
	a.mu.Unlock()
	var q *outQueue
	if g != nil {
		q = g.out.lookup(id.TargetCompID)
	}
	if q == nil || !a.app.isLoggedOn(id) {
		return nil, fmt.Errorf("fixsession: %v: %w", id, ErrNotLoggedOn)
	}
	return q, nil
}

// InFlight returns the bytes of session id's output that quickfix has written and the
// client's socket has not yet taken; 0 if the session is not logged on. What Send was
// given and quickfix has not yet written (see Flush) is not counted.
func (a *Acceptor) InFlight(id quickfix.SessionID) int {
	q, err := a.queue(id)
	if err != nil {
		return 0
	}
	return q.inFlight()
}

// Written returns the bytes of output the socket of session id's connection has taken
// since the connection was made: what the client read, and what the kernel holds for it
// (AcceptorConfig.SendBuffer bounds that). 0 if the session is not logged on.
func (a *Acceptor) Written(id quickfix.SessionID) uint64 {
	q, err := a.queue(id)
	if err != nil {
		return 0
	}
	return q.total()
}

// WaitRoom waits until session id has handed every message given to Send to its
// connection (as Flush) and fewer than below bytes of its output wait for the client's
// socket (InFlight), or ctx ends, or the session does (ErrNotLoggedOn). It does not spin:
// it wakes when the client's socket takes some of the output. A sender of many messages
// sends some, waits for room, and sends more, so that what waits for a slow client stays
// bounded; with Written it sees how fast the client reads.
func (a *Acceptor) WaitRoom(ctx context.Context, id quickfix.SessionID, below int) error {
	if err := a.app.flush(ctx, id); err != nil {
		return err
	}
	q, err := a.queue(id)
	if err != nil {
		return err
	}
	if err := q.waitBelow(ctx, below); err != nil {
		if errors.Is(err, errQueueClosed) {
			return fmt.Errorf("fixsession: wait for room on %v: %w", id, ErrNotLoggedOn)
		}
		return fmt.Errorf("fixsession: wait for room on %v: %w", id, err)
	}
	return nil
}

// LogoutAndClose ends session id: the output not yet begun is dropped, a Logout (5) with
// reason as its Text (58) is sent after the message being written, if any, and the
// connection is closed once the Logout is written, or after a few seconds if the client
// does not take it. It is for a client too slow to take what it is sent, which a plain
// Logout would reach only after everything queued before it.
func (a *Acceptor) LogoutAndClose(id quickfix.SessionID, reason string) error {
	q, err := a.queue(id)
	if err != nil {
		return err
	}
	q.beginClose()
	if err := a.Logout(id, reason); err != nil {
		q.stop()
		return err
	}
	return nil
}
