package fixsession

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickfixgo/quickfix"

	"fastfeed/internal/ratelog"
)

// An Acceptor's clients never reach quickfix directly. quickfix v0.9.7 frames and parses
// what it reads trusting the lengths it finds (an XmlDataLen (212) that overruns its
// message panics on the session's goroutine, killing the process), has no limit on a
// message's size, its acceptor takes no listener or connection from outside, and its
// accept loop ends for good on its first error (EMFILE). So the Acceptor listens on the
// public address itself and puts a guard in front of a quickfix acceptor (a backend,
// backend.go) listening on an ephemeral loopback port.
//
// Per client connection the guard, before anything reaches quickfix, reads the first
// message within Limits.LogonTimeout and Limits.MaxLogonSize, and parses it as a Logon
// (parseLogon): a Logon that repeats a tag is answered with a Logout and closed. Only
// then does it connect to quickfix and pass the Logon on; after it, it forwards the
// messages that pass CheckFrame (up to MaxMessageSize), and queues quickfix's output and
// writes it back unchanged (flow.go). A malformed message is counted, logged (rate-limited per cause, see
// ratelog) and closes the connection; a message whose only fault is its CheckSum is
// dropped, counted and logged, and the connection goes on (the FIX rule for garbled
// messages), except before the Logon, where the Limits.MaxGarbledBeforeLogon-th closes
// it. quickfix accepts connections only from the guard's own local ports, so nothing
// local bypasses the checks.
//
// The guard caps the connections open at once, in all and per source address; one
// beyond a cap is closed as soon as accepted. Accept errors (out of file descriptors)
// are survived with a back-off from 5 ms to 1 s, logged once per episode. A backend
// that does not take a connection within backendAcceptTimeout has lost its accept loop:
// it is retired (it serves its sessions until they end) and a new one started.

// AcceptorStats counts what an Acceptor did with its clients.
type AcceptorStats struct {
	Connections     uint64 `json:"connections"`      // TCP connections accepted
	Open            uint64 `json:"open"`             // client connections open now
	Refused         uint64 `json:"refused"`          // connections closed at once: Limits.MaxConnections or MaxConnectionsPerSource reached
	AcceptErrors    uint64 `json:"accept_errors"`    // failed accepts (e.g. EMFILE), each followed by a back-off
	Malformed       uint64 `json:"malformed"`        // messages refused as malformed, their connections closed (framing, lengths, size, a first message not a Logon, garbled before Logon)
	Garbled         uint64 `json:"garbled"`          // messages whose CheckSum (10) was wrong, dropped
	LogonTimeouts   uint64 `json:"logon_timeouts"`   // connections closed for sending no Logon within Limits.LogonTimeout
	LogonsRefused   uint64 `json:"logons_refused"`   // Logons answered with a Logout: a repeated tag, BeginString, TargetCompID or credentials
	SessionRejects  uint64 `json:"session_rejects"`  // session-level Rejects (3) sent, e.g. for a missing MsgSeqNum or a bad SendingTime
	BackendRestarts uint64 `json:"backend_restarts"` // quickfix acceptors replaced after their accept loop stopped
	BackendFailures uint64 `json:"backend_failures"` // failures to start a replacement (retried at the next connection)
	LogSuppressed   uint64 `json:"log_suppressed"`   // warnings not logged, over Limits.LogLinesPerSecond
	TLSRefused      uint64 `json:"tls_refused"`      // connections to a TLS port that did not begin a TLS handshake (a Logon in clear is answered with a Logout)
	TLSFailures     uint64 `json:"tls_failures"`     // TLS handshakes that failed: version, unknown CA, missing or bad client certificate
	LogonFailures   uint64 `json:"logon_failures"`   // Logons refused for their Username (553) and Password (554), or without them
	Lockouts        uint64 `json:"lockouts"`         // usernames and addresses locked out after Limits.MaxLogonFailures failures
	LockedOut       uint64 `json:"locked_out"`       // Logons refused, unchecked, because their username or address was locked out
}

// counters are the atomics behind AcceptorStats.
type counters struct {
	connections, open, refused, acceptErrors, malformed, garbled, logonTimeouts,
	logonsRefused, sessionRejects, backendRestarts, backendFailures,
	tlsRefused, tlsFailures, logonFailures, lockouts, lockedOut atomic.Uint64
}

