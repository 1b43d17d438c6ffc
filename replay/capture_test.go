package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func time1(ts int64) time.Time { return time.Unix(0, ts) }

const ts0 = 1_700_000_000_123_456_789 // a capture time with every nanosecond digit set

var (
	wantSrc = netip.MustParseAddrPort("192.0.2.1:4000")
	wantDst = netip.MustParseAddrPort("239.1.2.3:5000")
)

// linkFrames wraps the same IPv4 packet in every link type read.
func linkFrames(ip []byte) []struct {
	name  string
	link  layers.LinkType
	frame []byte
} {
	padded := eth(etherTypeIPv4, append(append([]byte{}, ip...), make([]byte, 64)...)) // padding and FCS after the IP packet
	return []struct {
		name  string
		link  layers.LinkType
		frame []byte
	}{
		{"ethernet", linkEthernet, eth(etherTypeIPv4, ip)},
		{"ethernet-trailer", linkEthernet, padded},
		{"vlan", linkEthernet, eth(etherTypeIPv4, ip, etherTypeVLAN)},
		{"qinq", linkEthernet, eth(etherTypeIPv4, ip, etherTypeQinQ, etherTypeVLAN)},
		{"qinq-9100-triple", linkEthernet, eth(etherTypeIPv4, ip, etherTypeQinQ1, etherTypeVLAN, etherTypeVLAN)},
		{"sll", linkSLL, sll(etherTypeIPv4, ip)},
		{"sll-vlan", linkSLL, sll(etherTypeVLAN, append([]byte{0, 100, 0x08, 0x00}, ip...))},
		{"sll2", linkSLL2, sll2(etherTypeIPv4, ip)},
		{"raw", linkRaw, ip},
		{"raw12", linkRaw12, ip},
		{"raw14", linkRaw14, ip},
		{"ipv4", linkIPv4, ip},
		{"null-le", linkNull, family(binary.LittleEndian, afInet, ip)},
		{"null-be", linkNull, family(binary.BigEndian, afInet, ip)},
		{"loop", linkLoop, family(binary.BigEndian, afInet, ip)},
	}
}

// fileFormats builds a capture of one link type in each file variant, and
// says what timestamps survive it.
var fileFormats = []struct {
	name  string
	micro bool
	build func(t testing.TB, link layers.LinkType, recs ...rec) []byte
}{
	{"pcap-usec-le", true, func(_ testing.TB, l layers.LinkType, r ...rec) []byte {
		return pcapFile(binary.LittleEndian, false, l, r...)
	}},
	{"pcap-usec-be", true, func(_ testing.TB, l layers.LinkType, r ...rec) []byte {
		return pcapFile(binary.BigEndian, false, l, r...)
	}},
	{"pcap-nsec-le", false, func(_ testing.TB, l layers.LinkType, r ...rec) []byte {
		return pcapFile(binary.LittleEndian, true, l, r...)
	}},
	{"pcap-nsec-be", false, func(_ testing.TB, l layers.LinkType, r ...rec) []byte {
		return pcapFile(binary.BigEndian, true, l, r...)
	}},
	{"pcapng", false, func(t testing.TB, l layers.LinkType, r ...rec) []byte {
		return pcapngFile(t, []layers.LinkType{l}, r...)
	}},
}

func TestReaderLinkTypes(t *testing.T) {
	for _, ff := range fileFormats {
		for _, lf := range linkFrames(dgram("first")) {
			t.Run(ff.name+"/"+lf.name, func(t *testing.T) {
				second := linkFrames(dgram("second-payload"))
				var frame2 []byte
				for _, s := range second {
					if s.name == lf.name {
						frame2 = s.frame
					}
				}
				file := ff.build(t, lf.link, rec{ts: ts0, data: lf.frame}, rec{ts: ts0 + 1001, data: frame2})
				r := mustReader(t, file, nil)
				wantFormat := Pcap
				if ff.name == "pcapng" {
					wantFormat = PcapNG
				}
				if r.Format() != wantFormat {
					t.Errorf("Format = %v, want %v", r.Format(), wantFormat)
				}
				var d Datagram
				for i, want := range []string{"first", "second-payload"} {
					if err := r.Next(&d); err != nil {
						t.Fatalf("Next %d: %v", i+1, err)
					}
					wantTS := int64(ts0 + 1001*i)
					if ff.micro {
						wantTS -= wantTS % 1000
					}
					if d.PacketNum != i+1 || d.Time != wantTS || d.Src != wantSrc || d.Dst != wantDst || string(d.Payload) != want {
						t.Errorf("datagram %d = {%d %d %v %v %q}, want {%d %d %v %v %q}", i+1,
							d.PacketNum, d.Time, d.Src, d.Dst, d.Payload, i+1, wantTS, wantSrc, wantDst, want)
					}
				}
				if err := r.Next(&d); err != io.EOF {
					t.Fatalf("Next at end = %v, want io.EOF", err)
				}
				if got := r.Stats(); got != (Stats{Packets: 2, Datagrams: 2}) {
					t.Errorf("Stats = %+v", got)
				}
				if !d.CaptureTime().Equal(time1(d.Time)) {
					t.Errorf("CaptureTime %v, Time %d", d.CaptureTime(), d.Time)
				}
			})
		}
	}
}

