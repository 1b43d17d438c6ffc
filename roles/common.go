package roles

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"fastfeed/fast"
	"fastfeed/fixtures"
	"fastfeed/internal/cpupin"
	"fastfeed/mcast"
	"fastfeed/md"
)

// DefaultTemplates is where the feed templates are in the repository.
const DefaultTemplates = "fixtures/templates.xml"

// defaultPort is the channels' UDP port by default.
const defaultPort = 30001

// Common are the flags every networked role has: --log-level, --log-format and
// --templates.
type Common struct {
	LogLevel  string
	LogFormat string
	Templates string
}

// register adds --log-level, --log-format and, unless templates is "", --templates with
// that usage.
func (c *Common) register(fs *flag.FlagSet, templates string) {
	fs.StringVar(&c.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log `format`: text (key=value lines) or json (one JSON object a line, for a log collector)")
	c.Templates = DefaultTemplates
	if templates != "" {
		fs.StringVar(&c.Templates, "templates", DefaultTemplates, templates)
	}
}

// Logger returns a logger writing to w at the --log-level given, as --log-format says:
// slog's text handler or its JSON handler.
func (c *Common) Logger(w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch c.LogFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", c.LogFormat)
}

// LoadTemplates loads the --templates file; see [LoadTemplates].
func (c *Common) LoadTemplates(set map[string]bool) (*fast.Templates, error) {
	return LoadTemplates(c.Templates, set["templates"] || c.Templates != DefaultTemplates)
}

// LoadTemplates loads the FAST templates: the file at path when explicit, else
// fixtures/templates.xml found from the working directory or the binary, else the copy
// compiled into the binary. They must hold the messages fastfeed's feed is made of.
func LoadTemplates(path string, explicit bool) (*fast.Templates, error) {
	ts, where, err := findTemplates(path, explicit)
	if err != nil {
		return nil, err
	}
	if _, err := md.NewCodec(ts); err != nil {
		return nil, fmt.Errorf("--templates %s: %w", where, err)
	}
	return ts, nil
}

func findTemplates(path string, explicit bool) (*fast.Templates, string, error) {
	found, err := findFixture(path, explicit, "FAST templates", "--templates")
	if err == nil {
		ts, err := fast.LoadFile(found)
		return ts, found, err
	}
	if explicit || path != DefaultTemplates {
		return nil, "", err
	}
	if _, serr := os.Stat(path); serr != nil && !errors.Is(serr, os.ErrNotExist) {
		return nil, "", serr
	}
	ts, err := fixtures.Templates()
	return ts, "(compiled in)", err
}

// findFixture finds a fixture file: the path as given when explicit, else the path
// relative to the working directory or to the binary's place (bin/fastfeed in the
// repository, or beside it).
func findFixture(path string, explicit bool, what, flagName string) (string, error) {
	if explicit {
		return path, nil
	}
	candidates := []string{path}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(dir, "..", path), filepath.Join(dir, path))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s %s not found in the working directory or beside the binary: give %s FILE", what, path, flagName)
}

// Network are the flags that place a role on the multicast network: the interface, the
// topic -> group mapping, the port, the definitions channel and line B.
type Network struct {
	Iface, GroupBase, DefsGroup, BGroupBase string
	GroupSize, Port, BPort                  uint
	SingleGroup                             bool
}

// netUsage overrides the usage text of Network's flags that read differently per role;
// a flag whose usage is "-" is not registered.
type netUsage map[string]string

// register adds the network flags to fs.
func (n *Network) register(fs *flag.FlagSet, u netUsage) {
	text := func(name, def string) (string, bool) {
		if t, ok := u[name]; ok {
			return t, t != "-"
		}
		return def, true
	}
	if t, ok := text("iface", "join on this interface: its `name` (eth0) or IPv4 address (default 127.0.0.1, loopback)"); ok {
		fs.StringVar(&n.Iface, "iface", "", t)
	}
	fs.StringVar(&n.GroupBase, "group-base", mcast.DefaultBase, "first multicast `group` of the topic mapping")
	t, _ := text("group-size", "`number` of groups topics spread over")
	fs.UintVar(&n.GroupSize, "group-size", mcast.DefaultSize, t)
	t, _ = text("single-group", "every topic is on the --group-base group")
	fs.BoolVar(&n.SingleGroup, "single-group", false, t)
	fs.UintVar(&n.Port, "port", defaultPort, "UDP `port` of the channels")
	fs.StringVar(&n.DefsGroup, "definitions-group", mcast.DefaultDefinitionsGroup, "`group` of the instrument definitions channel")
	if t, ok := text("b-port", "also join line B on this `port`"); ok {
		fs.UintVar(&n.BPort, "b-port", 0, t)
	}
	if t, ok := text("b-group-base", "also join line B on groups from this `base`"); ok {
		fs.StringVar(&n.BGroupBase, "b-group-base", "", t)
	}
}

