package mcast

import (
	"encoding/binary"
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

// member is one joined group (an index JoinGroup returned): the socket it is read on.
type member struct {
	Membership
	sock int // index in Poller.socks, -1 after LeaveGroup
}

// socket is one open socket: bound to a group and joined to it alone, or, with
// PollerConfig.Shared, bound to the wildcard address and joined to every group of its
// port (and source mode) that it had room for.
type socket struct {
	fd     int
	port   uint16
	ssm    bool // source-specific joins (shared sockets keep the two kinds apart)
	shared bool
	single int // the member of a socket of its own
	// members maps a shared socket's datagrams to their member: the destination group
	// (IP_PKTINFO) in the high 32 bits, the source in the low ones for source-specific
	// joins (0 otherwise).
	members  map[uint64]int
	n        int  // groups joined on it
	full     bool // the kernel refused it one more group (igmp_max_memberships)
	granted  int  // SO_RCVBUF as the kernel reports it
	lastOvfl uint32
	queued   bool
	// hint is how many datagrams Poll asks recvmmsg for on this socket: twice what its
	// last read returned, at least 2, so that a sparse feed's read prepares two message
	// headers rather than the whole batch, and a socket that keeps filling them doubles.
	hint int
}

// Poller reads datagrams from any number of joined groups, on a socket each or on
// shared sockets (PollerConfig.Shared), through one epoll set. Join, leave and read
// from one goroutine; Wake and Close may be called from any goroutine and wake a
// ReadBatch blocked in wait.
type Poller struct {
	iface   netip.Addr
	rcvbuf  int
	shared  bool
	epfd    int
	wakefd  int
	members []member
	socks   []socket
	open    int    // sockets open
	strays  uint64 // datagrams of shared sockets that matched no member

	// ready is a FIFO ring of socket indices known to have data.
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
	// spinNext is the socket Poll tries first when it reads the sockets in turn
	// (an index in socks).
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
		shared: cfg.Shared,
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

// JoinGroup joins group (an IPv4 multicast address and a port) on the Poller's
// interface (IP_ADD_MEMBERSHIP), on a socket of its own bound to the group, or with
// PollerConfig.Shared on the port's shared socket. It returns the membership's index,
// which Message.Group carries for its datagrams. Several processes may join the same
// group and port; all of them get every datagram.
func (p *Poller) JoinGroup(group netip.AddrPort) (int, error) {
	return p.join(group, netip.Addr{})
}

// JoinSourceSpecificGroup is JoinGroup for datagrams from source only
// (IP_ADD_SOURCE_MEMBERSHIP). The same group and port may be joined again
// for another source; each membership then sees its own source alone.
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
	var si int
	var err error
	if p.shared {
		si, err = p.joinShared(group, source, idx)
	} else {
		si, err = p.joinOwn(group, source, idx)
	}
	if err != nil {
		return -1, err
	}
	p.members = append(p.members, member{
		Membership: Membership{Group: group, Source: source, ReadBuffer: p.socks[si].granted},
		sock:       si,
	})
	return idx, nil
}

// joinOwn opens a socket bound to group and joins it there.
func (p *Poller) joinOwn(group netip.AddrPort, source netip.Addr, idx int) (int, error) {
	where := fmt.Sprintf("mcast: join %v%s on %v", group, sourceNote(source), p.iface)
	si, err := p.openSocket(where, group.Addr(), group.Port(), source.IsValid(), false)
	if err != nil {
		return -1, err
	}
	s := &p.socks[si]
	if err := p.membership(s.fd, true, group.Addr(), source); err != nil {
		p.closeSocket(si)
		return -1, joinError(where, source.IsValid(), err)
	}
	s.single, s.n = idx, 1
	return si, nil
}

// joinShared joins group on a shared socket of its port with room for it, opening one
// when there is none or when the kernel refuses the open ones another group.
func (p *Poller) joinShared(group netip.AddrPort, source netip.Addr, idx int) (int, error) {
	where := fmt.Sprintf("mcast: join %v%s on %v (shared socket)", group, sourceNote(source), p.iface)
	ssm := source.IsValid()
	key := memberKey(group.Addr().As4(), source)
	for si := range p.socks {
		s := &p.socks[si]
		if s.fd < 0 || !s.shared || s.full || s.port != group.Port() || s.ssm != ssm {
			continue
		}
		err := p.membership(s.fd, true, group.Addr(), source)
		if err == nil {
			s.members[key] = idx
			s.n++
			return si, nil
		}
		if err != unix.ENOBUFS {
			return -1, joinError(where, ssm, err)
		}
		s.full = true // igmp_max_memberships: try the next, or a new one
	}
	si, err := p.openSocket(where, netip.IPv4Unspecified(), group.Port(), ssm, true)
	if err != nil {
		return -1, err
	}
	s := &p.socks[si]
	if err := p.membership(s.fd, true, group.Addr(), source); err != nil {
		p.closeSocket(si)
		return -1, joinError(where, ssm, err)
	}
	s.members = map[uint64]int{key: idx}
	s.n = 1
	return si, nil
}

// memberKey is a shared socket's key of a datagram to group from source, or of a
// membership of group for source (the zero Addr for any source).
func memberKey(group [4]byte, source netip.Addr) uint64 {
	k := uint64(binary.BigEndian.Uint32(group[:])) << 32
	if source.IsValid() {
		s := source.As4()
		k |= uint64(binary.BigEndian.Uint32(s[:]))
	}
	return k
}

// membership adds (IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP) or drops a membership of
// group on fd, on the Poller's interface.
func (p *Poller) membership(fd int, add bool, group, source netip.Addr) error {
	if !source.IsValid() {
		opt := unix.IP_ADD_MEMBERSHIP
		if !add {
			opt = unix.IP_DROP_MEMBERSHIP
		}
		mreq := unix.IPMreqn{Multiaddr: group.As4(), Address: p.iface.As4()}
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, opt, &mreq)
	}
	opt := unix.IP_ADD_SOURCE_MEMBERSHIP
	if !add {
		opt = unix.IP_DROP_SOURCE_MEMBERSHIP
	}
	// struct ip_mreq_source, Linux order: group, interface, source.
	var mreq [12]byte
	g, i, s := group.As4(), p.iface.As4(), source.As4()
	copy(mreq[0:], g[:])
	copy(mreq[4:], i[:])
	copy(mreq[8:], s[:])
	return setsockoptBytes(fd, unix.IPPROTO_IP, opt, mreq[:])
}

