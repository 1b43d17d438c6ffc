package bus

import (
	"context"
	"errors"
	"fastfeed/internal/passhash"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/internal/fixsession"
	"fastfeed/md"
)

// TagPublishTime is a custom tag of every X and W the bus sends: the handler's
// wall-clock time, in nanoseconds since the Unix epoch, when the message's (first) event
// was queued for the client.
const TagPublishTime quickfix.Tag = 20010

// Security status sent when a book goes stale.
const (
	StaleTradingStatus = 20 // SecurityTradingStatus (326): unknown or invalid
	StaleText          = "stale"
)

// Bus is the OMS distribution service of one feed handler. Create it with New, Start it,
// Stop it when done.
type Bus struct {
	cfg    Config
	src    Source
	acc    *fixsession.Acceptor
	users  map[string]*User
	logins *passhash.Users // the users' stored passwords
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	clients map[string]*client // by session ID string
	ended   []ClientStats      // clients gone
}

// ClientStats are one client's counters.
type ClientStats struct {
	Session     string `json:"session"`
	Username    string `json:"username"`
	Requests    int    `json:"requests"`    // subscriptions open now (or at the end)
	Messages    uint64 `json:"messages"`    // messages handed to the session
	Entries     uint64 `json:"entries"`     // incremental entries sent
	Snapshots   uint64 `json:"snapshots"`   // Ws sent
	Rejects     uint64 `json:"rejects"`     // Ys sent
	Conflations uint64 `json:"conflations"` // queue overflows answered with fresh Ws
	OverLimit   uint64 `json:"over_limit"`  // of Rejects: subscriptions beyond MaxSubscriptions
	Dropped     uint64 `json:"dropped"`     // events dropped by conflation
	LoggedOut   string `json:"logged_out,omitempty"`
	Connected   bool   `json:"connected"`
}

// NewFromSource returns a bus serving src's books with cfg: the OMS FIX service of a
// gateway fed from NATS, with the same FIX contract, entitlements and conflation as in
// the handler.
func NewFromSource(src Source, cfg Config) (*Bus, error) {
	if src == nil {
		return nil, errors.New("bus: nil source")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, src: src, users: map[string]*User{}, log: cfg.Logger,
		clients: map[string]*client{}}
	logins := make(map[string]string, len(cfg.Users))
	for i := range cfg.Users {
		u := cfg.Users[i]
		b.users[u.Username] = &u
		logins[u.Username] = u.Password
	}
	var err error
	if b.logins, err = passhash.NewUsers(logins); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if clear := b.logins.ClearText(); len(clear) > 0 {
		cfg.Logger.Warn("bus: passwords stored in clear text; store hashes (fastfeed passwd)", "users", clear)
	}
	if cfg.TLS == nil && (cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSCA != "") {
		if cfg.TLS, err = fixsession.ServerTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA); err != nil {
			return nil, fmt.Errorf("bus: %w", err)
		}
	}
	acc, err := fixsession.NewAcceptor(fixsession.AcceptorConfig{
		Listen: cfg.Listen, CompID: cfg.CompID, Credentials: b.credentials, HeartBtInt: cfg.HeartBtInt, Limits: cfg.FIXLimits, TLS: cfg.TLS,
		RequestLimits: cfg.RequestLimits, Persistence: cfg.Persistence, MaxMessageSize: cfg.MaxMessageSize,
		Logger: slog.New(logTap{b: b, next: cfg.Logger.Handler()}),
	}, fixsession.HandlerFuncs{Logon: b.onLogon, Logout: b.onLogout, Message: b.onMessage})
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	b.acc = acc
	return b, nil
}

func (b *Bus) credentials(username, password string) bool {
	return b.logins.Check(username, password)
}

// Start listens for clients until Stop is called or ctx ends.
func (b *Bus) Start(ctx context.Context) error {
	b.ctx, b.cancel = context.WithCancel(ctx)
	if err := b.acc.Start(b.ctx); err != nil {
		b.cancel()
		return fmt.Errorf("bus: %w", err)
	}
	b.log.Info("OMS service listening", "addr", b.acc.Addr(), "compid", b.cfg.CompID, "users", len(b.users))
	return nil
}

// Addr returns the address the bus listens on; empty before Start.
func (b *Bus) Addr() string { return b.acc.Addr() }

