package mcast_test

import (
	"hash/crc32"
	"net/netip"
	"strings"
	"testing"

	"fastfeed/mcast"
)

var (
	base64k = netip.MustParseAddr("239.192.0.0")
	addr    = netip.MustParseAddr
)

func mustMapping(t testing.TB, base string, size uint32) mcast.Mapping {
	t.Helper()
	m, err := mcast.NewMapping(addr(base), size)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The CRC values were checked by hand against an independent implementation
// (Python zlib.crc32); "123456789" -> 0xCBF43926 is the published CRC-32 check
// value.
var checksums = []struct {
	topic      string
	crc        uint32
	group      string // default mapping
	group64k   string // 239.192.0.0 + crc % 65536
	groupLarge string // the seed formula: 4009754625 + crc % 16777215
}{
	{"", 0x00000000, "239.0.0.1", "239.192.0.0", "239.0.0.1"},
	{"123456789", 0xCBF43926, "239.244.57.242", "239.192.57.38", "239.244.57.242"},
	{"SBER", 0x8389AD66, "239.137.173.234", "239.192.173.102", "239.137.173.234"},
	{"GAZP", 0x7DE0BC45, "239.224.188.195", "239.192.188.69", "239.224.188.195"},
	{"LKOH", 0x83AFC0D0, "239.175.193.84", "239.192.192.208", "239.175.193.84"},
	{"AAPL", 0xB665575C, "239.101.88.19", "239.192.87.92", "239.101.88.19"},
	{"ESZ5", 0xF5939607, "239.147.150.253", "239.192.150.7", "239.147.150.253"},
	{"a", 0xE8B7BE43, "239.183.191.44", "239.192.190.67", "239.183.191.44"},
}

func TestChecksum(t *testing.T) {
	long := strings.Repeat("SBER-", 100) // longer than Checksum's chunk
	for _, tc := range append(checksums, struct {
		topic                       string
		crc                         uint32
		group, group64k, groupLarge string
	}{topic: long, crc: crc32.ChecksumIEEE([]byte(long))}) {
		if got := mcast.Checksum(tc.topic); got != tc.crc {
			t.Errorf("Checksum(%.20q) = %#08x, want %#08x", tc.topic, got, tc.crc)
		}
	}
}

func TestMappingGroups(t *testing.T) {
	def := mcast.DefaultMapping()
	var zero mcast.Mapping
	m64k := mustMapping(t, "239.192.0.0", 65536)
	for _, tc := range checksums {
		if got := def.Group(tc.topic); got != addr(tc.group) {
			t.Errorf("default Group(%q) = %v, want %v", tc.topic, got, tc.group)
		}
		if got := zero.Group(tc.topic); got != addr(tc.group) {
			t.Errorf("zero Mapping Group(%q) = %v, want %v", tc.topic, got, tc.group)
		}
		if got := m64k.Group(tc.topic); got != addr(tc.group64k) {
			t.Errorf("239.192.0.0+65536 Group(%q) = %v, want %v", tc.topic, got, tc.group64k)
		}
		// The seed formula, computed on the number.
		v := uint32(4009754625 + uint64(tc.crc)%16777215)
		seed := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if seed != addr(tc.groupLarge) || def.Group(tc.topic) != seed {
			t.Errorf("seed formula for %q gives %v, mapping %v, table %v", tc.topic, seed, def.Group(tc.topic), tc.groupLarge)
		}
	}
	if def.Base() != addr(mcast.DefaultBase) || def.Size() != mcast.DefaultSize || def.Last() != addr("239.255.255.255") {
		t.Errorf("default mapping %v: base %v size %d last %v", def, def.Base(), def.Size(), def.Last())
	}
	if zero.Base() != def.Base() || zero.Size() != def.Size() || zero.String() != "239.0.0.1+16777215" {
		t.Errorf("zero Mapping %v differs from the default", zero)
	}
}

func TestMappingCollisions(t *testing.T) {
	for _, tc := range []struct {
		m    mcast.Mapping
		a, b string
	}{
		{mcast.DefaultMapping(), "T2963", "T10675"},
		{mustMapping(t, "239.192.0.0", 65536), "S328", "S5002"},
		{mustMapping(t, "239.192.0.0", 1), "SBER", "GAZP"},
	} {
		if tc.m.Group(tc.a) != tc.m.Group(tc.b) {
			t.Errorf("%v: %s -> %v and %s -> %v, want one shared group", tc.m, tc.a, tc.m.Group(tc.a), tc.b, tc.m.Group(tc.b))
		}
		if mcast.Checksum(tc.a) == mcast.Checksum(tc.b) {
			t.Errorf("%s and %s have the same CRC; the test wants a collision of the modulus", tc.a, tc.b)
		}
	}
}

func TestMappingBounds(t *testing.T) {
	topics := []string{"", "SBER", "GAZP", "123456789", "T2963", "\xff\xfe", strings.Repeat("Z", 300)}
	for i := 0; i < 2000; i++ {
		topics = append(topics, "X"+string(rune('A'+i%26))+strings.Repeat("9", i%7)+string(rune(i)))
	}
	for _, tc := range []struct {
		base       string
		size       uint32
		first, end string
	}{
		{"239.0.0.1", 16777215, "239.0.0.1", "239.255.255.255"},
		{"239.192.0.0", 65536, "239.192.0.0", "239.192.255.255"},
		{"239.255.255.255", 1, "239.255.255.255", "239.255.255.255"},
		{"239.255.255.0", 256, "239.255.255.0", "239.255.255.255"},
		{"224.0.1.0", 0xefffffff - 0xe0000100 + 1, "224.0.1.0", "239.255.255.255"},
		{"230.1.2.3", 7, "230.1.2.3", "230.1.2.9"},
	} {
		m := mustMapping(t, tc.base, tc.size)
		if m.Base() != addr(tc.first) || m.Last() != addr(tc.end) {
			t.Errorf("%v: first %v last %v, want %v %v", m, m.Base(), m.Last(), tc.first, tc.end)
		}
		lo, hi := addr(tc.first), addr(tc.end)
		for _, topic := range topics {
			g := m.Group(topic)
			if g.Less(lo) || hi.Less(g) || !m.Contains(g) {
				t.Fatalf("%v: Group(%q) = %v outside %v..%v", m, topic, g, lo, hi)
			}
		}
		if m.Contains(lo.Prev()) || m.Contains(hi.Next()) {
			t.Errorf("%v contains a neighbour of its range", m)
		}
	}
	if mcast.DefaultMapping().Contains(mcast.DefinitionsChannel(1).Addr()) {
		t.Error("the default mapping contains the definitions group 239.0.0.0")
	}
}

func TestMappingSingleGroup(t *testing.T) {
	m, err := mcast.SingleGroupMapping(addr("239.1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range checksums {
		if g := m.Group(tc.topic); g != addr("239.1.2.3") {
			t.Errorf("single Group(%q) = %v", tc.topic, g)
		}
	}
	if !m.Single() || m.Size() != 1 || m.String() != "single 239.1.2.3" || mcast.DefaultMapping().Single() {
		t.Errorf("single mapping reports %v size %d single %v", m, m.Size(), m.Single())
	}
	if _, err := mcast.SingleGroupMapping(addr("10.1.2.3")); err == nil || !strings.Contains(err.Error(), "not a multicast address") {
		t.Errorf("single group 10.1.2.3: err %v", err)
	}
}

func TestNewMappingErrors(t *testing.T) {
	for _, tc := range []struct {
		base netip.Addr
		size uint32
		want string
	}{
		{addr("239.0.0.1"), 0, "size is 0"},
		{addr("10.0.0.1"), 16, "not a multicast address"},
		{addr("127.0.0.1"), 16, "not a multicast address"},
		{addr("240.0.0.1"), 16, "not a multicast address"},
		{addr("223.255.255.255"), 16, "not a multicast address"},
		{addr("ff02::1"), 16, "not an IPv4 address"},
		{netip.Addr{}, 16, "not set"},
		{addr("224.0.0.251"), 1, "224.0.0.0/24"},
		{addr("239.255.255.255"), 2, "runs past 239.255.255.255: at most 1 groups"},
		{addr("239.192.0.0"), 1 << 24, "at most 4194304 groups"},
		{addr("239.0.0.1"), 16777216, "runs past 239.255.255.255"},
		{addr("224.0.1.0"), 1<<32 - 1, "runs past"},
	} {
		_, err := mcast.NewMapping(tc.base, tc.size)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewMapping(%v, %d): err %v, want one mentioning %q", tc.base, tc.size, err, tc.want)
		}
	}
	// IPv4-mapped IPv6 is accepted as the IPv4 address it holds.
	m, err := mcast.NewMapping(addr("::ffff:239.192.0.0"), 65536)
	if err != nil || m.Base() != base64k {
		t.Errorf("NewMapping(::ffff:239.192.0.0): %v, %v", m, err)
	}
}

func TestChannelName(t *testing.T) {
	for _, tc := range []struct {
		ch   netip.AddrPort
		name string
	}{
		{netip.MustParseAddrPort("239.137.173.234:30001"), "G239.137.173.234:30001"},
		{mcast.DefinitionsChannel(30001), "G239.0.0.0:30001"},
		{netip.MustParseAddrPort("224.0.1.1:1"), "G224.0.1.1:1"},
	} {
		if got := mcast.ChannelName(tc.ch); got != tc.name {
			t.Errorf("ChannelName(%v) = %q, want %q", tc.ch, got, tc.name)
		}
		if got := string(mcast.AppendChannelName([]byte("x"), tc.ch)); got != "x"+tc.name {
			t.Errorf("AppendChannelName(%v) = %q", tc.ch, got)
		}
		back, err := mcast.ParseChannelName(tc.name)
		if err != nil || back != tc.ch {
			t.Errorf("ParseChannelName(%q) = %v, %v; want %v", tc.name, back, err, tc.ch)
		}
	}
	for _, bad := range []string{"", "G", "239.0.0.1:5", "g239.0.0.1:5", "G239.0.0.1", "G239.0.0.1:0",
		"G10.0.0.1:5", "G[ff02::1]:5", "G239.0.0.1:70000", "G239.0.0.1:5 ", "GG239.0.0.1:5"} {
		if ch, err := mcast.ParseChannelName(bad); err == nil {
			t.Errorf("ParseChannelName(%q) = %v, want an error", bad, ch)
		}
	}
}

func TestMappingGroupAllocs(t *testing.T) {
	m := mustMapping(t, "239.192.0.0", 65536)
	topic := strings.Repeat("SBER", 40)
	if a := testing.AllocsPerRun(100, func() { _ = m.Group(topic); _ = mcast.Checksum(topic) }); a != 0 {
		t.Errorf("Group allocates %v times per call", a)
	}
}

func FuzzParseChannelName(f *testing.F) {
	for _, s := range []string{"G239.0.0.1:30001", "G224.0.1.1:1", "G", "G[::1]:5", "G239.0.0.1:0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := mcast.ParseChannelName(s)
		if err != nil {
			return
		}
		if !ch.Addr().Is4() || !ch.Addr().IsMulticast() || ch.Port() == 0 {
			t.Fatalf("ParseChannelName(%q) accepted %v", s, ch)
		}
		if back, err := mcast.ParseChannelName(mcast.ChannelName(ch)); err != nil || back != ch {
			t.Fatalf("round trip of %v: %v, %v", ch, back, err)
		}
	})
}

func FuzzMapping(f *testing.F) {
	f.Add("SBER", uint32(0xefc00000), uint32(65536))
	f.Add("", uint32(4009754625), uint32(16777215))
	f.Add("x", uint32(0xffffffff), uint32(1))
	f.Fuzz(func(t *testing.T, topic string, base, size uint32) {
		b := netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)})
		m, err := mcast.NewMapping(b, size)
		if err != nil {
			return
		}
		g := m.Group(topic)
		if !m.Contains(g) || !g.IsMulticast() || g.Less(m.Base()) || m.Last().Less(g) {
			t.Fatalf("%v: Group(%q) = %v out of range", m, topic, g)
		}
		if want := base + crc32.ChecksumIEEE([]byte(topic))%size; g != netip.AddrFrom4([4]byte{byte(want >> 24), byte(want >> 16), byte(want >> 8), byte(want)}) {
			t.Fatalf("%v: Group(%q) = %v, formula says %#x", m, topic, g, want)
		}
	})
}
