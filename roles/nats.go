package roles

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"fastfeed/bus"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
	"fastfeed/opshttp"
)

// NATSOptions are the NATS flags of feed, gateway and oms (--nats and --nats-*).
type NATSOptions struct {
	URL, Listen, Store, ServerConfig                           string
	User, Password, NKey, Creds, TLSCA, TLSCert, TLSKey, Inbox string
	SnapshotEvery                                              time.Duration
	Replicas                                                   int
	Memory                                                     bool
}

// register adds the flags; publisher adds those only a publishing handler has.
func (n *NATSOptions) register(fs *flag.FlagSet, publisher bool) {
	what := "connect to NATS at `URL[,URL]` (nats://, tls://)"
	if publisher {
		what = "publish the books on NATS: `URL[,URL]` of the servers, or \"embedded\" to run nats-server with JetStream in this process"
	}
	fs.StringVar(&n.URL, "nats", "", what)
	fs.StringVar(&n.User, "nats-user", "", "NATS `user` (with --nats-password)")
	fs.StringVar(&n.Password, "nats-password", "", "NATS `password`")
	fs.StringVar(&n.NKey, "nats-nkey", "", "NATS nkey seed `file`")
	fs.StringVar(&n.Creds, "nats-creds", "", "NATS credentials `file` (JWT and seed)")
	fs.StringVar(&n.TLSCA, "nats-tls-ca", "", "CA `file` that signs the NATS servers' certificates (turns TLS on)")
	fs.StringVar(&n.TLSCert, "nats-tls-cert", "", "client certificate `file` for NATS servers that ask for one")
	fs.StringVar(&n.TLSKey, "nats-tls-key", "", "the client certificate's key `file`")
	fs.StringVar(&n.Inbox, "nats-inbox", "", "reply subject `prefix` instead of _INBOX (per-user permissions)")
	if publisher {
		fs.StringVar(&n.Listen, "nats-listen", "127.0.0.1:4222", "with --nats embedded: the client `address`")
		fs.StringVar(&n.Store, "nats-store", "", "with --nats embedded: JetStream's `directory` (default a temporary one)")
		fs.StringVar(&n.ServerConfig, "nats-server-config", "", "with --nats embedded: a nats-server configuration `file` (users, permissions, TLS)")
		fs.DurationVar(&n.SnapshotEvery, "nats-snapshot-every", natsbus.DefaultSnapshotEvery, "write books that changed to the last-value cache every `D`")
		fs.IntVar(&n.Replicas, "nats-replicas", 1, "copies of the last-value cache stream (a cluster: 3)")
		fs.BoolVar(&n.Memory, "nats-memory", false, "keep the last-value cache in memory instead of files")
	}
}

func (n *NATSOptions) check() error {
	if n.URL == "" {
		return nil
	}
	if n.SnapshotEvery < 0 || n.Replicas < 0 {
		return errors.New("--nats-snapshot-every and --nats-replicas must not be negative")
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		return errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if n.NKey != "" && n.Creds != "" {
		return errors.New("give --nats-nkey or --nats-creds, not both")
	}
	return nil
}

func (n *NATSOptions) conn(url, name string) natsbus.ConnConfig {
	return natsbus.ConnConfig{URL: url, Name: name, User: n.User, Password: n.Password, NKeySeedFile: n.NKey,
		CredsFile: n.Creds, TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey, InboxPrefix: n.Inbox}
}

// connect connects to --nats, first starting the embedded server for "embedded".
func (n *NATSOptions) connect(name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, *natsbus.Server, error) {
	url := n.URL
	var srv *natsbus.Server
	if url == "embedded" {
		var err error
		srv, err = natsbus.StartServer(natsbus.ServerConfig{Listen: n.Listen, StoreDir: n.Store, ConfigFile: n.ServerConfig})
		if err != nil {
			return nil, nil, err
		}
		url = srv.URL()
		log.Info("embedded NATS server listening", "url", url, "jetstream", true, "subscribe", "nats sub 'md.>' --server "+url)
	}
	nc, err := n.conn(url, name).Connect(extra...)
	if err != nil {
		if srv != nil {
			srv.Shutdown()
		}
		return nil, nil, err
	}
	log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
	return nc, srv, nil
}

// natsPublisher is a handler's NATS side: the connection, the embedded server if any,
// and the publisher subscribed to every instrument.
type natsPublisher struct {
	srv *natsbus.Server
	nc  *nats.Conn
	pub *natsbus.Publisher
	sub interface{ Cancel() }
}

// startNATSPublisher publishes h's books on --nats.
func startNATSPublisher(ctx context.Context, n NATSOptions, h *feed.Handler, channelOf func(string) string, log *slog.Logger) (*natsPublisher, error) {
	if err := n.check(); err != nil {
		return nil, &UsageError{err.Error()}
	}
	nc, srv, err := n.connect("fastfeed-feed", log, natsbus.PublisherOptions()...)
	if err != nil {
		return nil, err
	}
	sc := natsbus.DefaultStreamConfig(n.Replicas, n.Memory)
	pub, err := natsbus.NewPublisher(natsbus.PublisherConfig{Conn: nc, Engine: h, ChannelOf: channelOf,
		SnapshotEvery: n.SnapshotEvery, Stream: &sc, Logger: log})
	if err == nil {
		err = pub.Start(ctx)
	}
	if err != nil {
		nc.Close()
		if srv != nil {
			srv.Shutdown()
		}
		return nil, err
	}
	np := &natsPublisher{srv: srv, nc: nc, pub: pub}
	np.sub = h.Subscribe(pub.OnEvent, "*")
	return np, nil
}

// startFeedNATS publishes h's books on --nats; nil without --nats.
func startFeedNATS(ctx context.Context, n NATSOptions, h *feed.Handler, cfg feed.Config, log *slog.Logger) (*natsPublisher, error) {
	if n.URL == "" {
		return nil, nil
	}
	return startNATSPublisher(ctx, n, h, bus.MappingChannels(cfg.Mapping, cfg.Port), log)
}

// Stop stops publishing, closes the connection and stops the embedded server.
func (np *natsPublisher) Stop(log *slog.Logger) {
	if np == nil {
		return
	}
	np.sub.Cancel()
	np.pub.Stop()
	st := np.pub.Stats()
	log.Info("NATS publisher stopped", "messages", st.Messages, "entries", st.Entries, "snapshots", st.Snapshots,
		"conflations", st.Conflations, "dropped", st.Dropped, "publish_errors", st.PublishErrors,
		"reconnects", st.Reconnects, "resnapshots", st.Resnapshots)
	np.nc.Close()
	if np.srv != nil {
		np.srv.Shutdown()
	}
}

// httpConfig adds the publisher to the operator's view: its nats_* counters and its
// connection's state (fastfeed_nats_sessions). A nil publisher adds nothing.
func (np *natsPublisher) httpConfig(cfg opshttp.Config) opshttp.Config {
	if np == nil {
		return cfg
	}
	cfg.Counters = func() any { return np.pub.Stats() }
	cfg.NATS = func() []opshttp.NATSSession { return []opshttp.NATSSession{natsSession("publisher", np.nc)} }
	return cfg
}

// Stats returns the publisher's counters; zero for a nil publisher.
func (np *natsPublisher) Stats() natsbus.PublisherStats {
	if np == nil {
		return natsbus.PublisherStats{}
	}
	return np.pub.Stats()
}

// splitPatterns splits a comma-separated --subscribe.
func splitPatterns(s string) []feed.Pattern {
	var out []feed.Pattern
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, feed.Pattern(p))
		}
	}
	return out
}
