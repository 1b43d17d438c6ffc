package roles

import (
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
	"sync/atomic"
	"time"

	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
	"fastfeed/gap"
	"fastfeed/mcast"
	"fastfeed/replay"
)

// ReplayOptions are the flags of fastfeed replay: the handler's that replay shares with
// feed, and its own.
type ReplayOptions struct {
	Feed        FeedOptions
	Speed       float64
	Max         bool
	ToMulticast bool
	Progress    string
	Drain       time.Duration
}

// Register adds replay's flags to fs.
func (o *ReplayOptions) Register(fs *flag.FlagSet) {
	f := &o.Feed
	fs.StringVar(&f.Config, "config", "", "JSON config `file`: an object whose keys are these flags' names (flags given win)")
	fs.Float64Var(&o.Speed, "speed", 1, "replay at `X` times the recorded pace")
	fs.BoolVar(&o.Max, "max", false, "replay as fast as possible")
	fs.StringVar(&f.Topics, "topics", "", "comma-separated `symbols` to follow (default: every instrument the capture defines)")
	fs.BoolVar(&o.ToMulticast, "to-multicast", false, "re-send the datagrams to their groups (on loopback, or --iface) instead of a handler in this process")
	f.Network.register(fs, netUsage{
		"iface":        "with --to-multicast, send from this interface: its `name` (eth0) or IPv4 address (default 127.0.0.1, loopback)",
		"b-port":       "line B is on this `port`",
		"b-group-base": "line B is on groups from this `base`",
	})
	f.registerRecovery(fs, "recover the capture's gaps over FIX from the recovery service at `address`")
	fs.StringVar(&f.DumpBooks, "dump-books", "", "write the books to `file` at the end")
	fs.StringVar(&f.StatsOut, "stats-out", "", "write the counters to `file` at the end (one JSON object)")
	f.registerGap(fs, "how long (capture time) a hole waits for line B (default 5ms)")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "after the last datagram, wait up to `D` for FIX recovery to end")
	fs.StringVar(&o.Progress, "progress", "auto", "progress bar on stderr: auto (on a terminal), always or never")
	f.McastKey.register(fs, "authenticate every datagram of the capture")
	f.Common.register(fs, "FAST template XML `file`")
	// The handler's fault injection is feed's only; its defaults are the handler's.
	f.Inject = InjectOptions{Window: 1, DelayBy: 20 * time.Millisecond, BurstAt: 1000, Seed: 1}
}

// check checks the options that depend on each other and returns the pace (0: as fast
// as possible).
func (o *ReplayOptions) check(set map[string]bool) (speed float64, err error) {
	switch {
	case o.Max && set["speed"]:
		return 0, usagef("give at most one of --speed and --max")
	case !o.Max && !(o.Speed > 0 && o.Speed <= 1e6):
		return 0, usagef("--speed %v: want a factor above 0 (1 is the recorded pace)", o.Speed)
	case o.ToMulticast && (o.Feed.FixConnect != "" || o.Feed.DumpBooks != ""):
		return 0, usagef("--to-multicast sends the datagrams on: --fix-connect and --dump-books belong to the handler that receives them")
	case !o.ToMulticast && set["iface"]:
		return 0, usagef("--iface needs --to-multicast")
	case o.Progress != "auto" && o.Progress != "always" && o.Progress != "never":
		return 0, usagef("--progress %q: want auto, always or never", o.Progress)
	case o.Drain < 0:
		return 0, usagef("--drain must not be negative")
	case o.ToMulticast && o.Feed.McastKeyFile != "":
		return 0, usagef("--mcast-key checks datagrams for a handler: --to-multicast sends them on as captured")
	}
	if o.Max {
		return 0, nil
	}
	return o.Speed, nil
}

// HandlerConfig returns the configuration of the handler the capture is replayed into.
func (o *ReplayOptions) HandlerConfig(set map[string]bool) (feed.Config, error) {
	o.Feed.All = o.Feed.Topics == ""
	cfg, err := o.Feed.HandlerConfig(set)
	return cfg, err
}

