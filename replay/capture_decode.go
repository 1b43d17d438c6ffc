package replay

import (
	"encoding/binary"
	"fmt"

	"github.com/gopacket/gopacket/layers"
)

// Link types read (the LINKTYPE_ values of pcap and pcapng files).
const (
	linkNull     layers.LinkType = 0   // BSD loopback: 4-byte address family, host byte order
	linkEthernet layers.LinkType = 1   // Ethernet II
	linkRaw12    layers.LinkType = 12  // raw IP, as DLT_RAW on most BSDs
	linkRaw14    layers.LinkType = 14  // raw IP, as DLT_RAW on OpenBSD
	linkRaw      layers.LinkType = 101 // LINKTYPE_RAW: raw IPv4 or IPv6
	linkLoop     layers.LinkType = 108 // OpenBSD loopback: address family, network byte order
	linkSLL      layers.LinkType = 113 // Linux cooked capture v1
	linkIPv4     layers.LinkType = 228 // raw IPv4
	linkIPv6     layers.LinkType = 229 // raw IPv6: read, always skipped
	linkSLL2     layers.LinkType = 276 // Linux cooked capture v2
)

// supportedLink reports whether the Reader decodes frames of link type l.
func supportedLink(l layers.LinkType) bool {
	switch l {
	case linkNull, linkEthernet, linkRaw12, linkRaw14, linkRaw, linkLoop,
		linkSLL, linkIPv4, linkIPv6, linkSLL2:
		return true
	}
	return false
}

const (
	etherTypeIPv4  = 0x0800
	etherTypeVLAN  = 0x8100 // 802.1Q
	etherTypeQinQ  = 0x88a8 // 802.1ad
	etherTypeQinQ1 = 0x9100 // pre-standard QinQ
	etherTypeQinQ2 = 0x9200 // pre-standard QinQ
	maxVLANTags    = 8
	afInet         = 2 // AF_INET on every system that writes NULL/LOOP captures
	ipProtoUDP     = 17
	ipv4MinHeader  = 20
	udpHeaderLen   = 8
)

// ipv4Packet returns the IPv4 packet carried by a frame of link type link.
// It returns nil and a nil error for a frame that carries anything else.
func ipv4Packet(link layers.LinkType, frame []byte) ([]byte, error) {
	switch link {
	case linkEthernet:
		if len(frame) < 14 {
			return nil, truncated("Ethernet header", 14, len(frame))
		}
		return etherPayload(binary.BigEndian.Uint16(frame[12:14]), frame[14:])
	case linkSLL:
		if len(frame) < 16 {
			return nil, truncated("SLL header", 16, len(frame))
		}
		return etherPayload(binary.BigEndian.Uint16(frame[14:16]), frame[16:])
	case linkSLL2:
		if len(frame) < 20 {
			return nil, truncated("SLL2 header", 20, len(frame))
		}
		return etherPayload(binary.BigEndian.Uint16(frame[0:2]), frame[20:])
	case linkRaw, linkRaw12, linkRaw14:
		if len(frame) == 0 {
			return nil, truncated("raw IP header", 1, 0)
		}
		switch v := frame[0] >> 4; v {
		case 4:
			return frame, nil
		case 6:
			return nil, nil
		default:
			return nil, fmt.Errorf("%w: raw IP packet of version %d", ErrBadHeader, v)
		}
	case linkIPv4:
		return frame, nil
	case linkNull:
		if len(frame) < 4 {
			return nil, truncated("loopback header", 4, len(frame))
		}
		// The family is in the byte order of the host that captured.
		if binary.LittleEndian.Uint32(frame) == afInet || binary.BigEndian.Uint32(frame) == afInet {
			return frame[4:], nil
		}
	case linkLoop:
		if len(frame) < 4 {
			return nil, truncated("loopback header", 4, len(frame))
		}
		if binary.BigEndian.Uint32(frame) == afInet {
			return frame[4:], nil
		}
	}
	return nil, nil
}

