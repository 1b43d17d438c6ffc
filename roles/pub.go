package roles

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"time"

	"fastfeed/internal/fixsession"
	"fastfeed/opshttp"
	"fastfeed/publisher"
)

// PubOptions are the flags of fastfeed pub. A flag given on the command line overrides
// the --config file (the publisher's format, publisher.LoadConfig), which overrides the
// defaults.
type PubOptions struct {
	Common
	Network
	McastKey
	Config, DumpBooks, FixListen, StatsOut, BDefGroup string
	HTTP                                              string // --http: the operator's view (package opshttp)
	Instruments, PayloadLimit, Retention, RetentionB  int
	MaxRetransmit                                     int
	FixMinRate, FixInFlight, FixMaxPending            int
	FixRateWindow                                     time.Duration
	Count                                             int64
	Rate                                              float64
	Seed                                              uint64
	NoStatus                                          bool
	Duration, Linger, Heartbeat, DefsInterval         time.Duration
	DefsLead                                          time.Duration
	FIXLimits                                         FIXLimitOptions
	Snap                                              SnapshotChannelOptions
	SnapshotRate                                      float64
	FIXFile                                           FIXFileOptions
}

// Register adds pub's flags to fs.
func (o *PubOptions) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Config, "config", "", "JSON config `file` (instruments, groups, B line, recovery users; see fixtures/pub.json)")
	fs.IntVar(&o.Instruments, "instruments", publisher.DefaultInstruments, "generate `N` instruments (SBER, GAZP, LKOH, AAPL, MSFT, ...) when the config lists none")
	fs.Float64Var(&o.Rate, "rate", 1000, "incremental refresh `datagrams` per second, all channels together (0: as fast as possible)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop the data after `D` (0: at --count or on SIGINT/SIGTERM)")
	fs.Int64Var(&o.Count, "count", 0, "stop the data after `N` incremental datagrams (0: no limit)")
	fs.Uint64Var(&o.Seed, "seed", 1, "simulator seed")
	o.Network.register(fs, netUsage{
		"iface":        "send from this interface: its `name` (eth0) or IPv4 address (default 127.0.0.1, loopback)",
		"group-size":   "`number` of groups topics spread over (crc32 mod N)",
		"single-group": "put every topic on the --group-base group",
		"b-port":       "send a B line on this `port` (default: the A port with --b-group-base)",
		"b-group-base": "send a B line on groups from this `base` (same mapping size)",
	})
	fs.DurationVar(&o.DefsInterval, "definitions-interval", publisher.DefaultDefinitionsInterval, "resend every security definition every `D`")
	fs.DurationVar(&o.DefsLead, "definitions-lead", publisher.DefaultDefinitionsLead, "at startup, send the definitions `D` before the instrument channels' first datagram (for receivers that join a channel when its definition names it; 0: all at once)")
	fs.DurationVar(&o.Heartbeat, "heartbeat", publisher.DefaultHeartbeat, "heartbeat a channel idle for `D`")
	fs.IntVar(&o.PayloadLimit, "payload-limit", publisher.DefaultPayloadLimit, "most `bytes` of FAST message per datagram; larger updates are split")
	fs.BoolVar(&o.NoStatus, "no-status", false, "do not send a SecurityStatus per instrument at startup")
	fs.StringVar(&o.BDefGroup, "b-definitions-group", "", "`group` of the B definitions channel (default: the A one on --b-port, else the group just below --b-group-base)")
	fs.IntVar(&o.Retention, "retention", publisher.DefaultRetention, "sequenced `datagrams` kept for retransmission, all channels together")
	fs.IntVar(&o.RetentionB, "retention-bytes", publisher.DefaultRetentionBytes, "`bytes` of datagrams kept for retransmission")
	fs.IntVar(&o.MaxRetransmit, "max-retransmit", publisher.DefaultMaxRetransmit, "most sequence `numbers` per retransmission request")
	fs.StringVar(&o.DumpBooks, "dump-books", "", "write the ground-truth books to `file` when the data stops")
	fs.DurationVar(&o.Linger, "linger", 0, "after the data stops, keep heartbeating and serving recovery for `D`")
	fs.StringVar(&o.StatsOut, "stats-out", "", "write the publisher's and recovery service's counters to `file` at exit (one JSON object)")
	fs.StringVar(&o.FixListen, "fix-listen", publisher.DefaultRecoveryListen, "`address` of the FIX recovery service")
	fs.IntVar(&o.FixMaxPending, "fix-max-pending", publisher.DefaultRecoveryMaxPending, "most recovery `requests` of one session queued or in service; beyond, MarketDataRequestReject 281=2")
	fs.IntVar(&o.FixInFlight, "fix-in-flight", publisher.DefaultRecoveryInFlight, "most `bytes` of recovery answers waiting for one client's socket; more waits for the client")
	fs.IntVar(&o.FixMinRate, "fix-min-rate", publisher.DefaultRecoveryMinRate, "a recovery client taking its answers slower than this many `bytes` per second, while behind, is logged out")
	fs.DurationVar(&o.FixRateWindow, "fix-rate-window", publisher.DefaultRecoveryRateWindow, "measure --fix-min-rate over `D` of a client being behind")
	o.Snap.register(fs, "cycle a W of every instrument on each channel's snapshot channel (docs/snapshot-channels.md)")
	fs.Float64Var(&o.SnapshotRate, "snapshot-rate", publisher.DefaultSnapshotRate, "snapshot channel W `datagrams` per second, all snapshot channels together")
	o.McastKey.register(fs, "seal every datagram")
	o.FIXLimits.register(fs, "recovery service")
	fs.StringVar(&o.HTTP, "http", "", "serve /metrics, /healthz, /api/channels and /api/books (the ground truth, once the data stops) on `address` (off by default)")
	o.FIXFile.registerFile(fs)
	o.FIXFile.registerLimits(fs, "recovery service", false)
	o.Common.register(fs, "FAST template XML `file`")
}

