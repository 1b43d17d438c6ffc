package bus

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fastfeed/internal/passhash"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/mcast"
)

// Defaults of Config.
const (
	DefaultQueueSize   = 8192            // events queued per client
	DefaultMaxInFlight = 256             // messages handed to quickfix and not yet written, per client
	DefaultSlowLimit   = 2 * time.Second // how long a conflated client may stay behind
	DefaultMaxBatch    = 32              // entries per incremental refresh (X)
)

// User is a login of the bus and what it may see.
type User struct {
	Username string
	// Password is an argon2id or bcrypt hash (fastfeed passwd), or clear text (accepted
	// with a warning at New, compared in constant time).
	Password string
	// Entitlements are the instruments the user may see, in the patterns of the
	// in-process API: a symbol, a prefix "SB*", a channel "G239.1.2.3:30001" or "*".
	Entitlements []feed.Pattern
}

// Config configures a Bus.
type Config struct {
	// Listen is the TCP address of the FIX acceptor (default fixsession.OMSListen).
	Listen string
	// CompID is the acceptor's CompID (default fixsession.OMSCompID).
	CompID string
	// Users are the accepted logins with their entitlements.
	Users []User

	// ChannelOf returns the channel name of a symbol, so that channel patterns (in
	// requests and entitlements) can be checked; nil means no symbol is on any channel.
	// MappingChannels builds it from the handler's topic mapping.
	ChannelOf func(symbol string) string

	// QueueSize bounds each client's queue of events (default DefaultQueueSize). On
	// overflow the client's pending incrementals are dropped and it gets fresh snapshots.
	QueueSize int
	// MaxInFlight bounds the messages handed to a client's quickfix session that its
	// connection has not yet taken (default DefaultMaxInFlight): quickfix's own send
	// queue is unbounded, so the bus measures it and stops handing more.
	MaxInFlight int
	// SlowLimit: a client conflated at least once that has not caught up (queue empty,
	// connection taking messages) for this long is logged out (default DefaultSlowLimit).
	SlowLimit time.Duration
	// MaxBatch bounds the entries of one incremental refresh (default DefaultMaxBatch).
	MaxBatch int
	// HeartBtInt, if non-zero, overrides the heartbeat interval clients ask for.
	HeartBtInt time.Duration
	// FIXLimits bounds the FIX connections and what comes before a Logon (zero fields:
	// fixsession's defaults).
	FIXLimits fixsession.Limits
	// TLS, if set, makes the acceptor take FIX over TLS only (fixsession.ServerTLS).
	TLS *tls.Config
	// TLSCert, TLSKey and TLSCA are PEM files New makes TLS from when TLS is nil: the
	// certificate and key, and the CAs whose client certificates are required.
	TLSCert, TLSKey, TLSCA string
	// RequestLimits bounds the requests of each logged-on client (fixsession): over
	// the rate, a session-level Reject (3) with the reason, then a Logout.
	RequestLimits fixsession.RequestLimits
	// MaxSubscriptions bounds the subscriptions a client holds at once; 0 is no limit.
	// A subscription beyond it gets a MarketDataRequestReject (Y) with reason 2
	// (insufficient bandwidth) and the limit in its Text; a client that goes on
	// (RequestLimits.MaxRejects in a row, default fixsession.DefaultMaxLimitRejects)
	// is logged out.
	MaxSubscriptions int
	// MaxMessageSize bounds a message from a client after its Logon, framing included;
	// a longer one closes its connection (0: fixsession.DefaultMaxMessageSize).
	MaxMessageSize int
	// Persistence keeps the sessions' sequence numbers across restarts (a file store)
	// and logs their messages to files.
	Persistence fixsession.Persistence

	// HoldWildcards accepts a wildcard request ("*", a prefix such as "SB*", a channel)
	// that matches no instrument yet, and serves the instruments as they appear, instead
	// of rejecting it with "no instrument matches". A gateway sets it: it learns its
	// instruments from NATS, and an OMS may subscribe before the first of them arrives
	// (a gateway restarted before the open). Entitlements still apply per instrument.
	HoldWildcards bool

	// Logger receives client logons, logouts, rejects and evictions; nil discards them.
	Logger *slog.Logger
}

// Check reports what is wrong with the configuration (no users, a user without a
// password or given twice, a bad entitlement pattern, bad FIX limits, a negative bound,
// a listen address that is not host:port) without starting anything, as New would; a
// caller checks it before joining groups.
func (c Config) Check() error {
	if err := c.setDefaults(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("bus: listen address %q: %w", c.Listen, err)
	}
	return nil
}

