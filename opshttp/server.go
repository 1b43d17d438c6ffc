package opshttp

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fastfeed/book"
	"fastfeed/feed"
)

//go:embed web
var webFS embed.FS

// Config configures a Server. Give Handler for a feed handler, Source for another process
// that keeps books (gateway, ingest); a process with neither (the publisher) gives
// Counters, and Channels and Books if it has them.
type Config struct {
	// Role names the process ("feed", "pub", "demo", "gateway", "ingest"): the page's
	// title and the role label of every metric.
	Role string
	// Handler is the feed handler shown (a *feed.Handler), read through its command queue.
	Handler Handler
	// Source is the process shown when it is not a feed handler (the gateway's NATS
	// consumer, the ingest's MOEX engine); ignored with a Handler.
	Source Source
	// Counters returns the process's --stats-out object (a struct with json tags): its
	// unsigned integer fields become counters fastfeed_<key>_total, its other numbers
	// gauges fastfeed_<key>. With a Handler, the handler's Stats are used and Counters
	// adds to them in /metrics (feed --nats: the publisher's nats_* counters); with a
	// Source, the Source's are used.
	Counters func() any
	// Channels returns what /api/channels shows for a process without a Handler.
	Channels func() any
	// Books writes /api/books for a process without a Handler (the publisher: its ground
	// truth, once the data has stopped); an error is a 503 with its text.
	Books func(w io.Writer) error
	// FIXSessions counts the FIX sessions logged on (the recovery client, OMS clients, a
	// publisher's recovery sessions); nil leaves the gauge out.
	FIXSessions func() int
	// NATS lists the process's NATS connections (feed --nats, gateway); nil leaves the
	// fastfeed_nats_sessions gauges out.
	NATS func() []NATSSession
	// Interval is how often the page's stream is updated (default 250ms: 4 a second).
	Interval time.Duration
	// NoDataAfter: /healthz is 503 when no datagram came for this long (default 5s; the
	// publisher heartbeats idle channels every second).
	NoDataAfter time.Duration
	// MaxStreams caps the concurrent /api/events clients (default 64).
	MaxStreams int
	Logger     *slog.Logger
}

// Handler is what the server reads of a feed handler: feed.Handler has it (feed/ops.go).
// Every call but OpsNow goes through the handler's command queue; OpsNow is called inside
// Do.
type Handler interface {
	Do(ctx context.Context, fn func()) error
	Ops(ctx context.Context, req feed.OpsRequest) (feed.OpsState, error)
	OpsNow(req feed.OpsRequest) feed.OpsState
	LatencyCopy(ctx context.Context, channel string, stage feed.Stage) (*hdrhistogram.Snapshot, error)
	Symbols() []string
	Subscribe(fn func(*feed.Event), patterns ...feed.Pattern) *feed.Subscription
}

// Server serves the operator's view. Create it with New, run it with Start or Serve.
type Server struct {
	cfg     Config
	reg     *prometheus.Registry
	mux     *http.ServeMux
	started time.Time

	mu        sync.Mutex
	latest    *sample
	changed   chan struct{} // closed when latest is replaced
	streams   map[*stream]struct{}
	lastData  uint64    // datagrams counted at lastDataAt
	lastDataT time.Time // when the datagram count last moved

	// trades holds the last trade of each watched symbol. It is owned by the handler's
	// goroutine: its subscription writes it, reads and swaps happen through Do.
	trades   map[string]*lastTrade
	tradeSub *feed.Subscription
	tradeFor string // the watched symbols of tradeSub, joined
	// latencyAt is when the sampler last copied the latency histograms (sampler only).
	latencyAt time.Time

	srv      *http.Server
	ln       net.Listener
	done     chan struct{} // closed when Serve has returned
	quit     chan struct{} // closed at shutdown: event streams end
	quitOnce sync.Once
}

// New creates a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Handler != nil {
		cfg.Source = nil
	}
	if cfg.Handler == nil && cfg.Source == nil && cfg.Counters == nil {
		return nil, errors.New("opshttp: neither a Handler, a Source nor Counters to show")
	}
	if cfg.Role == "" {
		cfg.Role = "feed"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.NoDataAfter <= 0 {
		cfg.NoDataAfter = 5 * time.Second
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, reg: prometheus.NewRegistry(), mux: http.NewServeMux(), started: time.Now(),
		changed: make(chan struct{}), streams: map[*stream]struct{}{}, trades: map[string]*lastTrade{},
		done: make(chan struct{}), quit: make(chan struct{})}
	s.lastDataT = s.started
	if err := s.reg.Register(&collector{s: s}); err != nil {
		return nil, fmt.Errorf("opshttp: metrics: %w", err)
	}
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /api/books", s.books)
	s.mux.HandleFunc("GET /api/books/{symbol}", s.book)
	s.mux.HandleFunc("GET /api/channels", s.channels)
	s.mux.HandleFunc("GET /api/events", s.events)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		b, _ := fs.ReadFile(static, "index.html")
		w.Write(b)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s: every page here is read with GET", r.Method))
			return
		}
		httpError(w, http.StatusNotFound, fmt.Sprintf("no page %s (see / for the live page, /metrics, /healthz, /api/books, /api/books/{symbol}, /api/channels, /api/events)", r.URL.Path))
	})
	return s, nil
}