// TestReaderSkips checks that frames that are not IPv4 UDP are counted as
// skipped, not errors, and the next datagram is still read.
func TestReaderSkips(t *testing.T) {
	ipv6 := append([]byte{0x60}, make([]byte, 47)...)
	tcp := ipv4(ipHdr{proto: 6}, make([]byte, 20))
	tcpCut := eth(etherTypeIPv4, ipv4(ipHdr{proto: 6, total: 1500}, make([]byte, 20))) // snap-length cut: skipped, not malformed
	tests := []struct {
		name  string
		link  layers.LinkType
		frame []byte
	}{
		{"ethernet-ipv6", linkEthernet, eth(0x86dd, ipv6)},
		{"ethernet-arp", linkEthernet, eth(0x0806, make([]byte, 28))},
		{"ethernet-802.3", linkEthernet, eth(100, make([]byte, 100))},
		{"ethernet-vlan-ipv6", linkEthernet, eth(0x86dd, ipv6, etherTypeVLAN)},
		{"ethernet-tcp", linkEthernet, eth(etherTypeIPv4, tcp)},
		{"ethernet-tcp-cut", linkEthernet, tcpCut},
		{"ethernet-icmp", linkEthernet, eth(etherTypeIPv4, ipv4(ipHdr{proto: 1}, make([]byte, 8)))},
		{"sll-ipv6", linkSLL, sll(0x86dd, ipv6)},
		{"sll2-arp", linkSLL2, sll2(0x0806, make([]byte, 28))},
		{"raw-ipv6", linkRaw, ipv6},
		{"raw-tcp", linkRaw, tcp},
		{"ipv6-link", linkIPv6, ipv6},
		{"null-inet6-linux", linkNull, family(binary.LittleEndian, 10, ipv6)},
		{"null-inet6-bsd", linkNull, family(binary.LittleEndian, 24, ipv6)},
		{"loop-inet6", linkLoop, family(binary.BigEndian, 24, ipv6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var good []byte
			for _, lf := range linkFrames(dgram("after")) {
				if lf.link == tt.link {
					good = lf.frame
					break
				}
			}
			if tt.link == linkIPv6 {
				good = nil
			}
			recs := []rec{{ts: ts0, data: tt.frame}}
			if good != nil {
				recs = append(recs, rec{ts: ts0 + 1, data: good})
			}
			var out []outcome
			var st Stats
			if tt.link == linkIPv6 {
				r := mustReader(t, pcapngFile(t, []layers.LinkType{tt.link}, recs...), nil)
				out, st = readAll(t, r), r.Stats()
			} else {
				r := mustReader(t, pcapFile(binary.LittleEndian, true, tt.link, recs...), nil)
				out, st = readAll(t, r), r.Stats()
			}
			want := []outcome{{num: 2, payload: "after"}}
			wantStats := Stats{Packets: 2, Datagrams: 1, Skipped: 1}
			if good == nil {
				want, wantStats = nil, Stats{Packets: 1, Skipped: 1}
			}
			if fmt.Sprint(out) != fmt.Sprint(want) {
				t.Errorf("outcomes %v, want %v", out, want)
			}
			if st != wantStats {
				t.Errorf("Stats = %+v, want %+v", st, wantStats)
			}
		})
	}
}

