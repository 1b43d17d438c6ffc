// Package replay works with packet captures of the multicast feed.
//
// Its capture layer reads and writes pcap and pcapng files of UDP market data.
// A [Reader] takes a classic pcap file (microsecond or nanosecond timestamps,
// either byte order) or a pcapng file (any number of sections and interfaces,
// each with its own link type and timestamp resolution), told apart by their
// magic numbers, and returns the IPv4 UDP datagrams in it one at a time:
//
//	r, err := replay.Open("feed.pcapng", nil)
//	if err != nil { ... }
//	defer r.Close()
//	var d replay.Datagram
//	for {
//		err := r.Next(&d)
//		if err == io.EOF {
//			break
//		}
//		var pe *replay.PacketError
//		if errors.As(err, &pe) {
//			continue // one bad packet; the next one is still read
//		}
//		if err != nil {
//			return err // the file itself is damaged
//		}
//		handle(d.Dst, d.Payload)
//	}
//
// Link types read: Ethernet (1, with any stack of 802.1Q/802.1ad tags),
// Linux cooked capture SLL (113) and SLL2 (276), raw IP (101, and 12 and 14
// as written by some BSDs), raw IPv4 (228), raw IPv6 (229, always skipped),
// BSD loopback NULL (0) and OpenBSD LOOP (108). A classic pcap file of any
// other link type is refused when opened; a pcapng interface of any other link
// type has its packets counted as skipped.
//
// Headers are parsed by hand, without gopacket's layer decoding: after warm-up
// the Reader allocates nothing per packet beyond what pcapgo does. pcapgo
// itself allocates nothing per packet for classic pcap; for pcapng it
// allocates once per packet on an interface whose link type is above 255
// (SLL2: it boxes the link type in an interface value) and per packet that
// carries enhanced-packet-block options (flags, hashes, comments).
//
// IPv4 fragments of UDP datagrams are reassembled within fixed bounds (see
// [Options]); every record that is not an IPv4 UDP datagram or fragment (ARP,
// IPv6, TCP, ICMP, ...) is skipped and counted, not reported as an error.
// Checksums are not verified: captures taken on the sending host often carry
// checksums the NIC had still to fill in.
//
// A [Writer] writes datagrams as Ethernet/IPv4/UDP frames with nanosecond
// timestamps, as classic pcap (nanosecond magic) or as pcapng (if_tsresol 9),
// which tcpdump and Wireshark read.
//
// [Play] replays a Reader's datagrams, paced by their timestamps (scaled, or as
// fast as possible), into a feed.Engine, exactly as a Handler
// would hand them over from its sockets, or onto multicast through an mcast.Sender.
// [Record] writes what an mcast.Poller receives to a Writer with the kernel's
// receive timestamps, joining the channels the definitions channel names.
package replay

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// A Datagram is one UDP datagram read from a capture.
type Datagram struct {
	// PacketNum is the 1-based number of the capture record that carried the
	// datagram (the frame number Wireshark shows). For a datagram reassembled
	// from fragments it is the record of the fragment that completed it.
	PacketNum int
	// Time is the capture time in nanoseconds since the Unix epoch (UTC),
	// for a reassembled datagram the time of the fragment that completed it.
	Time int64
	// Src and Dst are the IPv4 source and destination address and UDP port.
	Src, Dst netip.AddrPort
	// Payload is the UDP payload. It aliases the Reader's buffers and is
	// valid only until the next call to Next.
	Payload []byte
}

// CaptureTime returns d.Time as a time.Time in UTC.
func (d *Datagram) CaptureTime() time.Time { return time.Unix(0, d.Time).UTC() }

// Format is a capture file format.
type Format int

const (
	// Pcap is the classic libpcap format. Readers take both the microsecond
	// and the nanosecond variant; the Writer writes the nanosecond one.
	Pcap Format = iota + 1
	// PcapNG is the pcapng format. The Writer writes one Ethernet interface
	// with if_tsresol 9 (nanoseconds).
	PcapNG
)

