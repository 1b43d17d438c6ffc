package fixsession

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// DefaultMaxMessageSize bounds a FIX message an Acceptor takes from a client, framing
// included, when AcceptorConfig.MaxMessageSize is zero.
const DefaultMaxMessageSize = 1 << 20

// FrameError is a malformed FIX message: what is wrong and where.
type FrameError struct {
	// Offset is the byte of the message at fault, counted from the '8' of its
	// BeginString (8).
	Offset int
	// Tag is the tag of the field at fault, 0 if none.
	Tag int
	// Reason says what is wrong.
	Reason string
	// Err is a sentinel the error wraps, such as ErrMessageTooLarge, or nil.
	Err error
	// Garbled reports a message whose framing is intact but whose CheckSum (10) is
	// wrong: the stream goes on after it, and the FIX rule for garbled messages is to
	// ignore it. Any other FrameError leaves the stream without a reliable frame
	// boundary.
	Garbled bool
}

// Unwrap returns e.Err.
func (e *FrameError) Unwrap() error { return e.Err }

func (e *FrameError) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("malformed FIX message: byte %d, tag %d: %s", e.Offset, e.Tag, e.Reason)
	}
	return fmt.Sprintf("malformed FIX message: byte %d: %s", e.Offset, e.Reason)
}

// dataFields maps each FIX field of type Length that announces a data field to that
// data field's tag. A data field's value is raw bytes, SOH included, of the announced
// length.
var dataFields = map[int]int{
	90:  91,  // SecureDataLen -> SecureData
	93:  89,  // SignatureLength -> Signature
	95:  96,  // RawDataLength -> RawData
	212: 213, // XmlDataLen -> XmlData
	348: 349, // EncodedIssuerLen -> EncodedIssuer
	350: 351, // EncodedSecurityDescLen -> EncodedSecurityDesc
	352: 353, // EncodedListExecInstLen -> EncodedListExecInst
	354: 355, // EncodedTextLen -> EncodedText
	356: 357, // EncodedSubjectLen -> EncodedSubject
	358: 359, // EncodedHeadlineLen -> EncodedHeadline
	360: 361, // EncodedAllocTextLen -> EncodedAllocText
	362: 363, // EncodedUnderlyingIssuerLen -> EncodedUnderlyingIssuer
	364: 365, // EncodedUnderlyingSecurityDescLen -> EncodedUnderlyingSecurityDesc
	445: 446, // EncodedListStatusTextLen -> EncodedListStatusText
	618: 619, // EncodedLegIssuerLen -> EncodedLegIssuer
	621: 622, // EncodedLegSecurityDescLen -> EncodedLegSecurityDesc
}

const (
	soh             = 1
	trailerLen      = len("10=000\x01")
	maxBeginString  = 16 // "FIXT.1.1" and every FIX.x.y fit
	maxLengthDigits = 9
	maxTagDigits    = 9
)

// CheckFrame checks that b is exactly one well-formed FIX message:
//
//   - it starts with BeginString (8), whose value holds no '=' or SOH, then BodyLength
//     (9), whose value counts the bytes from MsgType (35), the first field of the body,
//     to the SOH before CheckSum (10);
//   - it ends with CheckSum, three digits, and nothing follows;
//   - every field is tag=value SOH with a positive decimal tag; tags 8, 9 and 10 appear
//     only in their places, and the byte pattern SOH "10=" nowhere else;
//   - a length field (XmlDataLen 212, RawDataLength 95, SecureDataLen 90,
//     SignatureLength 93, and the Encoded...Len fields) holds a decimal count and is
//     followed by its data field, whose value is exactly that many bytes followed by
//     SOH inside the body; a data field other than XmlData (213) holds no SOH;
//   - the CheckSum is the sum of the bytes before it, modulo 256.
//
// These are the assumptions quickfix v0.9.7 makes, unchecked, when it frames and parses
// a message: a message that passes is framed by it as here and parsed without a panic.
// It returns nil or a *FrameError; only a CheckSum mismatch is Garbled.
func CheckFrame(b []byte) error {
	bodyStart, bodyLen, err := checkHeader(b)
	if err != nil {
		return err
	}
	bodyEnd := bodyStart + bodyLen
	switch {
	case len(b) < bodyEnd+trailerLen:
		return &FrameError{Offset: len(b), Reason: fmt.Sprintf("BodyLength %d runs past the end of the message (%d bytes)", bodyLen, len(b))}
	case len(b) > bodyEnd+trailerLen:
		return &FrameError{Offset: bodyEnd + trailerLen, Reason: fmt.Sprintf("%d bytes after the CheckSum", len(b)-bodyEnd-trailerLen)}
	}
	if err := checkTrailer(b, bodyEnd); err != nil {
		return err
	}
	if err := checkBody(b, bodyStart, bodyEnd); err != nil {
		return err
	}
	sum := 0
	for _, c := range b[:bodyEnd] {
		sum += int(c)
	}
	sum %= 256
	got := int(b[bodyEnd+3]-'0')*100 + int(b[bodyEnd+4]-'0')*10 + int(b[bodyEnd+5]-'0')
	if got != sum {
		return &FrameError{Offset: bodyEnd, Tag: 10, Garbled: true,
			Reason: fmt.Sprintf("CheckSum %03d, the bytes sum to %03d", got, sum)}
	}
	return nil
}

