package roles

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"fastfeed/fast"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/ingest/moex"
	"fastfeed/internal/netns"
	"fastfeed/opshttp"
	"fastfeed/publisher"
	"fastfeed/replay"
)

// IngestOptions are the flags of fastfeed ingest.
type IngestOptions struct {
	MoexConfig, Market, Capture, Templates string
	DumpBooks, DumpTrades, StatsOut        string
	GapWait                                time.Duration
	GapWindow                              int
	LogLevel                               string
	Iface, MapSource                       string
	Duration                               time.Duration
	HTTP                                   string           // --http: the operator's view (package opshttp)
	Linger                                 time.Duration    // with --http or --republish: keep serving after the data for this long
	Bus                                    IngestBusOptions // --republish
	// Historical replay (live only): --replay asks the config's H service (or
	// --replay-addr) for holes of at most --replay-max-gap messages.
	Replay                             bool
	ReplayAddr, ReplayUser, ReplayPass string
	ReplayMaxGap                       int
	ReplayTimeout                      time.Duration
	ReplayInFlight, ReplayWindow       int
	Map                                string
}

// Register adds ingest's flags to fs.
func (o *IngestOptions) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.MoexConfig, "moex-config", "", "MOEX channel configuration `file` (config.xml; required)")
	fs.StringVar(&o.Market, "market", "", "the config's market (channel id): FOND or CURR (required)")
	fs.StringVar(&o.Capture, "capture", "", "read the exchange's datagrams from this pcap or pcapng `file` instead of joining the feeds")
	fs.StringVar(&o.Iface, "iface", "", "live: join on the interface with this `name or IPv4 address` (default 127.0.0.1, loopback)")
	fs.DurationVar(&o.Duration, "duration", 0, "live: stop after `D` (default: until interrupted)")
	fs.StringVar(&o.MapSource, "map-source", "", "replace the config's src-ip addresses: `FROM=TO[,FROM=TO]` (e.g. onto a private namespace's addresses)")
	fs.StringVar(&o.Templates, "templates", "", "ASTS template XML `file`; optional, checked to be the file the compiled-in codec was generated from")
	fs.StringVar(&o.DumpBooks, "dump-books", "", "write the order books' price levels to `file` at the end (JSON lines by symbol)")
	fs.StringVar(&o.DumpTrades, "dump-trades", "", "write every trade to `file`, one JSON line each, in arrival order")
	fs.StringVar(&o.StatsOut, "stats-out", "", "write the counters to `file` at the end (one JSON object)")
	fs.DurationVar(&o.GapWait, "gap-wait", 5*time.Millisecond, "how long (capture time) a hole waits for the other line")
	fs.IntVar(&o.GapWindow, "gap-window", 64, "at most `N` datagrams held behind a hole per connection")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&o.HTTP, "http", "", "serve the live page, /metrics, /healthz and /api on `address` (e.g. 127.0.0.1:8080; off by default)")
	fs.DurationVar(&o.Linger, "linger", 0, "with --http or --republish: after the capture (or --duration) and the dumps, keep serving for `D` (until interrupted): the final books on --http, the bus's heartbeats and FIX recovery with --republish")
	o.Bus.register(fs)
	fs.StringVar(&o.Map, "map", "", "replace any of the config's addresses (groups, src-ip, the H service's): `FROM=TO[,FROM=TO]`")
	fs.BoolVar(&o.Replay, "replay", false, "live: ask the historical replay service (the config's H connection) for short holes")
	fs.StringVar(&o.ReplayAddr, "replay-addr", "", "the historical replay service's `address` instead of the config's")
	fs.IntVar(&o.ReplayMaxGap, "replay-max-gap", 100, "the longest hole (`N` messages, at most 1000) asked of the replay service; longer ones wait for the snapshot feed")
	fs.DurationVar(&o.ReplayTimeout, "replay-timeout", 2*time.Second, "a replay request's time limit, connect to Logout")
	fs.IntVar(&o.ReplayInFlight, "replay-in-flight", 2, "at most `N` replay requests out at once per connection (each on its own goroutine, off the receive path)")
	fs.IntVar(&o.ReplayWindow, "replay-window", 1<<14, "at most `N` datagrams held per connection behind a hole asked of the replay service")
	fs.StringVar(&o.ReplayUser, "replay-user", "", "replay service username")
	fs.StringVar(&o.ReplayPass, "replay-password", "", "replay service password")
}