func (f Format) String() string {
	switch f {
	case Pcap:
		return "pcap"
	case PcapNG:
		return "pcapng"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Classes of malformed packets, wrapped in a PacketError's Err with detail.
var (
	// ErrTruncated: the record holds fewer bytes than its headers declare,
	// usually because it was cut to the capture's snap length.
	ErrTruncated = errors.New("packet truncated")
	// ErrBadHeader: a link, IPv4 or UDP header field is invalid (IHL below
	// 5, total length shorter than the header, UDP length out of range, ...).
	ErrBadHeader = errors.New("bad header")
	// ErrBadFragment: an IPv4 fragment that cannot be reassembled (overlap,
	// bad offset or length, conflicting end, too many fragments, too large).
	// The datagram it belonged to is dropped whole.
	ErrBadFragment = errors.New("bad fragment")
)

// A PacketError reports one malformed packet. Reading continues: the next
// call to Next reads the following record, and nothing already read is lost.
type PacketError struct {
	PacketNum int   // 1-based record number
	Err       error // wraps ErrTruncated, ErrBadHeader or ErrBadFragment
}

func (e *PacketError) Error() string {
	return fmt.Sprintf("replay: packet %d: %v", e.PacketNum, e.Err)
}

func (e *PacketError) Unwrap() error { return e.Err }

// A FileError reports a capture file that cannot be read further: it ends in
// the middle of a record, or a record or block header is corrupt. Every later
// call to Next returns io.EOF.
type FileError struct {
	Name      string // file name, if the Reader was opened by name
	PacketNum int    // 1-based number of the record that could not be read
	Err       error  // io.ErrUnexpectedEOF for a truncated file
}

func (e *FileError) Error() string {
	name := e.Name
	if name == "" {
		name = "capture"
	}
	msg := e.Err.Error()
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		msg = "file ends in the middle of the record (truncated file)"
	}
	return fmt.Sprintf("replay: %s: record %d: %s", name, e.PacketNum, msg)
}

func (e *FileError) Unwrap() error { return e.Err }

// Stats counts what a Reader has read. Every record falls in exactly one of
// Skipped, Malformed, Fragments or unfragmented datagrams, so
//
//	Packets == Skipped + Malformed + Fragments + Datagrams + Filtered - Reassembled
type Stats struct {
	Packets          uint64 // capture records read (all link types)
	Datagrams        uint64 // datagrams returned by Next, reassembled ones included
	Filtered         uint64 // datagrams dropped by Options.Dst
	Skipped          uint64 // records that are not IPv4 UDP, or of an unsupported link type
	Malformed        uint64 // records reported as *PacketError
	Fragments        uint64 // records taken as IPv4 UDP fragments
	Reassembled      uint64 // datagrams completed from fragments (returned or filtered)
	FragmentsDropped uint64 // fragments taken but thrown away: duplicate, poisoned by a bad fragment, evicted, timed out, left at EOF, or NoReassembly
}

// Options tune a Reader. The zero value (or a nil *Options) gives the
// defaults.
type Options struct {
	// Dst, if not empty, keeps only datagrams sent to one of these
	// destinations; the others are counted in Stats.Filtered. An entry with
	// port 0 matches every port of its address; an entry with the zero
	// netip.Addr matches its port on every address.
	Dst []netip.AddrPort

	// NoReassembly makes the Reader drop every IPv4 fragment (counted in
	// Stats.Fragments and Stats.FragmentsDropped) instead of reassembling.
	NoReassembly bool
	// MaxReassemblies bounds the datagrams being reassembled at once
	// (default 64). When all are in use, the one started earliest is
	// evicted and its fragments dropped.
	MaxReassemblies int
	// MaxFragments bounds the fragments of one datagram (default 128).
	MaxFragments int
	// MaxDatagramSize bounds a reassembled IPv4 payload, UDP header
	// included, in bytes (default and upper limit 65515).
	MaxDatagramSize int
	// FragmentTimeout drops a datagram whose fragments have not all arrived
	// within this much capture time of its first fragment (default 30s).
	FragmentTimeout time.Duration
}

const (
	defaultMaxReassemblies = 64
	defaultMaxFragments    = 128
	maxIPv4Payload         = 65535 - 20
	defaultFragmentTimeout = 30 * time.Second
)

// withDefaults returns o with zero fields set to their defaults and limits
// clamped.
func (o *Options) withDefaults() Options {
	var v Options
	if o != nil {
		v = *o
	}
	if v.MaxReassemblies <= 0 {
		v.MaxReassemblies = defaultMaxReassemblies
	}
	if v.MaxFragments <= 0 {
		v.MaxFragments = defaultMaxFragments
	}
	if v.MaxDatagramSize <= 0 || v.MaxDatagramSize > maxIPv4Payload {
		v.MaxDatagramSize = maxIPv4Payload
	}
	if v.FragmentTimeout <= 0 {
		v.FragmentTimeout = defaultFragmentTimeout
	}
	return v
}