// TestReaderMalformed reads a file where good packets alternate with bad
// ones: each bad one is a *PacketError of the right class, and every good
// one after it is still read.
func TestReaderMalformed(t *testing.T) {
	full := eth(etherTypeIPv4, dgram("0123456789abcdef"))
	badUDPLen := dgram("x")
	binary.BigEndian.PutUint16(badUDPLen[24:26], 200)
	shortUDPLen := dgram("x")
	binary.BigEndian.PutUint16(shortUDPLen[24:26], 7)
	manyTags := eth(etherTypeIPv4, dgram("x"), etherTypeVLAN, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN,
		etherTypeVLAN, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN, etherTypeVLAN)
	tiny := eth(etherTypeIPv4, dgram("p"))
	tiny = append(tiny, make([]byte, 60+4-len(tiny))...) // Ethernet padding and FCS

	type step struct {
		frame   []byte
		orig    int
		wantErr error  // nil: a datagram
		wantMsg string // in the error text
		payload string
	}
	steps := []step{
		{frame: eth(etherTypeIPv4, dgram("one")), payload: "one"},
		{frame: full[:14+20+4], orig: len(full), wantErr: ErrTruncated, wantMsg: "record cut to 38 of 58 bytes"},
		{frame: eth(etherTypeIPv4, dgram("three")), payload: "three"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{ihl: 4}, udp(1, 2, nil))), wantErr: ErrBadHeader, wantMsg: "IHL 4"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{proto: 6}, make([]byte, 20)))}, // TCP: skipped
		{frame: eth(0x86dd, make([]byte, 40))},                               // IPv6: skipped
		{frame: eth(0x0806, make([]byte, 28))},                               // ARP: skipped
		{frame: eth(etherTypeIPv4, badUDPLen), wantErr: ErrBadHeader, wantMsg: "UDP length 200"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{total: 500}, udp(1, 2, []byte("abc")))), wantErr: ErrTruncated, wantMsg: "total length 500"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{version: 5}, udp(1, 2, nil))), wantErr: ErrBadHeader, wantMsg: "IP version 5"},
		{frame: full[:10], wantErr: ErrTruncated, wantMsg: "Ethernet header"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{}, []byte{1, 2, 3, 4})), wantErr: ErrBadHeader, wantMsg: "cannot hold a UDP header"},
		{frame: eth(etherTypeIPv4, shortUDPLen), wantErr: ErrBadHeader, wantMsg: "UDP length 7"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{total: 10}, udp(1, 2, nil))), wantErr: ErrBadHeader, wantMsg: "total length 10"},
		{frame: eth(etherTypeIPv4, ipv4(ipHdr{ihl: 15, total: 28}, udp(1, 2, nil))), wantErr: ErrBadHeader, wantMsg: "total length 28 shorter than its 60-byte header"},
		{frame: eth(etherTypeIPv4, dgram("fourteen")), payload: "fourteen"},
		{frame: eth(etherTypeVLAN, []byte{0, 1}), wantErr: ErrTruncated, wantMsg: "VLAN tag"},
		{frame: manyTags, wantErr: ErrBadHeader, wantMsg: "more than 8 VLAN tags"},
		{frame: eth(etherTypeIPv4, dgram("x")[:12]), wantErr: ErrTruncated, wantMsg: "IPv4 header"},
		{frame: tiny, payload: "p"},
	}
	var recs []rec
	var want []outcome
	wantStats := Stats{}
	for i, s := range steps {
		recs = append(recs, rec{ts: ts0 + int64(i), data: s.frame, orig: s.orig})
		wantStats.Packets++
		switch {
		case s.wantErr != nil:
			want = append(want, outcome{num: i + 1, err: s.wantErr})
			wantStats.Malformed++
		case s.payload != "":
			want = append(want, outcome{num: i + 1, payload: s.payload})
			wantStats.Datagrams++
		default:
			wantStats.Skipped++
		}
	}
	for _, ng := range []bool{false, true} {
		t.Run(fmt.Sprintf("pcapng=%v", ng), func(t *testing.T) {
			file := pcapFile(binary.LittleEndian, true, linkEthernet, recs...)
			if ng {
				file = pcapngFile(t, []layers.LinkType{linkEthernet}, recs...)
			}
			r := mustReader(t, file, nil)
			got := readAll(t, r)
			if len(got) != len(want) {
				t.Fatalf("got %d outcomes %v, want %d", len(got), got, len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.num != w.num || g.payload != w.payload || !errors.Is(g.err, w.err) || (g.err == nil) != (w.err == nil) {
					t.Errorf("outcome %d = %+v, want %+v", i, g, w)
					continue
				}
				var pe *PacketError
				if w.err != nil && !errors.As(g.err, &pe) {
					t.Errorf("outcome %d: %v is not a *PacketError", i, g.err)
				}
				if w.err != nil && !strings.Contains(g.err.Error(), steps[w.num-1].wantMsg) {
					t.Errorf("outcome %d: error %q does not say %q", i, g.err, steps[w.num-1].wantMsg)
				}
				if w.err != nil && !strings.Contains(g.err.Error(), fmt.Sprintf("packet %d:", w.num)) {
					t.Errorf("outcome %d: error %q does not name the packet", i, g.err)
				}
			}
			if st := r.Stats(); st != wantStats {
				t.Errorf("Stats = %+v, want %+v", st, wantStats)
			}
		})
	}
}

// TestReaderTruncatedFile cuts a three-record file at every byte of its last
// record: the first two datagrams are read, then a *FileError for record 3
// wrapping io.ErrUnexpectedEOF, then io.EOF.
func TestReaderTruncatedFile(t *testing.T) {
	recs := []rec{
		{ts: ts0, data: eth(etherTypeIPv4, dgram("a"))},
		{ts: ts0 + 1, data: eth(etherTypeIPv4, dgram("b"))},
		{ts: ts0 + 2, data: eth(etherTypeIPv4, dgram("c"))},
	}
	for _, ff := range fileFormats {
		t.Run(ff.name, func(t *testing.T) {
			file := ff.build(t, linkEthernet, recs...)
			two := ff.build(t, linkEthernet, recs[:2]...)
			for cut := len(two) + 1; cut < len(file); cut++ {
				r := mustReader(t, file[:cut], nil)
				got := readAll(t, r)
				if len(got) != 3 || got[0].payload != "a" || got[1].payload != "b" {
					t.Fatalf("cut at %d of %d: outcomes %v", cut, len(file), got)
				}
				var fe *FileError
				if !errors.As(got[2].err, &fe) || fe.PacketNum != 3 || !errors.Is(fe, io.ErrUnexpectedEOF) {
					t.Fatalf("cut at %d of %d: third outcome %v, want FileError at record 3", cut, len(file), got[2].err)
				}
				if !strings.Contains(fe.Error(), "record 3") || !strings.Contains(fe.Error(), "truncated file") {
					t.Errorf("error text %q", fe)
				}
				if st := r.Stats(); st.Packets != 2 || st.Datagrams != 2 {
					t.Errorf("Stats = %+v", st)
				}
			}
			// Cut exactly between records: a clean end.
			out := readAll(t, mustReader(t, two, nil))
			if len(out) != 2 {
				t.Errorf("two-record file: %v", out)
			}
		})
	}
}

func TestReaderCorruptRecordHeader(t *testing.T) {
	file := pcapFile(binary.LittleEndian, true, linkEthernet,
		rec{ts: ts0, data: eth(etherTypeIPv4, dgram("a"))},
		rec{ts: ts0, data: eth(etherTypeIPv4, dgram("b")), orig: 10}, // captured more than the packet had
		rec{ts: ts0, data: eth(etherTypeIPv4, dgram("c"))},
	)
	got := readAll(t, mustReader(t, file, nil))
	var fe *FileError
	if len(got) != 2 || got[0].payload != "a" || !errors.As(got[1].err, &fe) || fe.PacketNum != 2 {
		t.Fatalf("outcomes %v", got)
	}
}

