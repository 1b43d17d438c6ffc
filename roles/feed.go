package roles

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"fastfeed/bench"
	"fastfeed/bus"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
	"fastfeed/fixtures"
	"fastfeed/gap"
	"fastfeed/internal/fixsession"
	"fastfeed/mcast"
	"fastfeed/opshttp"
)

// DefaultBusConfig is the OMS service configuration fastfeed feed --serve-fix reads.
const DefaultBusConfig = "fixtures/bus.json"

// FeedOptions are the flags of fastfeed feed (and, in part, of replay): a flag given on
// the command line overrides the --config file's key of the same name, which overrides
// the default.
type FeedOptions struct {
	Common
	Network
	McastKey
	Config, Topics, Source, FixConnect, Username, Password, CompID string
	ServeFIX, BusConfig, DumpBooks, StatsOut, LatencyOut           string
	HTTP                                                           string // --http: the operator's view (package opshttp)
	All, BusyPoll, SharedSockets                                   bool
	CPU, StageEvery                                                int
	Duration, GapWait, RecoveryTimeout                             time.Duration
	Window, ReadBuffer                                             int
	Inject                                                         InjectOptions
	FIXLimits                                                      FIXLimitOptions
	NATS                                                           NATSOptions
	Snap                                                           SnapshotChannelOptions
	SnapshotAfter                                                  int
	SnapshotWait                                                   time.Duration
	RecoveryTLS                                                    FIXClientTLS
	FIXFile                                                        FIXFileOptions
}

// InjectOptions are feed's receive-path test faults.
type InjectOptions struct {
	Loss, Reorder, Dup, Delay float64
	Seed, BurstAt             uint64
	Window, Burst             int
	DelayBy                   time.Duration
	Line                      string
}

// Register adds feed's flags to fs.
func (o *FeedOptions) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Config, "config", "", "JSON config `file`: an object whose keys are these flags' names (flags given win)")
	fs.StringVar(&o.Topics, "topics", "", "comma-separated `symbols` to follow")
	fs.BoolVar(&o.All, "all", false, "follow every instrument announced on the instrument definitions channel")
	o.Network.register(fs, nil)
	fs.StringVar(&o.Source, "source", "", "accept datagrams only from this sender `address` (source-specific joins)")
	o.registerRecovery(fs, "recover gaps over FIX from the recovery service at `address` (e.g. 127.0.0.1:9870)")
	fs.StringVar(&o.ServeFIX, "serve-fix", "", "serve OMS clients over FIX on `address` (e.g. 127.0.0.1:9871; users and entitlements from --bus-config)")
	fs.StringVar(&o.BusConfig, "bus-config", DefaultBusConfig, "OMS service configuration `file` (users, passwords, entitlements, queue limits)")
	o.FIXLimits.register(fs, "OMS service (overrides --bus-config)")
	o.FIXFile.registerFile(fs)
	o.FIXFile.registerLimits(fs, "OMS service", true)
	fs.DurationVar(&o.Duration, "duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	fs.StringVar(&o.DumpBooks, "dump-books", "", "write the books to `file` at exit")
	fs.StringVar(&o.StatsOut, "stats-out", "", "write the counters to `file` at exit (one JSON object)")
	fs.StringVar(&o.LatencyOut, "latency-out", "", "write the tick-to-handler latency distribution (HdrHistogram .hgrm, microseconds) and a per-stage summary to `file` at exit")
	o.registerGap(fs, "how long a hole waits for line B before FIX recovery (default 5ms)")
	fs.StringVar(&o.HTTP, "http", "", "serve the live page, /metrics, /healthz and /api on `address` (e.g. 127.0.0.1:8080; off by default)")
	o.Snap.register(fs, "take snapshots from the publisher's snapshot channels, not over FIX (docs/snapshot-channels.md)")
	fs.IntVar(&o.SnapshotAfter, "snapshot-after", 0, "a hole of more than `N` datagrams goes to snapshots instead of a FIX retransmission (default 10000)")
	fs.DurationVar(&o.SnapshotWait, "snapshot-wait", 0, "how long to wait on a snapshot channel before asking the recovery service too (default 5s)")
	fs.IntVar(&o.ReadBuffer, "rcvbuf", 0, "SO_RCVBUF `bytes` per socket (default 8 MiB)")
	fs.BoolVar(&o.BusyPoll, "busy-poll", false, "spin on recvmmsg on a locked OS thread instead of sleeping in epoll (SO_BUSY_POLL where\n"+
		"the kernel permits): lowest latency, one CPU kept busy")
	fs.IntVar(&o.CPU, "cpu", -1, "pin the receiving thread to CPU `N` (default: not pinned)")
	fs.IntVar(&o.StageEvery, "stage-every", 0, "time the latency stages (--latency-out, /metrics) of one message in `N` of each channel's\n"+
		"(default 8, 1: every message; each timed message's path is two clock reads longer); tick-to-handler is every message's")
	fs.BoolVar(&o.SharedSockets, "shared-sockets", false, "join the groups of a port on one socket (told apart by IP_PKTINFO) instead of one socket\n"+
		"per group: with --busy-poll the loop spins on one recvmmsg; raise net.ipv4.igmp_max_memberships (20)\n"+
		"to the groups joined, or more sockets are opened")
	in := &o.Inject
	fs.Float64Var(&in.Loss, "inject-loss", 0, "test fault: drop each datagram with `probability` P")
	fs.Float64Var(&in.Reorder, "inject-reorder", 0, "test fault: hold back each datagram with `probability` P")
	fs.Float64Var(&in.Dup, "inject-dup", 0, "test fault: duplicate each datagram with `probability` P")
	fs.IntVar(&in.Window, "inject-window", 1, "test fault: a reordered datagram comes after 1..`N` later ones")
	fs.Float64Var(&in.Delay, "inject-delay", 0, "test fault: hold back each datagram for --inject-delay-by with `probability` P")
	fs.DurationVar(&in.DelayBy, "inject-delay-by", 20*time.Millisecond, "test fault: how long a delayed datagram is held (`D`)")
	fs.IntVar(&in.Burst, "inject-burst", 0, "test fault: drop `N` datagrams in a row (after --inject-burst-at)")
	fs.Uint64Var(&in.BurstAt, "inject-burst-at", 1000, "test fault: the burst starts after `K` datagrams")
	fs.StringVar(&in.Line, "inject-line", "", "test fault: apply the faults to line `A` or B only (default both)")
	fs.Uint64Var(&in.Seed, "inject-seed", 1, "seed of the injected faults")
	o.McastKey.register(fs, "authenticate every datagram")
	o.NATS.register(fs, true)
	o.Common.register(fs, "FAST template XML `file`")
}