func (c *counters) stats() AcceptorStats {
	return AcceptorStats{
		Connections:     c.connections.Load(),
		Open:            c.open.Load(),
		Refused:         c.refused.Load(),
		AcceptErrors:    c.acceptErrors.Load(),
		Malformed:       c.malformed.Load(),
		Garbled:         c.garbled.Load(),
		LogonTimeouts:   c.logonTimeouts.Load(),
		LogonsRefused:   c.logonsRefused.Load(),
		SessionRejects:  c.sessionRejects.Load(),
		BackendRestarts: c.backendRestarts.Load(),
		BackendFailures: c.backendFailures.Load(),
		TLSRefused:      c.tlsRefused.Load(),
		TLSFailures:     c.tlsFailures.Load(),
		LogonFailures:   c.logonFailures.Load(),
		Lockouts:        c.lockouts.Load(),
		LockedOut:       c.lockedOut.Load(),
	}
}

// Back-off after a failed accept.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// guard serves the public listener of an Acceptor.
type guard struct {
	ln     net.Listener
	compID string
	limit  int // MaxMessageSize
	limits Limits
	app    *app
	rl     *ratelog.Logger
	tls    *tls.Config // nil: plain TCP
	lock   *lockout
	backends

	mu       sync.Mutex
	closed   bool
	done     chan struct{}         // closed by close
	conns    map[net.Conn]struct{} // client and backend connections alive
	sources  map[string]int        // open client connections by source IP
	ports    map[int]*backConn     // backend connections by local port
	bySender map[string][]net.Conn // client and backend connections by the client's SenderCompID
	wg       sync.WaitGroup

	out        outRegistry // output queues of logged-on clients (flow.go)
	sendBuffer int         // SO_SNDBUF of client connections, 0: the system's
}

// backConn is a guard's connection to a backend, seen by quickfix or not yet.
type backConn struct {
	validated chan struct{} // closed when quickfix took the connection (Validate)
	once      sync.Once
}

func newGuard(ln net.Listener, compID string, limit int, limits Limits, a *app, start func() (*backend, error)) *guard {
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	g := &guard{ln: ln, compID: compID, limit: limit, limits: limits, app: a, rl: a.rl,
		lock: newLockout(limits.MaxLogonFailures, limits.Lockout),
		done: make(chan struct{}), conns: make(map[net.Conn]struct{}), sources: make(map[string]int),
		ports: make(map[int]*backConn), bySender: make(map[string][]net.Conn)}
	g.backends.init(g, start)
	return g
}

// Validate implements quickfix.ConnectionValidator: quickfix takes only connections the
// guard opened. It also tells the guard that quickfix's accept loop is alive.
func (g *guard) Validate(c net.Conn, _ quickfix.SessionID) error {
	addr, ok := c.RemoteAddr().(*net.TCPAddr)
	g.mu.Lock()
	var bc *backConn
	if ok && addr.IP.IsLoopback() {
		bc = g.ports[addr.Port]
	}
	g.mu.Unlock()
	if bc == nil {
		return fmt.Errorf("connection from %v did not come through the acceptor's guard", c.RemoteAddr())
	}
	bc.once.Do(func() { close(bc.validated) })
	return nil
}

