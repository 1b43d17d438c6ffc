package mcast

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type member struct {
	Membership
	fd       int
	lastOvfl uint32
	queued   bool
	// hint is how many datagrams Poll asks recvmmsg for on this socket: twice what its
	// last read returned, at least 2, so that a sparse feed's read prepares two message
	// headers rather than the whole batch, and a socket that keeps filling them doubles.
	hint int
}

// Poller reads datagrams from any number of group sockets through one epoll
// set. Join, leave and read from one goroutine; Wake and Close may be called
// from any goroutine and wake a ReadBatch blocked in wait.
type Poller struct {
	iface   netip.Addr
	rcvbuf  int
	epfd    int
	wakefd  int
	members []member

	// ready is a FIFO ring of member indices known to have data.
	ready        []int32
	rhead, rlen  int
	sinceRefresh int
	// round is how many reads Poll makes from the queue before asking epoll again: the
	// queue's length after the last epoll_wait, at least refreshEvery, so that each
	// socket found ready is read once before the next epoll_wait (which costs in
	// proportion to the sockets it returns).
	round int

	events []unix.EpollEvent
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet4
	oob    []byte

	// busyPoll is the SO_BUSY_POLL (µs) of every socket, 0 for none (SetBusyPoll);
	// spinNext is the socket Poll tries first when it reads the sockets in turn.
	busyPoll int
	spinNext int

	busy   atomic.Bool
	closed atomic.Bool
	wakeMu sync.RWMutex // Wake holds it for reading, Close to close wakefd
}

// refreshEvery is how many reads from the ready queue may pass before the
// Poller asks epoll again, so that a group that never drains cannot starve
// the others.
const refreshEvery = 8

const wakeTag = -1

// NewPoller returns an empty Poller; join groups with JoinGroup.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	iface := cfg.Interface.Unmap()
	if !iface.IsValid() {
		iface = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	switch {
	case !iface.Is4() || iface.IsMulticast() || iface.IsUnspecified():
		return nil, fmt.Errorf("mcast: poller interface %v is not a unicast IPv4 address", iface)
	case cfg.ReadBuffer < 0 || cfg.ReadBuffer > math.MaxInt32/2:
		return nil, fmt.Errorf("mcast: poller read buffer %d out of range 0..%d", cfg.ReadBuffer, math.MaxInt32/2)
	case cfg.BatchSize < 0 || cfg.BatchSize > maxBatch:
		return nil, fmt.Errorf("mcast: poller batch size %d out of range 0..%d", cfg.BatchSize, maxBatch)
	}
	batch := cfg.BatchSize
	if batch == 0 {
		batch = 256
	}
	p := &Poller{
		iface:  iface,
		rcvbuf: cfg.ReadBuffer,
		epfd:   -1,
		wakefd: -1,
		events: make([]unix.EpollEvent, 128),
		hdrs:   make([]unix.Mmsghdr, batch),
		iovs:   make([]unix.Iovec, batch),
		names:  make([]unix.RawSockaddrInet4, batch),
		oob:    make([]byte, batch*oobSize),
	}
	for i := range p.hdrs {
		h := &p.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&p.names[i]))
		h.Iov = &p.iovs[i]
		h.SetIovlen(1)
		h.Control = &p.oob[i*oobSize]
	}
	var err error
	if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("mcast: epoll_create1: %w", err)
	}
	if p.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		unix.Close(p.epfd)
		return nil, fmt.Errorf("mcast: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeTag}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, p.wakefd, &ev); err != nil {
		unix.Close(p.wakefd)
		unix.Close(p.epfd)
		return nil, fmt.Errorf("mcast: epoll_ctl add eventfd: %w", err)
	}
	return p, nil
}

// enter marks the Poller in use by the calling goroutine; it fails after
// Close and on concurrent use.
func (p *Poller) enter() error {
	if !p.busy.CompareAndSwap(false, true) {
		if p.closed.Load() {
			return net.ErrClosed
		}
		return errors.New("mcast: concurrent use of a Poller")
	}
	if p.closed.Load() {
		p.busy.Store(false)
		return net.ErrClosed
	}
	return nil
}

func (p *Poller) exit() { p.busy.Store(false) }

// JoinGroup opens a socket for group (an IPv4 multicast address and a
// port), bound to it, and joins the group on the Poller's interface
// (IP_ADD_MEMBERSHIP). It returns the socket's index, which Message.Group
// carries for its datagrams. Several processes may join the same group and
// port; all of them get every datagram.
func (p *Poller) JoinGroup(group netip.AddrPort) (int, error) {
	return p.join(group, netip.Addr{})
}

