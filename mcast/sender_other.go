//go:build !linux

package mcast

import "net/netip"

// Sender is the Linux sendmmsg sender; elsewhere NewSender returns ErrNeedsLinux.
type Sender struct{}

// NewSender returns ErrNeedsLinux on this system.
func NewSender(SenderConfig) (*Sender, error) { return nil, ErrNeedsLinux }

// SetMulticastInterface returns ErrNeedsLinux.
func (s *Sender) SetMulticastInterface(netip.Addr) error { return ErrNeedsLinux }

// SetMulticastTTL returns ErrNeedsLinux.
func (s *Sender) SetMulticastTTL(int) error { return ErrNeedsLinux }

// SetMulticastLoopback returns ErrNeedsLinux.
func (s *Sender) SetMulticastLoopback(bool) error { return ErrNeedsLinux }

// LocalAddr returns the zero AddrPort.
func (s *Sender) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// WriteTo returns ErrNeedsLinux.
func (s *Sender) WriteTo([]byte, netip.AddrPort) error { return ErrNeedsLinux }

// WriteBatch returns ErrNeedsLinux.
func (s *Sender) WriteBatch([]Message) (int, error) { return 0, ErrNeedsLinux }

// Close does nothing.
func (s *Sender) Close() error { return nil }