// registerRecovery adds the FIX recovery client's flags.
func (o *FeedOptions) registerRecovery(fs *flag.FlagSet, connect string) {
	fs.StringVar(&o.FixConnect, "fix-connect", "", connect)
	fs.StringVar(&o.Username, "username", fixsession.DemoUsername, "recovery service `user`")
	fs.StringVar(&o.Password, "password", fixsession.DemoPassword, "recovery service `password`")
	fs.StringVar(&o.CompID, "comp-id", "", "SenderCompID for the recovery session (default FFFEED-<pid>)")
	o.RecoveryTLS.register(fs, "fix-connect-", "recovery service")
}

// registerGap adds the gap tracker's flags.
func (o *FeedOptions) registerGap(fs *flag.FlagSet, gapWait string) {
	fs.DurationVar(&o.GapWait, "gap-wait", 0, gapWait)
	fs.DurationVar(&o.RecoveryTimeout, "recovery-timeout", 0, "how long a retransmission may take before snapshots (default 2s)")
	fs.IntVar(&o.Window, "window", 0, "datagrams buffered ahead of a hole per channel (default 4096)")
}

// Feed is fastfeed feed: the handler, its FIX recovery client and, with --serve-fix, the
// OMS distribution service.
func Feed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("feed", stderr,
		"usage: fastfeed feed --topics A,B|--all [--iface NAME|IP] [--fix-connect ADDR] [--duration D]",
		"                     [--dump-books FILE] [--stats-out FILE] [--inject-loss P ...] [--config FILE]")
	var o FeedOptions
	o.Register(fs)
	c, err := parse(fs, args, parseOpts{config: "config"})
	if err != nil {
		return err
	}
	log, err := o.Logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := o.HandlerConfig(c.set)
	if err != nil {
		return &UsageError{err.Error()}
	}
	rc, err := o.applyRecoveryFIX(c.set)
	if err != nil {
		return err
	}
	if o.ServeFIX == "" {
		if o.ServeFIX, err = o.omsServiceListen(); err != nil {
			return err
		}
	}
	for _, name := range fixLimitFlags {
		if c.set[name] && o.ServeFIX == "" {
			return usagef("--%s bounds the OMS service: give --serve-fix too", name)
		}
	}
	if err := o.FIXLimits.Apply(&fixsession.Limits{}, c.set); err != nil {
		return err
	}
	if err := checkHTTPAddr(o.HTTP); err != nil {
		return &UsageError{err.Error()}
	}
	if cfg.Templates, err = o.LoadTemplates(c.set); err != nil {
		return err
	}
	cfg.Logger = log
	if cfg.Key, err = o.LoadKey(); err != nil {
		return err
	}
	var fixSessions []func() int // for --http
	var recClient *fixrecovery.Client
	if o.FixConnect != "" {
		rec, err := o.recoveryClient(rc, log)
		if err != nil {
			return err
		}
		defer rec.Close()
		cfg.Recovery = rec
		fixSessions = append(fixSessions, func() int { return b2i(rec.LoggedOn()) })
		recClient = rec
	}
	// The OMS service's configuration is checked before any group is joined.
	var busCfg bus.Config
	if o.ServeFIX != "" {
		if busCfg, err = o.busConfig(c.set, cfg, log); err != nil {
			return err
		}
	}
	h, err := feed.New(cfg)
	if err != nil {
		return err
	}
	for _, s := range h.Sockets() {
		log.Info("joined", "channel", s.Channel, "line", s.Line, "group", s.Group, "rcvbuf_granted", s.ReadBuffer)
	}
	var oms *bus.Bus
	if o.ServeFIX != "" {
		b, err := o.startBus(ctx, h, busCfg)
		if err != nil {
			return err
		}
		oms = b
		defer func() {
			b.Stop()
			for _, c := range b.Clients() {
				log.Info("OMS client", "session", c.Session, "username", c.Username, "messages", c.Messages,
					"entries", c.Entries, "snapshots", c.Snapshots, "rejects", c.Rejects, "conflations", c.Conflations,
					"dropped", c.Dropped, "over_limit", c.OverLimit, "logged_out", c.LoggedOut)
			}
		}()
		fixSessions = append(fixSessions, func() int { return connectedClients(b) })
	}
	np, err := startFeedNATS(ctx, o.NATS, h, cfg, log)
	if err != nil {
		return err
	}
	defer np.Stop(log)
	web, err := startHTTP(ctx, o.HTTP, nil, np.httpConfig(opshttp.Config{Role: "feed", Handler: h, FIXSessions: sumOf(fixSessions)}), log)
	if err != nil {
		return err
	}
	if web != nil {
		defer web.Close()
	}
	log.Info("feed handler started", "topics", len(cfg.Topics), "all", cfg.All, "recovery", o.FixConnect)
	runCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
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
	warnForged(log, st)
	keep := func(werr error) {
		if werr != nil && err == nil {
			err = werr
		}
	}
	if o.DumpBooks != "" {
		keep(writeFile(o.DumpBooks, h.WriteDump))
	}
	lat := h.Latency()
	log.Info("tick-to-handler latency (publisher SendingTime to book updated)", "count", lat.TotalCount(),
		"p50_us", us(lat.ValueAtQuantile(50)), "p90_us", us(lat.ValueAtQuantile(90)), "p99_us", us(lat.ValueAtQuantile(99)),
		"p99.9_us", us(lat.ValueAtQuantile(99.9)), "p99.99_us", us(lat.ValueAtQuantile(99.99)), "max_us", us(lat.Max()))
	if o.LatencyOut != "" {
		keep(writeFile(o.LatencyOut, func(w io.Writer) error {
			return bench.WriteLatency(w, h.StageLatency()) // .hgrm in µs, then a summary per stage
		}))
	}
	if o.StatsOut != "" {
		keep(writeFile(o.StatsOut, func(w io.Writer) error {
			out := FeedStats{Stats: st}
			if oms != nil {
				fs, ls := oms.FIXStats(), oms.LimitStats()
				out.OMSFIX, out.OMSLimits = &fs, &ls
			}
			if recClient != nil {
				gs, cs := recClient.GuardStats(), recClient.Stats()
				out.RecoveryGuard, out.RecoveryClient = &gs, &cs
			}
			if np != nil {
				ns := np.Stats()
				out.PublisherStats = &ns
			}
			return json.NewEncoder(w).Encode(out)
		}))
	}
	keep(unheardTopics(h.Engine, cfg, log))
	return err
}