// PublisherConfig returns the publisher's configuration: the defaults, then the --config
// file, then the flags given (in set), checked. It loads no templates.
func (o *PubOptions) PublisherConfig(set map[string]bool) (publisher.Config, error) {
	cfg := publisher.Config{
		Rate: o.Rate, Seed: o.Seed, Port: uint16(o.Port), PayloadLimit: o.PayloadLimit,
		Heartbeat: o.Heartbeat, DefinitionsInterval: o.DefsInterval, Retention: o.Retention,
		RetentionBytes: o.RetentionB, MaxRetransmit: o.MaxRetransmit,
	}
	if o.Config != "" {
		if err := publisher.LoadConfig(o.Config, &cfg); err != nil {
			return cfg, err
		}
		if len(cfg.Instruments) > 0 && set["instruments"] {
			return cfg, usagef("--instruments conflicts with the instruments listed in %s", o.Config)
		}
	}
	if err := o.apply(&cfg, set); err != nil {
		return cfg, &UsageError{err.Error()}
	}
	if len(cfg.Recovery.Users) == 0 {
		// The fixtures' default login (DESIGN.md), so that a handler can recover out of
		// the box; a config file lists real users.
		cfg.Recovery.Users = []publisher.User{{Username: fixsession.DemoUsername, Password: fixsession.DemoPassword}}
	}
	if len(cfg.Instruments) == 0 {
		ins, err := publisher.GenerateInstruments(o.Instruments)
		if err != nil {
			return cfg, usagef("--instruments: %v", err)
		}
		cfg.Instruments = ins
	}
	return cfg, nil
}

