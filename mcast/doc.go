// Package mcast owns the topic -> multicast group mapping and the multicast
// UDP sockets of fastfeed. It moves datagrams; it never decodes them.
//
// # Mapping
//
// An instrument topic (its Symbol) maps to one IPv4 multicast group:
//
//	group = base + crc32_ieee(topic) mod size
//
// with base 239.0.0.1 and size 16777215 by default (the seed formula
// 4009754625 + crc32(subject) % 16777215), both settable, or every topic on
// one group (single-group mode). Topics that collide share a group. A channel
// is a group and a port, named G<group>:<port>. The instrument definitions
// channel is 239.0.0.0 on the data port by default.
//
// # Sending
//
// A [Sender] is one UDP socket with IP_MULTICAST_IF, IP_MULTICAST_TTL and
// IP_MULTICAST_LOOP set; [Sender.WriteBatch] sends many datagrams, to any
// mix of groups, with one sendmmsg(2) call per up to BatchSize datagrams.
// With no interface given, everything goes out on loopback (127.0.0.1).
//
// # Receiving
//
// A [Poller] holds one socket per joined group, each bound to its group
// address and port (so it sees no other group), with IP_MULTICAST_ALL off,
// SO_RXQ_OVFL (kernel drop counts) and SO_TIMESTAMPNS (kernel receive time)
// on, all in one epoll set; or, with [PollerConfig] Shared, one socket per port
// joined to all of its groups, each datagram's group told by IP_PKTINFO.
// [Poller.ReadBatch] reads with recvmmsg(2) into buffers the caller owns and
// reuses; neither it nor WriteBatch allocates.
//
// The names follow golang.org/x/net/ipv4 where they wrap the same socket
// options: JoinGroup, JoinSourceSpecificGroup, ReadBatch, WriteBatch,
// SetMulticastTTL, SetMulticastLoopback, Message.
//
// A Sender and a Poller are each used by one goroutine (a duty-cycle loop);
// only Poller.Close may be called from another goroutine, and it wakes a
// blocked ReadBatch.
//
// Tests and benchmarks of this package run inside a private network
// namespace (see fastfeed/internal/netns); nothing they send can leave the
// machine.
package mcast
