package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Frame and file builders for the tests, written independently of the
// Writer so that the Reader is not only checked against it.

// ipHdr describes an IPv4 header to build; zero fields take sane defaults.
type ipHdr struct {
	src, dst string // dotted quads; default 192.0.2.1 -> 239.1.2.3
	ihl      int    // header length in 32-bit words; default 5
	version  byte   // default 4
	proto    byte   // default UDP
	id       uint16
	frag     uint16 // flags and fragment offset field, as on the wire
	total    int    // total length; default header + payload
}

func ipv4(h ipHdr, payload []byte) []byte {
	if h.src == "" {
		h.src = "192.0.2.1"
	}
	if h.dst == "" {
		h.dst = "239.1.2.3"
	}
	if h.ihl == 0 {
		h.ihl = 5
	}
	if h.version == 0 {
		h.version = 4
	}
	if h.proto == 0 {
		h.proto = ipProtoUDP
	}
	hlen := h.ihl * 4
	if hlen < 20 {
		hlen = 20 // keep room for the addresses even when IHL lies
	}
	if h.total == 0 {
		h.total = hlen + len(payload)
	}
	b := make([]byte, hlen, hlen+len(payload))
	b[0] = h.version<<4 | byte(h.ihl)
	binary.BigEndian.PutUint16(b[2:4], uint16(h.total))
	binary.BigEndian.PutUint16(b[4:6], h.id)
	binary.BigEndian.PutUint16(b[6:8], h.frag)
	b[8] = 32
	b[9] = h.proto
	s, d := netip.MustParseAddr(h.src).As4(), netip.MustParseAddr(h.dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	return append(b, payload...)
}

// udp builds a UDP header and data, checksum 0 (none).
func udp(sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(data)))
	return append(b, data...)
}

// dgram is a plain IPv4 UDP packet 192.0.2.1:4000 -> 239.1.2.3:5000.
func dgram(data string) []byte {
	return ipv4(ipHdr{}, udp(4000, 5000, []byte(data)))
}

// eth wraps payload in Ethernet with the given VLAN TPIDs, outermost first.
func eth(etype uint16, payload []byte, tpids ...uint16) []byte {
	b := []byte{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, 0x02, 0, 192, 0, 2, 1}
	for i, tpid := range tpids {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, uint16(100+i)) // TCI: VLAN id
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

func sll(proto uint16, payload []byte) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b[0:2], 0) // to us
	binary.BigEndian.PutUint16(b[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(b[4:6], 6)
	copy(b[6:12], []byte{2, 0, 192, 0, 2, 1})
	binary.BigEndian.PutUint16(b[14:16], proto)
	return append(b, payload...)
}

func sll2(proto uint16, payload []byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:2], proto)
	binary.BigEndian.PutUint32(b[4:8], 3) // interface index
	binary.BigEndian.PutUint16(b[8:10], 1)
	b[10] = 2 // multicast
	b[11] = 6
	copy(b[12:18], []byte{2, 0, 192, 0, 2, 1})
	return append(b, payload...)
}

func family(order binary.AppendByteOrder, af uint32, payload []byte) []byte {
	return append(order.AppendUint32(nil, af), payload...)
}

// rec is one record of a synthesised capture.
type rec struct {
	iface int // pcapng interface
	ts    int64
	data  []byte
	orig  int // original length; default len(data)
}

// pcapFile builds a classic pcap file by hand, in either byte order and
// either timestamp resolution.
func pcapFile(order binary.AppendByteOrder, nano bool, link layers.LinkType, recs ...rec) []byte {
	magic := uint32(magicPcapMicro)
	if nano {
		magic = magicPcapNano
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, uint32(link))
	for _, r := range recs {
		frac := r.ts % 1e9
		if !nano {
			frac /= 1000
		}
		orig := r.orig
		if orig == 0 {
			orig = len(r.data)
		}
		b = order.AppendUint32(b, uint32(r.ts/1e9))
		b = order.AppendUint32(b, uint32(frac))
		b = order.AppendUint32(b, uint32(len(r.data)))
		b = order.AppendUint32(b, uint32(orig))
		b = append(b, r.data...)
	}
	return b
}

// pcapngFile builds a pcapng file with one interface per link type.
func pcapngFile(t testing.TB, links []layers.LinkType, recs ...rec) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{LinkType: links[0], SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links[1:] {
		if _, err := w.AddInterface(pcapgo.NgInterface{LinkType: l, SnapLength: 65535}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range recs {
		orig := r.orig
		if orig == 0 {
			orig = len(r.data)
		}
		ci := gopacket.CaptureInfo{Timestamp: time1(r.ts), CaptureLength: len(r.data), Length: orig, InterfaceIndex: r.iface}
		if err := w.WritePacket(ci, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// outcome is what one call to Next gave.
type outcome struct {
	num     int    // PacketNum of the datagram or the error
	payload string // datagram payload
	err     error  // nil, *PacketError or *FileError
}

// readAll calls Next until io.EOF, checking that calls after io.EOF keep
// returning it.
func readAll(t testing.TB, r *Reader) []outcome {
	t.Helper()
	var out []outcome
	var d Datagram
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("Next never returned io.EOF")
		}
		err := r.Next(&d)
		if err == io.EOF {
			break
		}
		var pe *PacketError
		var fe *FileError
		switch {
		case err == nil:
			out = append(out, outcome{num: d.PacketNum, payload: string(d.Payload)})
		case errors.As(err, &pe):
			out = append(out, outcome{num: pe.PacketNum, err: err})
		case errors.As(err, &fe):
			out = append(out, outcome{num: fe.PacketNum, err: err})
		default:
			t.Fatalf("Next: untyped error %v", err)
		}
	}
	for range 2 {
		if err := r.Next(&d); err != io.EOF {
			t.Fatalf("Next after the end = %v, want io.EOF", err)
		}
	}
	checkInvariant(t, r.Stats())
	return out
}

func checkInvariant(t testing.TB, s Stats) {
	t.Helper()
	if s.Packets != s.Skipped+s.Malformed+s.Fragments+s.Datagrams+s.Filtered-s.Reassembled {
		t.Errorf("stats do not add up: %+v", s)
	}
	if s.FragmentsDropped > s.Fragments {
		t.Errorf("more fragments dropped than taken: %+v", s)
	}
}

func mustReader(t testing.TB, file []byte, opts *Options) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file), opts)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r
}

// checksumOK reports whether the one's-complement sum of the given byte
// slices folds to 0xffff, as a valid IPv4 or UDP checksum makes it.
func checksumOK(parts ...[]byte) bool {
	var sum uint32
	for _, p := range parts {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}