// Handler returns the server's routes, for tests and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on addr (host:port; port 0 picks one) and serves until ctx ends or Close
// is called. It returns once the listener is open.
func (s *Server) Start(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("opshttp: --http %s: %w", addr, err)
	}
	s.Serve(ctx, ln)
	return nil
}

// Serve serves on ln, which it closes, until ctx ends or Close is called. It returns at
// once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) {
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug)}
	s.srv.RegisterOnShutdown(s.stopStreams)
	ctx, cancel := context.WithCancel(ctx)
	go s.sampleLoop(ctx)
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		s.srv.Shutdown(sctx)
	}()
	go func() {
		defer close(s.done)
		defer cancel()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("http server", "err", err)
		}
	}()
}

// Addr returns the address Start listens on.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL returns the page's address, http://host:port/.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String() + "/"
}

func (s *Server) stopStreams() { s.quitOnce.Do(func() { close(s.quit) }) }

// Close stops a started server: open event streams end, then the listener.
func (s *Server) Close() {
	s.stopStreams()
	if s.srv == nil {
		return
	}
	ctx, c := context.WithTimeout(context.Background(), 2*time.Second)
	defer c()
	s.srv.Shutdown(ctx)
	<-s.done
}

// httpError writes a JSON error: {"error":"..."}.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// readTimeout bounds a read of the handler's state for one request.
const readTimeout = 2 * time.Second

func (s *Server) ops(r *http.Request, req feed.OpsRequest) (feed.OpsState, error) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	return s.cfg.Handler.Ops(ctx, req)
}