// serve accepts connections until the listener is closed.
func (g *guard) serve() {
	defer g.wg.Done()
	var backoff time.Duration
	var episode uint64 // accept errors since the last success
	for {
		c, err := g.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			g.app.stats.acceptErrors.Add(1)
			episode++
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			if episode == 1 {
				g.app.logger.Warn("fix accept failing, retrying with back-off until it works again", "addr", g.ln.Addr().String(), "error", err)
			}
			select {
			case <-g.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		if episode > 0 {
			g.app.logger.Info("fix accept working again", "addr", g.ln.Addr().String(), "failed_accepts", episode)
			episode, backoff = 0, 0
		}
		g.app.stats.connections.Add(1)
		src, ok := g.admit(c)
		if !ok {
			c.Close()
			continue
		}
		g.wg.Add(1)
		go g.relay(c, src)
	}
}

// admit records client connection c as alive, within the caps; it returns c's source
// address, and false if c is to be closed.
func (g *guard) admit(c net.Conn) (string, bool) {
	src := c.RemoteAddr().String()
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = a.IP.String()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return "", false
	}
	var reason string
	switch open := int(g.app.stats.open.Load()); {
	case open >= g.limits.MaxConnections:
		reason = fmt.Sprintf("%d connections open, the most allowed", open)
	case g.sources[src] >= g.limits.MaxConnectionsPerSource:
		reason = fmt.Sprintf("%d connections open from %s, the most allowed from one address", g.sources[src], src)
	}
	if reason != "" {
		g.app.stats.refused.Add(1)
		g.rl.Warn("refused", "fix connection refused", "remote", c.RemoteAddr().String(), "reason", reason)
		return "", false
	}
	g.conns[c] = struct{}{}
	g.sources[src]++
	g.app.stats.open.Add(1)
	return src, true
}

// release closes client connection c from src and forgets it.
func (g *guard) release(c net.Conn, src string) {
	g.mu.Lock()
	delete(g.conns, c)
	if g.sources[src]--; g.sources[src] <= 0 {
		delete(g.sources, src)
	}
	g.app.stats.open.Add(^uint64(0))
	g.mu.Unlock()
	c.Close()
}

// relay reads client's Logon, connects it to quickfix and carries messages both ways
// until either side ends.
func (g *guard) relay(client net.Conn, src string) {
	defer g.wg.Done()
	defer g.release(client, src)
	remote := client.RemoteAddr().String()
	if g.tls != nil {
		g.setSendBuffer(client)
		if client = g.startTLS(client, remote); client == nil {
			return
		}
	}
	fr := NewFrameReader(client, g.limits.MaxLogonSize)
	defer fr.Release()
	msg, lg, ok := g.readLogon(client, fr, remote)
	if !ok || !g.authenticate(client, lg, src, remote) {
		return
	}
	fr.SetLimit(g.limit)
	// The output queue is found by SenderCompID from the session's first callback on,
	// which may come as soon as quickfix has the Logon.
	q := g.clientQueue(client)
	g.out.attach(lg.sender, q)
	defer g.out.detach(lg.sender, q)
	back, port, be := g.connect(msg, remote)
	if back == nil {
		return
	}
	defer g.backends.release(be)
	defer g.untrack(back, port)
	g.register(lg.sender, client, back)
	defer g.unregister(lg.sender, client, back)

	out := make(chan struct{})
	go func() {
		defer close(out)
		g.outbound(client, back, q) // quickfix's output, unchanged (flow.go)
	}()
	if g.inbound(client, back, fr, remote, q) {
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

// readLogon reads a connection's first message within the Logon limits and parses it.
// On any fault it counts and logs it, answers a refused Logon with a Logout, and
// reports false: the connection is to be closed.
func (g *guard) readLogon(client net.Conn, fr *FrameReader, remote string) ([]byte, logon, bool) {
	_ = client.SetReadDeadline(time.Now().Add(g.limits.LogonTimeout))
	for garbled := 0; ; {
		msg, err := fr.Next()
		if err != nil {
			var fe *FrameError
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF):
				g.app.logger.Debug("fix connection ended before Logon", "remote", remote)
			case errors.As(err, &fe) && fe.Garbled:
				g.app.stats.garbled.Add(1)
				if garbled++; garbled < g.limits.MaxGarbledBeforeLogon {
					g.rl.Warn("garbled", "fix message dropped", "remote", remote, "stream_offset", fr.Offset(), "error", err)
					continue
				}
				g.refuse(remote, fr.Offset(), fmt.Errorf("%d garbled messages before Logon, the last: %w", garbled, err))
			case errors.As(err, &fe):
				g.refuse(remote, fr.Offset(), err)
			case errors.Is(err, io.ErrUnexpectedEOF):
				g.refuse(remote, fr.Offset(), fmt.Errorf("connection ended inside a message: %w", err))
			case errors.As(err, &ne) && ne.Timeout():
				g.app.stats.logonTimeouts.Add(1)
				g.rl.Warn("logon timeout", "fix connection closed: no Logon in time", "remote", remote,
					"timeout", g.limits.LogonTimeout, "stream_offset", fr.Offset())
			default: // the connection closed or failed: nothing to count
				g.app.logger.Debug("fix connection ended", "remote", remote, "error", err)
			}
			return nil, logon{}, false
		}
		lg, err := parseLogon(msg)
		var rl *logonRefusal
		switch {
		case errors.As(err, &rl):
			g.app.stats.logonsRefused.Add(1)
			g.rl.Info("logon refused", "fix logon refused", "remote", remote, "sender", lg.sender, "reason", rl.Error())
			_ = client.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = client.Write(logoutMessage(g.compID, lg, rl.Error()))
			return nil, logon{}, false
		case err != nil:
			g.refuse(remote, fr.Offset(), err)
			return nil, logon{}, false
		}
		_ = client.SetReadDeadline(time.Time{})
		return msg, lg, true
	}
}