func sourceNote(source netip.Addr) string {
	if source.IsValid() {
		return " source " + source.String()
	}
	return ""
}

// openSocket opens a socket bound to addr and port, with the Poller's options, adds it
// to the epoll set and returns its index in socks. A shared socket also reports each
// datagram's destination (IP_PKTINFO).
func (p *Poller) openSocket(where string, addr netip.Addr, port uint16, ssm, shared bool) (si int, err error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		if err == unix.EMFILE || err == unix.ENFILE {
			return -1, fmt.Errorf("%s: socket: %w (one socket per group: raise the open file limit, ulimit -n, or share sockets)", where, err)
		}
		return -1, fmt.Errorf("%s: socket: %w", where, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	opts := []struct {
		name       string
		level, opt int
		v          int
	}{
		{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
		{"SO_RXQ_OVFL", unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1},
		{"SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
	}
	if shared {
		opts = append(opts, struct {
			name       string
			level, opt int
			v          int
		}{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, 1})
	}
	for _, o := range opts {
		if err = unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return -1, fmt.Errorf("%s: %s=%d: %w", where, o.name, o.v, err)
		}
	}
	if p.busyPoll > 0 {
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, p.busyPoll); err != nil {
			return -1, fmt.Errorf("%s: SO_BUSY_POLL=%d: %w", where, p.busyPoll, err)
		}
	}
	if p.rcvbuf > 0 {
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, p.rcvbuf); err != nil {
			if err != unix.EPERM {
				return -1, fmt.Errorf("%s: SO_RCVBUFFORCE=%d: %w", where, p.rcvbuf, err)
			}
			if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, p.rcvbuf); err != nil {
				return -1, fmt.Errorf("%s: SO_RCVBUF=%d: %w", where, p.rcvbuf, err)
			}
		}
	}
	granted, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return -1, fmt.Errorf("%s: get SO_RCVBUF: %w", where, err)
	}
	if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: int(port)}); err != nil {
		return -1, fmt.Errorf("%s: bind: %w", where, err)
	}
	si = len(p.socks)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(si)}
	if err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return -1, fmt.Errorf("%s: epoll_ctl add: %w", where, err)
	}
	p.socks = append(p.socks, socket{fd: fd, port: port, ssm: ssm, shared: shared, single: -1, granted: granted})
	p.open++
	if cap(p.ready) < len(p.socks) {
		ring := make([]int32, 2*len(p.socks))
		for i := 0; i < p.rlen; i++ {
			ring[i] = p.ready[(p.rhead+i)%len(p.ready)]
		}
		p.ready, p.rhead = ring, 0
	}
	return si, nil
}