// Mapping returns start with the group flags given (in set) applied: --group-base,
// --group-size and --single-group. Leaving single-group mode without a --group-size
// goes back to the default size.
func (n *Network) Mapping(start mcast.Mapping, set map[string]bool) (mcast.Mapping, error) {
	if !set["group-base"] && !set["group-size"] && !set["single-group"] {
		return start, nil
	}
	base, size, single := start.Base(), start.Size(), start.Single()
	if set["group-base"] {
		a, err := ParseAddr("--group-base", n.GroupBase, false)
		if err != nil {
			return mcast.Mapping{}, err
		}
		base = a
	}
	if set["group-size"] {
		if n.GroupSize == 0 || n.GroupSize > math.MaxUint32 {
			return mcast.Mapping{}, fmt.Errorf("--group-size %d outside 1..%d", n.GroupSize, uint32(math.MaxUint32))
		}
		size = uint32(n.GroupSize)
	}
	if set["single-group"] {
		single = n.SingleGroup
	}
	var m mcast.Mapping
	var err error
	if single {
		m, err = mcast.SingleGroupMapping(base)
	} else {
		if size == 1 && !set["group-size"] {
			size = mcast.DefaultSize // leaving single-group mode
		}
		m, err = mcast.NewMapping(base, size)
	}
	if err != nil {
		return m, fmt.Errorf("--group-base %v --group-size %d --single-group=%v: %w", base, size, single, err)
	}
	return m, nil
}

// PortNumber returns --port, checked.
func (n *Network) PortNumber() (uint16, error) {
	if n.Port == 0 || n.Port > math.MaxUint16 {
		return 0, fmt.Errorf("--port %d outside 1..65535", n.Port)
	}
	return uint16(n.Port), nil
}

// BPortNumber returns --b-port (0: none), checked.
func (n *Network) BPortNumber() (uint16, error) {
	if n.BPort > math.MaxUint16 {
		return 0, fmt.Errorf("--b-port %d outside 0..65535", n.BPort)
	}
	return uint16(n.BPort), nil
}

// Interface returns --iface: the zero Addr when not given (loopback), else the IPv4
// address of one of this host's interfaces.
func (n *Network) Interface() (netip.Addr, error) {
	if n.Iface == "" {
		return netip.Addr{}, nil
	}
	return ifaceAddr(n.Iface)
}

// ifaceAddr resolves --iface: an interface's IPv4 address, or its name (eth0, lo), which
// stands for its first IPv4 address.
func ifaceAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ifi, ierr := net.InterfaceByName(s)
		if ierr != nil {
			return netip.Addr{}, fmt.Errorf("--iface %q: want the name or IPv4 address of an interface (%s)", s, interfaceNames())
		}
		addrs, aerr := ifi.Addrs()
		if aerr != nil {
			return netip.Addr{}, fmt.Errorf("--iface %q: %w", s, aerr)
		}
		for _, ia := range addrs {
			if p, ok := ia.(*net.IPNet); ok {
				if b, ok := netip.AddrFromSlice(p.IP); ok && b.Unmap().Is4() {
					return b.Unmap(), nil
				}
			}
		}
		return netip.Addr{}, fmt.Errorf("--iface %q: the interface has no IPv4 address", s)
	}
	if !a.Is4() || a.IsMulticast() || a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("--iface %q: want the name or IPv4 address of an interface", s)
	}
	if err := localAddr("--iface", a); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// interfaceNames lists this host's interfaces, for messages.
func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		return "no interface found"
	}
	names := make([]string, len(ifs))
	for i, ifi := range ifs {
		names[i] = ifi.Name
	}
	return "this host has " + strings.Join(names, ", ")
}

// ParseAddr parses the IPv4 address s given with flagName, a group if multicast.
func ParseAddr(flagName, s string, multicast bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s %q: not an IPv4 address", flagName, s)
	}
	if multicast && !a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s %q: not a multicast group", flagName, s)
	}
	return a, nil
}

// localAddr checks that a is the address of one of this host's interfaces.
func localAddr(flagName string, a netip.Addr) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("%s %v: %w", flagName, a, err)
	}
	for _, ia := range addrs {
		if p, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(p.IP); ok && b.Unmap() == a {
				return nil
			}
		}
	}
	return fmt.Errorf("%s %v: no interface of this host has this address", flagName, a)
}

// writeFile writes a file through fn, reporting the path on error.
func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// us converts nanoseconds to microseconds for logs.
func us(ns int64) float64 { return float64(ns) / 1000 }

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// CPUFlag checks --cpu N: -1 (the default) pins nothing; otherwise N must be a CPU this
// process may run on. It reports whether to pin.
func CPUFlag(cpu int) (bool, error) {
	if cpu == -1 {
		return false, nil
	}
	if cpu < 0 {
		return false, usagef("--cpu %d: want a CPU number, 0 or more", cpu)
	}
	if err := cpupin.Check(cpu); err != nil {
		return false, usagef("--cpu %d: %v", cpu, err)
	}
	return true, nil
}
