package fixsession

// The framing guard of an Initiator: quickfix connects to a relay on loopback, which
// dials the acceptor and passes what the acceptor sends only message by message, each
// checked with CheckFrame first. quickfix v0.9.7 panics on some malformed messages (an
// empty MsgSeqNum, a data length that overruns the message) on the session's goroutine,
// which kills the process: a broken or hostile acceptor must not crash a client.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// InitiatorStats are the counters of an Initiator's framing guard.
type InitiatorStats struct {
	Connections uint64 // connections made to the acceptor
	DialErrors  uint64 // connections to the acceptor that failed
	Malformed   uint64 // malformed or oversize messages from the acceptor: each closed its connection
	Garbled     uint64 // messages with a wrong CheckSum, dropped
	LastError   string // what the last malformed message was
}

// relayDialTimeout bounds a connection to the acceptor.
const relayDialTimeout = 5 * time.Second

// relayWriteBuffer is the most of the acceptor's messages the relay writes to quickfix
// at once.
const relayWriteBuffer = 64 << 10

type relay struct {
	ln     net.Listener
	host   string
	port   int
	target string
	limit  int
	app    *app
	tls    *tls.Config // nil: plain TCP

	conns, dialErrs, malformed, garbled atomic.Uint64
	lastErr                             atomic.Pointer[string]

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newRelay listens on a free loopback port for quickfix's connections to target, over
// TLS if tc is not nil.
func newRelay(target string, limit int, tc *tls.Config, a *app) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("framing guard: %w", err)
	}
	r := &relay{ln: ln, host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port, target: target,
		limit: limit, app: a, tls: tc, open: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

func (r *relay) stats() InitiatorStats {
	st := InitiatorStats{Connections: r.conns.Load(), DialErrors: r.dialErrs.Load(),
		Malformed: r.malformed.Load(), Garbled: r.garbled.Load()}
	if p := r.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	return st
}

func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		r.open[c] = struct{}{}
	}
	return true
}

func (r *relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(r.open, c)
	}
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		local, err := r.ln.Accept()
		if err != nil {
			return
		}
		remote, err := r.dial()
		if err != nil {
			r.dialErrs.Add(1)
			// quickfix reached the relay, not the acceptor: the dial error is the
			// Initiator's ConnectError ("connection refused" and the like).
			r.app.connectFailed(err.Error())
			r.app.rl.Info("relay dial", "fix connect failed", "addr", r.target, "err", err)
			local.Close()
			continue
		}
		r.conns.Add(1)
		if !r.track(local, remote) {
			return
		}
		r.wg.Add(2)
		go func() { // quickfix -> acceptor, as is
			defer r.wg.Done()
			_, _ = io.Copy(remote, local)
			r.untrack(local, remote)
		}()
		go func() { // acceptor -> quickfix, checked
			defer r.wg.Done()
			r.inbound(remote, local)
			r.untrack(local, remote)
		}()
	}
}

// inbound passes the acceptor's messages to quickfix until the stream ends or a malformed
// message arrives, which closes both connections (quickfix then reconnects). The checked
// messages are written in batches: all that arrived together, in one write.
func (r *relay) inbound(remote, local net.Conn) {
	fr := NewFrameReader(remote, r.limit)
	defer fr.Release()
	bw := bufio.NewWriterSize(local, relayWriteBuffer)
	defer bw.Flush()
	for {
		msg, err := fr.Next()
		if err == nil {
			if _, err := bw.Write(msg); err != nil {
				return
			}
			if fr.Buffered() == 0 { // the next message is not here yet
				if err := bw.Flush(); err != nil {
					return
				}
			}
			continue
		}
		if bw.Flush() != nil {
			return
		}
		var fe *FrameError
		if !errors.As(err, &fe) {
			return // EOF, a closed connection
		}
		text := "byte " + strconv.FormatInt(fr.Offset(), 10) + " of the stream: " + fe.Error()
		r.lastErr.Store(&text)
		if fe.Garbled {
			r.garbled.Add(1)
			r.app.rl.Warn("relay garbled", "fix message from acceptor garbled, dropped", "addr", r.target, "err", text)
			continue
		}
		r.malformed.Add(1)
		r.app.rl.Warn("relay malformed", "fix message from acceptor malformed, disconnecting", "addr", r.target, "err", text)
		return
	}
}

// dial connects to the acceptor, the TLS handshake included, within relayDialTimeout.
func (r *relay) dial() (net.Conn, error) {
	d := &net.Dialer{Timeout: relayDialTimeout}
	if r.tls == nil {
		return d.Dial("tcp", r.target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayDialTimeout)
	defer cancel()
	return (&tls.Dialer{NetDialer: d, Config: r.tls}).DialContext(ctx, "tcp", r.target)
}

// close stops listening, closes every connection and waits for the relay's goroutines.
func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.open {
		c.Close()
		delete(r.open, c)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// config returns the crypto/tls configuration of t for a service on host: TLS 1.2 or
// later, the service verified by t.CA (or the system's roots) under t.ServerName (or
// host), and the client certificate if t has one.
func (t *ClientTLS) config(host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: max(tls.VersionTLS12, t.MinVersion), ServerName: host}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if len(t.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CA) {
			return nil, errors.New("TLS: no certificate in the CA")
		}
		c.RootCAs = pool
	}
	if len(t.Cert) > 0 {
		cert, err := tls.X509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
