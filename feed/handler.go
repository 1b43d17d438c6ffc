package feed

import (
	"sync/atomic"

	"fastfeed/mcast"
)

// Handler is a feed handler on the network: an Engine and the receiver that feeds it
// from the multicast sockets (receiver_linux.go: an epoll set read with recvmmsg, one
// duty cycle per batch). Create it with New, start it with Run. The Engine's methods are
// the Handler's; those that read state (Stats, Dump, Channels, ...) go through Do while
// Run runs.
type Handler struct {
	*Engine
	poller  *mcast.Poller
	running atomic.Bool
}

// Stats returns the counters, with the kernel's drop counts of the sockets. Call it
// after Run returns, or through Do while it runs.
func (h *Handler) Stats() Stats {
	s := h.Engine.Stats()
	if h.poller != nil {
		for i := 0; i < h.poller.Len(); i++ {
			s.KernelDrops += h.poller.Drops(i)
		}
		s.Strays = h.poller.Strays()
	}
	return s
}

// Sockets describes the joined sockets, with the receive buffer the kernel granted
// each. Call it before Run or through Do.
func (h *Handler) Sockets() []Socket {
	out := h.Engine.Sockets()
	if h.poller != nil {
		for i := range out {
			out[i].ReadBuffer = h.poller.Membership(i).ReadBuffer
		}
	}
	return out
}
