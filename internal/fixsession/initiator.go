package fixsession

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/quickfix/config"
)

// Initiator defaults.
const (
	DefaultHeartBtInt        = 10 * time.Second
	DefaultReconnectInterval = time.Second
	DefaultLogonTimeout      = 10 * time.Second
	DefaultLogoutTimeout     = 2 * time.Second
)

// InitiatorConfig configures an Initiator. Zero durations take the defaults above.
type InitiatorConfig struct {
	Connect            string // the acceptor's address, host:port, e.g. RecoveryListen
	SenderCompID       string // this client's CompID
	TargetCompID       string // the acceptor's CompID, e.g. RecoveryCompID
	Username, Password string // sent in the Logon as 553 and 554 when non-empty
	HeartBtInt         time.Duration
	ReconnectInterval  time.Duration // wait after a lost or refused session
	LogonTimeout       time.Duration // wait for the Logon answer
	LogoutTimeout      time.Duration // wait for the Logout answer when stopping
	// TLS, if not nil, connects over TLS 1.2 or later. The framing guard (relay.go)
	// does the TLS, the handshake bounded by its dial timeout, and quickfix talks plain
	// to it on loopback; with GuardOff it is quickfix's own TLS, whose handshake has no
	// deadline of its own (a service that accepts and never answers holds a reconnect,
	// and Stop, until it closes; fastfeed's services close after their
	// Limits.LogonTimeout).
	TLS *ClientTLS
	// Persistence keeps sequence numbers across restarts and logs messages to files.
	Persistence Persistence
	// MaxMessageSize bounds a message from the acceptor, framing included (0:
	// DefaultMaxMessageSize); GuardOff turns off the framing guard (relay.go).
	MaxMessageSize int
	GuardOff       bool
	// Logger receives logons and logouts at Info, and quickfix's messages (the password
	// hidden) and events at Debug. Nil discards everything.
	Logger *slog.Logger
}

// Initiator is a FIX client session: it connects, logs on, and reconnects after a lost
// or refused session until stopped. Start it once; Stop it when done.
type Initiator struct {
	cfg    InitiatorConfig
	app    *app
	stores *storeFactory
	id     quickfix.SessionID

	lifecycle
	qf    *quickfix.Initiator
	relay *relay // the framing guard, nil if GuardOff
	logs  teeFactory
	files *fileLogs // nil without FileLogPath
}

