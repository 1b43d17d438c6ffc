// Package framing reads FAST messages out of captured bytes in the framings fastfeed's
// tools accept: a plain stream, datagram payloads with fastfeed's 4-byte little-endian
// sequence preamble (seq32), and blocks with a 4-byte little-endian length prefix (len32).
// Capture files (pcap) are split into datagrams by package replay and then read as seq32.
package framing

import (
	"encoding/binary"
	"fmt"
	"strings"

	"fastfeed/fast"
)

// Kind is a framing of FAST messages.
type Kind int

// Framings understood by Parse.
const (
	Stream Kind = iota // messages back to back, one dictionary state throughout
	Seq32              // each message preceded by a 4-byte LE sequence number; dictionaries reset per message
	Len32              // each message preceded by a 4-byte LE length; dictionaries reset per message
	Pcap               // UDP payloads of a capture, each one seq32 message
)

var names = []string{"stream", "seq32", "len32", "pcap"}

func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("framing(%d)", int(k))
}

// Parse returns the framing called name.
func Parse(name string) (Kind, error) {
	for i, n := range names {
		if n == name {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown framing %q (want %s)", name, strings.Join(names, ", "))
}

// Error reports a malformed frame or message with its offset in the input.
type Error struct {
	Offset int   // offset in the whole input
	Err    error // a *fast.Error for a malformed message
	Msg    string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("at input offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("at input offset %d: %s", e.Offset, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Decoder is what a Reader decodes with: a *fast.Decoder, or a generated codec behind the
// same interface (fast/codecs).
type Decoder interface {
	Decode(b []byte, m *fast.Message) (int, error)
	Reset()
}

// Reader decodes the messages of one framed input held in memory.
type Reader struct {
	kind  Kind
	dec   Decoder
	data  []byte
	pos   int
	count int
}

// NewReader returns a Reader of data in framing k (Stream, Seq32 or Len32).
func NewReader(k Kind, dec Decoder, data []byte) *Reader {
	return &Reader{kind: k, dec: dec, data: data}
}

// Next decodes the next message into m. seq is the frame's sequence number for Seq32 and
// the 1-based message count otherwise; offset is where the frame starts. Next returns
// ok=false at the end of the input, and an *Error for a malformed frame or message, after
// which reading stops.
func (r *Reader) Next(m *fast.Message) (seq uint32, offset int, ok bool, err error) {
	b := r.data[r.pos:]
	if len(b) == 0 {
		return 0, r.pos, false, nil
	}
	offset = r.pos
	r.count++
	seq = uint32(r.count)
	payload := b
	head := 0
	switch r.kind {
	case Seq32, Len32:
		if len(b) < 4 {
			return 0, offset, false, &Error{Offset: offset, Msg: fmt.Sprintf("%d bytes left, a %s frame header needs 4", len(b), r.kind)}
		}
		word := binary.LittleEndian.Uint32(b)
		head = 4
		if r.kind == Seq32 {
			seq = word
			payload = b[4:]
		} else {
			if uint64(word) > uint64(len(b)-4) {
				return 0, offset, false, &Error{Offset: offset, Msg: fmt.Sprintf("frame length %d exceeds the %d bytes left", word, len(b)-4)}
			}
			payload = b[4 : 4+word]
		}
		r.dec.Reset()
	}
	n, err := r.dec.Decode(payload, m)
	if err != nil {
		at := offset + head
		if fe, ok := err.(*fast.Error); ok && fe.Offset >= 0 {
			at += fe.Offset
		}
		return seq, offset, false, &Error{Offset: at, Err: err}
	}
	if r.kind == Len32 && n != len(payload) {
		return seq, offset, false, &Error{Offset: offset + head + n, Msg: fmt.Sprintf("%d bytes after the message in a %d-byte frame", len(payload)-n, len(payload))}
	}
	r.pos += head + n
	if r.kind == Len32 {
		r.pos = offset + head + len(payload)
	}
	return seq, offset, true, nil
}

// DecodeDatagram decodes the single seq32-framed message of a datagram payload into m,
// with dictionaries reset first, as the publisher sends them.
func DecodeDatagram(dec Decoder, payload []byte, m *fast.Message) (seq uint32, err error) {
	if len(payload) < 4 {
		return 0, &Error{Offset: 0, Msg: fmt.Sprintf("%d-byte datagram, the sequence preamble needs 4", len(payload))}
	}
	seq = binary.LittleEndian.Uint32(payload)
	dec.Reset()
	n, err := dec.Decode(payload[4:], m)
	if err != nil {
		at := 4
		if fe, ok := err.(*fast.Error); ok && fe.Offset >= 0 {
			at += fe.Offset
		}
		return seq, &Error{Offset: at, Err: err}
	}
	if 4+n != len(payload) {
		return seq, &Error{Offset: 4 + n, Msg: fmt.Sprintf("%d bytes after the message in a %d-byte datagram", len(payload)-4-n, len(payload))}
	}
	return seq, nil
}
