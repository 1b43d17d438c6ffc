package publisher

import (
	"errors"
	"fastfeed/internal/passhash"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"time"

	"fastfeed/fast"
	"fastfeed/internal/decfmt"
	"fastfeed/mcast"
	"fastfeed/mcast/dgauth"
)

// Defaults of Config. A zero field of Config means its default.
const (
	DefaultPort                = 30001
	DefaultPayloadLimit        = 1400 // bytes of FAST message per datagram, preamble excluded
	DefaultHeartbeat           = time.Second
	DefaultDefinitionsInterval = 5 * time.Second
	DefaultDefinitionsLead     = 20 * time.Millisecond
	DefaultMinDepth            = 5
	DefaultMaxDepth            = 20
	DefaultRetention           = 100000   // sequenced datagrams kept, all channels together
	DefaultRetentionBytes      = 64 << 20 // bytes of datagrams kept, all channels together
	DefaultMaxRetransmit       = 10000    // sequence numbers per Retransmit request
	DefaultRecoveryListen      = "127.0.0.1:9870"
	DefaultRecoveryCompID      = "FFPUB"
	DefaultInstruments         = 10 // what the command line generates without --config
)

// Limits of Config.
const (
	MinPayloadLimit   = 256
	MaxPayloadLimit   = 65507 - 4 // largest UDP payload over IPv4, minus the preamble
	MinRetentionBytes = 4 << 20
	MaxSymbolLen      = 32
	MaxExp            = 18 // price and size exponents lie in [-MaxExp, MaxExp]
	MaxDepthLimit     = 1000
	maxPrice          = 1e15 // start prices and ticks, as mantissas
)

// Instrument is one simulated instrument. Prices are integers at PriceExp
// (Tick 25 at PriceExp -4 is 0.0025) and sizes integers at SizeExp.
type Instrument struct {
	Symbol       string  // the topic (tag 55); printable ASCII, no spaces
	PriceExp     int8    // price exponent
	SizeExp      int8    // size exponent
	Tick         int64   // MinPriceIncrement as a mantissa at PriceExp; > 0
	StartPrice   int64   // opening mid price, a mantissa at PriceExp and a multiple of Tick
	Weight       float64 // relative activity (share of events); 0 means 1
	SecurityType string  // tag 167, e.g. "CS"; optional
	Currency     string  // tag 15, e.g. "RUB"; optional
	Description  string  // tag 107 (UTF-8); optional
}

// User is a login of the recovery service.
type User struct {
	Username string
	Password string
}

// RecoveryConfig is what the FIX recovery acceptor (recovery.go) needs; the
// publishing loop itself does not use it.
type RecoveryConfig struct {
	Listen string // host:port; "" means DefaultRecoveryListen
	CompID string // SenderCompID of the acceptor; "" means DefaultRecoveryCompID
	Users  []User // accepted logins; a Password is an argon2id or bcrypt hash, or clear text
	// TLSCert and TLSKey, PEM files, make the service take FIX over TLS only; TLSCA, if
	// set, requires client certificates of its CAs (fixsession.ServerTLS).
	// RecoveryOptions.TLS, if set, takes precedence.
	TLSCert, TLSKey, TLSCA string
	// MaxLogonFailures and Lockout: fixsession.Limits' (0: the defaults);
	// RecoveryOptions.Limits' take precedence when set.
	MaxLogonFailures int
	Lockout          time.Duration
}

// BLine configures the optional B line: every datagram is sent a second
// time, the same bytes, to the B group and port of its channel. The B line is
// on when Port or GroupBase is set.
type BLine struct {
	// Port is the B port; 0 means the A port.
	Port uint16
	// GroupBase is the base of the B mapping (same size and mode as the A
	// mapping); the zero Addr means the A groups.
	GroupBase netip.Addr
	// DefinitionsGroup is the group of the B definitions channel. The zero
	// Addr means: the A definitions group if the B port differs from the A
	// port, else the address just below GroupBase (as 239.0.0.0 is just
	// below the default base 239.0.0.1).
	DefinitionsGroup netip.Addr
}

// Enabled reports whether the B line is on.
func (b BLine) Enabled() bool { return b.Port != 0 || b.GroupBase.IsValid() }

