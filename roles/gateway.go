package roles

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"fastfeed/book"
	"fastfeed/bus"
	"fastfeed/bus/natsbus"
	"fastfeed/internal/fixsession"
	"fastfeed/opshttp"
)

// gatewayStats is what fastfeed gateway writes with --stats-out.
type gatewayStats struct {
	natsbus.ConsumerStats
	Clients []bus.ClientStats `json:"clients"`
}

// Gateway is fastfeed gateway, the OMS FIX service fed from NATS: as many gateways on as many hosts as
// the OMS clients need, with the same FIX contract as feed --serve-fix.
func Gateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr, "usage: fastfeed gateway --nats URL [--serve-fix ADDR] [--bus-config FILE] [--fix-config FILE] [--subscribe PATTERNS] [--duration D] [--http ADDR]")
	var nf NATSOptions
	nf.register(fs, false)
	serveFIX := fs.String("serve-fix", fixsession.OMSListen, "serve OMS clients over FIX on `address`")
	busConfig := fs.String("bus-config", DefaultBusConfig, "OMS service configuration `file` (users, passwords, entitlements, queue limits)")
	follow := fs.String("subscribe", "*", "comma-separated `patterns` of the instruments the gateway follows (symbol, channel G<group>:<port>, *)")
	duration := fs.Duration("duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	dumpBooks := fs.String("dump-books", "", "write the books received from NATS to `file` at exit")
	statsOut := fs.String("stats-out", "", "write the NATS and client counters to `file` at exit (one JSON object)")
	httpAddr := fs.String("http", "", "serve the live page, /metrics, /healthz and /api on `address` (e.g. 127.0.0.1:8080; off by default)")
	var limits FIXLimitOptions
	limits.register(fs, "OMS gateway (overrides --bus-config)")
	var fixFile FIXFileOptions
	fixFile.registerFile(fs)
	fixFile.registerLimits(fs, "OMS gateway", true)
	var common Common
	common.register(fs, "")
	c, err := parse(fs, args, parseOpts{})
	if err != nil {
		return err
	}
	if nf.URL == "" || nf.URL == "embedded" {
		return &UsageError{"--nats URL is required (a gateway connects to the servers a feed publishes on)"}
	}
	if err := nf.check(); err != nil {
		return &UsageError{err.Error()}
	}
	if err := checkHTTPAddr(*httpAddr); err != nil {
		return &UsageError{err.Error()}
	}
	patterns := splitPatterns(*follow)
	if len(patterns) == 0 || *duration < 0 {
		return &UsageError{"--subscribe needs a pattern and --duration must not be negative"}
	}
	log, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	bc, err := loadBusConfig(*busConfig, c.set["bus-config"] || *busConfig != DefaultBusConfig, log)
	if err != nil {
		return err
	}
	if err := limits.Apply(&bc.FIXLimits, c.set); err != nil {
		return err
	}
	// The OMS service's acceptor of --fix-config, as for feed --serve-fix; flags given win.
	bc.Listen = *serveFIX
	if err := fixFile.applyOMSService(c.set, "serve-fix", &bc, &limits.TLS); err != nil {
		return err
	}
	if tc, err := limits.TLS.Config(); err != nil {
		return err
	} else if tc != nil {
		bc.TLS = tc
	}
	nc, _, err := nf.connect("fastfeed-gateway", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	runCtx := ctx // the consumer outlives the run, for the dump at the end
	if *duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	cons, err := natsbus.NewConsumer(natsbus.ConsumerConfig{Conn: nc, Patterns: patterns, Logger: log})
	if err != nil {
		return err
	}
	if err := cons.Start(ctx); err != nil {
		return err
	}
	defer cons.Stop()
	bc.ChannelOf = cons.ChannelOf
	bc.HoldWildcards = true // instruments arrive from NATS, maybe after the OMS's request
	bc.Logger = log
	b, err := bus.NewFromSource(cons, bc)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	web, err := startHTTP(ctx, *httpAddr, nil, opshttp.Config{Role: "gateway", Source: &gatewaySource{cons: cons, nc: nc},
		FIXSessions: func() int { return connectedClients(b) },
		NATS:        func() []opshttp.NATSSession { return []opshttp.NATSSession{natsSession("consumer", nc)} }}, log)
	if err != nil {
		b.Stop()
		return err
	}
	if web != nil {
		defer web.Close()
	}
	log.Info("gateway started", "nats", nc.ConnectedUrlRedacted(), "serve_fix", b.Addr(), "follows", *follow)
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-runCtx.Done():
			done = true
		case <-t.C:
			st := cons.Stats()
			log.Info("gateway", "instruments", st.Instruments, "synchronised", st.Synchronised, "messages", st.Messages,
				"gaps", st.Gaps, "resyncs", st.Resyncs, "clients", len(b.Clients()))
		}
	}
	var d book.Dump
	_ = cons.Do(context.Background(), func() { d = cons.Dump() })
	b.Stop()
	st := gatewayStats{ConsumerStats: cons.Stats(), Clients: b.Clients()}
	log.Info("gateway stopped", "instruments", st.Instruments, "messages", st.Messages, "gaps", st.Gaps,
		"resyncs", st.Resyncs, "reconnects", st.Reconnects, "clients", len(st.Clients))
	for _, c := range st.Clients {
		log.Info("OMS client", "session", c.Session, "username", c.Username, "messages", c.Messages,
			"conflations", c.Conflations, "dropped", c.Dropped, "logged_out", c.LoggedOut)
	}
	if *dumpBooks != "" {
		if err := writeFile(*dumpBooks, func(w io.Writer) error { _, err := d.WriteTo(w); return err }); err != nil {
			return err
		}
	}
	if *statsOut != "" {
		return writeFile(*statsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(st) })
	}
	return nil
}
