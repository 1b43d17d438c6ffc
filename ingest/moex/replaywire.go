package moex

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"fastfeed/fast/codecs/moexasts"
)

// The MOEX TCP historical replay service, as fastfeed speaks it (both sides: ReplayClient
// and moex-sim's server):
//
//   - the client connects to the market's H connection and sends, in FIX tag-value form
//     (FIXT.1.1, SOH separated, BodyLength and CheckSum), a Logon (A) with Username (553)
//     and Password (554), then one MarketDataRequest (V) with MDReqID (262), ApplID (1180)
//     = the incremental connection (OLR, TLR or MSR), ApplBegSeqNum (1182) and
//     ApplEndSeqNum (1183);
//   - the service answers in FAST over the same stream, each message preceded by its
//     length as a FAST stop-bit unsigned integer (the block size of the FAST-era TCP
//     replay services), the dictionaries reset per message: a Logon (A, template 2101),
//     the requested messages in MsgSeqNum order, then a Logout (5, template 2102) whose
//     Text says why when the request is refused (a range beyond what is kept, more than
//     MaxReplayRange messages, an unknown connection, bad credentials);
//   - the service closes the connection after the Logout.

// MaxReplayRange is the most messages one replay request may ask for (MOEX: 1000).
const MaxReplayRange = 1000

// MaxFIXMessage bounds a FIX tag-value message read by the replay service.
const MaxFIXMessage = 4096

// AppendFIX appends a FIX tag-value message of type msgType with the fields given as
// tag, value pairs, adding BeginString, BodyLength and CheckSum.
func AppendFIX(dst []byte, msgType string, fields ...string) []byte {
	var body []byte
	body = append(body, "35="...)
	body = append(body, msgType...)
	body = append(body, 1)
	for i := 0; i+1 < len(fields); i += 2 {
		body = append(body, fields[i]...)
		body = append(body, '=')
		body = append(body, fields[i+1]...)
		body = append(body, 1)
	}
	start := len(dst)
	dst = append(dst, "8=FIXT.1.1\x019="...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, 1)
	dst = append(dst, body...)
	var sum byte
	for _, c := range dst[start:] {
		sum += c
	}
	dst = append(dst, "10="...)
	dst = append(dst, byte('0'+sum/100), byte('0'+sum/10%10), byte('0'+sum%10), 1)
	return dst
}

// FIXMessage is a parsed FIX tag-value message: its fields in order.
type FIXMessage struct {
	Fields [][2]string // tag, value
}

// Get returns the first value of tag.
func (m *FIXMessage) Get(tag string) (string, bool) {
	for _, f := range m.Fields {
		if f[0] == tag {
			return f[1], true
		}
	}
	return "", false
}

// ReadFIX reads one FIX tag-value message (8=, 9=BodyLength, the body, 10=CheckSum) of at
// most MaxFIXMessage bytes from r and parses it; errors say what is wrong and where.
func ReadFIX(r *bufio.Reader) (*FIXMessage, error) {
	head, err := r.Peek(2)
	if err != nil {
		return nil, err
	}
	if string(head) != "8=" {
		return nil, fmt.Errorf("fix: message does not start with 8= (%q)", head)
	}
	// 8=...SOH 9=N SOH: at most 64 bytes.
	var hdr []byte
	for soh := 0; soh < 2; {
		c, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("fix: header: %w", unexpected(err))
		}
		hdr = append(hdr, c)
		if c == 1 {
			soh++
		}
		if len(hdr) > 64 {
			return nil, fmt.Errorf("fix: header longer than 64 bytes")
		}
	}
	i := bytes.IndexByte(hdr, 1)
	bl, ok := bytes.CutPrefix(hdr[i+1:len(hdr)-1], []byte("9="))
	if !ok {
		return nil, fmt.Errorf("fix: second field is not BodyLength (9): %q", hdr[i+1:])
	}
	n, err := strconv.Atoi(string(bl))
	if err != nil || n < 0 || n+len(hdr)+7 > MaxFIXMessage {
		return nil, fmt.Errorf("fix: BodyLength %q: want 0..%d", bl, MaxFIXMessage-len(hdr)-7)
	}
	msg := make([]byte, len(hdr)+n+7)
	copy(msg, hdr)
	if _, err := io.ReadFull(r, msg[len(hdr):]); err != nil {
		return nil, fmt.Errorf("fix: body of %d bytes: %w", n, unexpected(err))
	}
	tr := msg[len(hdr)+n:]
	if string(tr[:3]) != "10=" || tr[6] != 1 {
		return nil, fmt.Errorf("fix: no CheckSum (10=NNN) after a body of %d bytes: %q", n, tr)
	}
	var sum byte
	for _, c := range msg[:len(hdr)+n] {
		sum += c
	}
	if want := fmt.Sprintf("%03d", sum); string(tr[3:6]) != want {
		return nil, fmt.Errorf("fix: CheckSum %q, computed %s", tr[3:6], want)
	}
	return ParseFIX(msg[:len(hdr)+n])
}

