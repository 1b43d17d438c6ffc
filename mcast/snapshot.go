package mcast

import (
	"fmt"
	"net/netip"
)

// DefaultSnapshotPortOffset is how far above a channel's port its snapshot channel is
// (docs/snapshot-channels.md): channel 239.1.2.3:30001 has its snapshot channel on
// 239.1.2.3:31001.
const DefaultSnapshotPortOffset = 1000

// SnapshotChannel returns the snapshot channel of the incremental channel ch: the same
// group, on port ch.Port()+offset. It fails if that port is past 65535 or offset is 0.
func SnapshotChannel(ch netip.AddrPort, offset uint16) (netip.AddrPort, error) {
	p := uint32(ch.Port()) + uint32(offset)
	if offset == 0 || p > 65535 {
		return netip.AddrPort{}, fmt.Errorf("mcast: snapshot channel of %v: port %d + offset %d is not a port (1..65535, offset > 0)", ch, ch.Port(), offset)
	}
	return netip.AddrPortFrom(ch.Addr(), uint16(p)), nil
}
