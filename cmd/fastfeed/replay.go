package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"fastfeed/feed"
	"fastfeed/gap"
	"fastfeed/internal/fixsession"
	"fastfeed/mcast"
	"fastfeed/replay"
)

// replayFlags are the flags of fastfeed replay.
type replayFlags struct {
	feed        feedFlags // the handler's flags that replay shares with feed
	speed       float64
	max         bool
	toMulticast bool
	progress    string
	drain       time.Duration
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f replayFlags
	fs.Float64Var(&f.speed, "speed", 1, "replay at `X` times the recorded pace")
	fs.BoolVar(&f.max, "max", false, "replay as fast as possible")
	fs.StringVar(&f.feed.topics, "topics", "", "comma-separated `symbols` to follow (default: every instrument the capture defines)")
	fs.BoolVar(&f.toMulticast, "to-multicast", false, "re-send the datagrams to their groups (on loopback, or --iface) instead of a handler in this process")
	fs.StringVar(&f.feed.iface, "iface", "", "with --to-multicast, send from the interface with this IPv4 `address` (default 127.0.0.1, loopback)")
	fs.StringVar(&f.feed.groupBase, "group-base", mcast.DefaultBase, "first multicast `group` of the topic mapping")
	fs.UintVar(&f.feed.groupSize, "group-size", mcast.DefaultSize, "`number` of groups topics spread over")
	fs.BoolVar(&f.feed.singleGroup, "single-group", false, "every topic is on the --group-base group")
	fs.UintVar(&f.feed.port, "port", 30001, "UDP `port` of the channels")
	fs.StringVar(&f.feed.defsGroup, "definitions-group", mcast.DefaultDefinitionsGroup, "`group` of the instrument definitions channel")
	fs.UintVar(&f.feed.bPort, "b-port", 0, "line B is on this `port`")
	fs.StringVar(&f.feed.bGroupBase, "b-group-base", "", "line B is on groups from this `base`")
	fs.StringVar(&f.feed.fixConnect, "fix-connect", "", "recover the capture's gaps over FIX from the recovery service at `address`")
	fs.StringVar(&f.feed.username, "username", fixsession.DemoUsername, "recovery service `user`")
	fs.StringVar(&f.feed.password, "password", fixsession.DemoPassword, "recovery service `password`")
	fs.StringVar(&f.feed.compID, "comp-id", "", "SenderCompID for the recovery session (default FFFEED-<pid>)")
	fs.StringVar(&f.feed.dumpBooks, "dump-books", "", "write the books to `file` at the end")
	fs.StringVar(&f.feed.statsOut, "stats-out", "", "write the counters to `file` at the end (one JSON object)")
	fs.DurationVar(&f.feed.gapWait, "gap-wait", 0, "how long (capture time) a hole waits for line B (default 5ms)")
	fs.DurationVar(&f.feed.recoveryTimeout, "recovery-timeout", 0, "how long a retransmission may take before snapshots (default 2s)")
	fs.IntVar(&f.feed.window, "window", 0, "datagrams buffered ahead of a hole per channel (default 4096)")
	fs.DurationVar(&f.drain, "drain", 10*time.Second, "after the last datagram, wait up to `D` for FIX recovery to end")
	fs.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (on a terminal), always or never")
	fs.StringVar(&f.feed.templates, "templates", defaultTemplates, "FAST template XML `file`")
	fs.StringVar(&f.feed.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed replay FILE [--speed X | --max] [--topics A,B] [--dump-books FILE] [--stats-out FILE]")
		fmt.Fprintln(stderr, "                           [--to-multicast [--iface IP]] [--fix-connect ADDR]")
		fmt.Fprintln(stderr, "\nReplays a pcap or pcapng capture of the feed into a handler in this process (or onto multicast),")
		fmt.Fprintln(stderr, "paced by the capture's timestamps. Bad records are reported with their packet number and skipped.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if len(pos) != 1 {
		return &usageError{"give exactly one capture FILE"}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case f.max && set["speed"]:
		return &usageError{"give at most one of --speed and --max"}
	case !f.max && !(f.speed > 0 && f.speed <= 1e6):
		return &usageError{fmt.Sprintf("--speed %v: want a factor above 0 (1 is the recorded pace)", f.speed)}
	case f.toMulticast && (f.feed.fixConnect != "" || f.feed.dumpBooks != ""):
		return &usageError{"--to-multicast sends the datagrams on: --fix-connect and --dump-books belong to the handler that receives them"}
	case !f.toMulticast && set["iface"]:
		return &usageError{"--iface needs --to-multicast"}
	case f.progress != "auto" && f.progress != "always" && f.progress != "never":
		return &usageError{fmt.Sprintf("--progress %q: want auto, always or never", f.progress)}
	case f.drain < 0:
		return &usageError{"--drain must not be negative"}
	}
	speed := f.speed
	if f.max {
		speed = 0
	}
	bar := newProgressBar(stderr, f.progress)
	log, err := newLogger(bar, f.feed.logLevel)
	if err != nil {
		return err
	}

	f.feed.all = f.feed.topics == ""
	cfg, err := f.feed.config(set)
	if err != nil {
		return &usageError{err.Error()}
	}
	cfg.Detached = true

	file, err := os.Open(pos[0])
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
	if f.toMulticast && !cfg.All {
		// Only the topics' channels (and the definitions channel) are re-sent.
		opts.Dst = append(opts.Dst, netip.AddrPortFrom(cfg.DefinitionsGroup, cfg.Port))
		for _, t := range cfg.Topics {
			opts.Dst = append(opts.Dst, netip.AddrPortFrom(cfg.Mapping.Group(t), cfg.Port))
		}
	}
	r, err := replay.NewReader(counter, &opts)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}

	pc := replay.PlayConfig{Speed: speed, Drain: f.drain}
	var h *feed.Handler
	var lastLog atomic.Value // the handler's last log line, for malformed payloads
	lastLog.Store("")
	if f.toMulticast {
		var iface netip.Addr
		if f.feed.iface != "" {
			if iface, err = parseAddr("--iface", f.feed.iface, false); err != nil {
				return &usageError{err.Error()}
			}
		}
		snd, err := mcast.NewSender(mcast.SenderConfig{Interface: iface, WriteBuffer: 4 << 20})
		if err != nil {
			return err
		}
		defer snd.Close()
		pc.Sender = snd
	} else {
		if cfg.Templates, err = loadTemplates(f.feed.templates, set["templates"]); err != nil {
			return err
		}
		var packet int
		cfg.Logf = func(format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			lastLog.Store(msg)
			log.Debug(msg, "packet", packet)
		}
		if f.feed.fixConnect != "" {
			rec, err := newFIXRecovery(ctx, f.feed, cfg.Templates, log)
			if err != nil {
				return err
			}
			defer rec.Close()
			cfg.Recovery = rec
		}
		if h, err = feed.New(cfg); err != nil {
			return err
		}
		defer h.Close()
		pc.Handler = h
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
			log.Warn("malformed payload", "packet", d.PacketNum, "dst", d.Dst, "error", lastLog.Load())
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
	log.Info("replaying", "file", pos[0], "format", r.Format(), "bytes", info.Size(), "speed", mode, "to_multicast", f.toMulticast, "recovery", f.feed.fixConnect)
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
	if f.feed.dumpBooks != "" && h != nil {
		if werr := writeFile(f.feed.dumpBooks, h.WriteDump); werr != nil && err == nil {
			err = werr
		}
	}
	if f.feed.statsOut != "" {
		if werr := writeFile(f.feed.statsOut, func(w io.Writer) error {
			return writeReplayStats(w, sum, st, h != nil)
		}); werr != nil && err == nil {
			err = werr
		}
	}
	return err
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
	obj["packets"] = rs.Packets
	obj["skipped"] = rs.Skipped
	obj["malformed_packets"] = rs.Malformed
	obj["filtered_packets"] = rs.Filtered
	obj["fragments"] = rs.Fragments
	obj["reassembled"] = rs.Reassembled
	obj["fragments_dropped"] = rs.FragmentsDropped
	obj["sent"] = sum.Delivered
	obj["not_multicast"] = sum.NotMulticast
	obj["bytes"] = sum.Bytes
	obj["malformed_payloads"] = sum.Malformed
	obj["elapsed_ns"] = sum.Elapsed.Nanoseconds()
	obj["capture_span_ns"] = sum.Span.Nanoseconds()
	var holes, missing uint64
	for _, c := range sum.Channels {
		holes += c.Holes
		missing += c.Missing
	}
	obj["capture_holes"] = holes
	obj["capture_missing"] = missing
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
	on := mode == "always"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok {
			_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
			on = err == nil
		}
	}
	return &progressBar{w: w, on: on}
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
