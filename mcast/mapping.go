package mcast

import (
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strings"
)

// Defaults of the topic -> group mapping and of the definitions channel, as
// strings ready for flag defaults.
const (
	DefaultBase             = "239.0.0.1" // 4009754625
	DefaultSize             = 16777215    // 239.0.0.1 .. 239.255.255.255
	DefaultDefinitionsGroup = "239.0.0.0"
)

const (
	defaultBase      = 239<<24 | 1   // 239.0.0.1 == 4009754625
	definitionsGroup = 239 << 24     // 239.0.0.0
	multicastFirst   = 224 << 24     // 224.0.0.0
	localControlLast = 224<<24 | 255 // 224.0.0.0/24 is local network control
	topOfRange       = 239<<24 | 0xffffff
)

// Mapping maps topics to multicast groups: group = base + crc32_ieee(topic)
// mod size, or every topic to base in single-group mode. The zero Mapping is
// the default one (base 239.0.0.1, size 16777215). A Mapping is a small value,
// safe to copy and to use from any goroutine.
type Mapping struct {
	base   uint32
	size   uint32 // 0 only in the zero (default) Mapping
	single bool
}

// NewMapping returns the mapping of topics onto size groups from base. base
// must be an IPv4 multicast address outside 224.0.0.0/24 (local network
// control), size at least 1, and the last group, base+size-1, must not pass
// 239.255.255.255.
func NewMapping(base netip.Addr, size uint32) (Mapping, error) {
	b, err := groupBase(base)
	if err != nil {
		return Mapping{}, err
	}
	if size == 0 {
		return Mapping{}, fmt.Errorf("mcast: group mapping from %v: size is 0, want at least 1", base)
	}
	if uint64(b)+uint64(size)-1 > topOfRange {
		return Mapping{}, fmt.Errorf("mcast: group mapping from %v with size %d runs past 239.255.255.255: at most %d groups fit from this base",
			base, size, topOfRange-b+1)
	}
	return Mapping{base: b, size: size}, nil
}

// SingleGroupMapping returns the mapping that puts every topic on group;
// handlers then filter by topic.
func SingleGroupMapping(group netip.Addr) (Mapping, error) {
	b, err := groupBase(group)
	if err != nil {
		return Mapping{}, err
	}
	return Mapping{base: b, size: 1, single: true}, nil
}

// DefaultMapping returns the default mapping, base 239.0.0.1 and size
// 16777215; it equals the zero Mapping.
func DefaultMapping() Mapping { return Mapping{base: defaultBase, size: DefaultSize} }

func groupBase(a netip.Addr) (uint32, error) {
	if !a.IsValid() {
		return 0, errors.New("mcast: group base is not set")
	}
	a = a.Unmap()
	if !a.Is4() {
		return 0, fmt.Errorf("mcast: group base %v is not an IPv4 address", a)
	}
	b := addrBits(a)
	if b < multicastFirst || b > topOfRange {
		return 0, fmt.Errorf("mcast: group base %v is not a multicast address (224.0.0.0/4)", a)
	}
	if b <= localControlLast {
		return 0, fmt.Errorf("mcast: group base %v is in 224.0.0.0/24, reserved for local network control", a)
	}
	return b, nil
}

func (m Mapping) norm() Mapping {
	if m.size == 0 {
		return DefaultMapping()
	}
	return m
}

// Group returns the multicast group of topic. It does not allocate.
func (m Mapping) Group(topic string) netip.Addr {
	m = m.norm()
	if m.single {
		return bitsAddr(m.base)
	}
	return bitsAddr(m.base + Checksum(topic)%m.size)
}

// Base returns the first group of the mapping.
func (m Mapping) Base() netip.Addr { return bitsAddr(m.norm().base) }

// Size returns the number of groups topics spread over (1 in single-group
// mode).
func (m Mapping) Size() uint32 { return m.norm().size }

// Last returns the highest group a topic can map to.
func (m Mapping) Last() netip.Addr { m = m.norm(); return bitsAddr(m.base + m.size - 1) }

// Single reports whether the mapping puts every topic on one group.
func (m Mapping) Single() bool { return m.single }

// Contains reports whether g is one of the mapping's groups.
func (m Mapping) Contains(g netip.Addr) bool {
	g = g.Unmap()
	if !g.Is4() {
		return false
	}
	m = m.norm()
	b := addrBits(g)
	return b >= m.base && b-m.base < m.size
}

// String describes the mapping, e.g. "239.0.0.1+16777215" or
// "single 239.1.1.1".
func (m Mapping) String() string {
	if m.single {
		return "single " + m.Base().String()
	}
	return fmt.Sprintf("%v+%d", m.Base(), m.Size())
}

// Checksum returns the CRC-32 (IEEE) of topic, the hash of the mapping, the
// same as crc32.ChecksumIEEE([]byte(topic)). It does not allocate: topics are
// short, so a byte-wise table walk over the string beats converting it.
func Checksum(topic string) uint32 {
	tab := crc32.IEEETable
	crc := ^uint32(0)
	for i := 0; i < len(topic); i++ {
		crc = tab[byte(crc)^topic[i]] ^ crc>>8
	}
	return ^crc
}

// DefinitionsChannel returns the default instrument definitions channel on
// port: 239.0.0.0:port.
func DefinitionsChannel(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(bitsAddr(definitionsGroup), port)
}

// ChannelName returns the name (ApplID) of the channel ch: "G" followed by
// group:port, e.g. "G239.137.173.234:30001".
func ChannelName(ch netip.AddrPort) string {
	return string(AppendChannelName(make([]byte, 0, 24), ch))
}

// AppendChannelName appends the name of ch to b and returns the result.
func AppendChannelName(b []byte, ch netip.AddrPort) []byte {
	return ch.AppendTo(append(b, 'G'))
}

// ParseChannelName parses a channel name made by ChannelName. The group must
// be an IPv4 multicast address and the port non-zero.
func ParseChannelName(s string) (netip.AddrPort, error) {
	rest, ok := strings.CutPrefix(s, "G")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("mcast: channel name %q does not start with G", s)
	}
	ch, err := netip.ParseAddrPort(rest)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("mcast: channel name %q: %w", s, err)
	}
	if err := checkChannel(ch); err != nil {
		return netip.AddrPort{}, fmt.Errorf("mcast: channel name %q: %w", s, err)
	}
	return ch, nil
}

// checkChannel reports why ch cannot be a multicast channel.
func checkChannel(ch netip.AddrPort) error {
	a := ch.Addr()
	if !a.Is4() {
		return fmt.Errorf("group %v is not an IPv4 address", a)
	}
	if !a.IsMulticast() {
		return fmt.Errorf("group %v is not a multicast address (224.0.0.0/4)", a)
	}
	if ch.Port() == 0 {
		return fmt.Errorf("channel %v has port 0", ch)
	}
	return nil
}

func addrBits(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func bitsAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