func TestNewReaderErrors(t *testing.T) {
	good := pcapFile(binary.LittleEndian, true, linkEthernet)
	wifi := pcapFile(binary.LittleEndian, true, 105) // 802.11
	tests := []struct {
		name string
		file []byte
		opts *Options
		want string
	}{
		{"empty", nil, nil, "empty file"},
		{"short", []byte{0xd4, 0xc3}, nil, "too short"},
		{"gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0}, nil, "gzip"},
		{"unknown", []byte("hello world, not a capture"), nil, "unknown magic"},
		{"kuznetzov", binary.LittleEndian.AppendUint32(nil, magicPcapModified), nil, "Kuznetzov"},
		{"pcap-header-cut", good[:20], nil, "unexpected EOF"},
		{"pcapng-header-cut", pcapngFile(t, []layers.LinkType{linkEthernet})[:10], nil, "unexpected EOF"},
		{"pcap-bad-version", append(binary.LittleEndian.AppendUint32(nil, magicPcapNano), make([]byte, 20)...), nil, "version"},
		{"unsupported-link", wifi, nil, "link type 105"},
		{"ipv6-filter", good, &Options{Dst: []netip.AddrPort{netip.MustParseAddrPort("[ff02::1]:5000")}}, "not an IPv4"},
		{"empty-filter-entry", good, &Options{Dst: []netip.AddrPort{{}}}, "neither address nor port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.file), tt.opts)
			if err == nil {
				t.Fatalf("NewReader succeeded: %v", r.Format())
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "replay: ") {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.pcap"), nil); err == nil || !strings.Contains(err.Error(), "missing.pcap") {
		t.Errorf("Open of a missing file: %v", err)
	}
}

// TestReaderPcapNGMixedInterfaces reads a pcapng file whose interfaces have
// different link types, one of them unsupported.
func TestReaderPcapNGMixedInterfaces(t *testing.T) {
	links := []layers.LinkType{linkEthernet, linkSLL2, linkRaw, 147 /* USER0 */, linkSLL}
	file := pcapngFile(t, links,
		rec{iface: 0, ts: ts0 + 0, data: eth(etherTypeIPv4, dgram("eth"))},
		rec{iface: 1, ts: ts0 + 1, data: sll2(etherTypeIPv4, dgram("sll2"))},
		rec{iface: 3, ts: ts0 + 2, data: dgram("user0")}, // unknown link type: skipped
		rec{iface: 2, ts: ts0 + 3, data: dgram("raw")},
		rec{iface: 4, ts: ts0 + 4, data: sll(etherTypeIPv4, dgram("sll"))},
		rec{iface: 0, ts: ts0 + 5, data: eth(etherTypeIPv4, dgram("eth2"))},
	)
	r := mustReader(t, file, nil)
	got := readAll(t, r)
	want := []outcome{{num: 1, payload: "eth"}, {num: 2, payload: "sll2"}, {num: 4, payload: "raw"}, {num: 5, payload: "sll"}, {num: 6, payload: "eth2"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if st := r.Stats(); st != (Stats{Packets: 6, Datagrams: 5, Skipped: 1}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestReaderFilter(t *testing.T) {
	pkt := func(dst string, port uint16, data string) rec {
		return rec{ts: ts0, data: eth(etherTypeIPv4, ipv4(ipHdr{dst: dst}, udp(4000, port, []byte(data))))}
	}
	file := pcapFile(binary.LittleEndian, true, linkEthernet,
		pkt("239.1.2.3", 5000, "exact"),
		pkt("239.1.2.3", 5001, "other-port"),
		pkt("239.9.9.9", 6000, "any-port-a"),
		pkt("239.9.9.9", 6001, "any-port-b"),
		pkt("239.7.7.7", 7000, "any-addr"),
		pkt("239.7.7.7", 7001, "nothing"),
	)
	opts := &Options{Dst: []netip.AddrPort{
		netip.MustParseAddrPort("239.1.2.3:5000"),
		netip.MustParseAddrPort("[::ffff:239.9.9.9]:0"), // IPv4-mapped works too
		netip.AddrPortFrom(netip.Addr{}, 7000),
	}}
	r := mustReader(t, file, opts)
	got := readAll(t, r)
	want := []outcome{{num: 1, payload: "exact"}, {num: 3, payload: "any-port-a"}, {num: 4, payload: "any-port-b"}, {num: 5, payload: "any-addr"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if st := r.Stats(); st != (Stats{Packets: 6, Datagrams: 4, Filtered: 2}) {
		t.Errorf("Stats = %+v", st)
	}
}

// fragment cuts the IPv4 payload p (UDP header first) at the given byte
// offsets and returns one IPv4 packet per piece.
func fragment(h ipHdr, p []byte, cuts ...int) [][]byte {
	var out [][]byte
	bounds := append(append([]int{0}, cuts...), len(p))
	for i := 0; i+1 < len(bounds); i++ {
		off, end := bounds[i], bounds[i+1]
		fh := h
		fh.frag = uint16(off / 8)
		if end < len(p) {
			fh.frag |= 0x2000
		}
		out = append(out, ipv4(fh, p[off:end]))
	}
	return out
}

// fragPiece builds one fragment by hand: offset in bytes, more flag, data.
func fragPiece(id uint16, off int, more bool, data []byte) []byte {
	f := uint16(off / 8)
	if more {
		f |= 0x2000
	}
	return ipv4(ipHdr{id: id, frag: f}, data)
}

func TestReaderFragments(t *testing.T) {
	data := make([]byte, 4000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	big := string(data)
	pA := udp(4000, 5000, data)
	pB := udp(4000, 5000, []byte(strings.Repeat("B", 2000)))
	a := fragment(ipHdr{id: 1}, pA, 1480, 2960)
	b := fragment(ipHdr{id: 2}, pB, 1480)
	badUDP := udp(4000, 5000, data)
	binary.BigEndian.PutUint16(badUDP[4:6], 9999)
	bad := fragment(ipHdr{id: 3}, badUDP, 1480, 2960)
	tcpFrag := fragment(ipHdr{id: 4, proto: 6}, make([]byte, 3000), 1480)
	plain := dgram("plain")
	const sec = int64(time.Second)

	type pkt struct {
		ip []byte
		ts int64
	}
	at := func(ts int64, ips ...[]byte) []pkt {
		var out []pkt
		for _, ip := range ips {
			out = append(out, pkt{ip, ts})
		}
		return out
	}
	tests := []struct {
		name  string
		opts  *Options
		pkts  []pkt
		want  []outcome // errors compared with errors.Is
		stats Stats
	}{
		{
			name:  "in order",
			pkts:  at(ts0, a[0], a[1], a[2]),
			want:  []outcome{{num: 3, payload: big}},
			stats: Stats{Packets: 3, Datagrams: 1, Fragments: 3, Reassembled: 1},
		},
		{
			name:  "reversed",
			pkts:  at(ts0, a[2], a[1], a[0]),
			want:  []outcome{{num: 3, payload: big}},
			stats: Stats{Packets: 3, Datagrams: 1, Fragments: 3, Reassembled: 1},
		},
		{
			name:  "interleaved with another datagram and a plain one",
			pkts:  at(ts0, a[1], b[1], plain, a[2], b[0], a[0]),
			want:  []outcome{{num: 3, payload: "plain"}, {num: 5, payload: strings.Repeat("B", 2000)}, {num: 6, payload: big}},
			stats: Stats{Packets: 6, Datagrams: 3, Fragments: 5, Reassembled: 2},
		},
		{
			name:  "Ethernet trailer after fragments",
			pkts:  at(ts0, append(a[0], make([]byte, 30)...), a[1], append(fragPiece(1, 4000, false, pA[4000:]), make([]byte, 30)...), fragPiece(1, 2960, true, pA[2960:4000])),
			want:  []outcome{{num: 4, payload: big}},
			stats: Stats{Packets: 4, Datagrams: 1, Fragments: 4, Reassembled: 1},
		},
		{
			name:  "exact duplicate dropped",
			pkts:  at(ts0, a[0], a[0], a[1], a[2]),
			want:  []outcome{{num: 4, payload: big}},
			stats: Stats{Packets: 4, Datagrams: 1, Fragments: 4, Reassembled: 1, FragmentsDropped: 1},
		},
		{
			name: "overlap rejects the datagram",
			pkts: at(ts0, a[0], fragPiece(1, 1472, true, pA[1472:2960]), a[2]),
			want: []outcome{{num: 2, err: ErrBadFragment}},
			// a[0] dropped with the datagram; a[2] opens a new one, left at EOF.
			stats: Stats{Packets: 3, Malformed: 1, Fragments: 2, FragmentsDropped: 2},
		},
		{
			name:  "length not a multiple of 8",
			pkts:  at(ts0, fragPiece(1, 0, true, pA[:1481]), a[1], a[2]),
			want:  []outcome{{num: 1, err: ErrBadFragment}},
			stats: Stats{Packets: 3, Malformed: 1, Fragments: 2, FragmentsDropped: 2},
		},
		{
			name:  "empty fragment",
			pkts:  at(ts0, fragPiece(1, 1480, true, nil)),
			want:  []outcome{{num: 1, err: ErrBadFragment}},
			stats: Stats{Packets: 1, Malformed: 1},
		},
		{
			name:  "second last fragment disagrees",
			pkts:  at(ts0, a[2], fragPiece(1, 1480, false, pA[1480:2000])),
			want:  []outcome{{num: 2, err: ErrBadFragment}},
			stats: Stats{Packets: 2, Malformed: 1, Fragments: 1, FragmentsDropped: 1},
		},
		{
			name:  "fragment past the end",
			pkts:  at(ts0, a[2], fragPiece(1, 2960, true, make([]byte, 2000))),
			want:  []outcome{{num: 2, err: ErrBadFragment}},
			stats: Stats{Packets: 2, Malformed: 1, Fragments: 1, FragmentsDropped: 1},
		},
		{
			name:  "last fragment before data held",
			pkts:  at(ts0, a[1], fragPiece(1, 8, false, pA[8:1000])),
			want:  []outcome{{num: 2, err: ErrBadFragment}},
			stats: Stats{Packets: 2, Malformed: 1, Fragments: 1, FragmentsDropped: 1},
		},
		{
			name:  "past the size limit",
			pkts:  at(ts0, fragPiece(1, 65528, false, make([]byte, 16))),
			want:  []outcome{{num: 1, err: ErrBadFragment}},
			stats: Stats{Packets: 1, Malformed: 1},
		},
		{
			name:  "too many fragments",
			opts:  &Options{MaxFragments: 2},
			pkts:  at(ts0, a[0], a[1], a[2]),
			want:  []outcome{{num: 3, err: ErrBadFragment}},
			stats: Stats{Packets: 3, Malformed: 1, Fragments: 2, FragmentsDropped: 2},
		},
		{
			name: "timeout by capture time",
			opts: &Options{FragmentTimeout: time.Second},
			pkts: append(at(ts0, a[0]), at(ts0+2*sec, a[1], a[2])...),
			// a[0] expires when a[1] comes; a[1] and a[2] are left at EOF.
			stats: Stats{Packets: 3, Fragments: 3, FragmentsDropped: 3},
		},
		{
			name:  "within the timeout",
			opts:  &Options{FragmentTimeout: 3 * time.Second},
			pkts:  append(at(ts0, a[0]), at(ts0+2*sec, a[1], a[2])...),
			want:  []outcome{{num: 3, payload: big}},
			stats: Stats{Packets: 3, Datagrams: 1, Fragments: 3, Reassembled: 1},
		},
		{
			name:  "eviction of the oldest",
			opts:  &Options{MaxReassemblies: 1},
			pkts:  at(ts0, a[0], b[0], b[1], a[1], a[2]),
			want:  []outcome{{num: 3, payload: strings.Repeat("B", 2000)}},
			stats: Stats{Packets: 5, Datagrams: 1, Fragments: 5, Reassembled: 1, FragmentsDropped: 3},
		},
		{
			name:  "no reassembly",
			opts:  &Options{NoReassembly: true},
			pkts:  at(ts0, a[0], a[1], plain, a[2]),
			want:  []outcome{{num: 3, payload: "plain"}},
			stats: Stats{Packets: 4, Datagrams: 1, Fragments: 3, FragmentsDropped: 3},
		},
		{
			name:  "fragments of TCP skipped",
			pkts:  at(ts0, tcpFrag[0], tcpFrag[1]),
			stats: Stats{Packets: 2, Skipped: 2},
		},
		{
			name:  "bad UDP header after reassembly",
			pkts:  at(ts0, bad[0], bad[2], bad[1], plain),
			want:  []outcome{{num: 3, err: ErrBadHeader}, {num: 4, payload: "plain"}},
			stats: Stats{Packets: 4, Datagrams: 1, Malformed: 1, Fragments: 2, FragmentsDropped: 2},
		},
		{
			name:  "reassembled and filtered",
			opts:  &Options{Dst: []netip.AddrPort{netip.MustParseAddrPort("239.1.2.3:5999")}},
			pkts:  at(ts0, a[0], a[1], a[2]),
			stats: Stats{Packets: 3, Filtered: 1, Fragments: 3, Reassembled: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []rec
			for _, p := range tt.pkts {
				recs = append(recs, rec{ts: p.ts, data: eth(etherTypeIPv4, p.ip)})
			}
			for _, ng := range []bool{false, true} {
				file := pcapFile(binary.LittleEndian, true, linkEthernet, recs...)
				if ng {
					file = pcapngFile(t, []layers.LinkType{linkEthernet}, recs...)
				}
				r := mustReader(t, file, tt.opts)
				got := readAll(t, r)
				if len(got) != len(tt.want) {
					t.Fatalf("pcapng=%v: got %d outcomes, want %d: %v", ng, len(got), len(tt.want), got)
				}
				for i, w := range tt.want {
					g := got[i]
					if g.num != w.num || g.payload != w.payload || (w.err == nil) != (g.err == nil) || !errors.Is(g.err, w.err) {
						t.Errorf("pcapng=%v: outcome %d = {%d %.20q %v}, want {%d %.20q %v}", ng, i, g.num, g.payload, g.err, w.num, w.payload, w.err)
					}
				}
				if st := r.Stats(); st != tt.stats {
					t.Errorf("pcapng=%v: Stats = %+v, want %+v", ng, st, tt.stats)
				}
			}
		})
	}
}

// TestReassembledTime checks the time and record of a reassembled datagram:
// those of the fragment that completed it.
func TestReassembledTime(t *testing.T) {
	p := udp(4000, 5000, make([]byte, 3000))
	f := fragment(ipHdr{id: 9}, p, 1480)
	file := pcapFile(binary.BigEndian, true, linkRaw, rec{ts: ts0, data: f[1]}, rec{ts: ts0 + 5000, data: dgram("x")[:0]}, rec{ts: ts0 + 7777, data: f[0]})
	r := mustReader(t, file, nil)
	var d Datagram
	if err := r.Next(&d); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Next = %v, want ErrTruncated for the empty record", err)
	}
	if err := r.Next(&d); err != nil {
		t.Fatal(err)
	}
	if d.PacketNum != 3 || d.Time != ts0+7777 || len(d.Payload) != 3000 || d.Src != wantSrc || d.Dst != wantDst {
		t.Errorf("datagram %d %d %d %v %v", d.PacketNum, d.Time, len(d.Payload), d.Src, d.Dst)
	}
}

// roundTripData is what TestWriterRoundTrip writes and reads back.
func roundTripData() []Datagram {
	var ds []Datagram
	for i := range 300 {
		payload := make([]byte, (i*37)%1473)
		for j := range payload {
			payload[j] = byte(i + j)
		}
		ds = append(ds, Datagram{
			Time:    ts0 + int64(i)*1_000_003 + int64(i%7),
			Src:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 5)}), uint16(40000+i)),
			Dst:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, byte(128 + i%3), byte(i), 7}), uint16(5000+i%4)),
			Payload: payload,
		})
	}
	// Unicast and broadcast destinations, an empty payload, the largest one.
	ds = append(ds,
		Datagram{Time: 1, Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("127.0.0.2:2"), Payload: nil},
		Datagram{Time: 0, Src: netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), Dst: netip.MustParseAddrPort("255.255.255.255:9"), Payload: []byte("bcast")},
		Datagram{Time: ts0, Src: wantSrc, Dst: wantDst, Payload: bytes.Repeat([]byte{0xab}, MaxPayload)},
	)
	return ds
}

func TestWriterRoundTrip(t *testing.T) {
	ds := roundTripData()
	for _, format := range []Format{Pcap, PcapNG} {
		t.Run(format.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, format)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ds {
				if err := w.WriteDatagram(&ds[i]); err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			file := buf.Bytes()

			r := mustReader(t, file, nil)
			if r.Format() != format {
				t.Errorf("Format = %v", r.Format())
			}
			var d Datagram
			for i, want := range ds {
				if err := r.Next(&d); err != nil {
					t.Fatalf("Next %d: %v", i, err)
				}
				want.Src = netip.AddrPortFrom(want.Src.Addr().Unmap(), want.Src.Port())
				if d.PacketNum != i+1 || d.Time != want.Time || d.Src != want.Src || d.Dst != want.Dst || !bytes.Equal(d.Payload, want.Payload) {
					t.Fatalf("datagram %d = {%d %d %v %v %d bytes}, want {%d %d %v %v %d bytes}", i,
						d.PacketNum, d.Time, d.Src, d.Dst, len(d.Payload), i+1, want.Time, want.Src, want.Dst, len(want.Payload))
				}
			}
			if err := r.Next(&d); err != io.EOF {
				t.Fatalf("Next at end = %v", err)
			}
			checkFrames(t, file, format, ds)
		})
	}
}

