package fixsession

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/quickfix/config"
	"github.com/quickfixgo/tag"
)

// AcceptorConfig configures an Acceptor.
type AcceptorConfig struct {
	// Listen is the TCP address, host:port, e.g. RecoveryListen. Port 0 picks a free port:
	// Addr reports it once started.
	Listen string
	// CompID is the acceptor's SenderCompID, e.g. RecoveryCompID. Clients log on with
	// it as their TargetCompID, under any SenderCompID of their own.
	CompID string
	// Credentials reports whether a Logon's Username (553) and Password (554) are
	// accepted, e.g. StaticCredentials(DemoUsername, DemoPassword). Required; it is
	// called from the sessions' goroutines, concurrently.
	Credentials func(username, password string) bool
	// HeartBtInt, if non-zero, replaces the heartbeat interval clients ask for; it is
	// rounded up to whole seconds.
	HeartBtInt time.Duration
	// MaxMessageSize bounds a message from a client after its Logon, framing included;
	// a longer one closes its connection. Zero means DefaultMaxMessageSize.
	MaxMessageSize int
	// Limits bounds connections and what comes before a Logon; zero fields take their
	// defaults.
	Limits Limits
	// SendBuffer, if not 0, sets the kernel's send buffer (SO_SNDBUF) of each client
	// connection, in bytes: what a client that does not read can hold of the
	// acceptor's memory beyond its output queue (flow.go), and what Written counts
	// before the client has read it. 0 leaves the system's default (on Linux, grown by
	// the kernel up to megabytes).
	SendBuffer int
	// TLS, if not nil, makes the service take FIX over TLS only (e.g. ServerTLS): its
	// guard terminates TLS, quickfix behind it stays plain on loopback. Its MinVersion is
	// raised to TLS 1.2 if lower; it needs a certificate.
	TLS *tls.Config
	// Persistence keeps sequence numbers across restarts and logs messages to files.
	Persistence Persistence
	// RequestLimits bounds what a logged-on client asks for (limits.go).
	RequestLimits RequestLimits
	// Logger receives logons, logouts and refusals at Info, malformed messages and
	// session-level Rejects at Warn (rate-limited per cause, Limits.LogLinesPerSecond), and quickfix's messages (the password hidden) and
	// events at Debug. Nil discards everything.
	Logger *slog.Logger
}

// Acceptor is a FIX service: it accepts sessions from any client CompID that
// authenticates. Start it once; Stop it when done.
type Acceptor struct {
	cfg    AcceptorConfig
	app    *app
	stores *storeFactory
	host   string
	port   int

	lifecycle
	guard *guard
	addr  string

	beforeDial func() // tests: called before each connection to quickfix

	logs  teeFactory
	files *fileLogs // nil without FileLogPath
}

// NewAcceptor returns an acceptor for cfg whose sessions report to h.
func NewAcceptor(cfg AcceptorConfig, h Handler) (*Acceptor, error) {
	switch {
	case h == nil:
		return nil, errors.New("fixsession: acceptor: nil Handler")
	case cfg.CompID == "":
		return nil, errors.New("fixsession: acceptor: CompID required")
	case cfg.Credentials == nil:
		return nil, errors.New("fixsession: acceptor: Credentials required")
	case cfg.MaxMessageSize < 0:
		return nil, fmt.Errorf("fixsession: acceptor: negative MaxMessageSize %d", cfg.MaxMessageSize)
	case cfg.SendBuffer < 0:
		return nil, fmt.Errorf("fixsession: acceptor: negative SendBuffer %d", cfg.SendBuffer)
	case cfg.HeartBtInt < 0:
		return nil, fmt.Errorf("fixsession: acceptor: negative HeartBtInt %v", cfg.HeartBtInt)
	}
	if err := cfg.Limits.Check(); err != nil {
		return nil, fmt.Errorf("fixsession: acceptor: Limits: %w", err)
	}
	if cfg.TLS != nil {
		if len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
			return nil, errors.New("fixsession: acceptor: TLS without a certificate")
		}
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.MinVersion = max(cfg.TLS.MinVersion, tls.VersionTLS12)
	}
	if err := cfg.RequestLimits.Check(); err != nil {
		return nil, fmt.Errorf("fixsession: acceptor: RequestLimits: %w", err)
	}
	if err := cfg.Persistence.Check(); err != nil {
		return nil, fmt.Errorf("fixsession: acceptor: %w", err)
	}
	cfg.Limits = cfg.Limits.withDefaults(fdLimit())
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("fixsession: acceptor: Listen: %w", err)
	}
	a := &Acceptor{cfg: cfg, app: newApp(h, cfg.Logger, cfg.Limits.LogLinesPerSecond), stores: newStoreFactory(), host: host, port: port, lifecycle: newLifecycle()}
	a.app.acceptor = true
	a.app.compID = cfg.CompID
	a.app.credentials = cfg.Credentials
	a.app.limiter = newLimiter(cfg.RequestLimits)
	a.logs, a.files = newLogFactory(a.app, cfg.Persistence)
	return a, nil
}

