// Package dgauth authenticates fastfeed multicast datagrams with a shared key: the
// publisher appends a trailer (a key id and a 16-byte tag) to every datagram, and a
// handler, recorder or replay checks it before anything else reads the datagram.
//
// The datagram on the wire, with a key:
//
//	preamble (4 bytes, LE MsgSeqNum) | FAST message | key id (1 byte) | tag (16 bytes)
//
// The tag is HighwayHash-128 keyed with the 32-byte datagram key, over
//
//	line A group (4 bytes) | line A port (2 bytes, big-endian) | preamble | FAST message | key id
//
// Line A's group and port are authenticated, so a datagram cannot be moved to another
// channel; lines A and B carry the same bytes (B is checked against its channel's line A
// address). The datagram key is SHA-256 of a fixed label and the key file's key bytes
// (see ParseKey), so one file never yields the same HighwayHash key as a different use
// of it.
//
// A Key does not allocate in Seal or Open. It keeps a running hash state, so one Key is
// used by one goroutine at a time; Clone gives another.
//
// What it protects and what it does not is written in docs/mcast-auth.md: a sender
// without the key cannot make a handler apply a datagram, whatever source address it
// forges; anyone can still replay an authentic datagram (its sequence number makes it a
// duplicate), drop or delay datagrams, and read them (nothing is encrypted).
package dgauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/minio/highwayhash"
)

const (
	// TagLen is the length of the tag.
	TagLen = highwayhash.Size128
	// Overhead is the length of the trailer: the key id and the tag.
	Overhead = 1 + TagLen
	// DefaultID is the key id of a key file that does not give one.
	DefaultID = 0x10
	// MinKeyBytes is the least key material a key file may hold.
	MinKeyBytes = 32
	// label separates the datagram key from any other key derived from the same file.
	label = "fastfeed mcast datagram key v1\x00"
)

// Errors of Open; they may be compared with errors.Is.
var (
	ErrShort = errors.New("dgauth: datagram shorter than preamble and trailer")
	ErrKeyID = errors.New("dgauth: unknown key id")
	ErrTag   = errors.New("dgauth: tag mismatch")
)

// Key seals and opens datagrams. The zero value is not usable; see New, ParseKey and
// LoadKey.
type Key struct {
	id   byte
	base highwayhash.Digest // keyed, reset: copied into d for each datagram
	d    highwayhash.Digest
	hdr  [6]byte
	sum  [TagLen]byte
}

// New returns a Key from key material (at least MinKeyBytes bytes) with key id id.
func New(material []byte, id byte) (*Key, error) {
	if len(material) < MinKeyBytes {
		return nil, fmt.Errorf("dgauth: key of %d bytes: want at least %d", len(material), MinKeyBytes)
	}
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(material)
	dk := h.Sum(nil)
	d, err := highwayhash.NewDigest128(dk)
	if err != nil {
		return nil, fmt.Errorf("dgauth: %w", err)
	}
	return &Key{id: id, base: *d}, nil
}

// ID returns the key id written into the trailer.
func (k *Key) ID() byte { return k.id }

// Clone returns a Key with the same key, for another goroutine.
func (k *Key) Clone() *Key {
	c := *k
	return &c
}

// ParseKey reads a key file's contents: either hex (at least 64 hex digits, i.e. 32
// bytes; spaces and line breaks ignored, an optional "id=0xNN" line first) or raw bytes
// (at least 32 bytes that are not all hex text). name names the file in errors.
func ParseKey(name string, data []byte) (*Key, error) {
	id := byte(DefaultID)
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "id=") {
		line, rest, _ := strings.Cut(text, "\n")
		var v uint
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "id=0x%x", &v); err != nil || v > 0xff {
			return nil, fmt.Errorf("dgauth: key file %s: first line %q: want id=0xNN (one byte in hex)", name, line)
		}
		id = byte(v)
		text = strings.TrimSpace(rest)
		data = []byte(text)
	}
	if isHexText(text) {
		clean := strings.Join(strings.Fields(text), "")
		if len(clean)%2 != 0 {
			return nil, fmt.Errorf("dgauth: key file %s: odd number (%d) of hex digits", name, len(clean))
		}
		if len(clean) < 2*MinKeyBytes {
			return nil, fmt.Errorf("dgauth: key file %s: %d hex digits: want at least %d (%d bytes); make one with: head -c 32 /dev/urandom | xxd -p -c 64",
				name, len(clean), 2*MinKeyBytes, MinKeyBytes)
		}
		b, err := hex.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("dgauth: key file %s: %w", name, err)
		}
		return New(b, id)
	}
	if len(data) < MinKeyBytes {
		return nil, fmt.Errorf("dgauth: key file %s: %d bytes, neither %d+ hex digits nor %d+ raw bytes", name, len(data), 2*MinKeyBytes, MinKeyBytes)
	}
	return New(data, id)
}

// isHexText reports whether s is hex digits and white space only (and not empty).
func isHexText(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			n++
		case c == ' ', c == '\t', c == '\n', c == '\r':
		default:
			return false
		}
	}
	return n > 0
}

// LoadKey reads a key file (see ParseKey).
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dgauth: %w", err)
	}
	return ParseKey(path, data)
}

// tag computes the tag of msg (preamble, FAST message and key id) sent to lineA.
func (k *Key) tag(lineA netip.AddrPort, msg []byte) *[TagLen]byte {
	a := lineA.Addr().As4()
	copy(k.hdr[:4], a[:])
	binary.BigEndian.PutUint16(k.hdr[4:], lineA.Port())
	k.d = k.base
	k.d.Write(k.hdr[:])
	k.d.Write(msg)
	k.d.Sum(k.sum[:0])
	return &k.sum
}

// Seal appends the trailer of datagram (preamble and FAST message), sent on the channel
// whose line A is lineA, to dst and returns it. To seal in place, pass datagram as dst
// with Overhead bytes of spare capacity: Seal(d, a, d).
func (k *Key) Seal(dst []byte, lineA netip.AddrPort, datagram []byte) []byte {
	n := len(datagram)
	if len(dst) != n || n == 0 || &dst[0] != &datagram[0] {
		dst = append(dst, datagram...)
	}
	dst = append(dst, k.id)
	t := k.tag(lineA, dst[len(dst)-n-1:])
	return append(dst, t[:]...)
}

// Open checks the trailer of datagram, received on the channel whose line A is lineA,
// and returns the datagram without it (preamble and FAST message), a subslice of
// datagram. A datagram that is too short, has another key id or a wrong tag gives an
// error (ErrShort, ErrKeyID, ErrTag).
func (k *Key) Open(lineA netip.AddrPort, datagram []byte) ([]byte, error) {
	if len(datagram) < 4+Overhead {
		return nil, ErrShort
	}
	body := datagram[:len(datagram)-TagLen]
	if body[len(body)-1] != k.id {
		return nil, ErrKeyID
	}
	t := k.tag(lineA, body)
	if subtle.ConstantTimeCompare(t[:], datagram[len(body):]) != 1 {
		return nil, ErrTag
	}
	return body[:len(body)-1], nil
}
