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

func TestParseControl(t *testing.T) {
	ts := timespec(1_700_000_000, 123_456_789)
	both := cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(42))
	for _, tc := range []struct {
		name     string
		b        []byte
		kt       int64
		drops    uint32
		hasDrops bool
	}{
		{"empty", nil, 0, 0, false},
		{"timestamp", cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts), 1_700_000_000_123_456_789, 0, false},
		{"drops", cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(7)), 0, 7, true},
		{"both", both, 1_700_000_000_123_456_789, 42, true},
		{"reversed", cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(9)), unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts), 1_700_000_000_123_456_789, 9, true},
		{"other level ignored", cmsg(cmsg(nil, unix.IPPROTO_IP, unix.SO_RXQ_OVFL, u32(5)), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(6)), 0, 6, true},
		{"short timestamp ignored", cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts[:4]), 0, 0, false},
		{"short drops ignored", cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, []byte{1}), 0, 0, false},
		{"truncated header", both[:unix.SizeofCmsghdr-1], 0, 0, false},
		{"second message cut", both[:len(both)-8], 1_700_000_000_123_456_789, 0, false},
	} {
		kt, drops, ok := parseControl(tc.b)
		if kt != tc.kt || drops != tc.drops || ok != tc.hasDrops {
			t.Errorf("%s: parseControl = %d, %d, %v; want %d, %d, %v", tc.name, kt, drops, ok, tc.kt, tc.drops, tc.hasDrops)
		}
	}
	bad := cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(1))
	binary.NativeEndian.PutUint32(bad, 3) // length shorter than a header
	if _, _, ok := parseControl(bad); ok {
		t.Error("a control message with a length under the header size was accepted")
	}
}

func TestDropCounterWraps(t *testing.T) {
	var m member
	m.noteDrops(10)
	m.noteDrops(0xfffffff0)
	m.noteDrops(5) // the kernel's 32-bit counter wrapped
	if want := uint64(1<<32 + 5); m.Drops != want {
		t.Errorf("Drops = %d, want %d", m.Drops, want)
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add(cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(1, 2)), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(3)))
	f.Add(cmsg(nil, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(3)))
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseControl(b) // must not panic or loop
	})
}