// parseSourceMap parses --map-source FROM=TO[,FROM=TO].
func parseSourceMap(s string) (map[netip.Addr]netip.Addr, error) {
	out := map[netip.Addr]netip.Addr{}
	for _, kv := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(kv, "=")
		a, err1 := netip.ParseAddr(strings.TrimSpace(from))
		b, err2 := netip.ParseAddr(strings.TrimSpace(to))
		if !ok || err1 != nil || err2 != nil || !a.Is4() || !b.Is4() {
			return nil, usagef("--map-source %q: want FROM=TO pairs of IPv4 addresses, comma-separated", kv)
		}
		out[a] = b
	}
	return out, nil
}

// IngestStats is what ingest --stats-out writes.
type IngestStats struct {
	Market    string                         `json:"market"`
	Packets   uint64                         `json:"packets"`
	Skipped   uint64                         `json:"skipped"`
	Malformed uint64                         `json:"malformed"`
	Engine    moex.Stats                     `json:"engine"`
	Channels  map[string]moex.ChannelStats   `json:"channels"`
	Gaps      map[string]IngestInstrumentGap `json:"instrument_gaps"`
	Books     int                            `json:"books"`
	Stale     int                            `json:"stale_books"`
	Replay    *moex.ReplayStats              `json:"replay,omitempty"`
	Republish *IngestRepublishStats          `json:"republish,omitempty"`
}

// IngestInstrumentGap is one instrument's RptSeq holes per feed family.
type IngestInstrumentGap struct {
	Orders       uint64 `json:"orders"`
	Trades       uint64 `json:"trades"`
	Stats        uint64 `json:"stats"`
	MissedOrders uint64 `json:"missed_orders"`
	MissedTrades uint64 `json:"missed_trades"`
	MissedStats  uint64 `json:"missed_stats"`
}

