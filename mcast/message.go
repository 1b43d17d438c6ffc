package mcast

import "net/netip"

// Message is one datagram of a batch, as in golang.org/x/net/ipv4 but with
// plain values so that batches do not allocate. The caller owns the Messages
// and their buffers and reuses them from batch to batch.
type Message struct {
	// Buf is, for reading, the buffer to fill (its length is the most that
	// is read) and, for writing, the payload to send.
	Buf []byte
	// N is the number of bytes read into Buf or written from it.
	N int
	// Addr is the source address and port on read; the destination group
	// and port on write.
	Addr netip.AddrPort
	// Group is, on read, the index of the socket the datagram came from:
	// the value JoinGroup or JoinSourceSpecificGroup returned. Unused on
	// write.
	Group int
	// KernelTime is, on read, when the kernel received the datagram, in
	// nanoseconds since the Unix epoch (SO_TIMESTAMPNS), or 0 if the kernel
	// gave no time.
	KernelTime int64
	// Truncated is set on read when the datagram was longer than Buf; the
	// rest of it was discarded.
	Truncated bool
}