// Stop logs every client out, stops listening and waits for the writers.
func (b *Bus) Stop() {
	if b.cancel != nil {
		b.cancel()
	}
	b.acc.Stop()
	b.mu.Lock()
	for k, c := range b.clients {
		c.stop()
		delete(b.clients, k)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// FIXStats returns the counters of the bus's FIX acceptor: connections, and malformed,
// garbled and rejected messages from clients.
func (b *Bus) FIXStats() fixsession.AcceptorStats { return b.acc.Stats() }

// LimitStats returns the counters of the request rate limit (Config.RequestLimits).
func (b *Bus) LimitStats() fixsession.LimitStats { return b.acc.LimitStats() }

// Clients returns the counters of every client seen, connected or not, by session.
func (b *Bus) Clients() []ClientStats {
	b.mu.RLock()
	out := append([]ClientStats(nil), b.ended...)
	for _, c := range b.clients {
		out = append(out, c.stats(true))
	}
	b.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Session < out[j].Session })
	return out
}

// onLogon starts a client's writer, entitled as the user its Logon authenticated as.
func (b *Bus) onLogon(id quickfix.SessionID) {
	key := id.String()
	ident, _ := b.acc.Identity(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	user := b.users[ident.Username]
	if user == nil || b.ctx.Err() != nil {
		go b.acc.Logout(id, "no user for the session") //nolint:errcheck // best effort
		return
	}
	if old := b.clients[key]; old != nil {
		old.stop()
	}
	c := newClient(b, id, user)
	b.clients[key] = c
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		c.run()
	}()
	b.log.Info("OMS client logged on", "session", key, "username", user.Username)
}

// onLogout ends a client.
func (b *Bus) onLogout(id quickfix.SessionID, reason string) {
	key := id.String()
	b.mu.Lock()
	c := b.clients[key]
	delete(b.clients, key)
	b.mu.Unlock()
	if c == nil {
		return
	}
	c.stop()
	<-c.done
	st := c.stats(false)
	b.mu.Lock()
	b.ended = append(b.ended, st)
	b.mu.Unlock()
	b.log.Info("OMS client logged out", "session", key, "reason", reason, "messages", st.Messages,
		"conflations", st.Conflations, "dropped", st.Dropped)
}

// onMessage hands MarketDataRequests to the client's writer.
func (b *Bus) onMessage(id quickfix.SessionID, msg *quickfix.Message) error {
	b.mu.RLock()
	c := b.clients[id.String()]
	b.mu.RUnlock()
	if c == nil {
		return errors.New("not logged on")
	}
	if !msg.IsMsgTypeOf(md.MsgTypeMarketDataRequest) {
		t, _ := msg.Header.GetString(tag.MsgType)
		return fmt.Errorf("unsupported MsgType %q: the OMS service serves MarketDataRequest (V)", t)
	}
	req, err := md.MarketDataRequestFromFIX(msg)
	if err != nil {
		return err
	}
	select {
	case c.ctl <- req:
		return nil
	case <-c.ctx.Done():
		return errors.New("session ending")
	}
}

// tap handles the session log records the bus reads: each application message a
// session has handed to its connection. (Who a session is comes from
// fixsession.Acceptor.Identity, never from log text.)
func (b *Bus) tap(out bool, session, text string) {
	if !out || !isAppMessage(text) {
		return
	}
	b.mu.RLock()
	c := b.clients[session]
	b.mu.RUnlock()
	if c != nil {
		c.written.Add(1)
		select {
		case c.outWake <- struct{}{}:
		default:
		}
	}
}

func isAppMessage(text string) bool {
	i := strings.Index(text, "|35=")
	if i < 0 || i+6 > len(text) || text[i+5] != '|' {
		return false
	}
	switch text[i+4] {
	case 'X', 'W', 'f', 'Y':
		return true
	}
	return false
}

// logTap is the slog.Handler given to the acceptor: it always takes quickfix's debug
// records (for Bus.tap) and passes records on to the configured logger as it wants them.
type logTap struct {
	b    *Bus
	next slog.Handler
}

func (t logTap) Enabled(ctx context.Context, l slog.Level) bool {
	return l <= slog.LevelDebug || t.next.Enabled(ctx, l)
}

func (t logTap) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && r.Message == "fix out" {
		var text, session string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "text":
				text = a.Value.String()
			case "session":
				session = a.Value.String()
			}
			return true
		})
		if session != "" {
			t.b.tap(true, session, text)
		}
	}
	if t.next.Enabled(ctx, r.Level) {
		return t.next.Handle(ctx, r)
	}
	return nil
}

func (t logTap) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logTap{b: t.b, next: t.next.WithAttrs(attrs)}
}

func (t logTap) WithGroup(name string) slog.Handler {
	return logTap{b: t.b, next: t.next.WithGroup(name)}
}