// Config configures a Publisher. Only Instruments and Templates are
// required; every zero field takes its default.
type Config struct {
	Instruments []Instrument
	Templates   *fast.Templates // fastfeed's templates (fixtures/templates.xml)

	Mapping          mcast.Mapping // topic -> group; the zero Mapping is the default one
	Port             uint16        // 0 means DefaultPort
	DefinitionsGroup netip.Addr    // zero means mcast.DefaultDefinitionsGroup (239.0.0.0)
	B                BLine
	Interface        netip.Addr // IP_MULTICAST_IF; zero means 127.0.0.1 (loopback)
	SendBuffer       int        // SO_SNDBUF in bytes; 0 keeps the kernel default
	// Key, when set, seals every datagram (A and B alike) with a trailer that handlers
	// check (package mcast/dgauth; docs/mcast-auth.md): dgauth.Overhead bytes after
	// the FAST message, outside PayloadLimit. Nil: no trailer, the wire of DESIGN.md.
	Key *dgauth.Key

	// Rate is the target of incremental refresh (X) datagrams per second on
	// line A, all channels together; 0 means as fast as possible.
	Rate float64
	// Duration bounds the data phase; 0 means no bound.
	Duration time.Duration
	// Count stops the data at the end of the send tick in which the Count-th
	// incremental datagram went out; 0 means no bound.
	Count int64
	Seed  uint64 // of the simulator's PCG generator

	PayloadLimit        int           // 0 means DefaultPayloadLimit
	Heartbeat           time.Duration // idle time before a heartbeat; 0 means DefaultHeartbeat
	DefinitionsInterval time.Duration // 0 means DefaultDefinitionsInterval
	// DefinitionsLead is how long, at startup, the definitions go out before the
	// instrument channels' first datagram (their SequenceReset), so that a recorder or
	// handler that joins a channel when its definition names it (record --all, feed
	// --all) is joined before the channel starts. 0 means DefaultDefinitionsLead; a
	// negative lead sends everything at once.
	DefinitionsLead    time.Duration
	NoStatus           bool // do not send the SecurityStatus (f) of each instrument at startup
	MinDepth, MaxDepth int  // levels per side the simulator keeps; 0 means the defaults

	Retention      int // sequenced datagrams kept for Retransmit; 0 means DefaultRetention
	RetentionBytes int // bytes kept for Retransmit; 0 means DefaultRetentionBytes
	MaxRetransmit  int // 0 means DefaultMaxRetransmit

	// Linger keeps the publisher heartbeating and serving Retransmit and
	// Snapshot for this long after the data stops.
	Linger time.Duration
	// MaxLag, if positive (with a Rate), bounds how far the paced sending may fall behind
	// its schedule: the incrementals due longer ago are skipped (counted in
	// Stats.Skipped, never sent) and the schedule resumes at the rate, the way a live
	// market does not replay what its host was too busy to send. 0: catch up, as fast
	// as the loop can send, until back on schedule.
	MaxLag time.Duration
	// SpinWait, if positive (with a Rate), makes the paced loop spin through a wait
	// shorter than it, reading the clock, instead of sleeping: Go's timers wake a sleep of
	// less than a millisecond up to a millisecond late (1.09 ms for any sleep of 20 µs to
	// 1 ms on the machine of bench/results), so a sleeping publisher sends a millisecond's
	// datagrams at once (some 10 at 10k/s, 100 at 100k/s, all stamped before the
	// sendmmsg, the last leaving after the kernel has sent the others), where a spinning
	// one sends each when it is due. It keeps a CPU busy while data flows: for load
	// generators (bench --pacing spin) and sources that must pace to the microsecond.
	SpinWait time.Duration
	// DumpBooks, if set, is the file the ground-truth books are written to
	// (book.WriteDump) when the data stops.
	DumpBooks string

	// SnapshotChannels sends a snapshot channel beside every instrument channel
	// (snapchan.go, docs/snapshot-channels.md): the same group on port +
	// SnapshotPortOffset, cycling a W of each of its instruments.
	SnapshotChannels   bool
	SnapshotRate       float64 // W datagrams per second, all snapshot channels together; 0 means DefaultSnapshotRate
	SnapshotPortOffset uint16  // 0 means mcast.DefaultSnapshotPortOffset

	Recovery RecoveryConfig
	Logger   *slog.Logger // nil means no logging

	// Source, if set, replaces the simulator (source.go): the loop polls it for data,
	// which it publishes through AddInstrument, SetLevel, ReplaceBook, Trade and
	// SetStale. Instruments may then be empty (they are added as the source learns
	// them; StartPrice and Weight are not used), and Rate, Count and Seed are ignored.
	Source Source
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if !c.DefinitionsGroup.IsValid() {
		c.DefinitionsGroup = mcast.DefinitionsChannel(c.Port).Addr()
	}
	if c.PayloadLimit == 0 {
		c.PayloadLimit = DefaultPayloadLimit
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.DefinitionsInterval == 0 {
		c.DefinitionsInterval = DefaultDefinitionsInterval
	}
	if c.DefinitionsLead == 0 {
		c.DefinitionsLead = DefaultDefinitionsLead
	}
	if c.MinDepth == 0 {
		c.MinDepth = DefaultMinDepth
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = max(DefaultMaxDepth, c.MinDepth)
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = DefaultRetentionBytes
	}
	if c.MaxRetransmit == 0 {
		c.MaxRetransmit = DefaultMaxRetransmit
	}
	if c.SnapshotRate == 0 {
		c.SnapshotRate = DefaultSnapshotRate
	}
	if c.SnapshotPortOffset == 0 {
		c.SnapshotPortOffset = mcast.DefaultSnapshotPortOffset
	}
	if c.Recovery.Listen == "" {
		c.Recovery.Listen = DefaultRecoveryListen
	}
	if c.Recovery.CompID == "" {
		c.Recovery.CompID = DefaultRecoveryCompID
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for i := range c.Instruments {
		if c.Instruments[i].Weight == 0 {
			c.Instruments[i].Weight = 1
		}
	}
	return c
}

// Validate reports the first thing wrong with c (after defaults), naming the
// field.
func (c Config) Validate() error {
	c.Instruments = append([]Instrument(nil), c.Instruments...)
	c = c.withDefaults()
	return c.validate()
}

func (c *Config) validate() error {
	if c.Templates == nil {
		return errors.New("publisher: config: Templates is nil (load fixtures/templates.xml)")
	}
	if len(c.Instruments) == 0 && c.Source == nil {
		return errors.New("publisher: config: no instruments")
	}
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("publisher: config: rate %v: want a finite number >= 0 (0: as fast as possible)", c.Rate)
	case c.Duration < 0:
		return fmt.Errorf("publisher: config: duration %v is negative", c.Duration)
	case c.Count < 0:
		return fmt.Errorf("publisher: config: count %d is negative", c.Count)
	case c.PayloadLimit < MinPayloadLimit || c.PayloadLimit > MaxPayloadLimit:
		return fmt.Errorf("publisher: config: payload limit %d out of range %d..%d", c.PayloadLimit, MinPayloadLimit, MaxPayloadLimit)
	case c.Key != nil && c.PayloadLimit > MaxPayloadLimit-dgauth.Overhead:
		return fmt.Errorf("publisher: config: payload limit %d with a datagram key: at most %d (the trailer takes %d bytes)",
			c.PayloadLimit, MaxPayloadLimit-dgauth.Overhead, dgauth.Overhead)
	case c.Heartbeat < time.Millisecond:
		return fmt.Errorf("publisher: config: heartbeat interval %v: want at least 1ms", c.Heartbeat)
	case c.DefinitionsInterval < time.Millisecond:
		return fmt.Errorf("publisher: config: definitions interval %v: want at least 1ms", c.DefinitionsInterval)
	case c.MinDepth < 1 || c.MaxDepth < c.MinDepth || c.MaxDepth > MaxDepthLimit:
		return fmt.Errorf("publisher: config: depth %d..%d: want 1 <= min <= max <= %d", c.MinDepth, c.MaxDepth, MaxDepthLimit)
	case c.Retention < 1:
		return fmt.Errorf("publisher: config: retention %d datagrams: want at least 1", c.Retention)
	case c.RetentionBytes < MinRetentionBytes:
		return fmt.Errorf("publisher: config: retention %d bytes: want at least %d", c.RetentionBytes, MinRetentionBytes)
	case c.MaxRetransmit < 1:
		return fmt.Errorf("publisher: config: max retransmit %d: want at least 1", c.MaxRetransmit)
	case c.Linger < 0:
		return fmt.Errorf("publisher: config: linger %v is negative", c.Linger)
	case c.MaxLag < 0:
		return fmt.Errorf("publisher: config: max lag %v is negative", c.MaxLag)
	case c.SpinWait < 0:
		return fmt.Errorf("publisher: config: spin wait %v is negative", c.SpinWait)
	case c.SnapshotRate < 0 || math.IsNaN(c.SnapshotRate) || math.IsInf(c.SnapshotRate, 0):
		return fmt.Errorf("publisher: config: snapshot rate %v: want a finite number > 0", c.SnapshotRate)
	case c.SendBuffer < 0:
		return fmt.Errorf("publisher: config: send buffer %d is negative", c.SendBuffer)
	}
	if i := c.Interface.Unmap(); i.IsValid() && (!i.Is4() || i.IsMulticast() || i.IsUnspecified()) {
		return fmt.Errorf("publisher: config: interface %v is not a unicast IPv4 address", c.Interface)
	}
	seen := make(map[string]int, len(c.Instruments))
	for i := range c.Instruments {
		in := &c.Instruments[i]
		validate := in.validate
		if c.Source != nil {
			validate = in.validateSourced
		}
		if err := validate(c.MaxDepth); err != nil {
			return fmt.Errorf("publisher: config: instruments[%d] (%s): %w", i, in.Symbol, err)
		}
		if j, ok := seen[in.Symbol]; ok {
			return fmt.Errorf("publisher: config: instruments[%d]: symbol %q already given as instruments[%d]", i, in.Symbol, j)
		}
		seen[in.Symbol] = i
	}
	users := make(map[string]bool, len(c.Recovery.Users))
	for i, u := range c.Recovery.Users {
		switch {
		case u.Username == "":
			return fmt.Errorf("publisher: config: recovery users[%d]: empty username", i)
		case users[u.Username]:
			return fmt.Errorf("publisher: config: recovery users[%d]: username %q given twice", i, u.Username)
		}
		if err := passhash.Validate(u.Password); err != nil {
			return fmt.Errorf("publisher: config: recovery users[%d] (%s): %w", i, u.Username, err)
		}
		users[u.Username] = true
	}
	if _, _, err := net.SplitHostPort(c.Recovery.Listen); err != nil {
		return fmt.Errorf("publisher: config: recovery listen address %q: %w", c.Recovery.Listen, err)
	}
	return nil
}

// validateSourced checks an instrument of a Source: what the simulator needs besides the
// symbol, exponents and tick (start price, weight) is not asked for.
func (in *Instrument) validateSourced(int) error {
	c := *in
	c.Weight, c.StartPrice = 1, c.Tick // depth -1: no room for a book asked of the start price
	return c.validate(-1)
}

func (in *Instrument) validate(maxDepth int) error {
	if in.Symbol == "" {
		return errors.New("symbol is empty")
	}
	if len(in.Symbol) > MaxSymbolLen {
		return fmt.Errorf("symbol %q is longer than %d bytes", in.Symbol, MaxSymbolLen)
	}
	for i := 0; i < len(in.Symbol); i++ {
		if c := in.Symbol[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("symbol %q: byte %d (%#x) is not printable ASCII without spaces", in.Symbol, i, c)
		}
	}
	switch {
	case in.PriceExp < -MaxExp || in.PriceExp > MaxExp:
		return fmt.Errorf("price exponent %d out of range %d..%d", in.PriceExp, -MaxExp, MaxExp)
	case in.SizeExp < -MaxExp || in.SizeExp > MaxExp:
		return fmt.Errorf("size exponent %d out of range %d..%d", in.SizeExp, -MaxExp, MaxExp)
	case in.Tick <= 0 || in.Tick > maxPrice:
		return fmt.Errorf("tick mantissa %d: want 1..%g", in.Tick, float64(maxPrice))
	case in.StartPrice <= 0 || in.StartPrice > maxPrice:
		return fmt.Errorf("start price mantissa %d: want 1..%g", in.StartPrice, float64(maxPrice))
	case in.StartPrice%in.Tick != 0:
		return fmt.Errorf("start price %s is not a multiple of the tick %s",
			decfmt.String(in.StartPrice, int(in.PriceExp)), decfmt.String(in.Tick, int(in.PriceExp)))
	case in.StartPrice/in.Tick < int64(2*maxDepth+2):
		return fmt.Errorf("start price %s is only %d ticks of %s: want at least %d (twice the depth plus 2) so the bid side fits above zero",
			decfmt.String(in.StartPrice, int(in.PriceExp)), in.StartPrice/in.Tick, decfmt.String(in.Tick, int(in.PriceExp)), 2*maxDepth+2)
	case !(in.Weight > 0) || math.IsInf(in.Weight, 0):
		return fmt.Errorf("weight %v: want a finite number > 0", in.Weight)
	}
	return nil
}