// Ingest is fastfeed ingest: a MOEX ASTS market's feeds in, books and trades out.
func Ingest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ingest", stderr,
		"usage: fastfeed ingest --moex-config FILE --market FOND|CURR [--capture FILE | --iface IP --duration D]",
		"                       [--dump-books FILE] [--dump-trades FILE] [--stats-out FILE] [--templates FILE] [--map-source FROM=TO]",
		"                       [--http ADDR [--linger D]] [--map FROM=TO,...]",
		"                       [--replay [--replay-addr ADDR] [--replay-max-gap N] [--replay-user U --replay-password P]",
		"                        [--replay-timeout D] [--replay-in-flight N] [--replay-window N]]",
		"                       [--republish [--fix-listen ADDR] [--group-base IP] [--port P] [--bus-iface IP] [--nats URL|embedded] ...]",
		"\nReads a MOEX ASTS market's FAST feeds (OLR orders, TLR trades, MSR statistics, IDF/ISF, OLS/TLS/MSS",
		"snapshots; lines A and B) from a capture or by joining them, keeping the books by the exchange's rules.",
		"Gaps are counted per connection and per instrument; a hole waits --gap-wait for the other line, and",
		"a book that missed entries waits for the next OLS snapshot cycle; live, --replay asks the TCP historical",
		"replay service for holes of at most --replay-max-gap messages. --republish puts every instrument on",
		"fastfeed's topic bus as pub does (FIX recovery, NATS with --nats).")
	var o IngestOptions
	o.Register(fs)
	c, err := parse(fs, args, parseOpts{})
	if err != nil {
		return err
	}
	switch {
	case o.MoexConfig == "":
		return usagef("--moex-config is required")
	case o.Market == "":
		return usagef("--market is required (FOND or CURR)")
	case o.Capture != "" && (o.Iface != "" || o.Duration != 0):
		return usagef("--iface and --duration are for joining the feeds live, not with --capture")
	case o.Duration < 0:
		return usagef("--duration must not be negative")
	case o.GapWait <= 0 || o.GapWindow <= 0:
		return usagef("--gap-wait and --gap-window must be positive")
	case o.Linger < 0:
		return usagef("--linger must not be negative")
	case o.Linger > 0 && o.HTTP == "" && !o.Bus.Republish:
		return usagef("--linger keeps --http (or --republish) serving after the data: give --http too")
	case o.Replay && o.Capture != "":
		return usagef("--replay is for joining the feeds live: nothing can be asked for a capture")
	case o.ReplayMaxGap <= 0 || o.ReplayMaxGap > moex.MaxReplayRange:
		return usagef("--replay-max-gap must be 1..%d", moex.MaxReplayRange)
	case o.ReplayInFlight < 1 || o.ReplayInFlight > 64:
		return usagef("--replay-in-flight must be 1..64")
	case o.ReplayWindow < 1:
		return usagef("--replay-window must be positive")
	}
	if err := checkHTTPAddr(o.HTTP); err != nil {
		return &UsageError{err.Error()}
	}
	var busCfg publisher.Config
	if o.Bus.Republish {
		if busCfg, err = o.Bus.config(c.set, nil); err != nil {
			return err
		}
		busCfg.Linger = o.Linger
	} else {
		for _, name := range republishFlags {
			if c.set[name] {
				return usagef("--%s is a --republish flag", name)
			}
		}
	}
	cm := Common{LogLevel: o.LogLevel}
	log, err := cm.Logger(stderr)
	if err != nil {
		return err
	}
	if o.Templates != "" || c.set["templates"] {
		ts, err := fast.LoadFile(o.Templates)
		if err != nil {
			return err
		}
		if ts.SourceSHA256() != moexasts.SourceSHA256 {
			return fmt.Errorf("--templates %s: not the ASTS templates file the compiled-in codec was generated from (SHA-256 %s, want %s)",
				o.Templates, ts.SourceSHA256(), moexasts.SourceSHA256)
		}
	}
	cfg, err := moex.LoadConfig(o.MoexConfig)
	if err != nil {
		return err
	}
	market, ok := cfg.Market(o.Market)
	if !ok {
		var ids []string
		for _, m := range cfg.Markets {
			ids = append(ids, m.ID)
		}
		return usagef("--market %q: %s has markets %v", o.Market, o.MoexConfig, ids)
	}
	if o.MapSource != "" {
		to, err := parseSourceMap(o.MapSource)
		if err != nil {
			return err
		}
		market = market.MapSources(to)
	}
	if o.Map != "" {
		to, err := moex.ParseAddressMap(o.Map)
		if err != nil {
			return usagef("--map: %v", err)
		}
		market = market.MapAddresses(to)
	}
	var replayClient *moex.ReplayClient
	if o.Replay {
		addr := netip.AddrPort{}
		if h, ok := market.Connection("H"); ok {
			addr = h.Addr
		}
		if o.ReplayAddr != "" {
			if addr, err = netip.ParseAddrPort(o.ReplayAddr); err != nil {
				return usagef("--replay-addr %q: want IPv4:port", o.ReplayAddr)
			}
		}
		switch {
		case !addr.IsValid():
			return usagef("--replay: the market has no H address; give --replay-addr")
		case !addr.Addr().IsLoopback() && !netns.Inside():
			return usagef("--replay: %s is not a loopback address; the exchange's service is asked only inside a private network namespace or when --map or --replay-addr moves it onto loopback", addr)
		}
		replayClient = &moex.ReplayClient{Addr: addr, Username: o.ReplayUser, Password: o.ReplayPass, Timeout: o.ReplayTimeout}
	}
	iface, err := (&Network{Iface: o.Iface}).Interface()
	if err != nil {
		return err
	}
	opts := moex.Options{GapWindow: o.GapWindow, GapWait: o.GapWait.Nanoseconds(), MaxReplayGap: o.ReplayMaxGap,
		ReplayInFlight: o.ReplayInFlight, ReplayWindow: o.ReplayWindow}
	if replayClient != nil {
		opts.Replay = replayClient
	}
	eng, err := moex.NewEngine(market, opts)
	if err != nil {
		return err
	}
	var (
		tradeErr  error
		tradeFile *os.File
		bw        *bufio.Writer
	)
	if o.DumpTrades != "" {
		if tradeFile, err = os.Create(o.DumpTrades); err != nil {
			return err
		}
		defer tradeFile.Close()
		bw = bufio.NewWriterSize(tradeFile, 64<<10)
		var line []byte
		eng.OnTrade = func(t *moex.Trade) {
			line = moex.AppendTrade(line[:0], t)
			if _, err := bw.Write(line); err != nil && tradeErr == nil {
				tradeErr = err
			}
		}
	}
	web, err := startHTTP(ctx, o.HTTP, nil, opshttp.Config{Role: "ingest", Source: &ingestSource{eng: eng, live: o.Capture == ""}}, log)
	if err != nil {
		return err
	}
	if web != nil {
		defer web.Close()
	}
	start := time.Now()
	var (
		cs     moex.CaptureStats
		runErr error
		rp     *republished
	)
	if o.Bus.Republish {
		busCfg.Logger = log
		busCfg.DumpBooks = o.DumpBooks // written by the publisher when the input ends, before --linger
		rp, runErr = o.Bus.runRepublish(ctx, busCfg, eng, o.Capture, moex.LiveConfig{Interface: iface}, o.Duration, log)
		if rp != nil {
			cs = rp.captured
		}
	} else if o.Capture != "" {
		r, err := replay.Open(o.Capture, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		cs, runErr = moex.RunCapture(ctx, r, eng)
	} else {
		lctx := ctx
		if o.Duration > 0 {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, o.Duration)
			defer cancel()
		}
		log.Info("ingest joining", "market", market.ID, "iface", iface)
		runErr = moex.RunLive(lctx, eng, moex.LiveConfig{Interface: iface})
	}
	if bw != nil {
		if err := bw.Flush(); err != nil && tradeErr == nil {
			tradeErr = err
		}
		if err := tradeFile.Close(); err != nil && tradeErr == nil {
			tradeErr = err
		}
	}
	// The run is over; what follows reads the engine through Do all the same, so that the
	// HTTP view's reads (run by Do at once now) wait for it.
	var errs []error
	_ = eng.Do(context.Background(), func() { errs = ingestResults(o, market.ID, eng, replayClient, cs, runErr, rp, start, log) })
	if tradeErr != nil {
		errs = append(errs, fmt.Errorf("%s: %w", o.DumpTrades, tradeErr))
	}
	if web != nil && o.Linger > 0 && ctx.Err() == nil && !o.Bus.Republish { // the bus lingered already
		log.Info("ingest lingering: --http serves the final books", "url", web.URL(), "linger", o.Linger)
		t := time.NewTimer(o.Linger)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return errors.Join(errs...)
}

