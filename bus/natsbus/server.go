package natsbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the last-value cache stream (DESIGN.md).
const StreamName = "FASTFEED_SNAP"

// StreamConfig is the last-value cache stream's configuration.
type StreamConfig = jetstream.StreamConfig

// DefaultStreamConfig is the last-value cache: FASTFEED_SNAP over snap.>, one message
// per subject, direct gets allowed (so that a consumer reads one subject's last W with
// one request), with replicas copies, in memory or in files.
func DefaultStreamConfig(replicas int, memory bool) StreamConfig {
	st := jetstream.FileStorage
	if memory {
		st = jetstream.MemoryStorage
	}
	return StreamConfig{Name: StreamName, Subjects: []string{PrefixSnap + ".>"}, MaxMsgsPerSubject: 1,
		Storage: st, Replicas: max(replicas, 1), AllowDirect: true, Discard: jetstream.DiscardOld,
		Description: "fastfeed last-value cache: the last W of each instrument"}
}

// EnsureStream creates or updates the last-value cache stream.
func EnsureStream(ctx context.Context, nc *nats.Conn, cfg StreamConfig) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsbus: jetstream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("natsbus: stream %s: %w", cfg.Name, err)
	}
	return nil
}

// ServerConfig configures an embedded nats-server.
type ServerConfig struct {
	// Listen is the client address (default "127.0.0.1:0": a random loopback port).
	Listen string
	// StoreDir is JetStream's directory (default: a temporary directory removed by
	// Shutdown).
	StoreDir string
	// ConfigFile, if set, is a nats-server configuration file (users, permissions, TLS,
	// cluster) read first; Listen and StoreDir still apply, and JetStream is enabled.
	ConfigFile string
	// Name is the server's name (default "fastfeed").
	Name string
	// Log, if true, lets the server log to stderr.
	Log bool
}

// Server is an embedded nats-server with JetStream.
type Server struct {
	*server.Server
	tmp string
}

// StartServer starts an embedded nats-server with JetStream and waits until it accepts
// connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		o, err := server.ProcessConfigFile(cfg.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("natsbus: nats-server config %s: %w", cfg.ConfigFile, err)
		}
		opts = o
	}
	listen := cfg.Listen
	if listen == "" && cfg.ConfigFile == "" {
		listen = "127.0.0.1:0"
	}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("natsbus: listen %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("natsbus: listen %q: bad port", listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if cfg.Name != "" {
		opts.ServerName = cfg.Name
	} else if opts.ServerName == "" {
		opts.ServerName = "fastfeed"
	}
	s := &Server{}
	opts.JetStream = true
	switch {
	case cfg.StoreDir != "":
		opts.StoreDir = cfg.StoreDir
	case opts.StoreDir == "":
		dir, err := os.MkdirTemp("", "fastfeed-nats-")
		if err != nil {
			return nil, fmt.Errorf("natsbus: store dir: %w", err)
		}
		opts.StoreDir, s.tmp = dir, dir
	}
	opts.NoSigs = true
	opts.NoLog = !cfg.Log
	srv, err := server.NewServer(opts)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("natsbus: nats-server: %w", err)
	}
	if cfg.Log {
		srv.ConfigureLogger()
	}
	s.Server = srv
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.cleanup()
		return nil, errors.New("natsbus: nats-server not ready after 10s")
	}
	return s, nil
}

// URL is the client URL ("nats://127.0.0.1:PORT").
func (s *Server) URL() string { return s.ClientURL() }

// Shutdown stops the server and removes its temporary store.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.WaitForShutdown()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

// ConnConfig is how a fastfeed process connects to NATS.
type ConnConfig struct {
	// URL is one or more server URLs, comma-separated.
	URL  string
	Name string // connection name, shown by the server
	// Credentials: a user and password, an nkey seed file, or a creds file (JWT and
	// seed). At most one of NKeySeedFile and CredsFile.
	User, Password string
	NKeySeedFile   string
	CredsFile      string
	// TLS: a CA to verify the server, and a client certificate and key if the server
	// asks for one. Any of them turns TLS on.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces "_INBOX" for replies, so that permissions can give each user
	// its own inboxes.
	InboxPrefix string
	// ReconnectWait between attempts (default 250ms); reconnection never gives up.
	ReconnectWait time.Duration
	// Ordered tries the URLs in the order given instead of shuffling them.
	Ordered bool
}

// Options returns the nats.go options of c.
func (c ConnConfig) Options() ([]nats.Option, error) {
	wait := c.ReconnectWait
	if wait == 0 {
		wait = 250 * time.Millisecond
	}
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(wait), nats.ReconnectJitter(50*time.Millisecond, 100*time.Millisecond),
		nats.RetryOnFailedConnect(false)}
	if c.Name != "" {
		opts = append(opts, nats.Name(c.Name))
	}
	if c.Ordered {
		opts = append(opts, nats.DontRandomize())
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.NKeySeedFile != "" && c.CredsFile != "" {
		return nil, errors.New("natsbus: give an nkey seed file or a creds file, not both")
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("natsbus: nkey seed %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if c.CredsFile != "" {
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("natsbus: creds file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("natsbus: a TLS client certificate needs its key, and a key its certificate")
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// Connect connects to c.URL with c's options and then extra ones.
func (c ConnConfig) Connect(extra ...nats.Option) (*nats.Conn, error) {
	if strings.TrimSpace(c.URL) == "" {
		return nil, errors.New("natsbus: no NATS URL")
	}
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect %s: %w", redact(c.URL), err)
	}
	return nc, nil
}

// PublisherOptions are the connection options a publisher wants: nothing buffered while
// NATS is away (the publisher conflates instead).
func PublisherOptions() []nats.Option {
	return []nats.Option{nats.ReconnectBufSize(-1)}
}

// redact removes passwords from URLs for messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			if s := strings.Index(u, "://"); s >= 0 && s < at {
				parts[i] = u[:s+3] + "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