// JoinSourceSpecificGroup is JoinGroup for datagrams from source only
// (IP_ADD_SOURCE_MEMBERSHIP). The same group and port may be joined again
// for another source; each socket then sees its own source alone.
func (p *Poller) JoinSourceSpecificGroup(group netip.AddrPort, source netip.Addr) (int, error) {
	s := source.Unmap()
	if !s.Is4() || s.IsMulticast() || s.IsUnspecified() {
		return -1, fmt.Errorf("mcast: join %v source %v: source is not a unicast IPv4 address", group, source)
	}
	return p.join(group, s)
}

func (p *Poller) join(group netip.AddrPort, source netip.Addr) (int, error) {
	group = netip.AddrPortFrom(group.Addr().Unmap(), group.Port())
	if err := checkChannel(group); err != nil {
		return -1, fmt.Errorf("mcast: join %v: %w", group, err)
	}
	if err := p.enter(); err != nil {
		return -1, fmt.Errorf("mcast: join %v: %w", group, err)
	}
	defer p.exit()
	for i := range p.members {
		m := &p.members[i].Membership
		if !m.Closed && m.Group == group && m.Source == source {
			return -1, fmt.Errorf("mcast: join %v%s: already joined as socket %d", group, sourceNote(source), i)
		}
	}
	idx := len(p.members)
	fd, granted, err := p.openSocket(group, source, idx)
	if err != nil {
		return -1, err
	}
	p.members = append(p.members, member{
		Membership: Membership{Group: group, Source: source, ReadBuffer: granted},
		fd:         fd,
	})
	if cap(p.ready) < len(p.members) {
		ring := make([]int32, 2*len(p.members))
		for i := 0; i < p.rlen; i++ {
			ring[i] = p.ready[(p.rhead+i)%len(p.ready)]
		}
		p.ready, p.rhead = ring, 0
	}
	return idx, nil
}

func sourceNote(source netip.Addr) string {
	if source.IsValid() {
		return " source " + source.String()
	}
	return ""
}

func (p *Poller) openSocket(group netip.AddrPort, source netip.Addr, idx int) (fd, granted int, err error) {
	where := fmt.Sprintf("mcast: join %v%s on %v", group, sourceNote(source), p.iface)
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		if err == unix.EMFILE || err == unix.ENFILE {
			return -1, 0, fmt.Errorf("%s: socket: %w (one socket per group: raise the open file limit, ulimit -n)", where, err)
		}
		return -1, 0, fmt.Errorf("%s: socket: %w", where, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	for _, o := range []struct {
		name       string
		level, opt int
		v          int
	}{
		{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
		{"SO_RXQ_OVFL", unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1},
		{"SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
	} {
		if err = unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return -1, 0, fmt.Errorf("%s: %s=%d: %w", where, o.name, o.v, err)
		}
	}
	if p.busyPoll > 0 {
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, p.busyPoll); err != nil {
			return -1, 0, fmt.Errorf("%s: SO_BUSY_POLL=%d: %w", where, p.busyPoll, err)
		}
	}
	if p.rcvbuf > 0 {
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, p.rcvbuf); err != nil {
			if err != unix.EPERM {
				return -1, 0, fmt.Errorf("%s: SO_RCVBUFFORCE=%d: %w", where, p.rcvbuf, err)
			}
			if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, p.rcvbuf); err != nil {
				return -1, 0, fmt.Errorf("%s: SO_RCVBUF=%d: %w", where, p.rcvbuf, err)
			}
		}
	}
	if granted, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
		return -1, 0, fmt.Errorf("%s: get SO_RCVBUF: %w", where, err)
	}
	if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: group.Addr().As4(), Port: int(group.Port())}); err != nil {
		return -1, 0, fmt.Errorf("%s: bind: %w", where, err)
	}
	if !source.IsValid() {
		mreq := unix.IPMreqn{Multiaddr: group.Addr().As4(), Address: p.iface.As4()}
		err = unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &mreq)
	} else {
		// struct ip_mreq_source, Linux order: group, interface, source.
		var mreq [12]byte
		g, i, s := group.Addr().As4(), p.iface.As4(), source.As4()
		copy(mreq[0:], g[:])
		copy(mreq[4:], i[:])
		copy(mreq[8:], s[:])
		err = setsockoptBytes(fd, unix.IPPROTO_IP, unix.IP_ADD_SOURCE_MEMBERSHIP, mreq[:])
	}
	if err != nil {
		return -1, 0, joinError(where, source.IsValid(), err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(idx)}
	if err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return -1, 0, fmt.Errorf("%s: epoll_ctl add: %w", where, err)
	}
	return fd, granted, nil
}