// Replay is fastfeed replay FILE: a capture replayed into a handler in this process or
// onto multicast.
func Replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr,
		"usage: fastfeed replay FILE [--speed X | --max] [--topics A,B] [--dump-books FILE] [--stats-out FILE]",
		"                           [--to-multicast [--iface IP]] [--fix-connect ADDR] [--config FILE]",
		"\nReplays a pcap or pcapng capture of the feed into a handler in this process (or onto multicast),",
		"paced by the capture's timestamps. Bad records are reported with their packet number and skipped.",
		"A pcapng capture from fastfeed record keeps what record was asked for (--topics, --group-base,",
		"--group-size, --single-group, --port, --definitions-group, --templates, --mcast-key): those are the",
		"defaults here, flags given win. The summary's not_joined counts datagrams for groups the handler",
		"did not join (channels outside --topics), not replayed into the books.")
	var o ReplayOptions
	o.Register(fs)
	c, err := parse(fs, args, parseOpts{positional: -1, config: "config"})
	if err != nil {
		return err
	}
	if len(c.pos) != 1 {
		return usagef("give exactly one capture FILE")
	}
	// What fastfeed record was asked for (kept in a pcapng capture) is the default of
	// the flags neither the command line nor --config gave.
	rec, recorded, recErr := readRecorded(c.pos[0])
	var fromCapture, missing []string
	if recorded && recErr == nil {
		if fromCapture, missing, recErr = applyRecorded(fs, c.set, rec); recErr != nil {
			return &UsageError{fmt.Sprintf("%s: %v", c.pos[0], recErr)}
		}
	}
	speed, err := o.check(c.set)
	if err != nil {
		return err
	}
	bar := newProgressBar(stderr, o.Progress)
	log, err := o.Feed.Logger(bar)
	if err != nil {
		return err
	}
	switch {
	case recErr != nil:
		log.Warn("capture settings not read: give the flags record was given", "error", recErr)
	case len(fromCapture) > 0:
		args := []any{"file", c.pos[0]}
		for _, name := range fromCapture {
			args = append(args, name, fs.Lookup(name).Value.String())
		}
		log.Info("settings from the capture (fastfeed record kept them; flags given win)", args...)
	}
	for _, m := range missing {
		log.Warn("the capture was recorded with a file that is not there any more: using the default", "flag", m)
	}
	cfg, err := o.HandlerConfig(c.set)
	if err != nil {
		return &UsageError{err.Error()}
	}
	if cfg.Key, err = o.Feed.LoadKey(); err != nil {
		return err
	}
	if recorded && recErr == nil && !o.ToMulticast {
		checkRecorded(log, rec, o.Feed.Templates, c.set["templates"] || o.Feed.Templates != DefaultTemplates, cfg.Key)
	}

	file, err := os.Open(c.pos[0])
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	counter := &countingReader{r: file}
	var opts replay.Options
	if o.ToMulticast && !cfg.All {
		// Only the topics' channels (and the definitions channel) are re-sent.
		opts.Dst = append(opts.Dst, netip.AddrPortFrom(cfg.DefinitionsGroup, cfg.Port))
		for _, t := range cfg.Topics {
			opts.Dst = append(opts.Dst, netip.AddrPortFrom(cfg.Mapping.Group(t), cfg.Port))
		}
	}
	r, err := replay.NewReader(counter, &opts)
	if err != nil {
		return fmt.Errorf("%s: %w", c.pos[0], err)
	}

	pc := replay.PlayConfig{Speed: speed, Drain: o.Drain}
	var h *feed.Engine
	if o.ToMulticast {
		snd, err := mcast.NewSender(mcast.SenderConfig{Interface: cfg.Interface, WriteBuffer: 4 << 20})
		if err != nil {
			return err
		}
		defer snd.Close()
		pc.Sender = snd
	} else {
		if cfg.Templates, err = o.Feed.LoadTemplates(c.set); err != nil {
			return err
		}
		var packet int
		cfg.Logger = slog.New(packetHandler{log.Handler(), &packet})
		if o.Feed.FixConnect != "" {
			rec, err := o.Feed.recoveryClient(fixrecovery.Config{}, log)
			if err != nil {
				return err
			}
			defer rec.Close()
			cfg.Recovery = rec
		}
		if h, err = feed.NewEngine(cfg); err != nil {
			return err
		}
		defer h.Close()
		pc.Engine = h
		pc.Sent = func(d *replay.Datagram, _ time.Duration) { packet = d.PacketNum }
	}
	var warned [2]int
	const maxWarnings = 20
	pc.PacketError = func(pe *replay.PacketError) {
		if warned[0]++; warned[0] <= maxWarnings {
			log.Warn("capture record skipped", "packet", pe.PacketNum, "error", pe.Err)
		}
	}
	pc.Malformed = func(d *replay.Datagram) {
		if warned[1]++; warned[1] <= maxWarnings {
			log.Warn("malformed payload", "packet", d.PacketNum, "dst", d.Dst, "error", h.LastDecodeError())
		}
	}
	if bar.on {
		total := info.Size()
		pc.Progress = func(p replay.Progress) { bar.update(p, counter.n.Load(), total) }
	}
	mode := fmt.Sprintf("x%g", speed)
	if speed == 0 {
		mode = "max"
	}
	log.Info("replaying", "file", c.pos[0], "format", r.Format(), "bytes", info.Size(), "speed", mode, "to_multicast", o.ToMulticast, "recovery", o.Feed.FixConnect)
	sum, err := replay.Play(ctx, r, pc)
	bar.finish()
	if errors.Is(err, context.Canceled) {
		log.Warn("replay interrupted")
		err = nil
	}
	for _, n := range []struct {
		what  string
		count int
	}{{"capture records skipped as malformed", warned[0]}, {"malformed payloads", warned[1]}} {
		if n.count > maxWarnings {
			log.Warn("more warnings not logged", "what", n.what, "total", n.count)
		}
	}
	if sum.FileError != nil {
		log.Warn("capture cut short: replayed what precedes the damage", "error", sum.FileError)
	}
	for _, c := range sum.Channels {
		if c.Holes > 0 {
			log.Warn("gap in the capture", "channel", mcast.ChannelName(c.Dst), "holes", c.Holes, "missing", c.Missing, "datagrams", c.Datagrams)
		}
	}
	rs := sum.Reader
	attrs := []any{"packets", rs.Packets, "datagrams", sum.Delivered, "bytes", sum.Bytes, "skipped", rs.Skipped,
		"malformed_packets", rs.Malformed, "not_multicast", sum.NotMulticast, "elapsed", sum.Elapsed.Round(time.Millisecond), "capture_span", sum.Span.Round(time.Millisecond)}
	if sum.Elapsed > 0 {
		attrs = append(attrs, "datagrams_per_s", int64(float64(sum.Delivered)/sum.Elapsed.Seconds()),
			"mb_per_s", fmt.Sprintf("%.1f", float64(sum.Bytes)/1e6/sum.Elapsed.Seconds()))
	}
	var st feed.Stats
	if h != nil {
		st = h.Stats()
		for _, c := range h.Channels() {
			if c.Gaps > 0 || c.State != gap.Live.String() {
				log.Warn("channel", "channel", c.Channel, "state", c.State, "gaps", c.Gaps, "missing", c.Missing,
					"recovered_fix", c.RecoveredFIX, "recovered_ab", c.RecoveredAB, "skipped", c.Skipped)
			}
		}
		attrs = append(attrs, "not_joined", sum.NotJoined, "messages", st.Messages, "gaps", st.Gaps,
			"recovered_fix", st.RecoveredFIX, "decode_errors", st.DecodeErrors, "books", st.Instruments, "stale_books", st.StaleBooks)
	}
	log.Info("replay done", attrs...)
	if h != nil && sum.NotJoined > 0 {
		log.Info("not_joined counts the capture's datagrams for groups this handler did not join: channels of instruments outside --topics, "+
			"or captured before a definition named their channel; they were not replayed into the books", "not_joined", sum.NotJoined)
	}
	if h != nil {
		warnForged(log, st)
	}
	if o.Feed.DumpBooks != "" && h != nil {
		if werr := writeFile(o.Feed.DumpBooks, h.WriteDump); werr != nil && err == nil {
			err = werr
		}
	}
	if o.Feed.StatsOut != "" {
		if werr := writeFile(o.Feed.StatsOut, func(w io.Writer) error {
			return writeReplayStats(w, sum, st, h != nil)
		}); werr != nil && err == nil {
			err = werr
		}
	}
	if uerr := unheardTopics(h, cfg, log); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

