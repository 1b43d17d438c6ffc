package roles

// ingest --republish: the MOEX engine drives a publisher (package publisher with a
// Source) on fastfeed's topic bus, with its FIX recovery service and, with --nats, an
// in-process handler of that bus publishing on NATS as feed --nats does.

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"

	"fastfeed/bus"
	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
	"fastfeed/ingest/moex"
	"fastfeed/internal/fixsession"
	"fastfeed/publisher"
	"fastfeed/replay"
)

// IngestBusOptions are ingest's --republish flags: the topic bus it publishes on.
type IngestBusOptions struct {
	Republish  bool
	Network    Network
	BusIface   string
	FixListen  string
	Heartbeat  time.Duration
	DefsEvery  time.Duration
	PayloadLim int
	Retention  int
	RetentionB int
	Batch      int
	Rate       float64
	Snap       SnapshotChannelOptions
	NATS       NATSOptions
}

func (b *IngestBusOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&b.Republish, "republish", false, "republish every instrument on fastfeed's topic bus (as pub sends), with its FIX recovery service (docs/moex-ingest.md)")
	b.Network.register(fs, netUsage{
		"iface":        "-",
		"group-size":   "with --republish: `number` of groups topics spread over (crc32 mod N)",
		"single-group": "with --republish: put every topic on the --group-base group",
		"b-port":       "with --republish: send a B line on this `port`",
		"b-group-base": "with --republish: send a B line on groups from this `base`",
	})
	fs.StringVar(&b.BusIface, "bus-iface", "", "with --republish: send the bus from this interface: `name or IPv4 address` (default 127.0.0.1, loopback)")
	fs.StringVar(&b.FixListen, "fix-listen", publisher.DefaultRecoveryListen, "with --republish: `address` of the bus's FIX recovery service")
	fs.DurationVar(&b.Heartbeat, "heartbeat", publisher.DefaultHeartbeat, "with --republish: heartbeat a bus channel idle for `D`")
	fs.DurationVar(&b.DefsEvery, "definitions-interval", publisher.DefaultDefinitionsInterval, "with --republish: resend every security definition every `D`")
	fs.IntVar(&b.PayloadLim, "payload-limit", publisher.DefaultPayloadLimit, "with --republish: most `bytes` of FAST message per bus datagram")
	fs.IntVar(&b.Retention, "retention", publisher.DefaultRetention, "with --republish: sequenced `datagrams` kept for retransmission")
	fs.IntVar(&b.RetentionB, "retention-bytes", publisher.DefaultRetentionBytes, "with --republish: `bytes` of datagrams kept for retransmission")
	fs.IntVar(&b.Batch, "capture-batch", 256, "with --republish --capture: exchange datagrams read between two sends of the bus (`N`)")
	fs.Float64Var(&b.Rate, "capture-rate", 0, "with --republish --capture: read the capture at this many `datagrams` per second (0: as fast as the bus sends)")
	b.Snap.register(fs, "with --republish: cycle a W of every instrument on each bus channel's snapshot channel")
	b.NATS.register(fs, true)
}

// republishFlags are the flags that mean nothing without --republish.
var republishFlags = []string{"group-base", "group-size", "single-group", "port", "definitions-group", "b-port",
	"b-group-base", "bus-iface", "fix-listen", "heartbeat", "definitions-interval", "payload-limit",
	"retention", "retention-bytes", "capture-batch", "capture-rate", "snapshot-channels", "snapshot-port-offset", "nats"}

// config returns the publisher's configuration from the flags given (in set).
func (b *IngestBusOptions) config(set map[string]bool, log *slog.Logger) (publisher.Config, error) {
	cfg := publisher.Config{Heartbeat: b.Heartbeat, DefinitionsInterval: b.DefsEvery, PayloadLimit: b.PayloadLim,
		Retention: b.Retention, RetentionBytes: b.RetentionB, Logger: log,
		Recovery: publisher.RecoveryConfig{Listen: b.FixListen,
			Users: []publisher.User{{Username: fixsession.DemoUsername, Password: fixsession.DemoPassword}}}}
	switch {
	case b.Batch < 1:
		return cfg, usagef("--capture-batch %d: want at least 1", b.Batch)
	case !(b.Rate >= 0) || math.IsInf(b.Rate, 0):
		return cfg, usagef("--capture-rate %v: want datagrams per second >= 0", b.Rate)
	}
	if _, _, err := net.SplitHostPort(b.FixListen); err != nil {
		return cfg, usagef("--fix-listen %q: %v", b.FixListen, err)
	}
	var err error
	if set["port"] {
		if cfg.Port, err = b.Network.PortNumber(); err != nil {
			return cfg, &UsageError{err.Error()}
		}
	}
	if cfg.B.Port, err = b.Network.BPortNumber(); err != nil {
		return cfg, &UsageError{err.Error()}
	}
	if set["b-group-base"] {
		if cfg.B.GroupBase, err = ParseAddr("--b-group-base", b.Network.BGroupBase, true); err != nil {
			return cfg, err
		}
	}
	if set["definitions-group"] {
		if cfg.DefinitionsGroup, err = ParseAddr("--definitions-group", b.Network.DefsGroup, true); err != nil {
			return cfg, err
		}
	}
	if cfg.Mapping, err = b.Network.Mapping(cfg.Mapping, set); err != nil {
		return cfg, &UsageError{err.Error()}
	}
	if b.BusIface != "" {
		if cfg.Interface, err = (&Network{Iface: b.BusIface}).Interface(); err != nil {
			return cfg, err
		}
	}
	cfg.SnapshotChannels = b.Snap.SnapshotChannels
	if cfg.SnapshotPortOffset, err = b.Snap.PortOffset(); err != nil {
		return cfg, &UsageError{err.Error()}
	}
	if err := b.NATS.check(); err != nil {
		return cfg, &UsageError{err.Error()}
	}
	return cfg, nil
}