// FeedStats is what feed --stats-out writes: the handler's counters and, with
// --serve-fix, the OMS service's FIX acceptor's.
type FeedStats struct {
	feed.Stats
	OMSFIX                  *fixsession.AcceptorStats `json:"oms_fix,omitempty"`
	*natsbus.PublisherStats                           // with --nats: the nats_* counters
	// OMSLimits counts the OMS clients' requests over --fix-max-requests-per-second
	// and the clients logged out for them (subscriptions over --fix-max-subscriptions
	// are counted per client, in the log at exit).
	OMSLimits *fixsession.LimitStats `json:"oms_limits,omitempty"`
	// RecoveryGuard counts the recovery client's connections and the malformed
	// messages from the recovery service its framing guard caught.
	RecoveryGuard *fixsession.InitiatorStats `json:"recovery_guard,omitempty"`
	// RecoveryClient counts the snapshot requests the recovery client sent, the ones
	// that joined a request still unanswered, and the answers used late.
	RecoveryClient *fixrecovery.Stats `json:"recovery_client,omitempty"`
}

// HandlerConfig returns the handler's configuration from the options, checked; the
// flags not given (in set) have their defaults or the config file's values already. It
// loads no templates and opens no connection.
func (o *FeedOptions) HandlerConfig(set map[string]bool) (feed.Config, error) {
	var cfg feed.Config
	if o.All == (o.Topics != "") {
		return cfg, errors.New("give exactly one of --topics A,B and --all")
	}
	cfg.All = o.All
	if o.Topics != "" {
		for _, t := range strings.Split(o.Topics, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				return cfg, fmt.Errorf("--topics %q has an empty symbol", o.Topics)
			}
			cfg.Topics = append(cfg.Topics, t)
		}
	}
	var err error
	if cfg.Mapping, err = o.Mapping(mcast.DefaultMapping(), set); err != nil {
		return cfg, err
	}
	if cfg.Port, err = o.PortNumber(); err != nil {
		return cfg, err
	}
	if cfg.DefinitionsGroup, err = ParseAddr("--definitions-group", o.DefsGroup, true); err != nil {
		return cfg, err
	}
	if cfg.Interface, err = o.Interface(); err != nil {
		return cfg, err
	}
	if o.Source != "" {
		if cfg.Source, err = ParseAddr("--source", o.Source, false); err != nil {
			return cfg, err
		}
	}
	if cfg.BPort, err = o.BPortNumber(); err != nil {
		return cfg, err
	}
	if o.BGroupBase != "" {
		if cfg.BBase, err = ParseAddr("--b-group-base", o.BGroupBase, true); err != nil {
			return cfg, err
		}
	}
	in := o.Inject
	for _, p := range []struct {
		flag string
		p    float64
	}{{"--inject-loss", in.Loss}, {"--inject-reorder", in.Reorder}, {"--inject-dup", in.Dup}, {"--inject-delay", in.Delay}} {
		if !(p.p >= 0 && p.p <= 1) {
			return cfg, fmt.Errorf("%s %v: want a probability, 0..1", p.flag, p.p)
		}
	}
	cfg.Inject = feed.Inject{Loss: in.Loss, Reorder: in.Reorder, Window: in.Window, Dup: in.Dup,
		Delay: in.Delay, DelayBy: in.DelayBy, Burst: in.Burst, BurstAt: in.BurstAt, Seed: in.Seed}
	switch in.Line {
	case "":
	case "A", "B":
		cfg.Inject.Line = in.Line[0]
	default:
		return cfg, fmt.Errorf("--inject-line %q: want A or B", in.Line)
	}
	if err := cfg.Inject.Validate(); err != nil {
		return cfg, fmt.Errorf("--inject-*: %w", err)
	}
	if o.Window < 0 || o.ReadBuffer < 0 || o.GapWait < 0 || o.RecoveryTimeout < 0 || o.Duration < 0 {
		return cfg, errors.New("--window, --rcvbuf, --gap-wait, --recovery-timeout and --duration must not be negative")
	}
	cfg.Gap = gap.Config{Window: o.Window, GapWait: o.GapWait, RecoveryTimeout: o.RecoveryTimeout}
	cfg.ReadBuffer = o.ReadBuffer
	cfg.BusyPoll, cfg.CPU, cfg.SharedSockets = o.BusyPoll, o.CPU, o.SharedSockets
	if o.StageEvery < 0 {
		return cfg, fmt.Errorf("--stage-every %d: want 1 or more (0: the default, 8)", o.StageEvery)
	}
	cfg.StageEvery = o.StageEvery
	if cfg.PinCPU, err = CPUFlag(o.CPU); err != nil {
		return cfg, err
	}
	if o.SnapshotAfter < 0 || o.SnapshotWait < 0 {
		return cfg, errors.New("--snapshot-after and --snapshot-wait must not be negative")
	}
	cfg.SnapshotChannels, cfg.SnapshotAfter, cfg.SnapshotWait = o.Snap.SnapshotChannels, o.SnapshotAfter, o.SnapshotWait
	if cfg.SnapshotPortOffset, err = o.Snap.PortOffset(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// recoveryClient connects the handler to the FIX recovery service at --fix-connect.
// rc holds what --fix-config gave (HeartBtInt, ReconnectInterval, TargetCompID,
// Persistence).
func (o *FeedOptions) recoveryClient(rc fixrecovery.Config, log *slog.Logger) (*fixrecovery.Client, error) {
	compID := o.CompID
	if compID == "" {
		compID = fmt.Sprintf("FFFEED-%d", os.Getpid())
	}
	tc, err := o.RecoveryTLS.Load()
	if err != nil {
		return nil, err
	}
	rc.Connect, rc.SenderCompID, rc.Username, rc.Password, rc.TLS, rc.Logger = o.FixConnect, compID, o.Username, o.Password, tc, log
	return fixrecovery.New(rc)
}

var _ feed.Recovery = (*fixrecovery.Client)(nil)

// busConfig reads and checks the OMS service's configuration (--bus-config, the
// --fix-* limits, --serve-fix): the file given, else fixtures/bus.json found from the
// working directory or beside the binary, else the demo configuration compiled in (said
// in the log). It runs before the handler joins any group.
func (o *FeedOptions) busConfig(set map[string]bool, cfg feed.Config, log *slog.Logger) (bus.Config, error) {
	bc, err := loadBusConfig(o.BusConfig, set["bus-config"] || o.BusConfig != DefaultBusConfig, log)
	if err != nil {
		return bc, err
	}
	bc.Listen = o.ServeFIX
	if err := o.FIXLimits.Apply(&bc.FIXLimits, set); err != nil {
		return bc, err
	}
	if err := o.applyOMSServiceFIX(set, &bc); err != nil {
		return bc, err
	}
	tc, err := o.FIXLimits.TLS.Config()
	if err != nil {
		return bc, err
	}
	if tc != nil {
		bc.TLS = tc
	}
	bc.ChannelOf = bus.MappingChannels(cfg.Mapping, cfg.Port)
	bc.Logger = log
	if err := bc.Check(); err != nil {
		return bc, fmt.Errorf("--serve-fix %s: %w", o.ServeFIX, err)
	}
	return bc, nil
}

// loadBusConfig reads the OMS service's configuration: the file at path when explicit,
// else fixtures/bus.json found from the working directory or beside the binary, else the
// demo configuration compiled in, said in the log.
func loadBusConfig(path string, explicit bool, log *slog.Logger) (bus.Config, error) {
	found, err := findFixture(path, explicit, "OMS service configuration", "--bus-config")
	switch {
	case err == nil:
		bc, err := bus.LoadConfig(found)
		if err != nil {
			return bc, fmt.Errorf("--bus-config %w", err)
		}
		log.Info("OMS service configuration", "file", found, "users", len(bc.Users))
		return bc, nil
	case explicit:
		return bus.Config{}, err
	}
	bc, err := bus.ParseConfig(bytes.NewReader(fixtures.BusConfig()))
	if err != nil {
		return bc, fmt.Errorf("the compiled-in OMS service configuration: %w", err)
	}
	log.Warn("OMS service configuration: no "+DefaultBusConfig+" here or beside the binary; using the demo one compiled in "+
		"(users demo, equities, sber, fx, passwords their names): give --bus-config FILE for your own", "users", len(bc.Users))
	return bc, nil
}

// startBus starts the OMS distribution service of h on --serve-fix, configured by
// busConfig.
func (o *FeedOptions) startBus(ctx context.Context, h *feed.Handler, bc bus.Config) (*bus.Bus, error) {
	b, err := bus.New(h, bc)
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}