// readRecorded reads the settings fastfeed record kept in the capture at path: ok is
// false for a capture without them (pcap, or another recorder's pcapng). An unreadable
// file is left for the replay to report.
func readRecorded(path string) (r Recorded, ok bool, err error) {
	rd, oerr := replay.Open(path, nil)
	if oerr != nil {
		return r, false, nil
	}
	defer rd.Close()
	return parseRecorded(rd.Comment())
}

// writeReplayStats writes the handler's counters with the capture's: packets (records
// read) and skipped (records that are not IPv4 UDP), as DESIGN.md says. (The handler's
// own count of sequence numbers superseded by a snapshot is "skipped_seq".)
func writeReplayStats(w io.Writer, sum *replay.Summary, st feed.Stats, handler bool) error {
	obj := map[string]any{}
	if handler {
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		obj["not_joined"] = sum.NotJoined
	} else {
		obj["datagrams"] = sum.Delivered
	}
	rs := sum.Reader
	var holes, missing uint64
	for _, c := range sum.Channels {
		holes += c.Holes
		missing += c.Missing
	}
	for k, v := range map[string]any{
		"packets": rs.Packets, "skipped": rs.Skipped, "malformed_packets": rs.Malformed, "filtered_packets": rs.Filtered,
		"fragments": rs.Fragments, "reassembled": rs.Reassembled, "fragments_dropped": rs.FragmentsDropped,
		"sent": sum.Delivered, "not_multicast": sum.NotMulticast, "bytes": sum.Bytes, "malformed_payloads": sum.Malformed,
		"elapsed_ns": sum.Elapsed.Nanoseconds(), "capture_span_ns": sum.Span.Nanoseconds(),
		"capture_holes": holes, "capture_missing": missing,
	} {
		obj[k] = v
	}
	if sum.FileError != nil {
		obj["file_error"] = sum.FileError.Error()
	}
	return json.NewEncoder(w).Encode(obj)
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progressBar draws one line on a terminal, redrawn in place, and erases it around log
// lines written through it.
type progressBar struct {
	w    io.Writer
	on   bool
	line string
}

func newProgressBar(w io.Writer, mode string) *progressBar {
	return &progressBar{w: w, on: mode == "always" || mode == "auto" && isTerminal(w)}
}

// Write writes a log line, keeping the bar below it.
func (b *progressBar) Write(p []byte) (int, error) {
	if b.on && b.line != "" {
		fmt.Fprint(b.w, "\r\033[K")
	}
	n, err := b.w.Write(p)
	if b.on && b.line != "" {
		fmt.Fprint(b.w, b.line)
	}
	return n, err
}

func (b *progressBar) update(p replay.Progress, read, total int64) {
	const width = 30
	frac := 1.0
	if total > 0 && !p.Done {
		frac = min(float64(read)/float64(total), 1)
	}
	fill := int(frac * width)
	eta := "--"
	if frac > 0 && p.Elapsed > 0 && !p.Done {
		eta = (time.Duration(float64(p.Elapsed)/frac) - p.Elapsed).Round(time.Second).String()
	}
	mbs := 0.0
	if p.Elapsed > 0 {
		mbs = float64(p.Bytes) / 1e6 / p.Elapsed.Seconds()
	}
	b.line = fmt.Sprintf("\r[%s%s] %3.0f%% %d datagrams %.0f/s %.1f MB/s capture %s ETA %s\033[K",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), frac*100, p.Datagrams, p.Rate(), mbs,
		p.Capture.Round(time.Millisecond), eta)
	fmt.Fprint(b.w, b.line)
}

func (b *progressBar) finish() {
	if b.on && b.line != "" {
		fmt.Fprintln(b.w)
		b.line = ""
	}
}

// packetHandler adds the capture packet being replayed to the engine's log records.
type packetHandler struct {
	slog.Handler
	packet *int
}

func (h packetHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.Int("packet", *h.packet))
	return h.Handler.Handle(ctx, r)
}
