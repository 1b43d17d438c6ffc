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

// ReadBatch reads up to len(ms) datagrams from the sockets with data,
// waiting up to timeout for the first one (a negative timeout waits without
// limit, zero does not wait). Each ms[i].Buf must be non-empty; a datagram
// longer than it is cut short and marked Truncated. It returns the number of
// messages filled, or net.ErrClosed after Close. 0 with a nil error means the
// timeout passed (or, rarely, that a wakeup found the data gone, as for a
// datagram with a bad checksum). Sockets with data are served in turn, so a
// busy group does not starve the others. It does not allocate.
func (p *Poller) ReadBatch(ms []Message, timeout time.Duration) (int, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	defer p.exit()
	for i := range ms {
		if len(ms[i].Buf) == 0 {
			return 0, fmt.Errorf("mcast: ReadBatch: message %d has an empty Buf", i)
		}
	}
	if len(ms) == 0 {
		return 0, nil
	}
	if p.rlen > 0 && p.sinceRefresh >= refreshEvery {
		if _, err := p.wait(0); err != nil {
			return 0, err
		}
	}
	n, err := p.drain(ms)
	if n > 0 || err != nil {
		return n, err
	}
	woken, err := p.wait(timeout)
	if err != nil || woken {
		return 0, err
	}
	return p.drain(ms)
}

// spinSockets is the most sockets Poll reads in turn with recvmmsg alone; with more, a
// sweep of empty reads costs more than one epoll_wait that says which have data.
const spinSockets = 4