// republished is a finished --republish run.
type republished struct {
	pub      *publisher.Publisher
	rep      *moex.Republisher
	rec      *publisher.RecoveryService
	captured moex.CaptureStats
	nats     *natsPublisher
}

// IngestRepublishStats is the "republish" object of ingest --stats-out.
type IngestRepublishStats struct {
	moex.RepublishStats
	Bus  PubStats `json:"bus"`
	NATS any      `json:"nats,omitempty"`
}

func (r *republished) stats() *IngestRepublishStats {
	if r == nil {
		return nil
	}
	out := &IngestRepublishStats{RepublishStats: r.rep.Stats(), Bus: NewPubStats(r.pub.Stats(), r.rec.Stats())}
	if r.nats != nil {
		out.NATS = r.nats.Stats()
	}
	return out
}

// runRepublish runs eng under a publisher until the capture ends (then --linger) or, live,
// until ctx ends.
func (b *IngestBusOptions) runRepublish(ctx context.Context, cfg publisher.Config, eng *moex.Engine, capture string,
	live moex.LiveConfig, duration time.Duration, log *slog.Logger) (*republished, error) {
	var err error
	if cfg.Templates, err = LoadTemplates(DefaultTemplates, false); err != nil {
		return nil, err
	}
	var src publisher.Source
	var cap *moex.CaptureSource
	if capture != "" {
		r, err := replay.Open(capture, nil)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		cap = &moex.CaptureSource{R: r, E: eng, Batch: b.Batch, Rate: b.Rate}
		src = cap
	} else {
		ls, err := moex.NewLiveSource(eng, live)
		if err != nil {
			return nil, err
		}
		defer ls.Close()
		if duration > 0 {
			ls.End = time.Now().Add(duration)
		}
		src = ls
	}
	cfg.Source = src
	p, err := publisher.New(cfg)
	if err != nil {
		return nil, err
	}
	rep := moex.NewRepublisher(p)
	eng.Listener = rep
	rec, err := publisher.NewRecoveryService(p, publisher.RecoveryOptions{})
	if err != nil {
		return nil, err
	}
	if err := rec.Start(ctx); err != nil {
		return nil, err
	}
	defer rec.Stop()
	log.Info("republishing on the topic bus", "fix_recovery", rec.Addr(), "mapping", cfg.Mapping.String())
	out := &republished{pub: p, rep: rep, rec: rec}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if b.NATS.URL != "" {
		np, h, err := b.startNATS(runCtx, cfg, rec.Addr(), log)
		if err != nil {
			return nil, err
		}
		out.nats = np
		hdone := make(chan error, 1)
		go func() { hdone <- h.Run(runCtx) }()
		defer func() {
			cancel()
			<-hdone
			np.Stop(log)
		}()
	}
	err = p.Run(runCtx)
	if cap != nil {
		out.captured = cap.Stats
	}
	return out, err
}

// startNATS starts an in-process handler of the bus (every instrument, recovering over
// the recovery service at recAddr) publishing its books on --nats, as feed --nats does.
func (b *IngestBusOptions) startNATS(ctx context.Context, cfg publisher.Config, recAddr string, log *slog.Logger) (*natsPublisher, *feed.Handler, error) {
	rec, err := fixrecovery.New(fixrecovery.Config{Connect: recAddr, SenderCompID: "FFINGEST",
		Username: fixsession.DemoUsername, Password: fixsession.DemoPassword, Templates: cfg.Templates})
	if err != nil {
		return nil, nil, err
	}
	context.AfterFunc(ctx, func() { rec.Close() })
	fc := feed.Config{All: true, Interface: cfg.Interface, Mapping: cfg.Mapping, Port: cfg.Port,
		DefinitionsGroup: cfg.DefinitionsGroup, Templates: cfg.Templates, Recovery: rec, Logger: log}
	if fc.Port == 0 {
		fc.Port = publisher.DefaultPort
	}
	h, err := feed.New(fc)
	if err != nil {
		return nil, nil, fmt.Errorf("ingest --nats: the bus handler: %w", err)
	}
	np, err := startNATSPublisher(ctx, b.NATS, h, bus.MappingChannels(fc.Mapping, fc.Port), log)
	if err != nil {
		return nil, nil, err
	}
	return np, h, nil
}