// etherPayload skips VLAN tags after an EtherType and returns the IPv4
// packet that follows, or nil for any other protocol.
func etherPayload(etype uint16, b []byte) ([]byte, error) {
	for tags := 0; ; tags++ {
		switch etype {
		case etherTypeIPv4:
			return b, nil
		case etherTypeVLAN, etherTypeQinQ, etherTypeQinQ1, etherTypeQinQ2:
			if tags == maxVLANTags {
				return nil, fmt.Errorf("%w: more than %d VLAN tags", ErrBadHeader, maxVLANTags)
			}
			if len(b) < 4 {
				return nil, truncated("VLAN tag", 4, len(b))
			}
			etype = binary.BigEndian.Uint16(b[2:4])
			b = b[4:]
		default:
			return nil, nil
		}
	}
}

// packetKind is what parseIPv4 found.
type packetKind uint8

const (
	kindSkip     packetKind = iota // not UDP
	kindDatagram                   // a whole UDP datagram
	kindFragment                   // a fragment of a UDP datagram
)

// ipv4UDP is a decoded IPv4 UDP packet; the Reader owns and reuses one.
type ipv4UDP struct {
	src, dst     [4]byte
	sport, dport uint16 // kindDatagram only
	id           uint16 // IPv4 identification
	fragOff      int    // fragment offset in bytes (kindFragment)
	more         bool   // more-fragments flag (kindFragment)
	// payload is the UDP payload of a datagram, or the IPv4 payload of a
	// fragment.
	payload []byte
}

// parseIPv4 decodes the IPv4 packet b into p. Packets of other protocols
// are kindSkip once the header's first fields are known to be sound.
func parseIPv4(b []byte, p *ipv4UDP) (packetKind, error) {
	if len(b) < ipv4MinHeader {
		return kindSkip, truncated("IPv4 header", ipv4MinHeader, len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return kindSkip, fmt.Errorf("%w: IP version %d in an IPv4 frame", ErrBadHeader, v)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < ipv4MinHeader {
		return kindSkip, fmt.Errorf("%w: IPv4 IHL %d, below the minimum 5", ErrBadHeader, ihl/4)
	}
	if b[9] != ipProtoUDP {
		return kindSkip, nil
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < ihl {
		return kindSkip, fmt.Errorf("%w: IPv4 total length %d shorter than its %d-byte header", ErrBadHeader, total, ihl)
	}
	if total > len(b) {
		return kindSkip, fmt.Errorf("%w: IPv4 total length %d, only %d bytes captured", ErrTruncated, total, len(b))
	}
	b = b[:total] // drop Ethernet padding and trailers
	copy(p.src[:], b[12:16])
	copy(p.dst[:], b[16:20])
	p.id = binary.BigEndian.Uint16(b[4:6])
	frag := binary.BigEndian.Uint16(b[6:8])
	p.fragOff = int(frag&0x1fff) * 8
	p.more = frag&0x2000 != 0
	if p.fragOff != 0 || p.more {
		p.payload = b[ihl:]
		return kindFragment, nil
	}
	return parseUDP(b[ihl:], p)
}

// parseUDP decodes the UDP header and payload in the IPv4 payload b.
func parseUDP(b []byte, p *ipv4UDP) (packetKind, error) {
	if len(b) < udpHeaderLen {
		return kindSkip, fmt.Errorf("%w: IPv4 payload of %d bytes cannot hold a UDP header", ErrBadHeader, len(b))
	}
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	if ulen < udpHeaderLen || ulen > len(b) {
		return kindSkip, fmt.Errorf("%w: UDP length %d, IPv4 payload %d bytes", ErrBadHeader, ulen, len(b))
	}
	p.sport = binary.BigEndian.Uint16(b[0:2])
	p.dport = binary.BigEndian.Uint16(b[2:4])
	p.payload = b[udpHeaderLen:ulen]
	return kindDatagram, nil
}

func truncated(what string, need, have int) error {
	return fmt.Errorf("%w: %s needs %d bytes, only %d captured", ErrTruncated, what, need, have)
}