// closeSocket closes socket si; it leaves the ready queue the next time it is read.
func (p *Poller) closeSocket(si int) error {
	s := &p.socks[si]
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	err := unix.Close(s.fd)
	s.fd, s.members, s.n = -1, nil, 0
	p.open--
	return err
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

// LeaveGroup leaves membership i: it closes the group's own socket, or drops the
// group from its shared socket (closed with its last group). Its index is not reused.
func (p *Poller) LeaveGroup(i int) error {
	if err := p.enter(); err != nil {
		return fmt.Errorf("mcast: leave socket %d: %w", i, err)
	}
	defer p.exit()
	if i < 0 || i >= len(p.members) || p.members[i].Closed {
		return fmt.Errorf("mcast: leave socket %d: no such open socket", i)
	}
	m := &p.members[i]
	s := &p.socks[m.sock]
	m.Closed = true
	var err error
	if s.shared {
		err = p.membership(s.fd, false, m.Group.Addr(), m.Source)
		delete(s.members, memberKey(m.Group.Addr().As4(), m.Source))
		s.n--
		s.full = false
		if err != nil {
			err = fmt.Errorf("mcast: leave %v%s: drop membership: %w", m.Group, sourceNote(m.Source), err)
		}
	}
	if !s.shared || s.n == 0 {
		if cerr := p.closeSocket(m.sock); cerr != nil && err == nil {
			err = fmt.Errorf("mcast: leave %v: close: %w", m.Group, cerr)
		}
	}
	m.sock = -1
	return err
}

// Len returns the number of groups ever joined (the bound on indices).
func (p *Poller) Len() int { return len(p.members) }

// Sockets returns the number of sockets open: one per group joined, or with
// PollerConfig.Shared one per port (more where the kernel limits a socket's groups); after
// Close, as many as were open then.
func (p *Poller) Sockets() int { return p.open }

// Strays returns the datagrams that shared sockets received for no group joined
// (unicast to their port, or a group left a moment before) and dropped.
func (p *Poller) Strays() uint64 { return p.strays }

// Membership describes membership i, an index JoinGroup returned (it panics on
// others, as a slice index does). It does not allocate. It stays valid after
// LeaveGroup and Close, so counters can be read at exit.
func (p *Poller) Membership(i int) Membership {
	m := p.members[i].Membership
	m.Closed = m.Closed || p.closed.Load()
	return m
}

// Drops returns the datagrams the kernel dropped on membership i's socket, as last
// reported by SO_RXQ_OVFL with a received datagram (the kernel reports the count with
// the first datagram queued after a drop). A shared socket's drops are counted against
// the group of the datagram that reported them: their sum over all memberships is the
// Poller's. It makes no system call. i is an index JoinGroup returned.
func (p *Poller) Drops(i int) uint64 { return p.members[i].Drops }

// KernelDrops asks the kernel (SO_MEMINFO) how many datagrams it has dropped on
// membership i's socket so far, including drops no datagram has reported yet, and
// updates Drops (for a shared socket, adding the drops not yet counted to i's). After
// LeaveGroup or Close it returns the last count.
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
	s := &p.socks[m.sock]
	var info [skMeminfoVars]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return m.Drops, fmt.Errorf("mcast: %v: SO_MEMINFO: %w", m.Group, errno)
	}
	if size > skMeminfoDrops*4 {
		s.noteDrops(m, info[skMeminfoDrops])
	}
	return m.Drops, nil
}

// noteDrops folds the socket's 32-bit cumulative counter into m's Drops.
func (s *socket) noteDrops(m *member, v uint32) {
	m.Drops += uint64(v - s.lastOvfl)
	s.lastOvfl = v
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
	for i := range p.socks {
		s := &p.socks[i]
		if s.fd >= 0 {
			if err := unix.Close(s.fd); err != nil && first == nil {
				first = fmt.Errorf("mcast: close socket %d: %w", i, err)
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
