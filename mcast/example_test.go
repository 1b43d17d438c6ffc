package mcast_test

import (
	"fmt"
	"net/netip"

	"fastfeed/mcast"
)

func ExampleMapping() {
	m, err := mcast.NewMapping(netip.MustParseAddr("239.192.0.0"), 65536)
	if err != nil {
		panic(err)
	}
	for _, topic := range []string{"SBER", "GAZP"} {
		ch := netip.AddrPortFrom(mcast.DefaultMapping().Group(topic), 30001)
		fmt.Println(topic, mcast.ChannelName(ch), m.Group(topic))
	}
	fmt.Println(mcast.ChannelName(mcast.DefinitionsChannel(30001)))
	// Output:
	// SBER G239.137.173.234:30001 239.192.173.102
	// GAZP G239.224.188.195:30001 239.192.188.69
	// G239.0.0.0:30001
}
