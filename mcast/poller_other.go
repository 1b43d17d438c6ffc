//go:build !linux

package mcast

import (
	"net/netip"
	"time"
)

// Poller is the Linux epoll and recvmmsg reader; elsewhere NewPoller returns
// ErrNeedsLinux and no Poller exists.
type Poller struct{}

// NewPoller returns ErrNeedsLinux on this system.
func NewPoller(PollerConfig) (*Poller, error) { return nil, ErrNeedsLinux }

// JoinGroup returns ErrNeedsLinux.
func (p *Poller) JoinGroup(netip.AddrPort) (int, error) { return 0, ErrNeedsLinux }

// JoinSourceSpecificGroup returns ErrNeedsLinux.
func (p *Poller) JoinSourceSpecificGroup(netip.AddrPort, netip.Addr) (int, error) {
	return 0, ErrNeedsLinux
}

// LeaveGroup returns ErrNeedsLinux.
func (p *Poller) LeaveGroup(int) error { return ErrNeedsLinux }

// Len returns 0.
func (p *Poller) Len() int { return 0 }

// Membership returns the zero Membership.
func (p *Poller) Membership(int) Membership { return Membership{} }

// Drops returns 0.
func (p *Poller) Drops(int) uint64 { return 0 }

// KernelDrops returns ErrNeedsLinux.
func (p *Poller) KernelDrops(int) (uint64, error) { return 0, ErrNeedsLinux }

// ReadBatch returns ErrNeedsLinux.
func (p *Poller) ReadBatch([]Message, time.Duration) (int, error) { return 0, ErrNeedsLinux }

// Poll returns ErrNeedsLinux.
func (p *Poller) Poll([]Message) (int, error) { return 0, ErrNeedsLinux }

// SetBusyPoll returns ErrNeedsLinux.
func (p *Poller) SetBusyPoll(int) error { return ErrNeedsLinux }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Wake does nothing.
func (p *Poller) Wake() {}

// Sockets returns 0.
func (p *Poller) Sockets() int { return 0 }

// Strays returns 0.
func (p *Poller) Strays() uint64 { return 0 }