// ingestResults logs the end of the run and writes --dump-books and --stats-out.
func ingestResults(o IngestOptions, market string, eng *moex.Engine, replayClient *moex.ReplayClient, cs moex.CaptureStats, runErr error,
	rp *republished, start time.Time, log *slog.Logger) []error {
	st := eng.Stats()
	log.Info("ingest done", "market", market, "packets", cs.Packets, "datagrams", st.Datagrams,
		"trades", st.Trades, "orders", st.Orders, "instrument_gaps", st.InstrumentGaps,
		"decode_errors", st.DecodeErrors, "elapsed", time.Since(start).Round(time.Millisecond))
	var errs []error
	if runErr != nil {
		errs = append(errs, runErr)
	}
	if o.DumpBooks != "" && !o.Bus.Republish { // with --republish the publisher wrote the books as republished
		if err := writeFile(o.DumpBooks, func(w io.Writer) error { return moex.WriteBooks(w, eng) }); err != nil {
			errs = append(errs, err)
		}
	}
	if o.StatsOut != "" {
		out := IngestStats{Market: market, Packets: cs.Packets, Skipped: cs.Skipped, Malformed: cs.Malformed,
			Engine: st, Channels: eng.Channels(), Gaps: map[string]IngestInstrumentGap{}, Republish: rp.stats()}
		if replayClient != nil {
			rs := replayClient.Stats()
			out.Replay = &rs
		}
		for _, in := range eng.Instruments() {
			if in.Book != nil {
				out.Books++
				if in.Book.Stale() {
					out.Stale++
				}
			}
			if in.Gaps != [3]uint64{} {
				out.Gaps[in.Symbol] = IngestInstrumentGap{
					Orders: in.Gaps[moex.FamOrders], Trades: in.Gaps[moex.FamTrades], Stats: in.Gaps[moex.FamStats],
					MissedOrders: in.Missed[moex.FamOrders], MissedTrades: in.Missed[moex.FamTrades], MissedStats: in.Missed[moex.FamStats]}
			}
		}
		if err := writeFile(o.StatsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(out) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
