package dgauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/highwayhash"
	"golang.org/x/crypto/blake2b"
)

var (
	lineA   = netip.MustParseAddrPort("239.1.2.3:30001")
	hexKey  = strings.Repeat("0123456789abcdef", 4)
	testKey = mustKey(hexKey)
)

func mustKey(s string) *Key {
	k, err := ParseKey("test", []byte(s))
	if err != nil {
		panic(err)
	}
	return k
}

func datagram(seq uint32, n int) []byte {
	d := make([]byte, 4+n, 4+n+Overhead)
	binary.LittleEndian.PutUint32(d, seq)
	for i := range d[4:] {
		d[4+i] = byte(i * 7)
	}
	return d
}

// TestTrailerLayout checks the trailer byte by byte against the definition in the package
// documentation (and docs/mcast-auth.md): key id, then HighwayHash-128 keyed with
// SHA-256(label | key bytes) over group, port (big-endian), preamble, message, key id.
func TestTrailerLayout(t *testing.T) {
	d := datagram(42, 30)
	orig := append([]byte(nil), d...)
	sealed := testKey.Seal(nil, lineA, d)
	if len(sealed) != len(d)+Overhead || !bytes.Equal(sealed[:len(d)], orig) {
		t.Fatalf("sealed %x: want the datagram then %d bytes", sealed, Overhead)
	}
	if sealed[len(d)] != DefaultID {
		t.Errorf("key id %#x, want %#x", sealed[len(d)], DefaultID)
	}
	material, _ := hex.DecodeString(hexKey)
	dk := sha256.Sum256(append([]byte("fastfeed mcast datagram key v1\x00"), material...))
	var in []byte
	in = append(in, 239, 1, 2, 3, 0x75, 0x31) // 30001 = 0x7531
	in = append(in, orig...)
	in = append(in, DefaultID)
	want := highwayhash.Sum128(in, dk[:])
	if !bytes.Equal(sealed[len(d)+1:], want[:]) {
		t.Errorf("tag %x, want %x", sealed[len(d)+1:], want)
	}
	// In place: the same bytes.
	inPlace := testKey.Seal(d, lineA, d)
	if !bytes.Equal(inPlace, sealed) || &inPlace[0] != &d[0] {
		t.Errorf("in-place seal %x (same array %v), want %x", inPlace, &inPlace[0] == &d[0], sealed)
	}
	got, err := testKey.Open(lineA, sealed)
	if err != nil || !bytes.Equal(got, orig) {
		t.Errorf("Open = %x, %v; want %x", got, err, orig)
	}
}