// ParseFIX splits a tag-value message (without its CheckSum) into fields.
func ParseFIX(b []byte) (*FIXMessage, error) {
	m := &FIXMessage{}
	off := 0
	for len(b) > 0 {
		end := bytes.IndexByte(b, 1)
		if end < 0 {
			return nil, fmt.Errorf("fix: field at offset %d not ended by SOH", off)
		}
		tag, val, ok := bytes.Cut(b[:end], []byte("="))
		if !ok || len(tag) == 0 {
			return nil, fmt.Errorf("fix: field at offset %d is not tag=value: %q", off, b[:end])
		}
		for _, c := range tag {
			if c < '0' || c > '9' {
				return nil, fmt.Errorf("fix: field at offset %d: tag %q is not a number", off, tag)
			}
		}
		if len(m.Fields) >= 64 {
			return nil, fmt.Errorf("fix: more than 64 fields")
		}
		m.Fields = append(m.Fields, [2]string{string(tag), string(val)})
		off += end + 1
		b = b[end+1:]
	}
	return m, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendFrame appends msg preceded by its length as a FAST stop-bit unsigned integer.
func AppendFrame(dst, msg []byte) []byte {
	n := uint64(len(msg))
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(n&0x7f) | 0x80
	for n >>= 7; n > 0; n >>= 7 {
		i--
		tmp[i] = byte(n & 0x7f)
	}
	dst = append(dst, tmp[i:]...)
	return append(dst, msg...)
}

// ReadFrame reads one length-prefixed FAST message of at most max bytes into buf.
func ReadFrame(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	var n uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 {
				err = unexpected(err)
			}
			return nil, err
		}
		if i == 4 && c&0x80 == 0 {
			return nil, fmt.Errorf("frame length longer than 5 bytes")
		}
		n = n<<7 | uint64(c&0x7f)
		if c&0x80 != 0 {
			break
		}
	}
	if n == 0 || n > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes: want 1..%d", n, max)
	}
	buf = append(buf[:0], make([]byte, n)...)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, unexpected(err))
	}
	return buf, nil
}

// MsgSeqNum returns the MsgSeqNum field of a decoded ASTS message.
func MsgSeqNum(m *moexasts.Message) uint32 {
	switch m.ID {
	case moexasts.IDA:
		return m.A.MsgSeqNum
	case moexasts.IDX5:
		return m.X5.MsgSeqNum
	case moexasts.IDWGeneric:
		return m.WGeneric.MsgSeqNum
	case moexasts.IDXGeneric:
		return m.XGeneric.MsgSeqNum
	case moexasts.IDWOLSFOND:
		return m.WOLSFOND.MsgSeqNum
	case moexasts.IDWOLSCURR:
		return m.WOLSCURR.MsgSeqNum
	case moexasts.IDWTLSFOND:
		return m.WTLSFOND.MsgSeqNum
	case moexasts.IDWTLSCURR:
		return m.WTLSCURR.MsgSeqNum
	case moexasts.IDXMSRFOND:
		return m.XMSRFOND.MsgSeqNum
	case moexasts.IDXMSRCURR:
		return m.XMSRCURR.MsgSeqNum
	case moexasts.IDXOLRFOND:
		return m.XOLRFOND.MsgSeqNum
	case moexasts.IDXOLRCURR:
		return m.XOLRCURR.MsgSeqNum
	case moexasts.IDXTLRFOND:
		return m.XTLRFOND.MsgSeqNum
	case moexasts.IDXTLRCURR:
		return m.XTLRCURR.MsgSeqNum
	case moexasts.IDD:
		return m.D.MsgSeqNum
	case moexasts.IDF:
		return m.F.MsgSeqNum
	case moexasts.IDH:
		return m.H.MsgSeqNum
	case moexasts.IDX0:
		return m.X0.MsgSeqNum
	}
	return 0
}

// sendingTime is a MOEX SendingTime (UTC YYYYMMDDHHMMSSsss) of t.
func sendingTime(t time.Time) uint64 {
	t = t.UTC()
	return uint64(t.Year())*1e13 + uint64(t.Month())*1e11 + uint64(t.Day())*1e9 +
		uint64(t.Hour())*1e7 + uint64(t.Minute())*1e5 + uint64(t.Second())*1e3 + uint64(t.Nanosecond()/1e6)
}

// SendingTime is a MOEX SendingTime (UTC YYYYMMDDHHMMSSsss) of t.
func SendingTime(t time.Time) uint64 { return sendingTime(t) }
