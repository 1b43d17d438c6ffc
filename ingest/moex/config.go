package moex

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Kind is a connection's type letter in config.xml.
type Kind byte

// Connection kinds.
const (
	Incremental Kind = 'I' // OLR, TLR, MSR
	Snapshot    Kind = 'S' // OLS, TLS, MSS
	Instruments Kind = 'N' // IDF definitions, ISF statuses
	Historical  Kind = 'H' // the TCP historical replay service
)

// Line is one feed (A or B) of a UDP connection.
type Line struct {
	ID    string         // "A" or "B"
	Src   netip.Addr     // src-ip for a source-specific join; zero if not given
	Group netip.AddrPort // multicast group and port
}

// Connection is one connection of a market: a feed type with its lines, or the TCP
// historical replay service.
type Connection struct {
	ID       string // OLR, OLS, TLR, TLS, MSR, MSS, IDF, ISF, H, ...
	Kind     Kind
	FeedType string // the type element's feed-type attribute
	Protocol string // "UDP/IP" or "TCP/IP"
	Lines    []Line // UDP lines, in file order
	// Addr is the TCP address of the historical replay service, if the file gives one.
	Addr netip.AddrPort
}

// Line returns the line with the given ID.
func (c *Connection) Line(id string) (Line, bool) {
	for _, l := range c.Lines {
		if l.ID == id {
			return l, true
		}
	}
	return Line{}, false
}

// Market is one channel of config.xml (FOND, CURR, ...).
type Market struct {
	ID          string
	Label       string
	Connections []Connection
}

// Connection returns the market's connection with the given ID.
func (m *Market) Connection(id string) (*Connection, bool) {
	for i := range m.Connections {
		if m.Connections[i].ID == id {
			return &m.Connections[i], true
		}
	}
	return nil, false
}

// Config is a parsed MOEX config.xml.
type Config struct {
	Environment string
	Markets     []Market
}

// Market returns the market with the given ID.
func (c *Config) Market(id string) (*Market, bool) {
	for i := range c.Markets {
		if c.Markets[i].ID == id {
			return &c.Markets[i], true
		}
	}
	return nil, false
}

// Limits of ParseConfig, bounding what a hostile file can make it build.
const (
	MaxConfigBytes = 4 << 20
	maxMarkets     = 64
	maxConnections = 64
	maxLines       = 4
)

// LoadConfig reads and parses the config.xml file name.
func LoadConfig(name string) (*Config, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("moex: config: %w", err)
	}
	defer f.Close()
	c, err := ParseConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

type xmlConfig struct {
	XMLName     xml.Name     `xml:"configuration"`
	Environment string       `xml:"environment,attr"`
	Channels    []xmlChannel `xml:"channel"`
}

type xmlChannel struct {
	ID          string    `xml:"id,attr"`
	Label       string    `xml:"label,attr"`
	Connections []xmlConn `xml:"connections>connection"`
}

type xmlConn struct {
	ID   string `xml:"id,attr"`
	Type struct {
		FeedType string `xml:"feed-type,attr"`
		Value    string `xml:",chardata"`
	} `xml:"type"`
	Protocol string    `xml:"protocol"`
	IP       string    `xml:"ip"`
	Port     string    `xml:"port"`
	Feeds    []xmlFeed `xml:"feed"`
}

type xmlFeed struct {
	ID    string `xml:"id,attr"`
	SrcIP string `xml:"src-ip"`
	IP    string `xml:"ip"`
	Port  string `xml:"port"`
}

// ParseConfig parses a MOEX ASTS config.xml: <configuration> with one <channel id="..."> per
// market, each with <connections><connection id="..."> holding a <type feed-type="...">
// letter (I, S, N or H), a <protocol> and, for UDP, feeds A and B (<src-ip>, <ip>,
// <port>). Errors name the market, the connection and the field.
func ParseConfig(r io.Reader) (*Config, error) {
	var x xmlConfig
	dec := xml.NewDecoder(io.LimitReader(r, MaxConfigBytes+1))
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("moex: config: %w", err)
	}
	if len(x.Channels) == 0 {
		return nil, errors.New("moex: config: no <channel> (market) in <configuration>")
	}
	if len(x.Channels) > maxMarkets {
		return nil, fmt.Errorf("moex: config: %d channels, at most %d", len(x.Channels), maxMarkets)
	}
	c := &Config{Environment: x.Environment}
	for i, xc := range x.Channels {
		m, err := parseMarket(xc)
		if err != nil {
			return nil, fmt.Errorf("moex: config: channel %d (%q): %w", i+1, xc.ID, err)
		}
		if _, dup := c.Market(m.ID); dup {
			return nil, fmt.Errorf("moex: config: channel %q given twice", m.ID)
		}
		c.Markets = append(c.Markets, m)
	}
	return c, nil
}

func parseMarket(xc xmlChannel) (Market, error) {
	m := Market{ID: strings.TrimSpace(xc.ID), Label: xc.Label}
	if m.ID == "" {
		return m, errors.New("no id attribute")
	}
	if len(xc.Connections) == 0 {
		return m, errors.New("no <connection>")
	}
	if len(xc.Connections) > maxConnections {
		return m, fmt.Errorf("%d connections, at most %d", len(xc.Connections), maxConnections)
	}
	for i, xn := range xc.Connections {
		cn, err := parseConn(xn)
		if err != nil {
			return m, fmt.Errorf("connection %d (%q): %w", i+1, xn.ID, err)
		}
		if _, dup := m.Connection(cn.ID); dup {
			return m, fmt.Errorf("connection %q given twice", cn.ID)
		}
		m.Connections = append(m.Connections, cn)
	}
	return m, nil
}

