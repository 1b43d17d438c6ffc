package roles

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

// RecordOptions are the flags of fastfeed record.
type RecordOptions struct {
	Common
	Network
	McastKey
	Config, Out, Topics, Groups, Format string
	All                                 bool
	Duration                            time.Duration
	ReadBuffer                          int
}

// Register adds record's flags to fs.
func (o *RecordOptions) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Config, "config", "", "JSON config `file`: an object whose keys are these flags' names (flags given win)")
	fs.StringVar(&o.Out, "out", "", "capture `file` to write")
	fs.StringVar(&o.Format, "format", "pcapng", "capture format: pcapng or pcap")
	fs.StringVar(&o.Topics, "topics", "", "record the channels of these comma-separated `symbols`")
	fs.StringVar(&o.Groups, "groups", "", "record these comma-separated `groups` (IP or IP:port)")
	fs.BoolVar(&o.All, "all", false, "record the instrument definitions channel and every channel it names")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after `D` (0: on SIGINT/SIGTERM)")
	o.Network.register(fs, netUsage{"b-port": "-", "b-group-base": "-"})
	fs.IntVar(&o.ReadBuffer, "rcvbuf", 8<<20, "SO_RCVBUF `bytes` per socket")
	o.McastKey.register(fs, "with --all, authenticate the definitions (every datagram is recorded as received)")
	o.Common.register(fs, "FAST template XML `file` (for --all)")
}

// Record is fastfeed record: multicast groups written to a capture file.
func Record(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("record", stderr,
		"usage: fastfeed record --out FILE [--topics A,B | --groups G[:P],... | --all] [--duration D] [--format pcapng|pcap]",
		"\nJoins the groups and writes every datagram, with its kernel receive timestamp (ns), to a capture",
		"that tcpdump and Wireshark read.")
	var o RecordOptions
	o.Register(fs)
	c, err := parse(fs, args, parseOpts{config: "config"})
	if err != nil {
		return err
	}
	log, err := o.Logger(stderr)
	if err != nil {
		return err
	}
	groups, format, err := o.Resolve(c.set)
	if err != nil {
		return &UsageError{err.Error()}
	}
	iface, err := o.Interface()
	if err != nil {
		return &UsageError{err.Error()}
	}
	cfg := replay.RecordConfig{Joined: func(g netip.AddrPort) { log.Info("joined", "group", g) }}
	if cfg.Key, err = o.LoadKey(); err != nil {
		return err
	}
	if o.All {
		ts, err := o.LoadTemplates(c.set)
		if err != nil {
			return err
		}
		if cfg.Codec, err = md.NewCodec(ts); err != nil {
			return err
		}
		cfg.Definitions = groups[0]
	}
	poller, err := mcast.NewPoller(mcast.PollerConfig{Interface: iface, ReadBuffer: o.ReadBuffer})
	if err != nil {
		return err
	}
	defer poller.Close()
	for _, g := range groups {
		if _, err := poller.JoinGroup(g); err != nil {
			return err
		}
	}
	// What record was asked for goes into the capture, for replay to take as its
	// defaults; a classic pcap file has no room for it.
	comment := ""
	if format == replay.PcapNG {
		comment = o.recorded(c.set, cfg.Key).Comment()
	} else {
		log.Info("a pcap file keeps no settings: replay it with the same --topics, --group-base, --port ... (pcapng keeps them)")
	}
	w, err := replay.CreateComment(o.Out, format, comment)
	if err != nil {
		return err
	}
	cfg.Poller, cfg.Writer = poller, w
	log.Info("recording", "out", o.Out, "format", format, "groups", len(groups), "all", o.All)
	runCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	st, err := replay.Record(runCtx, cfg)
	if cerr := w.Close(); cerr != nil && err == nil {
		err = cerr
	}
	log.Info("recorded", "out", o.Out, "datagrams", st.Datagrams, "bytes", st.Bytes, "groups_joined", st.Joined,
		"truncated", st.Truncated, "no_kernel_timestamp", st.NoKernelTS, "kernel_drops", st.KernelDrops)
	if st.AuthFailures > 0 {
		log.Warn("forged definitions recorded but not followed", "auth_failures", st.AuthFailures)
	}
	return err
}

// Resolve returns the groups to join (the definitions channel first with --all) and the
// capture format.
func (o *RecordOptions) Resolve(set map[string]bool) ([]netip.AddrPort, replay.Format, error) {
	if o.Out == "" {
		return nil, 0, errors.New("--out FILE is required")
	}
	var format replay.Format
	switch o.Format {
	case "pcapng":
		format = replay.PcapNG
	case "pcap":
		format = replay.Pcap
	default:
		return nil, 0, fmt.Errorf("--format %q: want pcapng or pcap", o.Format)
	}
	n := 0
	for _, given := range []bool{o.Topics != "", o.Groups != "", o.All} {
		if given {
			n++
		}
	}
	if n != 1 {
		return nil, 0, errors.New("give exactly one of --topics, --groups and --all")
	}
	port, err := o.PortNumber()
	if err != nil {
		return nil, 0, err
	}
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
	case o.All:
		defs, err := ParseAddr("--definitions-group", o.DefsGroup, true)
		if err != nil {
			return nil, 0, err
		}
		add(netip.AddrPortFrom(defs, port))
	case o.Topics != "":
		m, err := o.Mapping(mcast.DefaultMapping(), set)
		if err != nil {
			return nil, 0, err
		}
		for _, t := range strings.Split(o.Topics, ",") {
			if t = strings.TrimSpace(t); t == "" {
				return nil, 0, fmt.Errorf("--topics %q has an empty symbol", o.Topics)
			}
			add(netip.AddrPortFrom(m.Group(t), port))
		}
	default:
		for _, g := range strings.Split(o.Groups, ",") {
			g = strings.TrimSpace(g)
			host, p := g, port
			if i := strings.LastIndexByte(g, ':'); i >= 0 {
				v, err := strconv.ParseUint(g[i+1:], 10, 16)
				if err != nil || v == 0 {
					return nil, 0, fmt.Errorf("--groups: %q: bad port", g)
				}
				host, p = g[:i], uint16(v)
			}
			a, err := ParseAddr("--groups", host, true)
			if err != nil {
				return nil, 0, err
			}
			add(netip.AddrPortFrom(a, p))
		}
	}
	return groups, format, nil
}
