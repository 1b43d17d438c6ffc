package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// readBufferSize is the read-ahead over the capture file.
const readBufferSize = 64 << 10

// Magic numbers, as the file's first four bytes read little-endian.
const (
	magicPcapMicro     = 0xa1b2c3d4
	magicPcapMicroSwap = 0xd4c3b2a1
	magicPcapNano      = 0xa1b23c4d
	magicPcapNanoSwap  = 0x4d3cb2a1
	magicPcapModified  = 0xa1b2cd34 // Kuznetzov's patched libpcap
	magicPcapModSwap   = 0x34cdb2a1
	magicPcapNG        = 0x0a0d0d0a // section header block type, a palindrome
)

// A Reader reads the IPv4 UDP datagrams of a pcap or pcapng capture. It is
// not safe for concurrent use.
type Reader struct {
	name    string
	closer  io.Closer
	format  Format
	pcap    *pcapgo.Reader
	ng      *pcapgo.NgReader
	link    layers.LinkType // of a classic pcap file
	noReasm bool
	dst     map[netip.AddrPort]struct{} // nil keeps every datagram
	anyPort bool                        // dst holds an entry with port 0
	anyAddr bool                        // dst holds an entry with no address
	reasm   reassembler
	stats   Stats
	done    bool
	pkt     ipv4UDP
}

