package mcast

import (
	"errors"
	"net/netip"
	"time"
)

// ErrNeedsLinux is returned by NewPoller and NewSender where the sockets are not
// implemented: the Poller and Sender use epoll, recvmmsg and sendmmsg, which only Linux
// has. Everything else in fastfeed that needs no socket (decoding, replaying a capture)
// builds and works on any system.
var ErrNeedsLinux = errors.New("mcast: multicast receive needs Linux")

// PollerConfig configures a Poller. The zero value joins on loopback with
// the kernel's default receive buffer.
type PollerConfig struct {
	// Interface is the address of the interface to join groups on. The zero
	// value means 127.0.0.1, loopback.
	Interface netip.Addr
	// ReadBuffer is the receive buffer to ask for per socket, in bytes:
	// SO_RCVBUFFORCE when the process may (CAP_NET_ADMIN), else SO_RCVBUF,
	// which net.core.rmem_max caps. 0 keeps the kernel default. What the
	// kernel granted is in Membership.ReadBuffer.
	ReadBuffer int
	// BatchSize is the most datagrams read by one recvmmsg call, 1..1024;
	// 0 means 256.
	BatchSize int
	// Shared puts the groups of one port on one socket, bound to the wildcard address
	// and joined to each of them, instead of a socket per group bound to its group. The
	// datagrams are told apart by their destination (IP_PKTINFO), and by source for
	// source-specific joins; a datagram of no group joined (unicast to the port, a group
	// just left) is dropped and counted (Poller.Strays). One recvmmsg then reads any of
	// the groups: a busy-polling reader spins on one socket rather than asking epoll
	// which of hundreds has data, and a burst across many groups is read in one call.
	// The kernel limits the groups of a socket (net.ipv4.igmp_max_memberships, 20 by
	// default): when it refuses one more, the Poller opens another socket for the port.
	// The socket's receive buffer is shared by its groups, and a drop is counted against
	// the group of the datagram that reports it.
	Shared bool
}

// Membership describes one group joined by a Poller.
type Membership struct {
	// Group is the group address and port joined (and, unless shared, the address the
	// socket is bound to).
	Group netip.AddrPort
	// Source is the only source accepted after JoinSourceSpecificGroup;
	// invalid (the zero Addr) for an any-source join.
	Source netip.Addr
	// ReadBuffer is the receive buffer size the kernel reported for the
	// socket when the group was joined (getsockopt SO_RCVBUF): Linux doubles the size asked for, to
	// leave room for its bookkeeping, and caps what SO_RCVBUF may ask.
	ReadBuffer int
	// Drops is the count of datagrams the kernel dropped on this socket
	// (full receive buffer), as last reported to ReadBatch by SO_RXQ_OVFL.
	// See Poller.KernelDrops for a count that is current.
	Drops uint64
	// Closed is set after LeaveGroup.
	Closed bool
}

// SenderConfig configures a Sender. The zero value sends on loopback with
// TTL 1 and multicast loopback on.
type SenderConfig struct {
	// Interface is the address of the interface to send from
	// (IP_MULTICAST_IF); it is also the datagrams' source address. The zero
	// value means 127.0.0.1, loopback.
	Interface netip.Addr
	// TTL is IP_MULTICAST_TTL, 1..255; 0 means 1 (the local network).
	TTL int
	// NoLoopback turns IP_MULTICAST_LOOP off: the datagrams are then not
	// looped back to this host's own members (except on lo itself, whose
	// transmissions are always local).
	NoLoopback bool
	// WriteBuffer is SO_SNDBUF in bytes; 0 keeps the kernel default.
	WriteBuffer int
	// BatchSize is the most datagrams handed to one sendmmsg call,
	// 1..1024; 0 means 1024. WriteBatch takes any number of messages.
	BatchSize int
	// WriteTimeout bounds how long WriteBatch waits, without progress, for
	// a full socket buffer to drain; 0 means one second.
	WriteTimeout time.Duration
}