// connect opens a connection to quickfix, hands it the Logon and waits until quickfix
// has taken it. A backend that does not is retired and the next one tried, once. It
// returns the connection, its local port and its backend; a nil connection if there is
// none, logged.
func (g *guard) connect(logonMsg []byte, remote string) (net.Conn, int, *backend) {
	for attempt := 1; attempt <= 2; attempt++ {
		be, err := g.backends.acquire()
		if err != nil {
			g.rl.Warn("backend", "fix connection dropped: quickfix unavailable", "remote", remote, "error", err)
			return nil, 0, nil
		}
		back, port, bc, err := g.dial(be)
		if err != nil {
			g.backends.release(be)
			g.rl.Warn("backend", "fix connection dropped: quickfix unreachable", "remote", remote, "error", err)
			if isRefused(err) {
				g.backends.retire(be, err)
				continue
			}
			return nil, 0, nil
		}
		if _, err := back.Write(logonMsg); err != nil {
			g.untrack(back, port)
			g.backends.release(be)
			return nil, 0, nil
		}
		timer := time.NewTimer(backendAcceptTimeout)
		select {
		case <-bc.validated:
			timer.Stop()
			return back, port, be
		case <-timer.C:
			g.untrack(back, port)
			g.backends.release(be)
			g.backends.retire(be, fmt.Errorf("quickfix took no connection in %v: its accept loop has stopped", backendAcceptTimeout))
		case <-g.done:
			timer.Stop()
			g.untrack(back, port)
			g.backends.release(be)
			return nil, 0, nil
		}
	}
	return nil, 0, nil
}

// backendAcceptTimeout bounds the wait for quickfix to take a connection and read its
// Logon. quickfix v0.9.7's accept loop ends on its first error, leaving its listener
// open: connections to it are queued by the kernel and never served.
const backendAcceptTimeout = 2 * time.Second

// dial connects to backend be and records the connection.
func (g *guard) dial(be *backend) (net.Conn, int, *backConn, error) {
	if g.beforeDial != nil {
		g.beforeDial()
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	back, err := d.Dial("tcp", be.addr)
	if err != nil {
		return nil, 0, nil, err
	}
	port := back.LocalAddr().(*net.TCPAddr).Port
	bc := &backConn{validated: make(chan struct{})}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		back.Close()
		return nil, 0, nil, errors.New("acceptor stopping")
	}
	g.conns[back] = struct{}{}
	g.ports[port] = bc
	return back, port, bc, nil
}

// untrack closes backend connection c with local port port and forgets it.
func (g *guard) untrack(c net.Conn, port int) {
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.ports, port)
	g.mu.Unlock()
	c.Close()
}