// Start listens and serves until Stop is called or ctx is done.
func (a *Acceptor) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != stateNew {
		return errors.New("fixsession: acceptor: Start called twice")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.host, strconv.Itoa(a.port)))
	if err != nil {
		return fmt.Errorf("fixsession: acceptor: %w", err)
	}
	a.guard = newGuard(ln, a.cfg.CompID, a.cfg.MaxMessageSize, a.cfg.Limits, a.app, a.startBackend)
	a.guard.beforeDial = a.beforeDial
	a.guard.sendBuffer = a.cfg.SendBuffer
	a.guard.tls = a.cfg.TLS
	be, err := a.startBackend()
	if err != nil {
		ln.Close()
		return fmt.Errorf("fixsession: acceptor on %s: %w", ln.Addr(), err)
	}
	a.guard.setCurrent(be)
	a.addr = net.JoinHostPort(a.host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	a.guard.wg.Add(1)
	go a.guard.serve()
	a.state = stateStarted
	a.stopCtx = context.AfterFunc(ctx, a.Stop)
	l := a.cfg.Limits
	a.app.logger.Info("fix acceptor listening", "addr", a.addr, "compid", a.cfg.CompID, "max_message", a.guard.limit,
		"max_connections", l.MaxConnections, "max_connections_per_source", l.MaxConnectionsPerSource,
		"max_logon_size", l.MaxLogonSize, "logon_timeout", l.LogonTimeout, "tls", a.cfg.TLS != nil,
		"client_certificates", a.cfg.TLS != nil && a.cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert,
		"max_logon_failures", l.MaxLogonFailures, "lockout", l.Lockout)
	return nil
}

// backendHost is where the quickfix acceptor behind the guard listens.
const backendHost = "127.0.0.1"

// startBackend starts a quickfix acceptor for the guard on a free loopback port.
// quickfix v0.9.7 cannot report the port it bound, so a free port is found by binding
// and releasing it; another process may take it in between, hence the retries.
func (a *Acceptor) startBackend() (*backend, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePort(backendHost)
		var b *backend
		if err == nil {
			b, err = a.start(port)
		}
		if err == nil {
			return b, nil
		}
		if attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("quickfix on %s: %w", net.JoinHostPort(backendHost, strconv.Itoa(port)), err)
		}
	}
}

