package mcast

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg appends one control message with its padding, laid out as the kernel
// does.
func cmsg(b []byte, level, typ int32, data []byte) []byte {
	h := make([]byte, unix.SizeofCmsghdr)
	l := unix.SizeofCmsghdr + len(data)
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(h, uint64(l))
	} else {
		binary.NativeEndian.PutUint32(h, uint32(l))
	}
	binary.NativeEndian.PutUint32(h[cmsgLenSize:], uint32(level))
	binary.NativeEndian.PutUint32(h[cmsgLenSize+4:], uint32(typ))
	b = append(append(b, h...), data...)
	for len(b)%int(unsafe.Sizeof(uintptr(0))) != 0 {
		b = append(b, 0)
	}
	return b
}

func timespec(sec, nsec int64) []byte {
	b := make([]byte, 2*tsFieldSize)
	if tsFieldSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(sec))
		binary.NativeEndian.PutUint64(b[8:], uint64(nsec))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(sec))
		binary.NativeEndian.PutUint32(b[4:], uint32(nsec))
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// pktinfo is a struct in_pktinfo for a datagram to dst on interface 1.
func pktinfo(dst [4]byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, 1)
	b = append(b, 127, 0, 0, 1)
	return append(b, dst[:]...)
}

func TestParseControl(t *testing.T) {
	ts := timespec(1_700_000_000, 123_456_789)
	const kt = 1_700_000_000_123_456_789
	both := cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(42))
	group := [4]byte{239, 1, 2, 3}
	all := cmsg(both, unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo(group))
	for _, tc := range []struct {
		name string
		b    []byte
		want control
	}{
		{"empty", nil, control{}},
		{"timestamp", cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts), control{kernelTime: kt}},
		{"drops", cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(7)), control{drops: 7, hasDrops: true}},
		{"both", both, control{kernelTime: kt, drops: 42, hasDrops: true}},
		{"reversed", cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(9)), unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts), control{kernelTime: kt, drops: 9, hasDrops: true}},
		{"destination", cmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo(group)), control{dst: group, hasDst: true}},
		{"all three", all, control{kernelTime: kt, drops: 42, hasDrops: true, dst: group, hasDst: true}},
		{"other level ignored", cmsg(cmsg(nil, unix.IPPROTO_IP, unix.SO_RXQ_OVFL, u32(5)), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(6)), control{drops: 6, hasDrops: true}},
		{"pktinfo at another level ignored", cmsg(nil, unix.SOL_SOCKET, unix.IP_PKTINFO, pktinfo(group)), control{}},
		{"short timestamp ignored", cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts[:4]), control{}},
		{"short drops ignored", cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, []byte{1}), control{}},
		{"short pktinfo ignored", cmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo(group)[:11]), control{}},
		{"truncated header", both[:unix.SizeofCmsghdr-1], control{}},
		{"second message cut", both[:len(both)-8], control{kernelTime: kt}},
	} {
		if got := parseControl(tc.b); got != tc.want {
			t.Errorf("%s: parseControl = %+v; want %+v", tc.name, got, tc.want)
		}
	}
	bad := cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(1))
	binary.NativeEndian.PutUint32(bad, 3) // length shorter than a header
	if c := parseControl(bad); c.hasDrops {
		t.Error("a control message with a length under the header size was accepted")
	}
}

func TestDropCounterWraps(t *testing.T) {
	var s socket
	var m member
	s.noteDrops(&m, 10)
	s.noteDrops(&m, 0xfffffff0)
	s.noteDrops(&m, 5) // the kernel's 32-bit counter wrapped
	if want := uint64(1<<32 + 5); m.Drops != want {
		t.Errorf("Drops = %d, want %d", m.Drops, want)
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add(cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(1, 2)), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(3)))
	f.Add(cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(3)))
	f.Add(cmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo([4]byte{239, 0, 0, 1})))
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseControl(b) // must not panic or loop
	})
}
