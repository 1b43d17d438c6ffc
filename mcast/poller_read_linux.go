package mcast

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

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
	n, err := p.drain(ms, false)
	if n > 0 || err != nil {
		return n, err
	}
	woken, err := p.wait(timeout)
	if err != nil || woken {
		return 0, err
	}
	return p.drain(ms, false)
}

// spinSockets is the most sockets Poll reads in turn with recvmmsg alone; with more, a
// sweep of empty reads costs more than one epoll_wait that says which have data.
const spinSockets = 4

// Poll reads up to len(ms) datagrams from one socket with data without ever sleeping:
// the read of a busy-polling receiver, which calls it in a loop. With at most
// spinSockets sockets it tries each in turn with recvmmsg(MSG_DONTWAIT), no epoll; with
// more, an epoll_wait that does not wait finds the sockets with data, which are queued
// and read in turn as ReadBatch reads them (epoll is asked again once the queue is
// empty, or once each socket it returned has been read: at least refreshEvery reads). Either way Poll returns as soon as one recvmmsg
// returned datagrams: the caller handles them while the next socket's wait in the kernel
// queue, rather than after one read of every socket with data (a syscall each, which
// delayed the first datagram by all the others' reads). 0 with a nil error means nothing
// had arrived. Messages are filled as by ReadBatch; net.ErrClosed after Close. It does not
// allocate.
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
	if p.open > spinSockets {
		if p.rlen > 0 && p.sinceRefresh >= p.round {
			if _, err := p.wait(0); err != nil {
				return 0, err
			}
		}
		if n, err := p.drain(ms, true); n > 0 || err != nil {
			return n, err
		}
		if _, err := p.wait(0); err != nil {
			return 0, err
		}
		return p.drain(ms, true)
	}
	n := 0
	for k := 0; k < len(p.socks) && n == 0; k++ {
		si := p.spinNext
		if p.spinNext++; p.spinNext >= len(p.socks) {
			p.spinNext = 0
		}
		s := &p.socks[si]
		if s.fd < 0 {
			continue
		}
		got, read, err := p.recv(s, ms[:min(len(ms), len(p.hdrs), max(s.hint, 2))])
		s.hint = 2 * read
		n += got
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// SetBusyPoll sets SO_BUSY_POLL to usec microseconds on every socket, and on those
// joined later: a read that finds a socket empty polls the device's receive queue for
// that long instead of returning at once (drivers with NAPI; loopback has none: its
// datagrams carry no NAPI ID, SO_INCOMING_NAPI_ID reads 0, and the option changes nothing
// there). Setting it above net.core.busy_read needs CAP_NET_ADMIN (on Linux 6.18 the
// owner of a private user and network namespace has it there, as in the tests and the
// bench); without it SetBusyPoll returns the error (EPERM), changes nothing, and the
// Poller works as before. 0 turns it off.
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
	for i := range p.socks {
		s := &p.socks[i]
		if s.fd < 0 {
			continue
		}
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, usec); err != nil {
			return fmt.Errorf("mcast: SO_BUSY_POLL=%d on socket %d (port %d): %w", usec, i, s.port, err)
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
			s := &p.socks[ev.Fd]
			if !s.queued && s.fd >= 0 {
				s.queued = true
				p.ready[(p.rhead+p.rlen)%len(p.ready)] = ev.Fd
				p.rlen++
			}
		}
		p.round = max(refreshEvery, p.rlen)
		return woken && p.rlen == 0, nil
	}
}

// drain reads from the queued sockets in turn until ms is full or the queue
// is empty, or with one (Poll) until a read returned datagrams, each read then
// asking for the socket's hint. A socket leaves the queue once a read returns
// fewer than asked; one that filled its share goes to the back.
func (p *Poller) drain(ms []Message, one bool) (int, error) {
	n := 0
	for n < len(ms) && p.rlen > 0 && (!one || n == 0) {
		si := p.ready[p.rhead]
		p.rhead = (p.rhead + 1) % len(p.ready)
		p.rlen--
		s := &p.socks[si]
		if s.fd < 0 {
			s.queued = false
			continue
		}
		want := min(len(ms)-n, len(p.hdrs))
		if one {
			want = min(want, max(s.hint, 2))
		}
		got, read, err := p.recv(s, ms[n:n+want])
		if one {
			s.hint = 2 * read
		}
		n += got
		p.sinceRefresh++
		if err != nil {
			s.queued = false
			return n, err
		}
		if read < want {
			s.queued = false // drained
			continue
		}
		p.ready[(p.rhead+p.rlen)%len(p.ready)] = si // may have more
		p.rlen++
		if n == len(ms) {
			break
		}
	}
	return n, nil
}

// recv reads up to len(ms) datagrams from socket s with one recvmmsg. It returns how many
// messages it filled and how many datagrams the kernel handed over: a shared socket's
// strays (datagrams of no member) are counted and left out of ms.
func (p *Poller) recv(s *socket, ms []Message) (got, read int, err error) {
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
	read, errno := mmsg(unix.SYS_RECVMMSG, s.fd, p.hdrs[:len(ms)], unix.MSG_DONTWAIT)
	for i := range ms {
		p.iovs[i].Base = nil
	}
	if errno == unix.EAGAIN {
		return 0, 0, nil
	}
	if errno != 0 {
		return 0, 0, fmt.Errorf("mcast: recvmmsg on socket of port %d: %w", s.port, errno)
	}
	for i := 0; i < read; i++ {
		h := &p.hdrs[i]
		c := parseControl(p.oob[i*oobSize : i*oobSize+int(h.Hdr.Controllen)])
		idx := s.single
		if s.shared {
			var ok bool
			if idx, ok = s.lookup(c, &p.names[i]); !ok {
				p.strays++
				continue
			}
		}
		msg := &ms[got]
		if got != i { // a stray before it: move the datagram's buffer into its place
			ms[i].Buf, msg.Buf = msg.Buf, ms[i].Buf
		}
		msg.N = int(h.Len)
		msg.Addr = sockaddrAddrPort(&p.names[i])
		msg.Group = idx
		msg.Truncated = h.Hdr.Flags&unix.MSG_TRUNC != 0
		msg.KernelTime = c.kernelTime
		if c.hasDrops {
			s.noteDrops(&p.members[idx], c.drops)
		}
		got++
	}
	return got, read, nil
}

// lookup finds the member of a shared socket's datagram from its destination group
// (IP_PKTINFO) and, for source-specific joins, its source.
func (s *socket) lookup(c control, from *unix.RawSockaddrInet4) (int, bool) {
	if !c.hasDst {
		return 0, false
	}
	var src netip.Addr
	if s.ssm {
		src = netip.AddrFrom4(from.Addr)
	}
	idx, ok := s.members[memberKey(c.dst, src)]
	return idx, ok
}
