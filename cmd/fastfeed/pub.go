package main

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
	"fastfeed/mcast"
	"fastfeed/publisher"
)

// pubFlags are the flags of fastfeed pub; a flag given on the command line
// overrides the config file, which overrides the defaults.
type pubFlags struct {
	config, templates, dumpBooks, fixListen, logLevel  string
	statsOut                                           string
	iface, groupBase, defsGroup, bGroupBase, bDefGroup string
	instruments, payloadLimit, retention, retentionB   int
	maxRetransmit                                      int
	count                                              int64
	rate                                               float64
	seed                                               uint64
	groupSize, port, bPort                             uint
	singleGroup, noStatus                              bool
	duration, linger, heartbeat, defsInterval          time.Duration
}

func runPub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f pubFlags
	fs.StringVar(&f.config, "config", "", "JSON config `file` (instruments, groups, B line, recovery users; see fixtures/pub.json)")
	fs.IntVar(&f.instruments, "instruments", publisher.DefaultInstruments, "generate `N` instruments (SBER, GAZP, LKOH, AAPL, MSFT, ...) when the config lists none")
	fs.Float64Var(&f.rate, "rate", 1000, "incremental refresh `datagrams` per second, all channels together (0: as fast as possible)")
	fs.DurationVar(&f.duration, "duration", 0, "stop the data after `D` (0: at --count or on SIGINT/SIGTERM)")
	fs.Int64Var(&f.count, "count", 0, "stop the data after `N` incremental datagrams (0: no limit)")
	fs.Uint64Var(&f.seed, "seed", 1, "simulator seed")
	fs.StringVar(&f.iface, "iface", "", "send from the interface with this IPv4 `address` (default 127.0.0.1, loopback)")
	fs.StringVar(&f.groupBase, "group-base", mcast.DefaultBase, "first multicast `group` of the topic mapping")
	fs.UintVar(&f.groupSize, "group-size", mcast.DefaultSize, "`number` of groups topics spread over (crc32 mod N)")
	fs.BoolVar(&f.singleGroup, "single-group", false, "put every topic on the --group-base group")
	fs.UintVar(&f.port, "port", publisher.DefaultPort, "UDP `port` of the channels")
	fs.StringVar(&f.defsGroup, "definitions-group", mcast.DefaultDefinitionsGroup, "`group` of the instrument definitions channel")
	fs.DurationVar(&f.defsInterval, "definitions-interval", publisher.DefaultDefinitionsInterval, "resend every security definition every `D`")
	fs.DurationVar(&f.heartbeat, "heartbeat", publisher.DefaultHeartbeat, "heartbeat a channel idle for `D`")
	fs.IntVar(&f.payloadLimit, "payload-limit", publisher.DefaultPayloadLimit, "most `bytes` of FAST message per datagram; larger updates are split")
	fs.BoolVar(&f.noStatus, "no-status", false, "do not send a SecurityStatus per instrument at startup")
	fs.UintVar(&f.bPort, "b-port", 0, "send a B line on this `port` (default: the A port with --b-group-base)")
	fs.StringVar(&f.bGroupBase, "b-group-base", "", "send a B line on groups from this `base` (same mapping size)")
	fs.StringVar(&f.bDefGroup, "b-definitions-group", "", "`group` of the B definitions channel (default: the A one on --b-port, else the group just below --b-group-base)")
	fs.IntVar(&f.retention, "retention", publisher.DefaultRetention, "sequenced `datagrams` kept for retransmission, all channels together")
	fs.IntVar(&f.retentionB, "retention-bytes", publisher.DefaultRetentionBytes, "`bytes` of datagrams kept for retransmission")
	fs.IntVar(&f.maxRetransmit, "max-retransmit", publisher.DefaultMaxRetransmit, "most sequence `numbers` per retransmission request")
	fs.StringVar(&f.dumpBooks, "dump-books", "", "write the ground-truth books to `file` when the data stops")
	fs.DurationVar(&f.linger, "linger", 0, "after the data stops, keep heartbeating and serving recovery for `D`")
	fs.StringVar(&f.statsOut, "stats-out", "", "write the publisher's and recovery service's counters to `file` at exit (one JSON object)")
	fs.StringVar(&f.fixListen, "fix-listen", publisher.DefaultRecoveryListen, "`address` of the FIX recovery service")
	fs.StringVar(&f.templates, "templates", defaultTemplates, "FAST template XML `file`")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed pub [--config FILE] [--instruments N] [--rate MSGS_PER_S] [--duration D] [--count N] [--seed S]")
		fmt.Fprintln(stderr, "                    [--iface IP] [--group-base IP] [--group-size N] [--port P] [--dump-books FILE] [--linger D] ...")
		fmt.Fprintln(stderr, "\nSimulates order books and multicasts them as FAST (one datagram per message, a 4-byte LE sequence")
		fmt.Fprintln(stderr, "number first), on loopback unless --iface says otherwise. --rate counts incremental refresh datagrams.")
		fs.PrintDefaults()
	}
	set, err := parseFlags(fs, args)
	if err != nil {
		return err
	}

	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}

	cfg := publisher.Config{
		Rate: f.rate, Seed: f.seed, Port: uint16(f.port), PayloadLimit: f.payloadLimit,
		Heartbeat: f.heartbeat, DefinitionsInterval: f.defsInterval, Retention: f.retention,
		RetentionBytes: f.retentionB, MaxRetransmit: f.maxRetransmit, Logger: log,
	}
	if f.config != "" {
		if err := publisher.LoadConfig(f.config, &cfg); err != nil {
			return err
		}
		if len(cfg.Instruments) > 0 && set["instruments"] {
			return &usageError{fmt.Sprintf("--instruments conflicts with the instruments listed in %s", f.config)}
		}
	}
	if err := f.apply(&cfg, set); err != nil {
		return &usageError{err.Error()}
	}
	if len(cfg.Recovery.Users) == 0 {
		// The fixtures' default login (DESIGN.md), so that a handler can recover out of
		// the box; a config file lists real users.
		cfg.Recovery.Users = []publisher.User{{Username: fixsession.DemoUsername, Password: fixsession.DemoPassword}}
	}
	if len(cfg.Instruments) == 0 {
		ins, err := publisher.GenerateInstruments(f.instruments)
		if err != nil {
			return &usageError{fmt.Sprintf("--instruments: %v", err)}
		}
		cfg.Instruments = ins
	}
	if cfg.Templates, err = loadTemplates(f.templates, set["templates"]); err != nil {
		return err
	}
	p, err := publisher.New(cfg)
	if err != nil {
		return err
	}
	rec, err := publisher.NewRecoveryService(p, publisher.RecoveryOptions{})
	if err != nil {
		return err
	}
	if err := rec.Start(ctx); err != nil {
		return err
	}
	defer rec.Stop()
	log.Info("FIX recovery service listening", "addr", rec.Addr(), "comp_id", p.Recovery().CompID)
	err = p.Run(ctx)
	if f.statsOut != "" {
		rec.Stop() // its counters are final once its sessions are gone
		if werr := writeFile(f.statsOut, func(w io.Writer) error {
			return json.NewEncoder(w).Encode(newPubStats(p.Stats(), rec.Stats()))
		}); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// pubStats is what pub --stats-out writes.
type pubStats struct {
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
	Rejects       uint64  `json:"fix_rejects"`
}

func newPubStats(s publisher.Stats, r publisher.RecoveryStats) pubStats {
	return pubStats{Datagrams: s.Datagrams, Incrementals: s.Incrementals, Heartbeats: s.Heartbeats, Resets: s.Resets,
		Seconds: s.DataTime.Seconds(), MaxLagMicros: s.MaxLag.Microseconds(), Logons: r.Logons, Requests: r.Requests,
		Retransmitted: r.Retransmitted, Snapshots: r.Snapshots, Rejects: r.Rejects}
}

// apply puts the flags given on the command line into cfg, checking each.
func (f *pubFlags) apply(cfg *publisher.Config, set map[string]bool) error {
	switch {
	case set["rate"] && (!(f.rate >= 0) || math.IsInf(f.rate, 0)):
		return fmt.Errorf("--rate %v: want datagrams per second >= 0 (0: as fast as possible)", f.rate)
	case f.duration < 0:
		return fmt.Errorf("--duration %v is negative", f.duration)
	case f.count < 0:
		return fmt.Errorf("--count %d is negative", f.count)
	case f.linger < 0:
		return fmt.Errorf("--linger %v is negative", f.linger)
	case set["port"] && (f.port == 0 || f.port > math.MaxUint16):
		return fmt.Errorf("--port %d: want 1..65535", f.port)
	case f.bPort > math.MaxUint16:
		return fmt.Errorf("--b-port %d: want 1..65535", f.bPort)
	case set["heartbeat"] && f.heartbeat < time.Millisecond:
		return fmt.Errorf("--heartbeat %v: want at least 1ms", f.heartbeat)
	case set["definitions-interval"] && f.defsInterval < time.Millisecond:
		return fmt.Errorf("--definitions-interval %v: want at least 1ms", f.defsInterval)
	case set["payload-limit"] && (f.payloadLimit < publisher.MinPayloadLimit || f.payloadLimit > publisher.MaxPayloadLimit):
		return fmt.Errorf("--payload-limit %d: want %d..%d", f.payloadLimit, publisher.MinPayloadLimit, publisher.MaxPayloadLimit)
	case set["retention"] && f.retention < 1:
		return fmt.Errorf("--retention %d: want at least 1", f.retention)
	case set["retention-bytes"] && f.retentionB < publisher.MinRetentionBytes:
		return fmt.Errorf("--retention-bytes %d: want at least %d", f.retentionB, publisher.MinRetentionBytes)
	case set["max-retransmit"] && f.maxRetransmit < 1:
		return fmt.Errorf("--max-retransmit %d: want at least 1", f.maxRetransmit)
	case set["instruments"] && (f.instruments < 1 || f.instruments > publisher.MaxInstruments):
		return fmt.Errorf("--instruments %d: want 1..%d", f.instruments, publisher.MaxInstruments)
	}
	if set["rate"] {
		cfg.Rate = f.rate
	}
	if set["port"] {
		cfg.Port = uint16(f.port)
	}
	if set["seed"] {
		cfg.Seed = f.seed
	}
	if set["duration"] {
		cfg.Duration = f.duration
	}
	if set["count"] {
		cfg.Count = f.count
	}
	if set["heartbeat"] {
		cfg.Heartbeat = f.heartbeat
	}
	if set["definitions-interval"] {
		cfg.DefinitionsInterval = f.defsInterval
	}
	if set["payload-limit"] {
		cfg.PayloadLimit = f.payloadLimit
	}
	if set["no-status"] {
		cfg.NoStatus = f.noStatus
	}
	if set["retention"] {
		cfg.Retention = f.retention
	}
	if set["retention-bytes"] {
		cfg.RetentionBytes = f.retentionB
	}
	if set["max-retransmit"] {
		cfg.MaxRetransmit = f.maxRetransmit
	}
	if set["linger"] {
		cfg.Linger = f.linger
	}
	if set["dump-books"] {
		cfg.DumpBooks = f.dumpBooks
	}
	if set["fix-listen"] {
		if _, _, err := net.SplitHostPort(f.fixListen); err != nil {
			return fmt.Errorf("--fix-listen %q: %v", f.fixListen, err)
		}
		cfg.Recovery.Listen = f.fixListen
	}
	if set["iface"] {
		a, err := netip.ParseAddr(f.iface)
		if err != nil || !a.Is4() || a.IsMulticast() || a.IsUnspecified() {
			return fmt.Errorf("--iface %q: want the IPv4 address of an interface", f.iface)
		}
		if err := localAddr("--iface", a); err != nil {
			return err
		}
		cfg.Interface = a
	}
	if set["group-base"] || set["group-size"] || set["single-group"] {
		base, size, single := cfg.Mapping.Base(), cfg.Mapping.Size(), cfg.Mapping.Single()
		if set["group-base"] {
			a, err := netip.ParseAddr(f.groupBase)
			if err != nil {
				return fmt.Errorf("--group-base %q: %v", f.groupBase, err)
			}
			base = a
		}
		if set["group-size"] {
			if f.groupSize == 0 || f.groupSize > math.MaxUint32 {
				return fmt.Errorf("--group-size %d: want at least 1", f.groupSize)
			}
			size = uint32(f.groupSize)
		}
		if set["single-group"] {
			single = f.singleGroup
		}
		var err error
		if single {
			cfg.Mapping, err = mcast.SingleGroupMapping(base)
		} else {
			if size == 1 && !set["group-size"] {
				size = mcast.DefaultSize // leaving single-group mode
			}
			cfg.Mapping, err = mcast.NewMapping(base, size)
		}
		if err != nil {
			return err
		}
	}
	for _, g := range []struct {
		flag string
		val  string
		dst  *netip.Addr
	}{
		{"definitions-group", f.defsGroup, &cfg.DefinitionsGroup},
		{"b-group-base", f.bGroupBase, &cfg.B.GroupBase},
		{"b-definitions-group", f.bDefGroup, &cfg.B.DefinitionsGroup},
	} {
		if !set[g.flag] {
			continue
		}
		a, err := netip.ParseAddr(g.val)
		if err != nil || !a.Is4() || !a.IsMulticast() {
			return fmt.Errorf("--%s %q: want an IPv4 multicast address", g.flag, g.val)
		}
		*g.dst = a
	}
	if set["b-port"] {
		cfg.B.Port = uint16(f.bPort)
	}
	return nil
}
