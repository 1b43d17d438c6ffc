package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

const (
	// writeSnapLen is the snap length the Writer declares (libpcap's
	// MAXIMUM_SNAPLEN); it never truncates a frame.
	writeSnapLen = 262144
	// MaxPayload is the largest UDP payload the Writer takes: an IPv4
	// datagram of 65535 bytes less its IPv4 and UDP headers.
	MaxPayload     = 65535 - ipv4MinHeader - udpHeaderLen
	frameHeaderLen = 14 + ipv4MinHeader + udpHeaderLen
)

// A Writer writes UDP datagrams to a capture file as Ethernet/IPv4/UDP
// frames, with nanosecond timestamps. It is not safe for concurrent use.
//
// Frames carry a locally administered source MAC made from the source
// address (02:00 and its four bytes), the IPv4 multicast MAC for a multicast
// destination (01:00:5e and the group's low 23 bits), the broadcast MAC for
// 255.255.255.255 and 02:00:00:00:00:00 otherwise; a valid IPv4 header
// checksum, an identification counting up from 1, TTL 1 for multicast (the
// kernel's default) and 64 otherwise, and a valid UDP checksum. Datagrams are
// never fragmented: one larger than the link's MTU is written as one frame.
type Writer struct {
	format Format
	bw     *bufio.Writer // under pcap
	pcap   *pcapgo.Writer
	ng     *pcapgo.NgWriter
	closer io.Closer
	frame  []byte
	ipID   uint16
}

// NewWriter writes the file header of the given format to w and returns a
// Writer for its datagrams. Writes are buffered: call Flush or Close.
func NewWriter(w io.Writer, format Format) (*Writer, error) {
	return NewWriterComment(w, format, "")
}

// NewWriterComment is NewWriter with a comment in the pcapng section header
// (the opt_comment option, which Reader.Comment, Wireshark's capture file
// properties and tshark -r show). A classic pcap file has no place for it: the
// comment must be empty.
func NewWriterComment(w io.Writer, format Format, comment string) (*Writer, error) {
	if comment != "" && format != PcapNG {
		return nil, fmt.Errorf("replay: a %v capture has no room for a comment", format)
	}
	wr := &Writer{format: format, frame: make([]byte, 0, 2048)}
	switch format {
	case Pcap:
		wr.bw = bufio.NewWriterSize(w, 64<<10)
		wr.pcap = pcapgo.NewWriterNanos(wr.bw)
		if err := wr.pcap.WriteFileHeader(writeSnapLen, layers.LinkTypeEthernet); err != nil {
			return nil, fmt.Errorf("replay: writing pcap header: %w", err)
		}
	case PcapNG:
		intf := pcapgo.NgInterface{
			Name:                "fastfeed",
			LinkType:            layers.LinkTypeEthernet,
			SnapLength:          writeSnapLen,
			TimestampResolution: 9, // pcapgo always writes 9: nanoseconds
		}
		opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
			Application: "fastfeed",
			OS:          runtime.GOOS,
			Hardware:    runtime.GOARCH,
			Comment:     comment,
		}}
		ng, err := pcapgo.NewNgWriterInterface(w, intf, opts)
		if err != nil {
			return nil, fmt.Errorf("replay: writing pcapng header: %w", err)
		}
		wr.ng = ng
	default:
		return nil, fmt.Errorf("replay: unknown capture format %v", format)
	}
	return wr, nil
}

// Create creates (or truncates) the file name and returns a Writer to it.
// Close the Writer to flush and close the file.
func Create(name string, format Format) (*Writer, error) {
	return CreateComment(name, format, "")
}

// CreateComment is Create with a section comment (see NewWriterComment).
func CreateComment(name string, format Format, comment string) (*Writer, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	w, err := NewWriterComment(f, format, comment)
	if err != nil {
		f.Close()
		os.Remove(name)
		return nil, err
	}
	w.closer = f
	return w, nil
}

// WriteDatagram writes d (its Time, Src, Dst and Payload) as one frame.
func (w *Writer) WriteDatagram(d *Datagram) error {
	return w.WriteUDP(d.Time, d.Src, d.Dst, d.Payload)
}