func (c *Config) setDefaults() error {
	if c.Listen == "" {
		c.Listen = fixsession.OMSListen
	}
	if c.CompID == "" {
		c.CompID = fixsession.OMSCompID
	}
	if len(c.Users) == 0 {
		return errors.New("bus: no users")
	}
	seen := map[string]bool{}
	for _, u := range c.Users {
		if u.Username == "" || u.Password == "" {
			return errors.New("bus: a user has an empty username or password")
		}
		if seen[u.Username] {
			return fmt.Errorf("bus: user %q given twice", u.Username)
		}
		if err := passhash.Validate(u.Password); err != nil {
			return fmt.Errorf("bus: user %q: %w", u.Username, err)
		}
		seen[u.Username] = true
		for _, p := range u.Entitlements {
			if err := checkPattern(string(p)); err != nil {
				return fmt.Errorf("bus: user %q: entitlement: %w", u.Username, err)
			}
		}
	}
	if err := c.FIXLimits.Check(); err != nil {
		return fmt.Errorf("bus: FIX limits: %w", err)
	}
	if err := c.RequestLimits.Check(); err != nil {
		return fmt.Errorf("bus: request limits: %w", err)
	}
	if c.MaxSubscriptions < 0 || c.MaxMessageSize < 0 {
		return fmt.Errorf("bus: negative MaxSubscriptions %d or MaxMessageSize %d", c.MaxSubscriptions, c.MaxMessageSize)
	}
	if c.QueueSize < 0 || c.MaxInFlight < 0 || c.SlowLimit < 0 || c.MaxBatch < 0 || c.HeartBtInt < 0 {
		return errors.New("bus: negative QueueSize, MaxInFlight, SlowLimit, MaxBatch or HeartBtInt")
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	// The queue is a power-of-two ring.
	n := 1
	for n < c.QueueSize {
		n <<= 1
	}
	c.QueueSize = n
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.SlowLimit == 0 {
		c.SlowLimit = DefaultSlowLimit
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.ChannelOf == nil {
		c.ChannelOf = func(string) string { return "" }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// checkPattern reports why p cannot be a subscription pattern.
func checkPattern(p string) error {
	switch {
	case p == "":
		return errors.New("empty pattern")
	case strings.ContainsAny(p, "\x01 \t\r\n"):
		return fmt.Errorf("pattern %q holds a space or control character", p)
	case strings.Contains(p[:len(p)-1], "*"):
		return fmt.Errorf("pattern %q: '*' only at the end", p)
	}
	return nil
}

// MappingChannels returns a Config.ChannelOf for a handler that follows topics with
// mapping m on port: the channel of a symbol is the group the mapping gives it. A handler
// started with --all learns channels from the definitions; they agree when the publisher
// uses the same mapping.
func MappingChannels(m mcast.Mapping, port uint16) func(string) string {
	return func(symbol string) string {
		return mcast.ChannelName(netip.AddrPortFrom(m.Group(symbol), port))
	}
}

// MaxConfigSize is the largest configuration file ParseConfig reads.
const MaxConfigSize = 1 << 20

// fileConfig is the JSON form of a configuration file.
type fileConfig struct {
	Listen      string     `json:"listen"`
	CompID      string     `json:"comp_id"`
	QueueSize   int        `json:"queue_size"`
	MaxInFlight int        `json:"max_in_flight"`
	SlowLimit   string     `json:"slow_limit"`
	MaxBatch    int        `json:"max_batch"`
	Users       []fileUser `json:"users"`

	FIXMaxConnections          int    `json:"fix_max_connections"`
	FIXMaxConnectionsPerSource int    `json:"fix_max_connections_per_source"`
	FIXMaxLogonSize            int    `json:"fix_max_logon_size"`
	FIXLogonTimeout            string `json:"fix_logon_timeout"`
	FIXMaxLogonFailures        int    `json:"fix_max_logon_failures"`
	FIXLockout                 string `json:"fix_lockout"`
	FIXTLSCert                 string `json:"fix_tls_cert"`
	FIXTLSKey                  string `json:"fix_tls_key"`
	FIXTLSCA                   string `json:"fix_tls_ca"`
}

type fileUser struct {
	Username     string   `json:"username"`
	Password     string   `json:"password"`
	Entitlements []string `json:"entitlements"`
}

// ParseConfig reads a JSON configuration (fixtures/bus.json):
//
//	{"listen": "127.0.0.1:9871", "comp_id": "FFFEED", "queue_size": 8192,
//	 "max_in_flight": 256, "slow_limit": "2s", "max_batch": 32,
//	 "fix_max_connections": 1000, "fix_max_connections_per_source": 64,
//	 "fix_max_logon_size": 4096, "fix_logon_timeout": "5s",
//	 "fix_max_logon_failures": 5, "fix_lockout": "1m",
//	 "fix_tls_cert": "server.pem", "fix_tls_key": "server-key.pem", "fix_tls_ca": "clients-ca.pem",
//	 "users": [{"username": "demo", "password": "demo", "entitlements": ["*"]}]}
//
// Every field but users is optional; unknown fields are errors. A password is an
// argon2id or bcrypt hash (fastfeed passwd) or, with a warning, clear text. With
// fix_tls_cert and fix_tls_key the acceptor takes TLS only; fix_tls_ca requires client
// certificates of its CAs (the files are read by New).
func ParseConfig(r io.Reader) (Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("bus: config: %w", err)
	}
	if len(b) > MaxConfigSize {
		return Config{}, fmt.Errorf("bus: config: larger than %d bytes", MaxConfigSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		return Config{}, fmt.Errorf("bus: config: %w", jsonError(b, err, dec.InputOffset()))
	}
	if dec.More() {
		return Config{}, fmt.Errorf("bus: config: line %d: data after the JSON object", lineOf(b, dec.InputOffset()))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"queue_size", fc.QueueSize}, {"max_in_flight", fc.MaxInFlight}, {"max_batch", fc.MaxBatch},
		{"fix_max_connections", fc.FIXMaxConnections}, {"fix_max_connections_per_source", fc.FIXMaxConnectionsPerSource},
		{"fix_max_logon_size", fc.FIXMaxLogonSize}, {"fix_max_logon_failures", fc.FIXMaxLogonFailures}} {
		if f.v < 0 {
			return Config{}, fmt.Errorf("bus: config: %s: %d is negative", f.name, f.v)
		}
	}
	cfg := Config{Listen: fc.Listen, CompID: fc.CompID, QueueSize: fc.QueueSize, MaxInFlight: fc.MaxInFlight, MaxBatch: fc.MaxBatch,
		FIXLimits: fixsession.Limits{MaxConnections: fc.FIXMaxConnections, MaxConnectionsPerSource: fc.FIXMaxConnectionsPerSource,
			MaxLogonSize: fc.FIXMaxLogonSize, MaxLogonFailures: fc.FIXMaxLogonFailures}}
	if fc.FIXLockout != "" {
		if cfg.FIXLimits.Lockout, err = time.ParseDuration(fc.FIXLockout); err != nil {
			return Config{}, fmt.Errorf("bus: config: fix_lockout: %w", err)
		}
		if cfg.FIXLimits.Lockout <= 0 {
			return Config{}, fmt.Errorf("bus: config: fix_lockout: %s is not positive", fc.FIXLockout)
		}
	}
	switch {
	case (fc.FIXTLSCert == "") != (fc.FIXTLSKey == ""), fc.FIXTLSCA != "" && fc.FIXTLSCert == "":
		return Config{}, errors.New("bus: config: fix_tls_cert and fix_tls_key go together, and fix_tls_ca needs them")
	}
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = fc.FIXTLSCert, fc.FIXTLSKey, fc.FIXTLSCA
	if fc.FIXLogonTimeout != "" {
		if cfg.FIXLimits.LogonTimeout, err = time.ParseDuration(fc.FIXLogonTimeout); err != nil {
			return Config{}, fmt.Errorf("bus: config: fix_logon_timeout: %w", err)
		}
		if cfg.FIXLimits.LogonTimeout <= 0 {
			return Config{}, fmt.Errorf("bus: config: fix_logon_timeout: %s is not positive", fc.FIXLogonTimeout)
		}
	}
	if fc.SlowLimit != "" {
		if cfg.SlowLimit, err = time.ParseDuration(fc.SlowLimit); err != nil {
			return Config{}, fmt.Errorf("bus: config: slow_limit: %w", err)
		}
		if cfg.SlowLimit < 0 {
			return Config{}, fmt.Errorf("bus: config: slow_limit: %s is negative", fc.SlowLimit)
		}
	}
	for _, u := range fc.Users {
		user := User{Username: u.Username, Password: u.Password}
		for _, e := range u.Entitlements {
			user.Entitlements = append(user.Entitlements, feed.Pattern(e))
		}
		cfg.Users = append(cfg.Users, user)
	}
	check := cfg
	if err := check.setDefaults(); err != nil {
		return Config{}, fmt.Errorf("bus: config: %w", err)
	}
	return cfg, nil
}

// jsonError adds to a JSON decoding error of data the line it is on: at the offset
// the error names, else at off, where the decoder stopped.
func jsonError(data []byte, err error, off int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	return fmt.Errorf("line %d: %w", lineOf(data, off), err)
}

// lineOf returns the 1-based line of data holding byte off.
func lineOf(data []byte, off int64) int {
	off = max(0, min(off, int64(len(data))))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// LoadConfig reads the configuration file at path (see ParseConfig).
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