func (a *Acceptor) start(port int) (*backend, error) {
	settings := quickfix.NewSettings()
	g := settings.GlobalSettings()
	setBase(g)
	a.cfg.Persistence.apply(g)
	g.Set(config.SenderCompID, a.cfg.CompID)
	g.Set(config.SocketAcceptHost, backendHost)
	g.Set(config.SocketAcceptPort, strconv.Itoa(port))
	g.Set(config.DynamicSessions, "Y")
	if a.cfg.HeartBtInt > 0 {
		g.Set(config.HeartBtIntOverride, "Y")
		g.Set(config.HeartBtInt, strconv.Itoa(seconds(a.cfg.HeartBtInt)))
	}
	// quickfix listens only on the ports of configured sessions, so one session is
	// configured for a TargetCompID no client uses; dynamic sessions (created from the
	// global settings) serve everyone else.
	placeholder := quickfix.NewSessionSettings()
	placeholder.Set(config.TargetCompID, "UNUSED-"+rand.Text()[:12])
	id, err := settings.AddSession(placeholder)
	if err != nil {
		return nil, err
	}
	a.stores.setInner(a.cfg.Persistence.factory(settings))
	qf, err := quickfix.NewAcceptor(a.app, a.stores, settings, a.logs)
	if err != nil {
		_ = quickfix.UnregisterSession(id)
		a.stores.forget()
		return nil, err
	}
	qf.SetConnectionValidator(a.guard)
	if err := qf.Start(); err != nil {
		_ = quickfix.UnregisterSession(id)
		a.stores.forget()
		return nil, err
	}
	a.stores.waitRunning()
	stop := func() {
		a.stores.waitRunning()
		qf.Stop()
	}
	return &backend{addr: net.JoinHostPort(backendHost, strconv.Itoa(port)), qf: qf, stop: stop}, nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// Addr returns the address the acceptor listens on, host:port; empty before Start.
func (a *Acceptor) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Stop logs out every session, closes the listener and waits until the sessions have
// ended. It may be called more than once, but not from a Handler.
func (a *Acceptor) Stop() {
	if !a.beginStop() {
		return
	}
	a.guard.closeListener()
	if a.cfg.Persistence.FileStorePath != "" {
		a.logoutAll(persistentLogoutWait)
	}
	a.guard.stopAll() // the Logouts go out through the guard
	a.guard.close()
	a.app.rl.Close() // reports the warnings suppressed and not yet reported
	if a.files != nil {
		a.files.close()
	}
	a.app.logger.Info("fix acceptor stopped", "addr", a.Addr())
	a.endStop()
}

// Stats returns the acceptor's counters.
func (a *Acceptor) Stats() AcceptorStats {
	st := a.app.stats.stats()
	st.LogSuppressed = a.app.rl.Suppressed()
	return st
}

// Limits returns the acceptor's limits, defaults filled in.
func (a *Acceptor) Limits() Limits { return a.cfg.Limits }

// Identity returns who session id authenticated as, from the Logon the session's
// Credentials check accepted; false if the session is not logged on (or logging on).
// A Handler's OnLogon may call it: it is what to entitle and log the session by.
func (a *Acceptor) Identity(id quickfix.SessionID) (Identity, bool) {
	return a.app.identity(id)
}

// Sessions returns the sessions logged on now.
func (a *Acceptor) Sessions() []quickfix.SessionID { return a.app.sessions() }

// Send queues msg, an application message with its MsgType set, for session id. The
// session fills in the header (CompIDs, MsgSeqNum, SendingTime), so msg must not be
// used concurrently; it may be reused once Send returns.
func (a *Acceptor) Send(id quickfix.SessionID, msg *quickfix.Message) error {
	return a.app.send(id, msg)
}

// Flush waits until session id has handed every message given to Send so far to its
// connection, or ctx ends, or the session does. quickfix v0.9.7 queues what Send gives
// it without bound and hands it to the connection's writer from the session's
// goroutine, retrying in a loop that never blocks while the writer is busy: many
// sessions with long queues spin and starve the process. A sender of many messages
// (a retransmission) calls Flush every so often to keep the queue short.
func (a *Acceptor) Flush(ctx context.Context, id quickfix.SessionID) error {
	return a.app.flush(ctx, id)
}

// Disconnect closes session id's connection without a Logout, as a network failure
// would; quickfix drops what it had queued for it. It is for a client that does not read:
// a Logout would wait behind what it does not take. It reports whether there was a
// connection to close.
func (a *Acceptor) Disconnect(id quickfix.SessionID) bool {
	return a.guard.disconnect(id.TargetCompID)
}

// Logout sends session id a Logout (5) with reason as its Text (58); the session ends when
// the client answers. A quickfix initiator then reconnects after its reconnect interval.
func (a *Acceptor) Logout(id quickfix.SessionID, reason string) error {
	msg := quickfix.NewMessage()
	msg.Header.SetString(tag.MsgType, "5")
	if reason != "" {
		msg.Body.SetString(tag.Text, reason)
	}
	return a.app.send(id, msg)
}