// checkFrames reads the Writer's output with pcapgo alone and checks the
// file header and each frame's MACs and checksums.
func checkFrames(t *testing.T, file []byte, format Format, ds []Datagram) {
	t.Helper()
	var next func() ([]byte, error)
	switch format {
	case Pcap:
		if m := binary.LittleEndian.Uint32(file); m != magicPcapNano {
			t.Fatalf("pcap magic %08x, want the nanosecond one", m)
		}
		pr, err := pcapgo.NewReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if pr.LinkType() != layers.LinkTypeEthernet {
			t.Errorf("link type %v", pr.LinkType())
		}
		next = func() ([]byte, error) { b, _, err := pr.ReadPacketData(); return b, err }
	case PcapNG:
		nr, err := pcapgo.NewNgReader(bytes.NewReader(file), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		intf, err := nr.Interface(0)
		if err != nil {
			t.Fatal(err)
		}
		if intf.TimestampResolution != 9 || intf.LinkType != layers.LinkTypeEthernet {
			t.Errorf("interface: tsresol %d, link type %v", intf.TimestampResolution, intf.LinkType)
		}
		next = func() ([]byte, error) { b, _, err := nr.ReadPacketData(); return b, err }
	}
	for i, d := range ds {
		f, err := next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		dst := d.Dst.Addr().As4()
		var wantMAC []byte
		switch {
		case dst[0]>>4 == 14:
			wantMAC = []byte{0x01, 0x00, 0x5e, dst[1] & 0x7f, dst[2], dst[3]}
		case dst == [4]byte{255, 255, 255, 255}:
			wantMAC = bytes.Repeat([]byte{0xff}, 6)
		default:
			wantMAC = []byte{2, 0, 0, 0, 0, 0}
		}
		if !bytes.Equal(f[0:6], wantMAC) || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
			t.Fatalf("frame %d: Ethernet header % x", i, f[:14])
		}
		ip := f[14:34]
		if !checksumOK(ip) {
			t.Fatalf("frame %d: bad IPv4 header checksum % x", i, ip)
		}
		udpSeg := f[34:]
		pseudo := append(append(append([]byte{}, ip[12:20]...), 0, ipProtoUDP), udpSeg[4:6]...)
		if binary.BigEndian.Uint16(udpSeg[6:8]) == 0 || !checksumOK(pseudo, udpSeg) {
			t.Fatalf("frame %d: bad UDP checksum", i)
		}
	}
	if _, err := next(); err != io.EOF {
		t.Errorf("after the last frame: %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	src, dst := wantSrc, wantDst
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5000")
	tests := []struct {
		name    string
		format  Format
		ts      int64
		src     netip.AddrPort
		dst     netip.AddrPort
		payload []byte
		want    string
	}{
		{"ipv6 source", Pcap, 0, v6, dst, nil, "source"},
		{"ipv6 destination", PcapNG, 0, src, v6, nil, "destination"},
		{"zero destination", Pcap, 0, src, netip.AddrPort{}, nil, "destination"},
		{"too large", Pcap, 0, src, dst, make([]byte, MaxPayload+1), "over the IPv4 limit"},
		{"negative time", PcapNG, -1, src, dst, nil, "negative"},
		{"past 2106 in pcap", Pcap, (1 << 32) * int64(time.Second), src, dst, nil, "2106"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(io.Discard, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteUDP(tt.ts, tt.src, tt.dst, tt.payload); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteUDP = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if _, err := NewWriter(io.Discard, Format(9)); err == nil {
		t.Error("NewWriter accepted an unknown format")
	}
	// pcapng has no 2106 limit.
	w, _ := NewWriter(io.Discard, PcapNG)
	if err := w.WriteUDP((1<<32)*int64(time.Second), src, dst, nil); err != nil {
		t.Errorf("pcapng after 2106: %v", err)
	}
}

func TestCreateOpen(t *testing.T) {
	for _, format := range []Format{Pcap, PcapNG} {
		name := filepath.Join(t.TempDir(), "feed."+format.String())
		w, err := Create(name, format)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteUDP(ts0, wantSrc, wantDst, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, r)
		if len(got) != 1 || got[0].payload != "hello" {
			t.Errorf("%v: %v", format, got)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestTcpdumpReadsWriterOutput checks that tcpdump (libpcap) reads both
// formats the Writer writes, with nanosecond times and valid checksums.
func TestTcpdumpReadsWriterOutput(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump binary not found in PATH: install the tcpdump package to run this check (the Makefile does for CI)")
	}
	for _, format := range []Format{Pcap, PcapNG} {
		t.Run(format.String(), func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "out."+format.String())
			w, err := Create(name, format)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := w.WriteUDP(ts0+int64(i), wantSrc, wantDst, []byte(strings.Repeat("x", 10+i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tcpdump, "-nn", "-vv", "-tt", "--time-stamp-precision=nano", "-r", name).CombinedOutput()
			if err != nil {
				t.Fatalf("tcpdump: %v\n%s", err, out)
			}
			text := string(out)
			for i := range 3 {
				stamp := fmt.Sprintf("%d.%09d", int64(ts0)/1e9, int64(ts0)%1e9+int64(i))
				if !strings.Contains(text, stamp) {
					t.Errorf("tcpdump output lacks timestamp %s:\n%s", stamp, text)
				}
				if !strings.Contains(text, fmt.Sprintf("length %d", 10+i)) {
					t.Errorf("tcpdump output lacks the datagram of %d bytes:\n%s", 10+i, text)
				}
			}
			if n := strings.Count(text, "192.0.2.1.4000 > 239.1.2.3.5000: [udp sum ok] "); n != 3 {
				t.Errorf("tcpdump shows %d datagrams with a good UDP checksum, want 3:\n%s", n, text)
			}
			if strings.Contains(text, "bad") {
				t.Errorf("tcpdump reports a bad field:\n%s", text)
			}
		})
	}
}

// TestReaderNoAllocs checks the per-datagram path allocates nothing once
// warm, for unfragmented and fragmented traffic, in both formats.
func TestReaderNoAllocs(t *testing.T) {
	const n = 3000
	p := udp(4000, 5000, make([]byte, 3000))
	frags := fragment(ipHdr{id: 7}, p, 1480, 2960)
	var plain, fragd []rec
	for i := range n {
		plain = append(plain, rec{ts: ts0 + int64(i), data: eth(etherTypeIPv4, dgram("market data"), etherTypeVLAN)})
		fragd = append(fragd, rec{ts: ts0 + int64(i), data: eth(etherTypeIPv4, frags[i%3])})
	}
	files := map[string][]byte{
		"pcap":              pcapFile(binary.LittleEndian, true, linkEthernet, plain...),
		"pcapng":            pcapngFile(t, []layers.LinkType{linkEthernet}, plain...),
		"pcap-fragments":    pcapFile(binary.LittleEndian, true, linkEthernet, fragd...),
		"pcap-filtered":     pcapFile(binary.LittleEndian, true, linkEthernet, plain...),
		"pcapng-two-ifaces": pcapngFile(t, []layers.LinkType{linkEthernet, linkSLL}, plain...),
	}
	for name, file := range files {
		var opts *Options
		if name == "pcap-filtered" {
			opts = &Options{Dst: []netip.AddrPort{netip.MustParseAddrPort("239.1.2.3:0")}}
		}
		r := mustReader(t, file, opts)
		var d Datagram
		allocs := testing.AllocsPerRun(n/4, func() {
			if err := r.Next(&d); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per datagram, want 0", name, allocs)
		}
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{Pcap: "pcap", PcapNG: "pcapng", 0: "Format(0)"} {
		if f.String() != want {
			t.Errorf("%d: %q", int(f), f.String())
		}
	}
}

// TestCreateComment checks that a section comment written with CreateComment is read
// back by Reader.Comment (and by pcapgo), that a pcap file refuses one, and that a file
// without one reads "".
func TestCreateComment(t *testing.T) {
	const comment = `fastfeed-record {"flags":{"topics":"SBER"}}`
	name := filepath.Join(t.TempDir(), "c.pcapng")
	w, err := CreateComment(name, PcapNG, comment)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteUDP(ts0, wantSrc, wantDst, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Comment(); got != comment {
		t.Errorf("Comment() = %q, want %q", got, comment)
	}
	if got := readAll(t, r); len(got) != 1 || got[0].payload != "hello" {
		t.Errorf("datagrams after the comment: %v", got)
	}
	if _, err := NewWriterComment(io.Discard, Pcap, comment); err == nil || !strings.Contains(err.Error(), "no room for a comment") {
		t.Errorf("pcap with a comment: err = %v", err)
	}
	var buf bytes.Buffer
	w2, err := NewWriter(&buf, PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	r2, err := NewReader(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Comment(); got != "" {
		t.Errorf("no comment written, Comment() = %q", got)
	}
}