// NewInitiator returns an initiator for cfg whose session reports to h.
func NewInitiator(cfg InitiatorConfig, h Handler) (*Initiator, error) {
	switch {
	case h == nil:
		return nil, errors.New("fixsession: initiator: nil Handler")
	case cfg.SenderCompID == "" || cfg.TargetCompID == "":
		return nil, errors.New("fixsession: initiator: SenderCompID and TargetCompID required")
	case cfg.HeartBtInt < 0 || cfg.ReconnectInterval < 0 || cfg.LogonTimeout < 0 || cfg.LogoutTimeout < 0:
		return nil, errors.New("fixsession: initiator: negative duration")
	case cfg.MaxMessageSize < 0:
		return nil, fmt.Errorf("fixsession: initiator: negative MaxMessageSize %d", cfg.MaxMessageSize)
	}
	if err := cfg.Persistence.Check(); err != nil {
		return nil, fmt.Errorf("fixsession: initiator: %w", err)
	}
	if _, port, err := splitHostPort(cfg.Connect); err != nil || port == 0 {
		return nil, fmt.Errorf("fixsession: initiator: bad Connect address %q", cfg.Connect)
	}
	if cfg.TLS != nil {
		if err := cfg.TLS.check(); err != nil {
			return nil, fmt.Errorf("fixsession: initiator: %w", err)
		}
		if cfg.GuardOff && cfg.TLS.MinVersion > tls.VersionTLS12 {
			return nil, errors.New("fixsession: initiator: quickfix's own TLS (GuardOff) takes a minimum of TLS 1.2 only")
		}
	}
	setDefault(&cfg.HeartBtInt, DefaultHeartBtInt)
	setDefault(&cfg.ReconnectInterval, DefaultReconnectInterval)
	setDefault(&cfg.LogonTimeout, DefaultLogonTimeout)
	setDefault(&cfg.LogoutTimeout, DefaultLogoutTimeout)
	i := &Initiator{
		cfg:       cfg,
		app:       newApp(h, cfg.Logger, 0),
		stores:    newStoreFactory(),
		id:        quickfix.SessionID{BeginString: BeginString, SenderCompID: cfg.SenderCompID, TargetCompID: cfg.TargetCompID},
		lifecycle: newLifecycle(),
	}
	i.app.username, i.app.password = cfg.Username, cfg.Password
	i.logs, i.files = newLogFactory(i.app, cfg.Persistence)
	return i, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// SessionID returns the initiator's session.
func (i *Initiator) SessionID() quickfix.SessionID { return i.id }

// Start connects in the background, and keeps the session up until Stop is called or
// ctx is done. The Handler's OnLogon tells when the session is logged on. A process can
// run one Initiator per SenderCompID/TargetCompID pair at a time.
func (i *Initiator) Start(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != stateNew {
		return errors.New("fixsession: initiator: Start called twice")
	}
	host, port, _ := splitHostPort(i.cfg.Connect)
	s := quickfix.NewSessionSettings()
	setBase(s)
	i.cfg.Persistence.apply(s)
	s.Set(config.SenderCompID, i.cfg.SenderCompID)
	s.Set(config.TargetCompID, i.cfg.TargetCompID)
	tlsByQuickfix := i.cfg.TLS
	if !i.cfg.GuardOff {
		// The guard terminates TLS: quickfix talks plain to it on loopback.
		var tc *tls.Config
		if i.cfg.TLS != nil {
			var err error
			if tc, err = i.cfg.TLS.config(host); err != nil {
				return fmt.Errorf("fixsession: initiator %v: %w", i.id, err)
			}
		}
		r, err := newRelay(i.cfg.Connect, i.cfg.MaxMessageSize, tc, i.app)
		if err != nil {
			return fmt.Errorf("fixsession: initiator %v: %w", i.id, err)
		}
		i.relay = r
		host, port = r.host, r.port
		tlsByQuickfix = nil
	}
	s.Set(config.SocketConnectHost, host)
	s.Set(config.SocketConnectPort, strconv.Itoa(port))
	s.Set(config.HeartBtInt, strconv.Itoa(seconds(i.cfg.HeartBtInt)))
	s.Set(config.ReconnectInterval, i.cfg.ReconnectInterval.String())
	s.Set(config.LogonTimeout, i.cfg.LogonTimeout.String())
	s.Set(config.LogoutTimeout, i.cfg.LogoutTimeout.String())
	if t := tlsByQuickfix; t != nil {
		s.Set(config.SocketUseSSL, "Y")
		s.Set(config.SocketMinimumTLSVersion, "TLS12")
		s.Set(config.SocketServerName, host)
		if t.ServerName != "" {
			s.Set(config.SocketServerName, t.ServerName)
		}
		if len(t.CA) > 0 {
			s.SetRaw(config.SocketCABytes, t.CA)
		}
		if len(t.Cert) > 0 {
			s.SetRaw(config.SocketCertificateBytes, t.Cert)
			s.SetRaw(config.SocketPrivateKeyBytes, t.Key)
		}
	}
	settings := quickfix.NewSettings()
	if _, err := settings.AddSession(s); err != nil {
		return fmt.Errorf("fixsession: initiator %v: %w", i.id, err)
	}
	i.stores.setInner(i.cfg.Persistence.factory(settings))
	qf, err := quickfix.NewInitiator(i.app, i.stores, settings, i.logs)
	if err != nil {
		i.closeRelay()
		i.stores.forget()
		return fmt.Errorf("fixsession: initiator %v: %w", i.id, err)
	}
	if err := qf.Start(); err != nil {
		_ = quickfix.UnregisterSession(i.id)
		i.closeRelay()
		i.stores.forget()
		return fmt.Errorf("fixsession: initiator %v: %w", i.id, err)
	}
	i.stores.waitRunning()
	i.qf = qf
	i.state = stateStarted
	i.stopCtx = context.AfterFunc(ctx, i.Stop)
	return nil
}

// Stop logs out (waiting up to LogoutTimeout for the answer), disconnects and waits until
// the session has ended. It may be called more than once, but not from a Handler.
func (i *Initiator) Stop() {
	if !i.beginStop() {
		return
	}
	i.qf.Stop()
	i.closeRelay()
	if i.files != nil {
		i.files.close()
	}
	i.endStop()
}

// ConnectError returns the last failure to connect to the acceptor (the dial error, e.g.
// "dial tcp 127.0.0.1:9871: connect: connection refused") and how many attempts in a
// row failed; "" and 0 once the session has logged on, or before the first failure.
func (i *Initiator) ConnectError() (string, int) { return i.app.lastConnectError() }

func (i *Initiator) closeRelay() {
	if i.relay != nil {
		i.relay.close()
	}
}

// Stats returns the counters of the initiator's framing guard.
func (i *Initiator) Stats() InitiatorStats {
	if i.relay == nil {
		return InitiatorStats{}
	}
	return i.relay.stats()
}

// LoggedOn reports whether the session is logged on now.
func (i *Initiator) LoggedOn() bool { return i.app.isLoggedOn(i.id) }

// Send queues msg, an application message with its MsgType set, on the session. The
// session fills in the header, so msg must not be used concurrently; it may be reused
// once Send returns.
func (i *Initiator) Send(msg *quickfix.Message) error { return i.app.send(i.id, msg) }
