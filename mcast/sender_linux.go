package mcast

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sender sends multicast datagrams from one UDP socket. It is not safe for
// concurrent use.
type Sender struct {
	fd      int
	iface   netip.Addr
	local   netip.AddrPort
	timeout time.Duration
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet4
	pfd     [1]unix.PollFd
	one     [1]Message
}

// NewSender opens a UDP socket for multicast sending as cfg says.
func NewSender(cfg SenderConfig) (*Sender, error) {
	iface := cfg.Interface.Unmap()
	if !iface.IsValid() {
		iface = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	switch {
	case !iface.Is4() || iface.IsMulticast() || iface.IsUnspecified():
		return nil, fmt.Errorf("mcast: sender interface %v is not a unicast IPv4 address", iface)
	case cfg.TTL < 0 || cfg.TTL > 255:
		return nil, fmt.Errorf("mcast: sender TTL %d out of range 0..255", cfg.TTL)
	case cfg.BatchSize < 0 || cfg.BatchSize > maxBatch:
		return nil, fmt.Errorf("mcast: sender batch size %d out of range 0..%d", cfg.BatchSize, maxBatch)
	case cfg.WriteBuffer < 0:
		return nil, fmt.Errorf("mcast: sender write buffer %d is negative", cfg.WriteBuffer)
	case cfg.WriteTimeout < 0:
		return nil, fmt.Errorf("mcast: sender write timeout %v is negative", cfg.WriteTimeout)
	}
	batch := cfg.BatchSize
	if batch == 0 {
		batch = maxBatch
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 1
	}
	s := &Sender{
		iface:   iface,
		timeout: cfg.WriteTimeout,
		hdrs:    make([]unix.Mmsghdr, batch),
		iovs:    make([]unix.Iovec, batch),
		names:   make([]unix.RawSockaddrInet4, batch),
	}
	if s.timeout == 0 {
		s.timeout = time.Second
	}
	for i := range s.hdrs {
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("mcast: sender socket: %w", err)
	}
	s.fd = fd
	s.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	if err := s.setup(cfg, ttl); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func (s *Sender) setup(cfg SenderConfig, ttl int) error {
	if err := s.SetMulticastInterface(s.iface); err != nil {
		return err
	}
	if err := s.SetMulticastTTL(ttl); err != nil {
		return err
	}
	if err := s.SetMulticastLoopback(!cfg.NoLoopback); err != nil {
		return err
	}
	if cfg.WriteBuffer > 0 {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.WriteBuffer); err != nil {
			return fmt.Errorf("mcast: sender SO_SNDBUF %d: %w", cfg.WriteBuffer, err)
		}
	}
	// Bind to the interface address so the source is fixed and known.
	if err := unix.Bind(s.fd, &unix.SockaddrInet4{Addr: s.iface.As4()}); err != nil {
		return fmt.Errorf("mcast: sender bind %v: %w", s.iface, err)
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return fmt.Errorf("mcast: sender getsockname: %w", err)
	}
	if in4, ok := sa.(*unix.SockaddrInet4); ok {
		s.local = netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
	}
	return nil
}

// SetMulticastInterface sets the interface, by its IPv4 address, that
// datagrams leave from (IP_MULTICAST_IF).
func (s *Sender) SetMulticastInterface(iface netip.Addr) error {
	if err := unix.SetsockoptInet4Addr(s.fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, iface.Unmap().As4()); err != nil {
		return fmt.Errorf("mcast: sender IP_MULTICAST_IF %v: %w", iface, err)
	}
	s.iface = iface.Unmap()
	return nil
}

// SetMulticastTTL sets the time-to-live of outgoing datagrams
// (IP_MULTICAST_TTL).
func (s *Sender) SetMulticastTTL(ttl int) error {
	if err := unix.SetsockoptInt(s.fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl); err != nil {
		return fmt.Errorf("mcast: sender IP_MULTICAST_TTL %d: %w", ttl, err)
	}
	return nil
}

// SetMulticastLoopback sets whether datagrams are looped back to members on
// this host (IP_MULTICAST_LOOP).
func (s *Sender) SetMulticastLoopback(on bool) error {
	v := 0
	if on {
		v = 1
	}
	if err := unix.SetsockoptInt(s.fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, v); err != nil {
		return fmt.Errorf("mcast: sender IP_MULTICAST_LOOP %v: %w", on, err)
	}
	return nil
}

// LocalAddr returns the address and port the datagrams are sent from.
func (s *Sender) LocalAddr() netip.AddrPort { return s.local }

// WriteTo sends b as one datagram to dst. It does not allocate.
func (s *Sender) WriteTo(b []byte, dst netip.AddrPort) error {
	s.one[0] = Message{Buf: b, Addr: dst}
	_, err := s.WriteBatch(s.one[:])
	s.one[0].Buf = nil
	return err
}

// WriteBatch sends each ms[i].Buf as one datagram to ms[i].Addr, which may
// be a different group for each, and sets ms[i].N to the bytes sent. It
// uses one sendmmsg call per BatchSize messages, carries on after partial
// sends, retries on EINTR and waits (up to WriteTimeout without progress)
// when the socket buffer is full. It returns the number of messages sent;
// if that is less than len(ms), the error says why. It does not allocate.
func (s *Sender) WriteBatch(ms []Message) (int, error) {
	sent := 0
	for sent < len(ms) {
		k := min(len(ms)-sent, len(s.hdrs))
		for i := 0; i < k; i++ {
			m := &ms[sent+i]
			dst := netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port())
			if !dst.Addr().Is4() || dst.Port() == 0 {
				if i == 0 {
					return sent, fmt.Errorf("mcast: send datagram %d: destination %v is not an IPv4 address and non-zero port", sent, m.Addr)
				}
				k = i // send the valid ones first; the bad one fails next round
				break
			}
			setSockaddr(&s.names[i], dst)
			if len(m.Buf) > 0 {
				s.iovs[i].Base = &m.Buf[0]
			} else {
				s.iovs[i].Base = nil
			}
			s.iovs[i].SetLen(len(m.Buf))
			s.hdrs[i].Len = 0
		}
		n, errno := mmsg(unix.SYS_SENDMMSG, s.fd, s.hdrs[:k], 0)
		for i := 0; i < n; i++ {
			ms[sent+i].N = int(s.hdrs[i].Len)
			s.iovs[i].Base = nil
		}
		sent += n
		switch {
		case errno == unix.EAGAIN:
			if err := s.waitWritable(); err != nil {
				return sent, err
			}
		case errno != 0:
			return sent, fmt.Errorf("mcast: sendmmsg datagram %d to %v: %w", sent, ms[sent].Addr, errno)
		}
	}
	return sent, nil
}

var errWriteTimeout = errors.New("socket buffer stayed full")

func (s *Sender) waitWritable() error {
	ms := int(s.timeout / time.Millisecond)
	for {
		n, err := unix.Poll(s.pfd[:], max(ms, 1))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("mcast: sender poll: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("mcast: sendmmsg: %w for %v (%w)", errWriteTimeout, s.timeout, unix.EAGAIN)
		}
		return nil
	}
}

// Close closes the socket.
func (s *Sender) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	if err != nil {
		return fmt.Errorf("mcast: close sender: %w", err)
	}
	return nil
}
