package roles

import (
	"flag"
	"fmt"

	"fastfeed/mcast"
)

// SnapshotChannelOptions are the snapshot channel flags of pub and feed
// (docs/snapshot-channels.md).
type SnapshotChannelOptions struct {
	SnapshotChannels bool
	SnapshotOffset   int
}

func (o *SnapshotChannelOptions) register(fs *flag.FlagSet, what string) {
	fs.BoolVar(&o.SnapshotChannels, "snapshot-channels", false, what)
	fs.IntVar(&o.SnapshotOffset, "snapshot-port-offset", mcast.DefaultSnapshotPortOffset,
		"a channel's snapshot channel is its group on its port + `N`")
}

// PortOffset returns --snapshot-port-offset, checked; 0 (a role that does not register
// the flag) means the default.
func (o *SnapshotChannelOptions) PortOffset() (uint16, error) {
	if o.SnapshotOffset == 0 {
		return mcast.DefaultSnapshotPortOffset, nil
	}
	if o.SnapshotOffset < 1 || o.SnapshotOffset > 65534 {
		return 0, fmt.Errorf("--snapshot-port-offset %d: want 1..65534", o.SnapshotOffset)
	}
	return uint16(o.SnapshotOffset), nil
}