func joinError(where string, ssm bool, err error) error {
	op := "IP_ADD_MEMBERSHIP"
	if ssm {
		op = "IP_ADD_SOURCE_MEMBERSHIP"
	}
	switch err {
	case unix.ENOBUFS:
		msg := fmt.Sprintf("%s: %s: %%w: the kernel allows no more group memberships: net.ipv4.igmp_max_memberships is %s (raise it, e.g. sysctl -w net.ipv4.igmp_max_memberships=1024; also check net.core.optmem_max)",
			where, op, sysctl("net.ipv4.igmp_max_memberships"))
		if ssm {
			msg += fmt.Sprintf("; for source filters net.ipv4.igmp_max_msf is %s", sysctl("net.ipv4.igmp_max_msf"))
		}
		return fmt.Errorf(msg, err)
	case unix.ENODEV, unix.EADDRNOTAVAIL:
		return fmt.Errorf("%s: %s: %w: no interface has that address", where, op, err)
	}
	return fmt.Errorf("%s: %s: %w", where, op, err)
}

// LeaveGroup closes socket i, which leaves its group. Its index is not
// reused.
func (p *Poller) LeaveGroup(i int) error {
	if err := p.enter(); err != nil {
		return fmt.Errorf("mcast: leave socket %d: %w", i, err)
	}
	defer p.exit()
	if i < 0 || i >= len(p.members) || p.members[i].Closed {
		return fmt.Errorf("mcast: leave socket %d: no such open socket", i)
	}
	m := &p.members[i]
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, m.fd, nil)
	err := unix.Close(m.fd)
	m.fd, m.Closed = -1, true
	if err != nil {
		return fmt.Errorf("mcast: leave %v: close: %w", m.Group, err)
	}
	return nil
}

// Len returns the number of sockets ever joined (the bound on indices).
func (p *Poller) Len() int { return len(p.members) }

// Membership describes socket i, an index JoinGroup returned (it panics on
// others, as a slice index does). It does not allocate. It stays valid after
// LeaveGroup and Close, so counters can be read at exit.
func (p *Poller) Membership(i int) Membership {
	m := p.members[i].Membership
	m.Closed = m.Closed || p.closed.Load()
	return m
}

// Drops returns the datagrams the kernel dropped on socket i, as last
// reported by SO_RXQ_OVFL with a received datagram (the kernel reports the
// count with the first datagram queued after a drop). It makes no system
// call. i is an index JoinGroup returned.
func (p *Poller) Drops(i int) uint64 { return p.members[i].Drops }

// KernelDrops asks the kernel (SO_MEMINFO) how many datagrams it has
// dropped on socket i so far, including drops no datagram has reported yet,
// and updates Drops. After LeaveGroup or Close it returns the last count.
func (p *Poller) KernelDrops(i int) (uint64, error) {
	if i < 0 || i >= len(p.members) {
		return 0, fmt.Errorf("mcast: kernel drops of socket %d: no such socket", i)
	}
	if err := p.enter(); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return p.members[i].Drops, nil
		}
		return p.members[i].Drops, err
	}
	defer p.exit()
	m := &p.members[i]
	if m.Closed {
		return m.Drops, nil
	}
	var info [skMeminfoVars]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(m.fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return m.Drops, fmt.Errorf("mcast: %v: SO_MEMINFO: %w", m.Group, errno)
	}
	if size > skMeminfoDrops*4 {
		m.noteDrops(info[skMeminfoDrops])
	}
	return m.Drops, nil
}

// noteDrops folds the kernel's 32-bit cumulative counter into Drops.
func (m *member) noteDrops(v uint32) {
	m.Drops += uint64(v - m.lastOvfl)
	m.lastOvfl = v
}

// Close closes every socket and the epoll set. It may be called from any
// goroutine: a ReadBatch blocked in wait returns net.ErrClosed, and Close
// returns once it has.
func (p *Poller) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	one := [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
	for !p.busy.CompareAndSwap(false, true) {
		time.Sleep(time.Millisecond)
	}
	// The members are left as they are (Membership reports Closed from
	// p.closed), so that the reading goroutine may read its counters after
	// ReadBatch returned net.ErrClosed without racing with Close.
	var first error
	for i := range p.members {
		m := &p.members[i]
		if !m.Closed {
			if err := unix.Close(m.fd); err != nil && first == nil {
				first = fmt.Errorf("mcast: close %v: %w", m.Group, err)
			}
		}
	}
	p.wakeMu.Lock()
	unix.Close(p.wakefd)
	p.wakefd = -1
	p.wakeMu.Unlock()
	unix.Close(p.epfd)
	return first
}

// Wake makes a ReadBatch waiting in another goroutine return at once, with 0
// and a nil error (or with what became ready meanwhile); a Wake while no
// ReadBatch waits makes the next one return without waiting. A caller that
// hands the reading goroutine work (a request, a timer to run) calls Wake so
// that the reader may wait long when there is nothing to do. It does nothing
// after Close.
func (p *Poller) Wake() {
	p.wakeMu.RLock()
	defer p.wakeMu.RUnlock()
	if p.wakefd < 0 || p.closed.Load() {
		return
	}
	one := [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
}
