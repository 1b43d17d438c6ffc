package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"fastfeed/bench"
	"fastfeed/feed"
	"fastfeed/gap"
	"fastfeed/internal/fixsession"
	"fastfeed/mcast"
)

// feedFlags are the flags of fastfeed feed.
type feedFlags struct {
	topics, iface, fixConnect, serveFIX, dumpBooks, latencyOut, statsOut string
	groupBase, bGroupBase, defsGroup, source, templates, logLevel        string
	username, password, compID, busConfig                                string
	all, singleGroup                                                     bool
	groupSize, port, bPort                                               uint
	duration, gapWait, recoveryTimeout                                   time.Duration
	window, readBuffer                                                   int
	injectLoss, injectReorder, injectDup, injectDelay                    float64
	injectSeed, injectBurstAt                                            uint64
	injectWindow, injectBurst                                            int
	injectDelayBy                                                        time.Duration
	injectLine                                                           string
}

func runFeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f feedFlags
	fs.StringVar(&f.topics, "topics", "", "comma-separated `symbols` to follow")
	fs.BoolVar(&f.all, "all", false, "follow every instrument announced on the instrument definitions channel")
	fs.StringVar(&f.iface, "iface", "", "join on the interface with this IPv4 `address` (default 127.0.0.1, loopback)")
	fs.StringVar(&f.source, "source", "", "accept datagrams only from this sender `address` (source-specific joins)")
	fs.StringVar(&f.groupBase, "group-base", mcast.DefaultBase, "first multicast `group` of the topic mapping")
	fs.UintVar(&f.groupSize, "group-size", mcast.DefaultSize, "`number` of groups topics spread over")
	fs.BoolVar(&f.singleGroup, "single-group", false, "every topic is on the --group-base group")
	fs.UintVar(&f.port, "port", 30001, "UDP `port` of the channels")
	fs.StringVar(&f.defsGroup, "definitions-group", mcast.DefaultDefinitionsGroup, "`group` of the instrument definitions channel")
	fs.UintVar(&f.bPort, "b-port", 0, "also join line B on this `port`")
	fs.StringVar(&f.bGroupBase, "b-group-base", "", "also join line B on groups from this `base`")
	fs.StringVar(&f.fixConnect, "fix-connect", "", "recover gaps over FIX from the recovery service at `address` (e.g. 127.0.0.1:9870)")
	fs.StringVar(&f.username, "username", fixsession.DemoUsername, "recovery service `user`")
	fs.StringVar(&f.password, "password", fixsession.DemoPassword, "recovery service `password`")
	fs.StringVar(&f.compID, "comp-id", "", "SenderCompID for the recovery session (default FFFEED-<pid>)")
	fs.StringVar(&f.serveFIX, "serve-fix", "", "serve OMS clients over FIX on `address` (e.g. 127.0.0.1:9871; users and entitlements from --bus-config)")
	fs.StringVar(&f.busConfig, "bus-config", defaultBusConfig, "OMS service configuration `file` (users, passwords, entitlements, queue limits)")
	fs.DurationVar(&f.duration, "duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	fs.StringVar(&f.dumpBooks, "dump-books", "", "write the books to `file` at exit")
	fs.StringVar(&f.statsOut, "stats-out", "", "write the counters to `file` at exit (one JSON object)")
	fs.StringVar(&f.latencyOut, "latency-out", "", "write the tick-to-handler latency distribution (HdrHistogram .hgrm, microseconds) and a per-stage summary to `file` at exit")
	fs.DurationVar(&f.gapWait, "gap-wait", 0, "how long a hole waits for line B before FIX recovery (default 5ms)")
	fs.DurationVar(&f.recoveryTimeout, "recovery-timeout", 0, "how long a retransmission may take before snapshots (default 2s)")
	fs.IntVar(&f.window, "window", 0, "datagrams buffered ahead of a hole per channel (default 4096)")
	fs.IntVar(&f.readBuffer, "rcvbuf", 0, "SO_RCVBUF `bytes` per socket (default 8 MiB)")
	fs.Float64Var(&f.injectLoss, "inject-loss", 0, "test fault: drop each datagram with `probability` P")
	fs.Float64Var(&f.injectReorder, "inject-reorder", 0, "test fault: hold back each datagram with `probability` P")
	fs.Float64Var(&f.injectDup, "inject-dup", 0, "test fault: duplicate each datagram with `probability` P")
	fs.IntVar(&f.injectWindow, "inject-window", 1, "test fault: a reordered datagram comes after 1..`N` later ones")
	fs.Float64Var(&f.injectDelay, "inject-delay", 0, "test fault: hold back each datagram for --inject-delay-by with `probability` P")
	fs.DurationVar(&f.injectDelayBy, "inject-delay-by", 20*time.Millisecond, "test fault: how long a delayed datagram is held (`D`)")
	fs.IntVar(&f.injectBurst, "inject-burst", 0, "test fault: drop `N` datagrams in a row (after --inject-burst-at)")
	fs.Uint64Var(&f.injectBurstAt, "inject-burst-at", 1000, "test fault: the burst starts after `K` datagrams")
	fs.StringVar(&f.injectLine, "inject-line", "", "test fault: apply the faults to line `A` or B only (default both)")
	fs.Uint64Var(&f.injectSeed, "inject-seed", 1, "seed of the injected faults")
	fs.StringVar(&f.templates, "templates", defaultTemplates, "FAST template XML `file`")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed feed --topics A,B|--all [--iface IP] [--fix-connect ADDR] [--duration D]")
		fmt.Fprintln(stderr, "                     [--dump-books FILE] [--stats-out FILE] [--inject-loss P ...]")
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
	cfg, err := f.config(set)
	if err != nil {
		return &usageError{err.Error()}
	}
	if cfg.Templates, err = loadTemplates(f.templates, set["templates"]); err != nil {
		return err
	}
	cfg.Logf = func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) }
	if f.fixConnect != "" {
		rec, err := newFIXRecovery(ctx, f, cfg.Templates, log)
		if err != nil {
			return err
		}
		defer rec.Close()
		cfg.Recovery = rec
	}
	h, err := feed.New(cfg)
	if err != nil {
		return err
	}
	for _, s := range h.Sockets() {
		log.Info("joined", "channel", s.Channel, "line", s.Line, "group", s.Group, "rcvbuf_granted", s.ReadBuffer)
	}
	if f.serveFIX != "" {
		b, err := startBus(ctx, h, f, set["bus-config"], cfg, log)
		if err != nil {
			return err
		}
		defer func() {
			b.Stop()
			for _, c := range b.Clients() {
				log.Info("OMS client", "session", c.Session, "username", c.Username, "messages", c.Messages,
					"entries", c.Entries, "snapshots", c.Snapshots, "rejects", c.Rejects, "conflations", c.Conflations,
					"dropped", c.Dropped, "logged_out", c.LoggedOut)
			}
		}()
	}
	log.Info("feed handler started", "topics", len(cfg.Topics), "all", cfg.All, "recovery", f.fixConnect)
	runCtx := ctx
	if f.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	err = h.Run(runCtx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil
	}
	st := h.Stats()
	log.Info("feed handler stopped", "datagrams", st.Datagrams, "messages", st.Messages, "gaps", st.Gaps,
		"recovered_ab", st.RecoveredAB, "recovered_fix", st.RecoveredFIX, "snapshots", st.SnapshotsDone,
		"stale_books", st.StaleBooks, "decode_errors", st.DecodeErrors, "kernel_drops", st.KernelDrops)
	if f.dumpBooks != "" {
		if werr := writeFile(f.dumpBooks, h.WriteDump); werr != nil && err == nil {
			err = werr
		}
	}
	lat := h.Latency()
	log.Info("tick-to-handler latency (publisher SendingTime to book updated)", "count", lat.TotalCount(),
		"p50_us", us(lat.ValueAtQuantile(50)), "p90_us", us(lat.ValueAtQuantile(90)), "p99_us", us(lat.ValueAtQuantile(99)),
		"p99.9_us", us(lat.ValueAtQuantile(99.9)), "p99.99_us", us(lat.ValueAtQuantile(99.99)), "max_us", us(lat.Max()))
	if f.latencyOut != "" {
		if werr := writeFile(f.latencyOut, func(w io.Writer) error {
			return bench.WriteLatency(w, h.StageLatency()) // .hgrm in µs, then a summary per stage
		}); werr != nil && err == nil {
			err = werr
		}
	}
	if f.statsOut != "" {
		if werr := writeFile(f.statsOut, func(w io.Writer) error {
			e := json.NewEncoder(w)
			return e.Encode(st)
		}); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func (f *feedFlags) config(set map[string]bool) (feed.Config, error) {
	var cfg feed.Config
	if f.all == (f.topics != "") {
		return cfg, errors.New("give exactly one of --topics A,B and --all")
	}
	cfg.All = f.all
	if f.topics != "" {
		for _, t := range strings.Split(f.topics, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				return cfg, fmt.Errorf("--topics %q has an empty symbol", f.topics)
			}
			cfg.Topics = append(cfg.Topics, t)
		}
	}
	var err error
	if cfg.Mapping, err = mappingOf(f.groupBase, f.groupSize, f.singleGroup); err != nil {
		return cfg, err
	}
	if f.port == 0 || f.port > 65535 {
		return cfg, fmt.Errorf("--port %d outside 1..65535", f.port)
	}
	cfg.Port = uint16(f.port)
	if cfg.DefinitionsGroup, err = parseAddr("--definitions-group", f.defsGroup, true); err != nil {
		return cfg, err
	}
	if f.iface != "" {
		if cfg.Interface, err = parseAddr("--iface", f.iface, false); err != nil {
			return cfg, err
		}
		if err := localAddr("--iface", cfg.Interface); err != nil {
			return cfg, err
		}
	}
	if f.source != "" {
		if cfg.Source, err = parseAddr("--source", f.source, false); err != nil {
			return cfg, err
		}
	}
	if f.bPort > 65535 {
		return cfg, fmt.Errorf("--b-port %d outside 0..65535", f.bPort)
	}
	cfg.BPort = uint16(f.bPort)
	if f.bGroupBase != "" {
		if cfg.BBase, err = parseAddr("--b-group-base", f.bGroupBase, true); err != nil {
			return cfg, err
		}
	}
	for _, p := range []struct {
		flag string
		p    float64
	}{{"--inject-loss", f.injectLoss}, {"--inject-reorder", f.injectReorder}, {"--inject-dup", f.injectDup}, {"--inject-delay", f.injectDelay}} {
		if !(p.p >= 0 && p.p <= 1) {
			return cfg, fmt.Errorf("%s %v: want a probability, 0..1", p.flag, p.p)
		}
	}
	cfg.Inject = feed.Inject{Loss: f.injectLoss, Reorder: f.injectReorder, Window: f.injectWindow, Dup: f.injectDup,
		Delay: f.injectDelay, DelayBy: f.injectDelayBy, Burst: f.injectBurst, BurstAt: f.injectBurstAt, Seed: f.injectSeed}
	switch f.injectLine {
	case "":
	case "A", "B":
		cfg.Inject.Line = f.injectLine[0]
	default:
		return cfg, fmt.Errorf("--inject-line %q: want A or B", f.injectLine)
	}
	if err := cfg.Inject.Validate(); err != nil {
		return cfg, fmt.Errorf("--inject-*: %w", err)
	}
	if f.window < 0 || f.readBuffer < 0 || f.gapWait < 0 || f.recoveryTimeout < 0 || f.duration < 0 {
		return cfg, errors.New("--window, --rcvbuf, --gap-wait, --recovery-timeout and --duration must not be negative")
	}
	cfg.Gap = gap.Config{Window: f.window, GapWait: f.gapWait, RecoveryTimeout: f.recoveryTimeout}
	cfg.ReadBuffer = f.readBuffer
	return cfg, nil
}

