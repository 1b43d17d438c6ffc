package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"fastfeed/mcast"
	"fastfeed/md"
	"fastfeed/replay"
)

// recordFlags are the flags of fastfeed record.
type recordFlags struct {
	out, topics, groups, format, iface, groupBase, defsGroup, templates, logLevel string
	all, singleGroup                                                              bool
	groupSize, port                                                               uint
	duration                                                                      time.Duration
	readBuffer                                                                    int
}

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f recordFlags
	fs.StringVar(&f.out, "out", "", "capture `file` to write")
	fs.StringVar(&f.format, "format", "pcapng", "capture format: pcapng or pcap")
	fs.StringVar(&f.topics, "topics", "", "record the channels of these comma-separated `symbols`")
	fs.StringVar(&f.groups, "groups", "", "record these comma-separated `groups` (IP or IP:port)")
	fs.BoolVar(&f.all, "all", false, "record the instrument definitions channel and every channel it names")
	fs.DurationVar(&f.duration, "duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	fs.StringVar(&f.iface, "iface", "", "join on the interface with this IPv4 `address` (default 127.0.0.1, loopback)")
	fs.StringVar(&f.groupBase, "group-base", mcast.DefaultBase, "first multicast `group` of the topic mapping")
	fs.UintVar(&f.groupSize, "group-size", mcast.DefaultSize, "`number` of groups topics spread over")
	fs.BoolVar(&f.singleGroup, "single-group", false, "every topic is on the --group-base group")
	fs.UintVar(&f.port, "port", 30001, "UDP `port` of the channels")
	fs.StringVar(&f.defsGroup, "definitions-group", mcast.DefaultDefinitionsGroup, "`group` of the instrument definitions channel")
	fs.IntVar(&f.readBuffer, "rcvbuf", 8<<20, "SO_RCVBUF `bytes` per socket")
	fs.StringVar(&f.templates, "templates", defaultTemplates, "FAST template XML `file` (for --all)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastfeed record --out FILE [--topics A,B | --groups G[:P],... | --all] [--duration D] [--format pcapng|pcap]")
		fmt.Fprintln(stderr, "\nJoins the groups and writes every datagram, with its kernel receive timestamp (ns), to a capture")
		fmt.Fprintln(stderr, "that tcpdump and Wireshark read.")
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
	groups, format, err := f.resolve()
	if err != nil {
		return &usageError{err.Error()}
	}
	var iface netip.Addr
	if f.iface != "" {
		if iface, err = parseAddr("--iface", f.iface, false); err != nil {
			return &usageError{err.Error()}
		}
	}
	cfg := replay.RecordConfig{Joined: func(g netip.AddrPort) { log.Info("joined", "group", g) }}
	if f.all {
		ts, err := loadTemplates(f.templates, set["templates"])
		if err != nil {
			return err
		}
		if cfg.Codec, err = md.NewCodec(ts); err != nil {
			return err
		}
		cfg.Definitions = groups[0]
	}
	poller, err := mcast.NewPoller(mcast.PollerConfig{Interface: iface, ReadBuffer: f.readBuffer})
	if err != nil {
		return err
	}
	defer poller.Close()
	for _, g := range groups {
		if _, err := poller.JoinGroup(g); err != nil {
			return err
		}
	}
	w, err := replay.Create(f.out, format)
	if err != nil {
		return err
	}
	cfg.Poller, cfg.Writer = poller, w
	log.Info("recording", "out", f.out, "format", format, "groups", len(groups), "all", f.all)
	runCtx := ctx
	if f.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	st, err := replay.Record(runCtx, cfg)
	if cerr := w.Close(); cerr != nil && err == nil {
		err = cerr
	}
	log.Info("recorded", "out", f.out, "datagrams", st.Datagrams, "bytes", st.Bytes, "groups_joined", st.Joined,
		"truncated", st.Truncated, "no_kernel_timestamp", st.NoKernelTS, "kernel_drops", st.KernelDrops)
	return err
}

// resolve returns the groups to join (the definitions channel first with --all) and the
// capture format.
func (f *recordFlags) resolve() ([]netip.AddrPort, replay.Format, error) {
	if f.out == "" {
		return nil, 0, errors.New("--out FILE is required")
	}
	var format replay.Format
	switch f.format {
	case "pcapng":
		format = replay.PcapNG
	case "pcap":
		format = replay.Pcap
	default:
		return nil, 0, fmt.Errorf("--format %q: want pcapng or pcap", f.format)
	}
	n := 0
	for _, given := range []bool{f.topics != "", f.groups != "", f.all} {
		if given {
			n++
		}
	}
	if n != 1 {
		return nil, 0, errors.New("give exactly one of --topics, --groups and --all")
	}
	if f.port == 0 || f.port > 65535 {
		return nil, 0, fmt.Errorf("--port %d outside 1..65535", f.port)
	}
	port := uint16(f.port)
	var groups []netip.AddrPort
	add := func(g netip.AddrPort) {
		for _, h := range groups {
			if h == g {
				return // topics that share a group
			}
		}
		groups = append(groups, g)
	}
	switch {
	case f.all:
		defs, err := parseAddr("--definitions-group", f.defsGroup, true)
		if err != nil {
			return nil, 0, err
		}
		add(netip.AddrPortFrom(defs, port))
	case f.topics != "":
		m, err := mappingOf(f.groupBase, f.groupSize, f.singleGroup)
		if err != nil {
			return nil, 0, err
		}
		for _, t := range strings.Split(f.topics, ",") {
			if t = strings.TrimSpace(t); t == "" {
				return nil, 0, fmt.Errorf("--topics %q has an empty symbol", f.topics)
			}
			add(netip.AddrPortFrom(m.Group(t), port))
		}
	default:
		for _, g := range strings.Split(f.groups, ",") {
			g = strings.TrimSpace(g)
			host, p := g, port
			if i := strings.LastIndexByte(g, ':'); i >= 0 {
				v, err := strconv.ParseUint(g[i+1:], 10, 16)
				if err != nil || v == 0 {
					return nil, 0, fmt.Errorf("--groups: %q: bad port", g)
				}
				host, p = g[:i], uint16(v)
			}
			a, err := parseAddr("--groups", host, true)
			if err != nil {
				return nil, 0, err
			}
			add(netip.AddrPortFrom(a, p))
		}
	}
	return groups, format, nil
}