// TestOpenRefuses flips every bit of a sealed datagram, truncates it, moves it to another
// channel and opens it with another key: each is refused with its error.
func TestOpenRefuses(t *testing.T) {
	sealed := testKey.Seal(nil, lineA, datagram(7, 50))
	for i := range sealed {
		for bit := range 8 {
			c := append([]byte(nil), sealed...)
			c[i] ^= 1 << bit
			if _, err := testKey.Open(lineA, c); err == nil {
				t.Fatalf("byte %d bit %d flipped: accepted", i, bit)
			} else if i == len(sealed)-Overhead && !errors.Is(err, ErrKeyID) {
				t.Fatalf("key id flipped: %v, want ErrKeyID", err)
			}
		}
	}
	for n := range 4 + Overhead {
		if _, err := testKey.Open(lineA, sealed[:n]); !errors.Is(err, ErrShort) {
			t.Errorf("%d bytes: %v, want ErrShort", n, err)
		}
	}
	if _, err := testKey.Open(netip.MustParseAddrPort("239.1.2.4:30001"), sealed); !errors.Is(err, ErrTag) {
		t.Errorf("other group: %v, want ErrTag", err)
	}
	if _, err := testKey.Open(netip.MustParseAddrPort("239.1.2.3:30002"), sealed); !errors.Is(err, ErrTag) {
		t.Errorf("other port: %v, want ErrTag", err)
	}
	other := mustKey(strings.Repeat("f", 64))
	if _, err := other.Open(lineA, sealed); !errors.Is(err, ErrTag) {
		t.Errorf("other key: %v, want ErrTag", err)
	}
	if _, err := testKey.Open(lineA, datagram(7, 50)); err == nil {
		t.Error("unsealed datagram accepted")
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfe, 0x01, 'z'}, 11) // 33 bytes, not hex text
	for _, tc := range []struct {
		name, data string
		id         byte
		err        string
	}{
		{"hex", hexKey, DefaultID, ""},
		{"hex with newline and spaces", hexKey[:32] + "\n " + hexKey[32:] + "\n", DefaultID, ""},
		{"hex upper case", strings.ToUpper(hexKey), DefaultID, ""},
		{"id line", "id=0x2a\n" + hexKey, 0x2a, ""},
		{"raw", string(raw), DefaultID, ""},
		{"short hex", hexKey[:62], 0, "62 hex digits: want at least 64"},
		{"odd hex", hexKey + "a", 0, "odd number (65) of hex digits"},
		{"short raw", "\xff\xfe\xfd", 0, "3 bytes, neither 64+ hex digits nor 32+ raw bytes"},
		{"empty", "", 0, "0 bytes"},
		{"bad id", "id=zz\n" + hexKey, 0, "want id=0xNN"},
		{"id too big", "id=0x100\n" + hexKey, 0, "want id=0xNN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey("k.hex", []byte(tc.data))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "k.hex") {
					t.Fatalf("err %v, want one naming k.hex and containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.ID() != tc.id {
				t.Errorf("id %#x, want %#x", k.ID(), tc.id)
			}
		})
	}
	// Upper and lower case hex and spacing give the same key.
	a := testKey.Seal(nil, lineA, datagram(1, 10))
	b := mustKey(strings.ToUpper(hexKey[:20])+"\n"+hexKey[20:]).Seal(nil, lineA, datagram(1, 10))
	if !bytes.Equal(a, b) {
		t.Error("the same hex key in other spelling seals differently")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mcast.key")
	if err := os.WriteFile(p, []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Seal(nil, lineA, datagram(3, 9)), testKey.Seal(nil, lineA, datagram(3, 9))) {
		t.Error("loaded key seals differently")
	}
	if _, err := LoadKey(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNoAllocs(t *testing.T) {
	d := datagram(9, 400)
	sealed := testKey.Seal(nil, lineA, d)
	buf := make([]byte, 0, len(sealed))
	if n := testing.AllocsPerRun(100, func() {
		buf = testKey.Seal(buf[:0], lineA, d)
		if _, err := testKey.Open(lineA, sealed); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per Seal and Open, want 0", n)
	}
}

func TestClone(t *testing.T) {
	c := testKey.Clone()
	sealed := testKey.Seal(nil, lineA, datagram(5, 100))
	if _, err := c.Open(lineA, sealed); err != nil {
		t.Error(err)
	}
}

// FuzzOpen opens arbitrary bytes: never a panic, an accepted datagram is exactly a
// sealed one (the payload sealed again gives the input), and a sealed input is accepted.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(datagram(1, 3), false)
	f.Add(datagram(1, 3), true)
	f.Add(testKey.Seal(nil, lineA, datagram(2, 40)), false)
	f.Fuzz(func(t *testing.T, b []byte, seal bool) {
		if seal && len(b) >= 4 {
			b = testKey.Seal(nil, lineA, b)
		}
		p, err := testKey.Open(lineA, b)
		if seal && len(b) >= 4+Overhead && err != nil {
			t.Fatalf("sealed datagram refused: %v", err)
		}
		if err != nil {
			return
		}
		if len(p) != len(b)-Overhead || !bytes.Equal(testKey.Seal(nil, lineA, p), b) {
			t.Fatalf("accepted %x: payload %x does not seal back to it", b, p)
		}
	})
}

// The tag's cost against the usual MACs, over datagrams of typical sizes. The HMAC and
// BLAKE2b variants hash the same bytes (address header and datagram) with a reused state.
func BenchmarkTag(b *testing.B) {
	dk := sha256.Sum256([]byte(hexKey))
	for _, n := range []int{100, 400, 1400} {
		d := datagram(1, n-4)
		sealed := testKey.Seal(nil, lineA, d)
		hdr := []byte{239, 1, 2, 3, 0x75, 0x31}
		b.Run(fmt.Sprintf("HighwayHash128Open/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := testKey.Open(lineA, sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("HighwayHash128Seal/%d", n), func(b *testing.B) {
			buf := make([]byte, 0, len(sealed))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				buf = testKey.Seal(buf[:0], lineA, d)
			}
		})
		b.Run(fmt.Sprintf("HMACSHA256/%d", n), func(b *testing.B) {
			m := hmac.New(sha256.New, dk[:])
			var sum [sha256.Size]byte
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset()
				m.Write(hdr)
				m.Write(d)
				m.Sum(sum[:0])
			}
		})
		b.Run(fmt.Sprintf("BLAKE2b128/%d", n), func(b *testing.B) {
			m, err := blake2b.New(16, dk[:])
			if err != nil {
				b.Fatal(err)
			}
			var sum [64]byte
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset()
				m.Write(hdr)
				m.Write(d)
				m.Sum(sum[:0])
			}
		})
	}
}