// us converts nanoseconds to microseconds for logs.
func us(ns int64) float64 { return float64(ns) / 1000 }

// mappingOf builds the topic mapping from the group flags.
func mappingOf(base string, size uint, single bool) (mcast.Mapping, error) {
	b, err := parseAddr("--group-base", base, true)
	if err != nil {
		return mcast.Mapping{}, err
	}
	if single {
		return mcast.SingleGroupMapping(b)
	}
	if size == 0 || size > 1<<32-1 {
		return mcast.Mapping{}, fmt.Errorf("--group-size %d outside 1..%d", size, uint32(1<<32-1))
	}
	return mcast.NewMapping(b, uint32(size))
}

func parseAddr(flagName, s string, multicast bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s %q: not an IPv4 address", flagName, s)
	}
	if multicast && !a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s %q: not a multicast group", flagName, s)
	}
	return a, nil
}

// localAddr checks that a is the address of one of this host's interfaces.
func localAddr(flagName string, a netip.Addr) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("%s %v: %w", flagName, a, err)
	}
	for _, ia := range addrs {
		if p, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(p.IP); ok && b.Unmap() == a {
				return nil
			}
		}
	}
	return fmt.Errorf("%s %v: no interface of this host has this address", flagName, a)
}

// writeFile writes a file through fn, reporting the path on error.
func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