func parseConn(xn xmlConn) (Connection, error) {
	cn := Connection{
		ID:       strings.TrimSpace(xn.ID),
		FeedType: strings.TrimSpace(xn.Type.FeedType),
		Protocol: strings.TrimSpace(xn.Protocol),
	}
	if cn.ID == "" {
		return cn, errors.New("no id attribute")
	}
	switch k := strings.TrimSpace(xn.Type.Value); k {
	case "I", "S", "N", "H":
		cn.Kind = Kind(k[0])
	default:
		return cn, fmt.Errorf("<type> %q: want I, S, N or H", k)
	}
	if cn.Kind == Historical {
		if xn.IP != "" || xn.Port != "" {
			ap, err := addrPort(xn.IP, xn.Port)
			if err != nil {
				return cn, fmt.Errorf("historical replay address: %w", err)
			}
			cn.Addr = ap
		}
		return cn, nil
	}
	if cn.Protocol != "" && cn.Protocol != "UDP/IP" {
		return cn, fmt.Errorf("<protocol> %q: a %c connection wants UDP/IP", cn.Protocol, cn.Kind)
	}
	if len(xn.Feeds) == 0 {
		return cn, errors.New("no <feed>")
	}
	if len(xn.Feeds) > maxLines {
		return cn, fmt.Errorf("%d feeds, at most %d", len(xn.Feeds), maxLines)
	}
	for _, xf := range xn.Feeds {
		l, err := parseLine(xf)
		if err != nil {
			return cn, fmt.Errorf("feed %q: %w", xf.ID, err)
		}
		if _, dup := cn.Line(l.ID); dup {
			return cn, fmt.Errorf("feed %q given twice", l.ID)
		}
		cn.Lines = append(cn.Lines, l)
	}
	return cn, nil
}

func parseLine(xf xmlFeed) (Line, error) {
	l := Line{ID: strings.TrimSpace(xf.ID)}
	if l.ID == "" {
		return l, errors.New("no id attribute")
	}
	ap, err := addrPort(xf.IP, xf.Port)
	if err != nil {
		return l, err
	}
	if !ap.Addr().IsMulticast() {
		return l, fmt.Errorf("<ip> %s is not a multicast group", ap.Addr())
	}
	l.Group = ap
	if s := strings.TrimSpace(xf.SrcIP); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return l, fmt.Errorf("<src-ip> %q: not an IPv4 address", s)
		}
		l.Src = a
	}
	return l, nil
}

func addrPort(ip, port string) (netip.AddrPort, error) {
	ip, port = strings.TrimSpace(ip), strings.TrimSpace(port)
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("<ip> %q: not an IPv4 address", ip)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("<port> %q: not a port in 1..65535", port)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// MapAddresses returns a copy of m with every address the configuration gives (lines'
// src-ip and groups, the historical replay service's TCP address) replaced as the map
// says; addresses not in the map are kept. It maps the exchange's addresses into a
// private network namespace or onto loopback for tests and demos.
func (m *Market) MapAddresses(to map[netip.Addr]netip.Addr) *Market {
	mp := func(a netip.Addr) netip.Addr {
		if b, ok := to[a]; ok {
			return b
		}
		return a
	}
	c := *m
	c.Connections = make([]Connection, len(m.Connections))
	for i, cn := range m.Connections {
		cn.Lines = append([]Line(nil), cn.Lines...)
		for j := range cn.Lines {
			l := &cn.Lines[j]
			if l.Src.IsValid() {
				l.Src = mp(l.Src)
			}
			l.Group = netip.AddrPortFrom(mp(l.Group.Addr()), l.Group.Port())
		}
		if cn.Addr.IsValid() {
			cn.Addr = netip.AddrPortFrom(mp(cn.Addr.Addr()), cn.Addr.Port())
		}
		c.Connections[i] = cn
	}
	return &c
}

// Addresses returns every address m's configuration names (sources, groups, TCP).
func (m *Market) Addresses() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, cn := range m.Connections {
		for _, l := range cn.Lines {
			if l.Src.IsValid() {
				out[l.Src] = true
			}
			out[l.Group.Addr()] = true
		}
		if cn.Addr.IsValid() {
			out[cn.Addr.Addr()] = true
		}
	}
	return out
}

// ParseAddressMap parses FROM=TO[,FROM=TO] pairs of IPv4 addresses (--map, --map-source).
func ParseAddressMap(s string) (map[netip.Addr]netip.Addr, error) {
	out := map[netip.Addr]netip.Addr{}
	for _, kv := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(kv, "=")
		a, err1 := netip.ParseAddr(strings.TrimSpace(from))
		b, err2 := netip.ParseAddr(strings.TrimSpace(to))
		if !ok || err1 != nil || err2 != nil || !a.Is4() || !b.Is4() {
			return nil, fmt.Errorf("address map %q: want FROM=TO pairs of IPv4 addresses, comma-separated", kv)
		}
		out[a] = b
	}
	return out, nil
}
