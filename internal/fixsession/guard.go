package fixsession

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"
)

// An Acceptor's clients never reach quickfix directly. quickfix v0.9.7 frames and parses
// what it reads trusting the lengths it finds (an XmlDataLen (212) that overruns its
// message panics on the session's goroutine, killing the process) and has no limit on
// a message's size, and its acceptor takes no listener or connection from outside. So
// the Acceptor listens on the public address itself and puts a guard in front of a
// quickfix acceptor listening on an ephemeral loopback port: per client connection, the
// guard reads whole messages with a FrameReader, forwards only those that pass
// CheckFrame (the first one a Logon), and queues quickfix's output and writes it back
// unchanged (flow.go). On a malformed message it counts it, logs what and where, and
// closes the connection; a message whose only fault is its CheckSum is dropped, counted
// and logged, and the connection goes on (the FIX rule for garbled messages). quickfix
// accepts connections only from the guard's own local ports, so nothing local bypasses
// the checks.

// AcceptorStats counts what an Acceptor did with its clients.
type AcceptorStats struct {
	Connections    uint64 // TCP connections accepted
	Malformed      uint64 // messages refused as malformed, their connections closed (framing, lengths, size, a first message not a Logon, none in time)
	Garbled        uint64 // messages whose CheckSum (10) was wrong, dropped, their connections kept
	LogonsRefused  uint64 // Logons answered with a Logout: BeginString, TargetCompID or credentials
	SessionRejects uint64 // session-level Rejects (3) sent, e.g. for a missing MsgSeqNum or a bad SendingTime
}

// counters are the atomics behind AcceptorStats.
type counters struct {
	connections, malformed, garbled, logonsRefused, sessionRejects atomic.Uint64
}

func (c *counters) stats() AcceptorStats {
	return AcceptorStats{
		Connections:    c.connections.Load(),
		Malformed:      c.malformed.Load(),
		Garbled:        c.garbled.Load(),
		LogonsRefused:  c.logonsRefused.Load(),
		SessionRejects: c.sessionRejects.Load(),
	}
}

// firstMessageTimeout bounds the wait for a connection's first message, its Logon.
const firstMessageTimeout = 10 * time.Second

// guard serves the public listener of an Acceptor.
type guard struct {
	ln      net.Listener
	backend string // quickfix's loopback address
	limit   int
	app     *app

	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{} // client and backend connections alive
	ports    map[int]bool          // local ports of the backend connections
	bySender map[string][]net.Conn // client and backend connections by the client's SenderCompID
	wg       sync.WaitGroup

	out        outRegistry // output queues of logged-on clients (flow.go)
	sendBuffer int         // SO_SNDBUF of client connections, 0: the system's
}

func newGuard(ln net.Listener, backend string, limit int, a *app) *guard {
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	return &guard{ln: ln, backend: backend, limit: limit, app: a,
		conns: make(map[net.Conn]struct{}), ports: make(map[int]bool), bySender: make(map[string][]net.Conn)}
}

// Validate implements quickfix.ConnectionValidator: quickfix takes only connections the
// guard opened.
func (g *guard) Validate(c net.Conn, _ quickfix.SessionID) error {
	addr, ok := c.RemoteAddr().(*net.TCPAddr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !ok || !addr.IP.IsLoopback() || !g.ports[addr.Port] {
		return fmt.Errorf("connection from %v did not come through the acceptor's guard", c.RemoteAddr())
	}
	return nil
}

// serve accepts connections until the listener is closed.
func (g *guard) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			g.app.logger.Warn("fix accept", "addr", g.ln.Addr().String(), "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		g.app.stats.connections.Add(1)
		if !g.track(c) {
			c.Close()
			return
		}
		g.wg.Add(1)
		go g.relay(c)
	}
}

// track records c as alive; false if the guard is closed.
func (g *guard) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it, and its local port if port is not 0.
func (g *guard) untrack(c net.Conn, port int) {
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.ports, port)
	g.mu.Unlock()
	c.Close()
}