// Poll reads up to len(ms) datagrams from the sockets with data without ever sleeping:
// the read of a busy-polling receiver, which calls it in a loop. With at most
// spinSockets sockets it tries each in turn with recvmmsg(MSG_DONTWAIT), no epoll; with
// more, an epoll_wait that does not wait finds the sockets with data, which are read as
// ReadBatch reads them. 0 with a nil error means nothing had arrived. Messages are
// filled as by ReadBatch; net.ErrClosed after Close. It does not allocate.
func (p *Poller) Poll(ms []Message) (int, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	defer p.exit()
	if len(ms) == 0 {
		return 0, nil
	}
	for i := range ms {
		if len(ms[i].Buf) == 0 {
			return 0, fmt.Errorf("mcast: Poll: message %d has an empty Buf", i)
		}
	}
	if len(p.members) > spinSockets {
		if p.rlen > 0 && p.sinceRefresh >= refreshEvery {
			if _, err := p.wait(0); err != nil {
				return 0, err
			}
		}
		if n, err := p.drain(ms); n > 0 || err != nil {
			return n, err
		}
		if _, err := p.wait(0); err != nil {
			return 0, err
		}
		return p.drain(ms)
	}
	n := 0
	for k := 0; k < len(p.members) && n < len(ms); k++ {
		idx := p.spinNext
		if p.spinNext++; p.spinNext >= len(p.members) {
			p.spinNext = 0
		}
		m := &p.members[idx]
		if m.Closed {
			continue
		}
		got, err := p.recv(m, idx, ms[n:n+min(len(ms)-n, len(p.hdrs))])
		n += got
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// SetBusyPoll sets SO_BUSY_POLL to usec microseconds on every socket, and on those
// joined later: a read that finds a socket empty polls the device's receive queue for
// that long instead of returning at once (drivers with NAPI; loopback has none). Setting
// it above net.core.busy_read needs CAP_NET_ADMIN in the initial user namespace; without
// it SetBusyPoll returns the error (EPERM), changes nothing, and the Poller works as
// before. 0 turns it off.
func (p *Poller) SetBusyPoll(usec int) error {
	if usec < 0 {
		return fmt.Errorf("mcast: SO_BUSY_POLL %d µs is negative", usec)
	}
	if err := p.enter(); err != nil {
		return err
	}
	defer p.exit()
	// Try on a socket of our own first, so that a refusal leaves every socket as it was.
	probe, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("mcast: SO_BUSY_POLL: socket: %w", err)
	}
	err = unix.SetsockoptInt(probe, unix.SOL_SOCKET, unix.SO_BUSY_POLL, usec)
	unix.Close(probe)
	if err != nil {
		return fmt.Errorf("mcast: SO_BUSY_POLL=%d: %w", usec, err)
	}
	for i := range p.members {
		m := &p.members[i]
		if m.Closed {
			continue
		}
		if err := unix.SetsockoptInt(m.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, usec); err != nil {
			return fmt.Errorf("mcast: SO_BUSY_POLL=%d on %v: %w", usec, m.Group, err)
		}
	}
	p.busyPoll = usec
	return nil
}

// wait asks epoll for ready sockets, waiting up to timeout, and queues them.
// It reports whether Wake or Close woke it with no socket ready (Close with
// net.ErrClosed).
func (p *Poller) wait(timeout time.Duration) (bool, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	msec := -1
	for {
		switch {
		case timeout == 0:
			msec = 0
		case timeout > 0:
			left := time.Until(deadline)
			if left <= 0 {
				msec = 0
			} else {
				msec = int(min((left+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
			}
		}
		n, err := unix.EpollWait(p.epfd, p.events, msec)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("mcast: epoll_wait: %w", err)
		}
		p.sinceRefresh = 0
		woken := false
		for _, ev := range p.events[:n] {
			if ev.Fd == wakeTag {
				if p.closed.Load() {
					return true, net.ErrClosed
				}
				var count [8]byte
				_, _ = unix.Read(p.wakefd, count[:]) // reset the eventfd; Wake may have written it more than once
				woken = true
				continue
			}
			m := &p.members[ev.Fd]
			if !m.queued && !m.Closed {
				m.queued = true
				p.ready[(p.rhead+p.rlen)%len(p.ready)] = ev.Fd
				p.rlen++
			}
		}
		return woken && p.rlen == 0, nil
	}
}

// drain reads from the queued sockets in turn until ms is full or the queue
// is empty. A socket leaves the queue once a read finds it empty; one that
// filled ms goes to the back.
func (p *Poller) drain(ms []Message) (int, error) {
	n := 0
	for n < len(ms) && p.rlen > 0 {
		idx := p.ready[p.rhead]
		p.rhead = (p.rhead + 1) % len(p.ready)
		p.rlen--
		m := &p.members[idx]
		if m.Closed {
			m.queued = false
			continue
		}
		want := min(len(ms)-n, len(p.hdrs))
		got, err := p.recv(m, int(idx), ms[n:n+want])
		n += got
		p.sinceRefresh++
		if err != nil {
			m.queued = false
			return n, err
		}
		if got < want {
			m.queued = false // drained
			continue
		}
		p.ready[(p.rhead+p.rlen)%len(p.ready)] = idx // may have more
		p.rlen++
		if n == len(ms) {
			break
		}
	}
	return n, nil
}

// recv reads up to len(ms) datagrams from socket idx with one recvmmsg.
func (p *Poller) recv(m *member, idx int, ms []Message) (int, error) {
	for i := range ms {
		b := ms[i].Buf
		p.iovs[i].Base = &b[0]
		p.iovs[i].SetLen(len(b))
		h := &p.hdrs[i]
		h.Hdr.Namelen = unix.SizeofSockaddrInet4
		h.Hdr.SetControllen(oobSize)
		h.Hdr.Flags = 0
		h.Len = 0
	}
	got, errno := mmsg(unix.SYS_RECVMMSG, m.fd, p.hdrs[:len(ms)], unix.MSG_DONTWAIT)
	if errno == unix.EAGAIN {
		return 0, nil
	}
	if errno != 0 {
		return 0, fmt.Errorf("mcast: recvmmsg %v: %w", m.Group, errno)
	}
	for i := 0; i < got; i++ {
		h := &p.hdrs[i]
		msg := &ms[i]
		msg.N = int(h.Len)
		msg.Addr = sockaddrAddrPort(&p.names[i])
		msg.Group = idx
		msg.Truncated = h.Hdr.Flags&unix.MSG_TRUNC != 0
		ts, drops, ok := parseControl(p.oob[i*oobSize : i*oobSize+int(h.Hdr.Controllen)])
		msg.KernelTime = ts
		if ok {
			m.noteDrops(drops)
		}
	}
	for i := range ms {
		p.iovs[i].Base = nil
	}
	return got, nil
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
