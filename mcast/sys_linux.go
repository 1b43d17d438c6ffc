package mcast

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxBatch is the kernel's limit on messages per sendmmsg/recvmmsg call
// (UIO_MAXIOV).
const maxBatch = 1024

// skMeminfoDrops is SK_MEMINFO_DROPS, the index of the drop counter in the
// array SO_MEMINFO returns; skMeminfoVars is SK_MEMINFO_VARS.
const (
	skMeminfoDrops = 8
	skMeminfoVars  = 9
)

// oobSize is the control buffer per received datagram: room for a timespec
// (SCM_TIMESTAMPNS), a uint32 (SO_RXQ_OVFL) and an in_pktinfo (IP_PKTINFO, shared
// sockets), with spare.
var oobSize = unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))) + unix.CmsgSpace(4) +
	unix.CmsgSpace(unix.SizeofInet4Pktinfo) + 32

const (
	cmsgLenSize = int(unsafe.Sizeof(unix.Cmsghdr{}.Len))
	tsFieldSize = int(unsafe.Sizeof(unix.Timespec{}.Sec))
)

// setSockaddr stores ap, an IPv4 address and port, in sa.
func setSockaddr(sa *unix.RawSockaddrInet4, ap netip.AddrPort) {
	sa.Family = unix.AF_INET
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	sa.Addr = ap.Addr().As4()
}

// sockaddrAddrPort returns the address and port stored in sa.
func sockaddrAddrPort(sa *unix.RawSockaddrInet4) netip.AddrPort {
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
}

// mmsg calls sendmmsg or recvmmsg (trap) on fd for hs, and retries on EINTR.
func mmsg(trap uintptr, fd int, hs []unix.Mmsghdr, flags int) (int, unix.Errno) {
	for {
		r, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)), uintptr(flags), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), 0
	}
}

// control is what the control messages of one received datagram say.
type control struct {
	kernelTime int64   // kernel receive time (SCM_TIMESTAMPNS), ns since the epoch; 0 if absent
	drops      uint32  // the socket's cumulative drop counter (SO_RXQ_OVFL)
	hasDrops   bool    // drops was present
	dst        [4]byte // the datagram's destination address (IP_PKTINFO's ipi_addr)
	hasDst     bool    // dst was present
}

// parseControl reads the control messages of one received datagram. Malformed input
// ends the parse; it never panics.
func parseControl(b []byte) (c control) {
	for len(b) >= unix.SizeofCmsghdr {
		var l uint64
		if cmsgLenSize == 8 {
			l = binary.NativeEndian.Uint64(b)
		} else {
			l = uint64(binary.NativeEndian.Uint32(b))
		}
		if l < unix.SizeofCmsghdr || l > uint64(len(b)) {
			return
		}
		level := int32(binary.NativeEndian.Uint32(b[cmsgLenSize:]))
		typ := int32(binary.NativeEndian.Uint32(b[cmsgLenSize+4:]))
		data := b[unix.SizeofCmsghdr:l]
		switch {
		case level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS:
			if len(data) >= 2*tsFieldSize {
				var sec, nsec int64
				if tsFieldSize == 8 {
					sec = int64(binary.NativeEndian.Uint64(data))
					nsec = int64(binary.NativeEndian.Uint64(data[8:]))
				} else {
					sec = int64(int32(binary.NativeEndian.Uint32(data)))
					nsec = int64(int32(binary.NativeEndian.Uint32(data[4:])))
				}
				c.kernelTime = sec*1e9 + nsec
			}
		case level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL:
			if len(data) >= 4 {
				c.drops, c.hasDrops = binary.NativeEndian.Uint32(data), true
			}
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO:
			// struct in_pktinfo: ipi_ifindex, ipi_spec_dst, ipi_addr (the header's destination).
			if len(data) >= unix.SizeofInet4Pktinfo {
				copy(c.dst[:], data[8:12])
				c.hasDst = true
			}
		}
		next := cmsgAlign(l)
		if next >= uint64(len(b)) {
			return
		}
		b = b[next:]
	}
	return
}

func cmsgAlign(l uint64) uint64 {
	const a = uint64(unsafe.Sizeof(uintptr(0)))
	return (l + a - 1) &^ (a - 1)
}

// setsockoptBytes sets a socket option from raw bytes.
func setsockoptBytes(fd, level, opt int, b []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// sysctl returns the value of a sysctl under /proc/sys, or a note on why it
// could not be read, for error messages.
func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return fmt.Sprintf("unreadable (%v)", err)
	}
	return strings.TrimSpace(string(b))
}