// checkHeader checks BeginString and BodyLength at the start of b and returns where the
// body starts and the BodyLength.
func checkHeader(b []byte) (bodyStart, bodyLen int, err error) {
	if !bytes.HasPrefix(b, []byte("8=")) {
		n := min(len(b), 8)
		return 0, 0, &FrameError{Reason: fmt.Sprintf("does not start with BeginString (8=): %q", b[:n])}
	}
	i := 2
	for ; i < len(b) && b[i] != soh; i++ {
		if b[i] == '=' || b[i] < ' ' || b[i] > '~' || i-2 >= maxBeginString {
			return 0, 0, &FrameError{Offset: i, Tag: 8, Reason: "BeginString holds a byte that is not printable, '=', or is too long"}
		}
	}
	if i == 2 || i == len(b) {
		return 0, 0, &FrameError{Offset: i, Tag: 8, Reason: "BeginString empty or not ended by SOH"}
	}
	i++
	if !bytes.HasPrefix(b[i:], []byte("9=")) {
		return 0, 0, &FrameError{Offset: i, Reason: "BodyLength (9) is not the second field"}
	}
	i += 2
	n, end, ok := parseCount(b, i)
	if !ok {
		return 0, 0, &FrameError{Offset: i, Tag: 9, Reason: "BodyLength is not a decimal count ended by SOH"}
	}
	if n == 0 {
		return 0, 0, &FrameError{Offset: i, Tag: 9, Reason: "BodyLength 0"}
	}
	return end + 1, n, nil
}

// parseCount parses the decimal digits of b from i up to a SOH and returns their value
// and the index of the SOH; ok is false when there is no digit, a byte other than a
// digit, more than maxLengthDigits digits, or no SOH.
func parseCount(b []byte, i int) (n, end int, ok bool) {
	start := i
	for ; i < len(b) && b[i] != soh; i++ {
		if b[i] < '0' || b[i] > '9' || i-start >= maxLengthDigits {
			return 0, i, false
		}
		n = n*10 + int(b[i]-'0')
	}
	if i == start || i == len(b) {
		return 0, i, false
	}
	return n, i, true
}

// checkTrailer checks "SOH 10=ddd SOH" at bodyEnd-1, the last byte of the body being
// the SOH.
func checkTrailer(b []byte, bodyEnd int) error {
	if b[bodyEnd-1] != soh {
		return &FrameError{Offset: bodyEnd - 1, Reason: "BodyLength does not end on a SOH"}
	}
	t := b[bodyEnd:]
	if !bytes.HasPrefix(t, []byte("10=")) || t[trailerLen-1] != soh {
		return &FrameError{Offset: bodyEnd, Reason: "no CheckSum (10=ddd SOH) where BodyLength ends"}
	}
	for _, c := range t[3:6] {
		if c < '0' || c > '9' {
			return &FrameError{Offset: bodyEnd + 3, Tag: 10, Reason: "CheckSum is not three digits"}
		}
	}
	return nil
}