// relay connects client to quickfix and carries messages both ways until either side
// ends.
func (g *guard) relay(client net.Conn) {
	defer g.wg.Done()
	defer g.untrack(client, 0)
	remote := client.RemoteAddr().String()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	back, err := d.Dial("tcp", g.backend)
	if err != nil {
		g.app.logger.Warn("fix connection dropped: quickfix unreachable", "remote", remote, "error", err)
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		back.Close()
		return
	}
	port := back.LocalAddr().(*net.TCPAddr).Port
	g.conns[back] = struct{}{}
	g.ports[port] = true
	g.mu.Unlock()
	defer g.untrack(back, port)

	q := g.clientQueue(client)
	out := make(chan struct{})
	go func() {
		defer close(out)
		g.outbound(client, back, q) // quickfix's output, unchanged (flow.go)
	}()
	if g.inbound(client, back, remote, q) {
		// The client ended its side cleanly: quickfix sees the end of the stream, ends
		// the session and closes, which ends the copy.
		if tc, ok := back.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			back.Close()
		}
	} else {
		back.Close()
	}
	<-out
}

// inbound forwards client's messages that pass the checks to back. It reports whether
// the client's stream ended cleanly, between messages. Once a Logon passed, q, the
// client's output queue, is found by its SenderCompID.
func (g *guard) inbound(client, back net.Conn, remote string, q *outQueue) bool {
	fr := NewFrameReader(client, g.limit)
	_ = client.SetReadDeadline(time.Now().Add(firstMessageTimeout))
	for first := true; ; {
		msg, err := fr.Next()
		if err != nil {
			var fe *FrameError
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF):
				return true
			case errors.As(err, &fe) && fe.Garbled:
				g.app.stats.garbled.Add(1)
				g.app.logger.Warn("fix message dropped", "remote", remote, "stream_offset", fr.Offset(), "error", err)
				continue
			case errors.As(err, &fe):
				g.refuse(remote, fr.Offset(), err)
			case errors.Is(err, io.ErrUnexpectedEOF):
				g.refuse(remote, fr.Offset(), fmt.Errorf("connection ended inside a message: %w", err))
			case first && errors.As(err, &ne) && ne.Timeout():
				g.refuse(remote, fr.Offset(), fmt.Errorf("no Logon within %v", firstMessageTimeout))
			default: // the connection closed or failed: nothing to count
				g.app.logger.Debug("fix connection ended", "remote", remote, "error", err)
			}
			return false
		}
		if first {
			if err := checkLogon(msg); err != nil {
				g.refuse(remote, fr.Offset(), err)
				return false
			}
			_ = client.SetReadDeadline(time.Time{})
			first = false
			sender := field(msg, 49)
			g.register(sender, client, back)
			defer g.unregister(sender, client, back)
			g.out.attach(sender, q)
			defer g.out.detach(sender, q)
		}
		q.waitInput() // a client that does not read is not read either (flow.go)
		if _, err := back.Write(msg); err != nil {
			return false
		}
	}
}

// refuse counts and logs a malformed message; its connection is closed.
func (g *guard) refuse(remote string, offset int64, err error) {
	g.app.stats.malformed.Add(1)
	g.app.logger.Warn("fix message refused, connection closed", "remote", remote, "stream_offset", offset, "error", err)
}

// register records the connections of a client that sent its Logon as sender.
func (g *guard) register(sender string, cs ...net.Conn) {
	g.mu.Lock()
	g.bySender[sender] = append(g.bySender[sender], cs...)
	g.mu.Unlock()
}

func (g *guard) unregister(sender string, cs ...net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	kept := slices.DeleteFunc(g.bySender[sender], func(c net.Conn) bool { return slices.Contains(cs, c) })
	if len(kept) == 0 {
		delete(g.bySender, sender)
		return
	}
	g.bySender[sender] = kept
}

// disconnect closes the connections of the client with SenderCompID sender, as a
// network failure would: quickfix's session sees its connection end.
func (g *guard) disconnect(sender string) bool {
	g.mu.Lock()
	cs := slices.Clone(g.bySender[sender])
	g.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return len(cs) > 0
}

// closeListener stops accepting connections.
func (g *guard) closeListener() { g.ln.Close() }

// close stops accepting, closes every connection and waits for the relays.
func (g *guard) close() {
	g.ln.Close()
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// checkLogon checks that msg, a connection's first message, is a Logon (A) naming both
// CompIDs, which quickfix needs to find the session.
func checkLogon(msg []byte) error {
	t := msgType(msg)
	if t != "A" {
		return fmt.Errorf("first message must be a Logon (A), got MsgType %q", t)
	}
	for _, f := range []struct {
		tag  int
		name string
	}{{49, "SenderCompID"}, {56, "TargetCompID"}} {
		if !hasField(msg, f.tag) {
			return fmt.Errorf("first message: Logon (A) without %s (%d)", f.name, f.tag)
		}
	}
	return nil
}