// inbound forwards client's messages after its Logon that pass the checks to back. It
// reports whether the client's stream ended cleanly, between messages. q is the client's
// output queue: a client that does not read is not read either.
//
// It passes on at most RequestLimits.ReadPerSecond messages per second (pacer): over
// that it waits before reading on, and the client's writes block. The messages read
// together are written to quickfix together, in one write.
func (g *guard) inbound(client, back net.Conn, fr *FrameReader, remote string, q *outQueue) bool {
	pace := g.app.limiter.pacer(time.Now())
	bw := bufio.NewWriterSize(back, inboundWriteBuffer)
	defer bw.Flush()
	for {
		if bw.Buffered() > 0 && !fr.ready() { // the next message is not all here yet
			if bw.Flush() != nil {
				return false
			}
		}
		msg, err := fr.Next()
		if err != nil {
			var fe *FrameError
			switch {
			case errors.Is(err, io.EOF):
				return true
			case errors.As(err, &fe) && fe.Garbled:
				g.app.stats.garbled.Add(1)
				g.rl.Warn("garbled", "fix message dropped", "remote", remote, "stream_offset", fr.Offset(), "error", err)
				continue
			case errors.As(err, &fe):
				g.refuse(remote, fr.Offset(), err)
			case errors.Is(err, io.ErrUnexpectedEOF):
				g.refuse(remote, fr.Offset(), fmt.Errorf("connection ended inside a message: %w", err))
			default: // the connection closed or failed: nothing to count
				g.app.logger.Debug("fix connection ended", "remote", remote, "error", err)
			}
			return false
		}
		if pace != nil {
			if d := pace.take(time.Now()); d > 0 {
				if bw.Flush() != nil || !g.sleep(d) {
					return false
				}
			}
		}
		if q.full() {
			if bw.Flush() != nil {
				return false
			}
			q.waitInput() // a client that does not read is not read either (flow.go)
		}
		if _, err := bw.Write(msg); err != nil {
			return false
		}
	}
}

// inboundWriteBuffer is the most of a client's messages the guard writes to quickfix at
// once.
const inboundWriteBuffer = 64 << 10

// sleep waits for d, or until the guard closes: it reports false then.
func (g *guard) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.done:
		return false
	}
}

// refuse counts and logs a malformed message; its connection is closed.
func (g *guard) refuse(remote string, offset int64, err error) {
	g.app.stats.malformed.Add(1)
	g.rl.Warn("malformed", "fix message refused, connection closed", "remote", remote, "stream_offset", offset, "error", err)
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
	if !g.closed {
		g.closed = true
		close(g.done)
	}
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	g.backends.wait()
}

// authenticate checks the Username (553) and Password (554) of client's Logon lg, from
// address src, unless the username or the address is locked out; it counts and logs a
// failure, locks out after Limits.MaxLogonFailures, and answers a refused Logon with a
// Logout. It reports whether the Logon may go on to quickfix (which checks the
// credentials again, from Credentials' cache of passed logins when it keeps one).
func (g *guard) authenticate(client net.Conn, lg logon, src, remote string) bool {
	var reason string
	switch key := g.lock.locked(lg.username, src); {
	case key != "":
		g.app.stats.lockedOut.Add(1)
		g.rl.Warn("locked out", "fix logon refused: locked out after failed logons", "remote", remote,
			"username", lg.username, "locked", lockKey(key), "lockout", g.limits.Lockout)
		reason = reasonLockedOut
	case lg.username == "" || lg.password == "":
		reason = reasonNoCredentials
	case !g.app.credentials(lg.username, lg.password):
		reason = reasonBadCredentials
	default:
		g.lock.pass(lg.username, src)
		return true
	}
	if reason != reasonLockedOut {
		g.app.stats.logonFailures.Add(1)
		g.rl.Info("logon refused", "fix logon refused", "remote", remote, "sender", lg.sender, "username", lg.username, "reason", reason)
		for _, key := range g.lock.fail(lg.username, src) {
			g.app.stats.lockouts.Add(1)
			g.rl.Warn("lockout", "fix logons locked out", "locked", lockKey(key), "failures", g.limits.MaxLogonFailures, "lockout", g.limits.Lockout)
		}
	}
	g.app.stats.logonsRefused.Add(1)
	_ = client.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = client.Write(logoutMessage(g.compID, lg, reason))
	return false
}

// reasonLockedOut is the Text (58) of the Logout refusing a locked-out Logon.
const reasonLockedOut = "too many failed logons: locked out, try again later"

// lockKey names a lockout key for the log: "username X" or "address A".
func lockKey(k string) string {
	if u, ok := strings.CutPrefix(k, "u:"); ok {
		return "username " + u
	}
	return "address " + strings.TrimPrefix(k, "a:")
}