// checkBody checks the fields of b[start:end], the body, which ends with a SOH.
func checkBody(b []byte, start, end int) error {
	data := 0    // the data field that must come next, 0 if none
	dataLen := 0 // its length
	for i, first := start, true; i < end; first = false {
		tag, vstart, ok := parseTag(b, i, end)
		if !ok {
			return &FrameError{Offset: i, Reason: "field does not start with a decimal tag and '='"}
		}
		if first && tag != 35 {
			return &FrameError{Offset: i, Tag: tag, Reason: "MsgType (35) is not the first field of the body"}
		}
		switch tag {
		case 8, 9, 10:
			return &FrameError{Offset: i, Tag: tag, Reason: "BeginString, BodyLength or CheckSum inside the body"}
		}
		if data != 0 {
			if tag != data {
				return &FrameError{Offset: i, Tag: tag, Reason: fmt.Sprintf("data field %d expected after its length", data)}
			}
			vend := vstart + dataLen
			if vend >= end || b[vend] != soh {
				return &FrameError{Offset: vstart, Tag: tag,
					Reason: fmt.Sprintf("data of %d bytes overruns the body (%d bytes left) or is not followed by SOH", dataLen, end-vstart-1)}
			}
			v := b[vstart:vend]
			if tag != 213 && bytes.IndexByte(v, soh) >= 0 {
				return &FrameError{Offset: vstart, Tag: tag, Reason: "data holds a SOH (only XmlData (213) may)"}
			}
			if k := bytes.Index(v, []byte("\x0110=")); k >= 0 {
				return &FrameError{Offset: vstart + k, Tag: tag, Reason: `data holds SOH "10=", the CheckSum pattern`}
			}
			data, i = 0, vend+1
			continue
		}
		vend := vstart + bytes.IndexByte(b[vstart:end], soh)
		if next, isLen := dataFields[tag]; isLen {
			n, _, ok := parseCount(b, vstart)
			if !ok {
				return &FrameError{Offset: vstart, Tag: tag, Reason: "length of a data field is not a decimal count"}
			}
			if need := len(strconv.Itoa(next)) + len("=") + n + len("\x01"); vend+1+need > end {
				return &FrameError{Offset: vstart, Tag: tag,
					Reason: fmt.Sprintf("length %d overruns the body: its data field needs %d bytes, %d are left", n, need, end-vend-1)}
			}
			data, dataLen = next, n
		} else if first && vend == vstart {
			return &FrameError{Offset: vstart, Tag: tag, Reason: "MsgType empty"}
		} else if vend == vstart {
			// FIX fields carry at least one character, and quickfix v0.9.7 panics
			// parsing an empty integer (MsgSeqNum among them) on the session goroutine.
			return &FrameError{Offset: vstart, Tag: tag, Reason: "empty value"}
		}
		i = vend + 1
	}
	if data != 0 {
		return &FrameError{Offset: end, Tag: data, Reason: "the body ends before the data field its length announces"}
	}
	return nil
}

// parseTag parses "tag=" at b[i:end] and returns the tag and where its value starts.
func parseTag(b []byte, i, end int) (tag, vstart int, ok bool) {
	start := i
	for ; i < end && b[i] != '='; i++ {
		if b[i] < '0' || b[i] > '9' || i-start >= maxTagDigits || i == start && b[i] == '0' {
			return 0, 0, false
		}
		tag = tag*10 + int(b[i]-'0')
	}
	if i == start || i == end {
		return 0, 0, false
	}
	return tag, i + 1, true
}

// A FrameReader reads FIX messages from a byte stream by their framing: BeginString (8),
// BodyLength (9), the body, CheckSum (10). It never reads a message longer than its
// limit, and never buffers more of a message than has arrived.
type FrameReader struct {
	r     *bufio.Reader
	limit int
	off   int64 // stream offset of the next message
	start int64 // stream offset of the message Next read last
	buf   []byte
}

// NewFrameReader returns a FrameReader of r taking messages of at most limit bytes, or
// DefaultMaxMessageSize if limit is not positive. Its buffers come from a pool: Release
// gives them back.
func NewFrameReader(r io.Reader, limit int) *FrameReader {
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	fr := &FrameReader{r: br, limit: limit}
	if b, ok := bufPool.Get().(*[]byte); ok {
		fr.buf = (*b)[:0]
	}
	return fr
}

// Buffers of FrameReaders, reused: a client that connects, sends a few bytes and goes,
// thousands of times a second, costs no garbage beyond its connection.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	bufPool    sync.Pool // *[]byte of at most maxPooledBuf bytes
)

const maxPooledBuf = 8 << 10