// Open opens the capture file name. Close the Reader to close the file.
func Open(name string, opts *Options) (*Reader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	r, err := newReader(f, name, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads the file header from rd, which must start at the start of
// a pcap or pcapng file, and returns a Reader for its datagrams. A nil opts
// takes the defaults.
func NewReader(rd io.Reader, opts *Options) (*Reader, error) {
	return newReader(rd, "", opts)
}

func newReader(rd io.Reader, name string, opts *Options) (*Reader, error) {
	o := opts.withDefaults()
	r := &Reader{name: name, noReasm: o.NoReassembly}
	if err := r.setFilter(o.Dst); err != nil {
		return nil, r.headerError(err)
	}
	br := bufio.NewReaderSize(rd, readBufferSize)
	head, err := br.Peek(4)
	switch {
	case len(head) == 0 && err == io.EOF:
		return nil, r.headerError(errors.New("empty file, not a pcap or pcapng capture"))
	case len(head) < 4 && (err == io.EOF || err == nil):
		return nil, r.headerError(fmt.Errorf("file of %d bytes, too short for a capture header", len(head)))
	case err != nil:
		return nil, r.headerError(err)
	}
	switch magic := binary.LittleEndian.Uint32(head); magic {
	case magicPcapMicro, magicPcapMicroSwap, magicPcapNano, magicPcapNanoSwap:
		r.format = Pcap
		// pcapgo keeps br: it is a bufio.Reader at least as large as the
		// one it would make.
		if r.pcap, err = pcapgo.NewReader(br); err != nil {
			return nil, r.headerError(unexpected(err))
		}
		r.link = r.pcap.LinkType()
		if !supportedLink(r.link) {
			return nil, r.headerError(fmt.Errorf("link type %d (%v) not supported", r.link, r.link))
		}
	case magicPcapNG:
		r.format = PcapNG
		r.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{
			WantMixedLinkType:  true, // interfaces may differ; each packet names its own
			SkipUnknownVersion: true,
		})
		if err != nil {
			return nil, r.headerError(unexpected(err))
		}
	case magicPcapModified, magicPcapModSwap:
		return nil, r.headerError(fmt.Errorf("modified (Kuznetzov) pcap format, magic %08x, not supported", magic))
	default:
		if head[0] == 0x1f && head[1] == 0x8b {
			return nil, r.headerError(errors.New("gzip-compressed file: decompress it first"))
		}
		return nil, r.headerError(fmt.Errorf("unknown magic % x: not a pcap or pcapng capture", head))
	}
	if !r.noReasm {
		r.reasm = newReassembler(&o)
	}
	return r, nil
}

func (r *Reader) setFilter(dsts []netip.AddrPort) error {
	if len(dsts) == 0 {
		return nil
	}
	r.dst = make(map[netip.AddrPort]struct{}, len(dsts))
	for _, d := range dsts {
		a := d.Addr().Unmap()
		switch {
		case !a.IsValid() && d.Port() == 0:
			return errors.New("Options.Dst: an entry has neither address nor port")
		case !a.IsValid():
			r.anyAddr = true
		case !a.Is4():
			return fmt.Errorf("Options.Dst: %v is not an IPv4 destination", d)
		case d.Port() == 0:
			r.anyPort = true
		}
		r.dst[netip.AddrPortFrom(a, d.Port())] = struct{}{}
	}
	return nil
}

func (r *Reader) headerError(err error) error {
	if r.name != "" {
		return fmt.Errorf("replay: %s: reading capture header: %w", r.name, err)
	}
	return fmt.Errorf("replay: reading capture header: %w", err)
}

// unexpected turns an io.EOF met inside a header into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Format returns the format of the file being read.
func (r *Reader) Format() Format { return r.format }

// Comment returns the comment of the capture's (first) pcapng section header, ""
// for a classic pcap file or a section without one. fastfeed record writes what it
// was asked for there (see NewWriterComment).
func (r *Reader) Comment() string {
	if r.ng == nil {
		return ""
	}
	return r.ng.SectionInfo().Comment
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Close closes the file if the Reader was made by Open; otherwise it does
// nothing. The Reader reads nothing more after Close.
func (r *Reader) Close() error {
	r.done = true
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	return c.Close()
}

// Next reads the next IPv4 UDP datagram into d, skipping the records that
// carry anything else, and returns io.EOF after the last one.
//
// A malformed record gives a *PacketError; the call after it reads on from
// the following record. A file that cannot be read further (it ends in the
// middle of a record, or a record header is corrupt) gives a *FileError, and
// every call after it io.EOF. Fragments of datagrams never completed by
// the end of the file are counted in Stats.FragmentsDropped.
//
// d.Payload aliases the Reader's buffers until the next call to Next.
func (r *Reader) Next(d *Datagram) error {
	if r.done {
		return io.EOF
	}
	for {
		data, ci, err := r.record()
		if err != nil {
			return r.stop(err, ci)
		}
		r.stats.Packets++
		num := r.stats.Packets
		link := r.link
		if r.ng != nil {
			// WantMixedLinkType puts the packet's link type here.
			if len(ci.AncillaryData) == 0 {
				return r.stop(errors.New("pcapng reader gave no link type"), ci)
			}
			link, _ = ci.AncillaryData[0].(layers.LinkType)
		}
		ok, err := r.packet(d, link, data, num, ci.Timestamp.UnixNano())
		if err != nil {
			r.stats.Malformed++
			if errors.Is(err, ErrTruncated) && ci.CaptureLength < ci.Length {
				err = fmt.Errorf("%w (record cut to %d of %d bytes)", err, ci.CaptureLength, ci.Length)
			}
			return &PacketError{PacketNum: int(num), Err: err}
		}
		if ok {
			return nil
		}
	}
}

// record reads the next capture record into a buffer pcapgo reuses.
func (r *Reader) record() ([]byte, gopacket.CaptureInfo, error) {
	if r.ng != nil {
		return r.ng.ZeroCopyReadPacketData()
	}
	return r.pcap.ZeroCopyReadPacketData()
}

// stop ends reading after the error err from pcapgo.
func (r *Reader) stop(err error, ci gopacket.CaptureInfo) error {
	r.done = true
	if !r.noReasm {
		r.reasm.dropAll(&r.stats)
	}
	if err == io.EOF && ci.CaptureLength > 0 {
		// io.ReadFull says io.EOF when the file ends right after a
		// record header, before any of the record's bytes.
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		return io.EOF
	}
	return &FileError{Name: r.name, PacketNum: int(r.stats.Packets) + 1, Err: err}
}

// packet decodes the record num. It reports whether it filled d with a
// datagram; a record that is skipped, filtered or held as a fragment gives
// false and a nil error.
func (r *Reader) packet(d *Datagram, link layers.LinkType, frame []byte, num uint64, ts int64) (bool, error) {
	if !supportedLink(link) {
		r.stats.Skipped++
		return false, nil
	}
	ip, err := ipv4Packet(link, frame)
	if err != nil {
		return false, err
	}
	if ip == nil {
		r.stats.Skipped++
		return false, nil
	}
	p := &r.pkt
	kind, err := parseIPv4(ip, p)
	if err != nil {
		return false, err
	}
	switch kind {
	case kindSkip:
		r.stats.Skipped++
		return false, nil
	case kindFragment:
		if r.noReasm {
			r.stats.Fragments++
			r.stats.FragmentsDropped++
			return false, nil
		}
		whole, held, err := r.reasm.add(p, num, ts, &r.stats)
		if err != nil || whole == nil {
			return false, err
		}
		if _, err := parseUDP(whole, p); err != nil {
			r.stats.FragmentsDropped += uint64(held)
			return false, fmt.Errorf("reassembled datagram: %w", err)
		}
		r.stats.Fragments++
		r.stats.Reassembled++
	}
	dst := netip.AddrPortFrom(netip.AddrFrom4(p.dst), p.dport)
	if !r.keep(dst) {
		r.stats.Filtered++
		return false, nil
	}
	r.stats.Datagrams++
	*d = Datagram{
		PacketNum: int(num),
		Time:      ts,
		Src:       netip.AddrPortFrom(netip.AddrFrom4(p.src), p.sport),
		Dst:       dst,
		Payload:   p.payload,
	}
	return true, nil
}

// keep reports whether Options.Dst lets a datagram to dst through.
func (r *Reader) keep(dst netip.AddrPort) bool {
	if r.dst == nil {
		return true
	}
	if _, ok := r.dst[dst]; ok {
		return true
	}
	if r.anyPort {
		if _, ok := r.dst[netip.AddrPortFrom(dst.Addr(), 0)]; ok {
			return true
		}
	}
	if r.anyAddr {
		if _, ok := r.dst[netip.AddrPortFrom(netip.Addr{}, dst.Port())]; ok {
			return true
		}
	}
	return false
}