// books serves /api/books: the dump format, one JSON line per book, sorted by symbol.
// ?symbols=A,B restricts it, ?depth=N cuts each side.
func (s *Server) books(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	syms, err := ParseSymbolList(q.Get("symbols"), maxSymbols)
	if err != nil {
		httpError(w, http.StatusBadRequest, "symbols: "+err.Error())
		return
	}
	depth, err := parseDepth(q.Get("depth"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.cfg.Source != nil {
		st, err := s.read(r.Context(), Request{All: len(syms) == 0, Symbols: syms, Depth: depth})
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "reading the "+s.cfg.Role+": "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		st.Books.WriteTo(w)
		return
	}
	if s.cfg.Handler == nil {
		if s.cfg.Books == nil || len(syms) > 0 || depth > 0 {
			httpError(w, http.StatusNotFound, "this process has no books to show")
			return
		}
		var b strings.Builder
		if err := s.cfg.Books(&b); err != nil {
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, b.String())
		return
	}
	st, err := s.ops(r, feed.OpsRequest{All: len(syms) == 0, Symbols: syms, Depth: depth})
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "reading the handler: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	st.Books.WriteTo(w)
}

// book serves /api/books/{symbol}: one dump line.
func (s *Server) book(w http.ResponseWriter, r *http.Request) {
	sym := r.PathValue("symbol")
	if err := checkSymbol(sym); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	depth, err := parseDepth(r.URL.Query().Get("depth"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.cfg.Source != nil {
		st, err := s.read(r.Context(), Request{Symbols: []string{sym}, Depth: depth})
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "reading the "+s.cfg.Role+": "+err.Error())
			return
		}
		if len(st.Books) == 0 {
			httpError(w, http.StatusNotFound, fmt.Sprintf("symbol %q is not followed", sym))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		st.Books.WriteTo(w)
		return
	}
	if s.cfg.Handler == nil {
		httpError(w, http.StatusNotFound, "this process has no books to show")
		return
	}
	st, err := s.ops(r, feed.OpsRequest{Symbols: []string{sym}, Depth: depth})
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "reading the handler: "+err.Error())
		return
	}
	if len(st.Books) == 0 {
		httpError(w, http.StatusNotFound, fmt.Sprintf("symbol %q is not followed", sym))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	st.Books.WriteTo(w)
}

// ChannelView is one channel in /api/channels and the page's stream.
type ChannelView struct {
	Channel      string  `json:"channel"`
	State        string  `json:"state"` // live, gap, recovering or snapshot
	Next         uint32  `json:"next"`  // next sequence number expected
	Rate         float64 `json:"rate"`  // sequence numbers a second, over the last sample
	Instruments  int     `json:"instruments"`
	Stale        int     `json:"stale"`
	Buffered     int     `json:"buffered"`
	Gaps         uint64  `json:"gaps"`
	Missing      uint64  `json:"missing"`
	Duplicates   uint64  `json:"duplicates"`
	RecoveredAB  uint64  `json:"recovered_ab"`
	RecoveredFIX uint64  `json:"recovered_fix"`
	Skipped      uint64  `json:"skipped_seq"`
	// Lines are the datagrams received on each line (A, B) where a Source counts them
	// (ingest's MOEX connections).
	Lines []uint64 `json:"lines,omitempty"`
}

func channelViews(st *feed.OpsState, prev *sample) []ChannelView {
	out := make([]ChannelView, 0, len(st.Channels))
	for _, c := range st.Channels {
		v := ChannelView{Channel: c.Channel, State: c.State, Next: c.Next, Instruments: c.Instruments, Stale: c.Stale,
			Buffered: c.Buffered, Gaps: c.Gaps, Missing: c.Missing, Duplicates: c.Duplicates,
			RecoveredAB: c.RecoveredAB, RecoveredFIX: c.RecoveredFIX, Skipped: c.Skipped}
		if prev != nil {
			if dt := st.At.Sub(prev.at).Seconds(); dt > 0 {
				if p, ok := prev.next[c.Channel]; ok {
					v.Rate = float64(int32(c.Next-p)) / dt
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// channels serves /api/channels: a JSON array of ChannelView.
func (s *Server) channels(w http.ResponseWriter, r *http.Request) {
	var v any
	switch {
	case s.cfg.Source != nil:
		st, err := s.read(r.Context(), Request{})
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "reading the "+s.cfg.Role+": "+err.Error())
			return
		}
		s.mu.Lock()
		prev := s.latest
		s.mu.Unlock()
		v = rated(st.At, st.Channels, prev)
	case s.cfg.Handler == nil:
		if s.cfg.Channels == nil {
			httpError(w, http.StatusNotFound, "this process has no channels to show")
			return
		}
		v = s.cfg.Channels()
	default:
		st, err := s.ops(r, feed.OpsRequest{})
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "reading the handler: "+err.Error())
			return
		}
		s.mu.Lock()
		prev := s.latest
		s.mu.Unlock()
		v = channelViews(&st, prev)
	}
	w.Header().Set("Content-Type", "application/json")
	e := json.NewEncoder(w)
	e.SetIndent("", " ")
	e.Encode(v)
}

// Health is /healthz's answer when it is not "ok".
type Health struct {
	Status string   `json:"status"` // "unhealthy"
	Reason string   `json:"reason"`
	Stale  []string `json:"stale,omitempty"` // stale symbols (the first 100)
}

// healthz serves /healthz: 200 "ok", or 503 with a Health.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	var bad *Health
	if s.cfg.Source != nil {
		st, err := s.read(r.Context(), Request{})
		if err != nil {
			bad = &Health{Status: "unhealthy", Reason: "the " + s.cfg.Role + " does not answer: " + err.Error()}
		} else {
			bad = s.sourceHealth(&st)
		}
	}
	if s.cfg.Handler != nil {
		st, err := s.ops(r, feed.OpsRequest{})
		if err != nil {
			bad = &Health{Status: "unhealthy", Reason: "the handler does not answer: " + err.Error()}
		} else {
			bad = s.health(&st)
		}
	}
	if bad != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(bad)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	io.WriteString(w, "ok\n")
}

// health judges a read of the handler: nil when healthy. It also notes when data last came.
func (s *Server) health(st *feed.OpsState) *Health {
	s.mu.Lock()
	if st.Stats.Datagrams != s.lastData {
		s.lastData, s.lastDataT = st.Stats.Datagrams, st.At
	}
	quiet := st.At.Sub(s.lastDataT)
	s.mu.Unlock()
	if n := len(st.Stale); n > 0 {
		h := &Health{Status: "unhealthy", Stale: st.Stale[:min(n, 100)]}
		var chans []string
		for _, c := range st.Channels {
			if c.Stale > 0 {
				chans = append(chans, fmt.Sprintf("%s (%d, %s)", c.Channel, c.Stale, c.State))
			}
		}
		h.Reason = fmt.Sprintf("%d stale book(s) on %s", n, strings.Join(chans, ", "))
		return h
	}
	if quiet >= s.cfg.NoDataAfter {
		return &Health{Status: "unhealthy", Reason: fmt.Sprintf("no data for %s", quiet.Round(100*time.Millisecond))}
	}
	return nil
}

const maxSymbols = 64 // symbols one request may name

func parseDepth(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1000 {
		return 0, fmt.Errorf("depth %q: want a number of levels, 0..1000 (0: all)", s)
	}
	return n, nil
}

// levelsJSON turns dump levels into [price, size, orders] arrays.
func levelsJSON(ls []book.DumpLevel) [][3]any {
	out := make([][3]any, len(ls))
	for i, l := range ls {
		out[i] = [3]any{l.Price, l.Size, l.Orders}
	}
	return out
}

var _ Handler = (*feed.Handler)(nil)