// Release gives the FrameReader's buffers back for reuse; the FrameReader and the last
// message Next returned must not be used after it.
func (fr *FrameReader) Release() {
	if fr.r == nil {
		return
	}
	fr.r.Reset(nil)
	readerPool.Put(fr.r)
	fr.r = nil
	if cap(fr.buf) > 0 && cap(fr.buf) <= maxPooledBuf {
		b := fr.buf[:0]
		bufPool.Put(&b)
	}
	fr.buf = nil
}

// SetLimit sets the size limit of the messages Next reads from now on, or
// DefaultMaxMessageSize if limit is not positive.
func (fr *FrameReader) SetLimit(limit int) {
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	fr.limit = limit
}

// ErrMessageTooLarge is wrapped by the FrameError of a message whose BodyLength makes it
// longer than the FrameReader's limit.
var ErrMessageTooLarge = errors.New("message too large")

// Next returns the next message, checked with CheckFrame; it is valid until the next
// call. It returns io.EOF at the end of the stream between messages,
// io.ErrUnexpectedEOF inside one, a *FrameError for a malformed message (after a
// Garbled one the stream goes on), and the reader's other errors as they are.
func (fr *FrameReader) Next() ([]byte, error) {
	fr.start = fr.off
	b := fr.buf[:0]
	// BeginString and BodyLength: "8=" value SOH "9=" digits SOH.
	for sohs := 0; sohs < 2; {
		c, err := fr.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		fr.off++
		b = append(b, c)
		if c == soh {
			sohs++
		}
		if len(b) == 2 && string(b) != "8=" || len(b) > 2+maxBeginString+4+maxLengthDigits+1 {
			fr.buf = b
			_, _, err := checkHeader(b)
			if err == nil || len(b) == 2 {
				err = &FrameError{Reason: fmt.Sprintf("does not start with BeginString (8=): %q", b)}
			}
			return nil, err
		}
	}
	fr.buf = b
	bodyStart, bodyLen, err := checkHeader(b)
	if err != nil {
		return nil, err
	}
	total := bodyStart + bodyLen + trailerLen
	if total > fr.limit {
		return nil, &FrameError{Offset: bodyStart - 1, Tag: 9, Err: ErrMessageTooLarge,
			Reason: fmt.Sprintf("BodyLength %d makes a message of %d bytes, over the limit of %d", bodyLen, total, fr.limit)}
	}
	// The rest, in chunks, so that a claimed length costs memory only as bytes arrive.
	const chunk = 64 << 10
	for len(b) < total {
		n := min(total-len(b), chunk)
		b = append(b, make([]byte, n)...)
		got, err := io.ReadFull(fr.r, b[len(b)-n:])
		fr.off += int64(got)
		if err != nil {
			fr.buf = b[:0]
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	fr.buf = b
	if err := CheckFrame(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Offset returns the stream offset of the first byte of the message Next read last,
// whether it returned it or an error.
func (fr *FrameReader) Offset() int64 { return fr.start }

// msgType returns the MsgType (35) of a message that passed CheckFrame.
func msgType(b []byte) string {
	i := bytes.Index(b, []byte("\x0135="))
	if i < 0 {
		return ""
	}
	v := b[i+4:]
	return string(v[:bytes.IndexByte(v, soh)])
}

// hasField reports whether a message that passed CheckFrame has a field tag; the
// values of data fields are skipped by their lengths.
func hasField(b []byte, tag int) bool {
	bodyStart, bodyLen, err := checkHeader(b)
	if err != nil {
		return false
	}
	end := bodyStart + bodyLen
	dataLen := -1 // the length of the data field that comes next, -1 if none
	for i := bodyStart; i < end; {
		t, vstart, ok := parseTag(b, i, end)
		if !ok {
			return false
		}
		if t == tag {
			return true
		}
		if dataLen >= 0 {
			i, dataLen = vstart+dataLen+1, -1
			continue
		}
		if _, isLen := dataFields[t]; isLen {
			dataLen, _, _ = parseCount(b, vstart)
		}
		i = vstart + bytes.IndexByte(b[vstart:end], soh) + 1
	}
	return false
}

// ready reports whether Next can return without reading from the stream: the bytes
// buffered hold a whole message's framing, or something that is no FIX message.
func (fr *FrameReader) ready() bool {
	b, _ := fr.r.Peek(fr.r.Buffered())
	return frameLen(b) != 0
}

// Buffered returns how many bytes of the stream have been read and not yet returned by
// Next: 0 means the next call reads from the stream.
func (fr *FrameReader) Buffered() int { return fr.r.Buffered() }