// WriteUDP writes one datagram from src to dst, captured at ts nanoseconds
// since the Unix epoch. A recorder passes the kernel's receive timestamp
// here, e.g. unix.Timespec.Nano() of an SO_TIMESTAMPNS control message, or
// time.Time.UnixNano() of its own clock. Both addresses must be IPv4 (or
// IPv4-mapped IPv6) and ts must not be negative; classic pcap also limits ts
// to before 2106.
func (w *Writer) WriteUDP(ts int64, src, dst netip.AddrPort, payload []byte) error {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	switch {
	case !s.Is4():
		return fmt.Errorf("replay: writing datagram: source %v is not IPv4", src)
	case !d.Is4():
		return fmt.Errorf("replay: writing datagram: destination %v is not IPv4", dst)
	case len(payload) > MaxPayload:
		return fmt.Errorf("replay: writing datagram: payload of %d bytes, over the IPv4 limit %d", len(payload), MaxPayload)
	case ts < 0:
		return fmt.Errorf("replay: writing datagram: negative timestamp %d", ts)
	case w.format == Pcap && ts/1e9 > math.MaxUint32:
		return fmt.Errorf("replay: writing datagram: timestamp %d past the pcap limit (year 2106)", ts)
	}
	w.ipID++
	if w.ipID == 0 {
		w.ipID = 1
	}
	w.frame = appendFrame(w.frame[:0], s.As4(), d.As4(), src.Port(), dst.Port(), w.ipID, payload)
	ci := gopacket.CaptureInfo{
		Timestamp:     time.Unix(0, ts),
		CaptureLength: len(w.frame),
		Length:        len(w.frame),
	}
	var err error
	if w.ng != nil {
		err = w.ng.WritePacket(ci, w.frame)
	} else {
		err = w.pcap.WritePacket(ci, w.frame)
	}
	if err != nil {
		return fmt.Errorf("replay: writing datagram: %w", err)
	}
	return nil
}

// Flush writes buffered frames to the underlying writer.
func (w *Writer) Flush() error {
	var err error
	if w.ng != nil {
		err = w.ng.Flush()
	} else {
		err = w.bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("replay: flushing capture: %w", err)
	}
	return nil
}

// Close flushes the Writer and, if it was made by Create, closes its file.
func (w *Writer) Close() error {
	err := w.Flush()
	if w.closer != nil {
		c := w.closer
		w.closer = nil
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("replay: closing capture: %w", cerr))
		}
	}
	return err
}

// appendFrame appends an Ethernet/IPv4/UDP frame carrying payload to b.
func appendFrame(b []byte, src, dst [4]byte, sport, dport, id uint16, payload []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, frameHeaderLen)...)
	b = append(b, payload...)
	h := b[n : n+frameHeaderLen]

	// Ethernet.
	switch {
	case dst[0]&0xf0 == 0xe0: // 224.0.0.0/4
		copy(h[0:6], []byte{0x01, 0x00, 0x5e, dst[1] & 0x7f, dst[2], dst[3]})
	case dst == [4]byte{255, 255, 255, 255}:
		copy(h[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	default:
		copy(h[0:6], []byte{0x02, 0, 0, 0, 0, 0})
	}
	copy(h[6:12], []byte{0x02, 0x00, src[0], src[1], src[2], src[3]})
	binary.BigEndian.PutUint16(h[12:14], etherTypeIPv4)

	// IPv4.
	ip := h[14 : 14+ipv4MinHeader]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4MinHeader+udpHeaderLen+len(payload)))
	binary.BigEndian.PutUint16(ip[4:6], id)
	binary.BigEndian.PutUint16(ip[6:8], 0) // no flags, offset 0
	ip[8] = 64
	if dst[0]&0xf0 == 0xe0 {
		ip[8] = 1
	}
	ip[9] = ipProtoUDP
	binary.BigEndian.PutUint16(ip[10:12], 0)
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:12], ^fold(sum16(0, ip)))

	// UDP, with its checksum over the pseudo-header.
	udp := b[n+14+ipv4MinHeader:]
	ulen := uint16(udpHeaderLen + len(payload))
	binary.BigEndian.PutUint16(udp[0:2], sport)
	binary.BigEndian.PutUint16(udp[2:4], dport)
	binary.BigEndian.PutUint16(udp[4:6], ulen)
	binary.BigEndian.PutUint16(udp[6:8], 0)
	sum := sum16(0, src[:])
	sum = sum16(sum, dst[:])
	sum += ipProtoUDP + uint64(ulen)
	sum = sum16(sum, udp)
	c := ^fold(sum)
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return b
}

// sum16 adds the big-endian 16-bit words of b to the one's-complement
// accumulator sum, padding an odd last byte with zero.
func sum16(sum uint64, b []byte) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		sum += v>>48 + v>>32&0xffff + v>>16&0xffff + v&0xffff
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// fold folds a one's-complement accumulator to 16 bits.
func fold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