// Pub is fastfeed pub: the publisher and its FIX recovery service.
func Pub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pub", stderr,
		"usage: fastfeed pub [--config FILE] [--instruments N] [--rate MSGS_PER_S] [--duration D] [--count N] [--seed S]",
		"                    [--iface NAME|IP] [--group-base IP] [--group-size N] [--port P] [--dump-books FILE] [--linger D] ...",
		"\nSimulates order books and multicasts them as FAST (one datagram per message, a 4-byte LE sequence",
		"number first), on loopback unless --iface says otherwise. --rate counts incremental refresh datagrams.")
	var o PubOptions
	o.Register(fs)
	c, err := parse(fs, args, parseOpts{})
	if err != nil {
		return err
	}
	log, err := o.Logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := o.PublisherConfig(c.set)
	if err != nil {
		return err
	}
	var limits fixsession.Limits
	if err := o.FIXLimits.Apply(&limits, c.set); err != nil {
		return err
	}
	if err := checkHTTPAddr(o.HTTP); err != nil {
		return &UsageError{err.Error()}
	}
	ro := o.RecoveryOptions()
	if err := o.FIXFile.applyPubFIX(c.set, &cfg, &ro, &o.FIXLimits.TLS); err != nil {
		return err
	}
	cfg.Logger = log
	if cfg.Templates, err = o.LoadTemplates(c.set); err != nil {
		return err
	}
	if cfg.Key, err = o.LoadKey(); err != nil {
		return err
	}
	p, err := publisher.New(cfg)
	if err != nil {
		return err
	}
	if cfg.Key != nil {
		log.Info("datagrams sealed", "key_file", o.McastKeyFile, "key_id", cfg.Key.ID())
	}
	ro.Limits = limits
	if ro.TLS, err = o.FIXLimits.TLS.Config(); err != nil {
		return err
	}
	rec, err := publisher.NewRecoveryService(p, ro)
	if err != nil {
		return err
	}
	if err := rec.Start(ctx); err != nil {
		return err
	}
	defer rec.Stop()
	log.Info("FIX recovery service listening", "addr", rec.Addr(), "comp_id", p.Recovery().CompID)
	web, err := startHTTP(ctx, o.HTTP, nil, opshttp.Config{Role: "pub",
		Counters:    func() any { return NewPubStats(p.Stats(), rec.Stats()) },
		Channels:    func() any { return p.Channels() },
		Books:       p.WriteDump,
		FIXSessions: rec.Sessions}, log)
	if err != nil {
		return err
	}
	if web != nil {
		defer web.Close()
	}
	err = p.Run(ctx)
	if o.StatsOut != "" {
		rec.Stop() // its counters are final once its sessions are gone
		if werr := writeFile(o.StatsOut, func(w io.Writer) error {
			return json.NewEncoder(w).Encode(NewPubStats(p.Stats(), rec.Stats()))
		}); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// RecoveryOptions returns the recovery service's options from the --fix-* flags,
// checked by PublisherConfig.
func (o *PubOptions) RecoveryOptions() publisher.RecoveryOptions {
	return publisher.RecoveryOptions{MaxPending: o.FixMaxPending, InFlight: o.FixInFlight,
		MinRate: o.FixMinRate, RateWindow: o.FixRateWindow}
}

// PubStats is what pub --stats-out writes.
type PubStats struct {
	Datagrams     uint64  `json:"datagrams"`
	Incrementals  uint64  `json:"incrementals"`
	Heartbeats    uint64  `json:"heartbeats"`
	Resets        uint64  `json:"resets"`
	Seconds       float64 `json:"seconds"`        // length of the data phase
	MaxLagMicros  int64   `json:"max_lag_us"`     // the most the paced sending fell behind
	Logons        uint64  `json:"fix_logons"`     // recovery sessions logged on
	Requests      uint64  `json:"fix_requests"`   // MarketDataRequests received
	Retransmitted uint64  `json:"retransmitted"`  // messages sent in answer to retransmission requests
	Snapshots     uint64  `json:"snapshots_sent"` // W messages sent
	// The snapshot channels: W datagrams sent on them and their full cycles.
	SnapshotChannelW      uint64 `json:"snapshot_channel_datagrams"`
	SnapshotChannelCycles uint64 `json:"snapshot_channel_cycles"`
	Rejects               uint64 `json:"fix_rejects"`
	TooSlow               uint64 `json:"fix_too_slow"` // recovery clients logged out for reading slower than --fix-min-rate
	Busy                  uint64 `json:"fix_busy"`     // requests refused: the session had --fix-max-pending pending
	Replaced              uint64 `json:"fix_replaced"` // snapshot requests that replaced the same one still queued
	Yields                uint64 `json:"fix_yields"`   // recovery turns that waited for the multicast to catch up
	// FIXAcceptor counts the recovery service's connections and what its guard refused.
	FIXAcceptor fixsession.AcceptorStats `json:"fix_acceptor"`
	// FIXLimits counts requests over --fix-max-requests-per-second and the clients
	// logged out for them.
	FIXLimits fixsession.LimitStats `json:"fix_limits"`
}

// NewPubStats gathers the publisher's and the recovery service's counters.
func NewPubStats(s publisher.Stats, r publisher.RecoveryStats) PubStats {
	return PubStats{Datagrams: s.Datagrams, Incrementals: s.Incrementals, Heartbeats: s.Heartbeats, Resets: s.Resets,
		Seconds: s.DataTime.Seconds(), MaxLagMicros: s.MaxLag.Microseconds(), Logons: r.Logons, Requests: r.Requests,
		Retransmitted: r.Retransmitted, Snapshots: r.Snapshots, Rejects: r.Rejects, TooSlow: r.TooSlow, Busy: r.Busy, Replaced: r.Replaced, Yields: r.Yields, FIXAcceptor: r.FIX,
		SnapshotChannelW: s.SnapshotDatagrams, SnapshotChannelCycles: s.SnapshotCycles,
		FIXLimits: r.Limits}
}

// apply puts the flags given (in set) into cfg, checking each.
func (o *PubOptions) apply(cfg *publisher.Config, set map[string]bool) error {
	switch {
	case set["rate"] && (!(o.Rate >= 0) || math.IsInf(o.Rate, 0)):
		return fmt.Errorf("--rate %v: want datagrams per second >= 0 (0: as fast as possible)", o.Rate)
	case o.Duration < 0:
		return fmt.Errorf("--duration %v is negative", o.Duration)
	case o.Count < 0:
		return fmt.Errorf("--count %d is negative", o.Count)
	case o.Linger < 0:
		return fmt.Errorf("--linger %v is negative", o.Linger)
	case set["heartbeat"] && o.Heartbeat < time.Millisecond:
		return fmt.Errorf("--heartbeat %v: want at least 1ms", o.Heartbeat)
	case o.DefsLead < 0:
		return fmt.Errorf("--definitions-lead %v is negative", o.DefsLead)
	case set["definitions-interval"] && o.DefsInterval < time.Millisecond:
		return fmt.Errorf("--definitions-interval %v: want at least 1ms", o.DefsInterval)
	case set["payload-limit"] && (o.PayloadLimit < publisher.MinPayloadLimit || o.PayloadLimit > publisher.MaxPayloadLimit):
		return fmt.Errorf("--payload-limit %d: want %d..%d", o.PayloadLimit, publisher.MinPayloadLimit, publisher.MaxPayloadLimit)
	case set["retention"] && o.Retention < 1:
		return fmt.Errorf("--retention %d: want at least 1", o.Retention)
	case set["retention-bytes"] && o.RetentionB < publisher.MinRetentionBytes:
		return fmt.Errorf("--retention-bytes %d: want at least %d", o.RetentionB, publisher.MinRetentionBytes)
	case set["max-retransmit"] && o.MaxRetransmit < 1:
		return fmt.Errorf("--max-retransmit %d: want at least 1", o.MaxRetransmit)
	case o.FixMaxPending < 1:
		return fmt.Errorf("--fix-max-pending %d: want at least 1", o.FixMaxPending)
	case o.FixInFlight < 1:
		return fmt.Errorf("--fix-in-flight %d: want at least 1 byte", o.FixInFlight)
	case o.FixMinRate < 1:
		return fmt.Errorf("--fix-min-rate %d: want at least 1 byte per second", o.FixMinRate)
	case o.FixRateWindow < 100*time.Millisecond:
		return fmt.Errorf("--fix-rate-window %v: want at least 100ms", o.FixRateWindow)
	case set["snapshot-rate"] && (!(o.SnapshotRate > 0) || math.IsInf(o.SnapshotRate, 0)):
		return fmt.Errorf("--snapshot-rate %v: want datagrams per second > 0", o.SnapshotRate)
	case set["instruments"] && (o.Instruments < 1 || o.Instruments > publisher.MaxInstruments):
		return fmt.Errorf("--instruments %d: want 1..%d", o.Instruments, publisher.MaxInstruments)
	}
	if set["port"] {
		p, err := o.PortNumber()
		if err != nil {
			return err
		}
		cfg.Port = p
	}
	bPort, err := o.BPortNumber()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		set  func()
	}{
		{"rate", func() { cfg.Rate = o.Rate }},
		{"seed", func() { cfg.Seed = o.Seed }},
		{"duration", func() { cfg.Duration = o.Duration }},
		{"count", func() { cfg.Count = o.Count }},
		{"heartbeat", func() { cfg.Heartbeat = o.Heartbeat }},
		{"definitions-interval", func() { cfg.DefinitionsInterval = o.DefsInterval }},
		{"definitions-lead", func() {
			cfg.DefinitionsLead = o.DefsLead
			if o.DefsLead == 0 {
				cfg.DefinitionsLead = -1 // none
			}
		}},
		{"payload-limit", func() { cfg.PayloadLimit = o.PayloadLimit }},
		{"no-status", func() { cfg.NoStatus = o.NoStatus }},
		{"retention", func() { cfg.Retention = o.Retention }},
		{"retention-bytes", func() { cfg.RetentionBytes = o.RetentionB }},
		{"max-retransmit", func() { cfg.MaxRetransmit = o.MaxRetransmit }},
		{"linger", func() { cfg.Linger = o.Linger }},
		{"dump-books", func() { cfg.DumpBooks = o.DumpBooks }},
		{"b-port", func() { cfg.B.Port = bPort }},
		{"snapshot-channels", func() { cfg.SnapshotChannels = o.Snap.SnapshotChannels }},
		{"snapshot-rate", func() { cfg.SnapshotRate = o.SnapshotRate }},
	} {
		if set[f.name] {
			f.set()
		}
	}
	if set["snapshot-port-offset"] {
		if cfg.SnapshotPortOffset, err = o.Snap.PortOffset(); err != nil {
			return err
		}
	}
	if set["fix-listen"] {
		if _, _, err := net.SplitHostPort(o.FixListen); err != nil {
			return fmt.Errorf("--fix-listen %q: %v", o.FixListen, err)
		}
		cfg.Recovery.Listen = o.FixListen
	}
	if set["iface"] {
		if cfg.Interface, err = o.Interface(); err != nil {
			return err
		}
	}
	if cfg.Mapping, err = o.Mapping(cfg.Mapping, set); err != nil {
		return err
	}
	for _, g := range []struct {
		flag string
		val  string
		dst  *netip.Addr
	}{
		{"definitions-group", o.DefsGroup, &cfg.DefinitionsGroup},
		{"b-group-base", o.BGroupBase, &cfg.B.GroupBase},
		{"b-definitions-group", o.BDefGroup, &cfg.B.DefinitionsGroup},
	} {
		if set[g.flag] {
			if *g.dst, err = ParseAddr("--"+g.flag, g.val, true); err != nil {
				return err
			}
		}
	}
	return nil
}
