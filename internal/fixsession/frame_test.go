package fixsession

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/quickfixgo/quickfix"
)

// fixMsg builds a FIX message from its body fields ("tag=value", SOH added), with
// BeginString FIXT.1.1 and the right BodyLength and CheckSum.
func fixMsg(fields ...string) []byte {
	return fixMsgWith("", -1, -1, fields...)
}

// fixMsgWith builds a message like fixMsg, with BodyLength bodyLen and CheckSum sum
// instead of the right ones when they are not negative, and beginString unless empty.
func fixMsgWith(beginString string, bodyLen, sum int, fields ...string) []byte {
	if beginString == "" {
		beginString = "FIXT.1.1"
	}
	var body []byte
	for _, f := range fields {
		body = append(body, f...)
		body = append(body, 1)
	}
	if bodyLen < 0 {
		bodyLen = len(body)
	}
	b := fmt.Appendf(nil, "8=%s\x019=%d\x01", beginString, bodyLen)
	b = append(b, body...)
	if sum < 0 {
		sum = 0
		for _, c := range b {
			sum += int(c)
		}
		sum %= 256
	}
	return fmt.Appendf(b, "10=%03d\x01", sum)
}

var logonFields = []string{"35=A", "49=CLIENT", "56=FFPUB", "34=1", "52=20260101-00:00:00.000",
	"98=0", "108=30", "1137=9", "553=demo", "554=demo"}

func TestCheckFrame(t *testing.T) {
	xml := "<a>\x01b</a>" // data may hold SOH
	tests := []struct {
		name    string
		msg     []byte
		tag     int    // the FrameError's tag; -1: no error
		reason  string // part of the reason
		garbled bool
	}{
		{"logon", fixMsg(logonFields...), -1, "", false},
		{"xml data", fixMsg("35=n", "49=C", "56=S", "34=2", fmt.Sprintf("212=%d", len(xml)), "213="+xml), -1, "", false},
		{"raw data", fixMsg("35=A", "49=C", "56=S", "95=3", "96=a=b"), -1, "", false},
		{"empty xml data", fixMsg("35=n", "212=0", "213="), -1, "", false},
		{"xml data length overruns", fixMsg("35=n", "49=C", "56=S", "212=500", "213=<a/>"), 212, "overruns", false},
		{"xml data length overruns a little", fixMsg("35=n", "212=5", "213=<a/>"), 212, "overruns", false},
		{"xml data shorter than its length", fixMsg("35=n", "212=2", "213=<a/>"), 213, "not followed by SOH", false},
		{"xml data length not a number", fixMsg("35=n", "212=x", "213=<a/>"), 212, "decimal", false},
		{"xml data length negative", fixMsg("35=n", "212=-1", "213=<a/>"), 212, "decimal", false},
		{"xml data length huge", fixMsg("35=n", "212=99999999999999999999", "213=<a/>"), 212, "decimal", false},
		{"xml data missing", fixMsg("35=n", "212=4", "58=<a/>", "59=0"), 58, "data field 213 expected", false},
		{"length at the end", fixMsg("35=n", "95=1"), 95, "overruns", false},
		{"raw data with SOH", fixMsg("35=n", "95=3", "96=a\x01b"), 96, "holds a SOH", false},
		{"secure data length overruns", fixMsg("35=n", "90=40", "91=x"), 90, "overruns", false},
		{"signature length overruns", fixMsg("35=n", "93=3", "89=xy", "58=z"), 89, "not followed by SOH", false},
		{"encoded text length overruns", fixMsg("35=n", "354=9", "355=abc"), 354, "overruns", false},
		{"checksum pattern in data", fixMsg("35=n", "212=8", "213=a\x0110=123"), 213, "CheckSum pattern", false},
		{"bad checksum", fixMsgWith("", -1, 7, logonFields...), 10, "CheckSum 007", true},
		{"body length short", fixMsgWith("", 20, -1, logonFields...), 0, "", false},
		{"body length long", fixMsgWith("", 500, -1, logonFields...), 0, "runs past the end", false},
		{"body length zero", fixMsgWith("", 0, -1, "35=0"), 9, "BodyLength 0", false},
		{"MsgType not first", fixMsg("49=C", "35=A"), 49, "MsgType (35) is not the first", false},
		{"MsgType empty", fixMsg("35=", "49=C"), 35, "MsgType empty", false},
		{"CheckSum in the body", fixMsg("35=0", "10=000", "49=C"), 10, "inside the body", false},
		{"tag not a number", fixMsg("35=0", "4x9=C"), 0, "decimal tag", false},
		{"tag with a leading zero", fixMsg("35=0", "049=C"), 0, "decimal tag", false},
		{"field without =", fixMsg("35=0", "49"), 0, "decimal tag", false},
		{"BeginString with =", fixMsgWith("FIX=1", -1, -1, "35=0"), 8, "BeginString", false},
		{"not FIX", []byte("GET / HTTP/1.1\r\n\r\n"), 0, "does not start with BeginString", false},
		{"empty", nil, 0, "does not start with BeginString", false},
		{"trailing bytes", append(fixMsg("35=0"), 'x'), 0, "after the CheckSum", false},
		{"no CheckSum", []byte("8=FIXT.1.1\x019=5\x0135=0\x01"), 0, "runs past the end", false},
		{"CheckSum not digits", []byte("8=FIXT.1.1\x019=5\x0135=0\x0110=a00\x01"), 10, "three digits", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFrame(tt.msg)
			if tt.tag < 0 {
				if err != nil {
					t.Fatalf("CheckFrame(%q) = %v, want nil", tt.msg, err)
				}
				return
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("CheckFrame(%q) = %v, want a *FrameError", tt.msg, err)
			}
			if fe.Tag != tt.tag || !strings.Contains(fe.Reason, tt.reason) || fe.Garbled != tt.garbled {
				t.Fatalf("CheckFrame(%q) = %+v, want tag %d, reason with %q, garbled %v", tt.msg, fe, tt.tag, tt.reason, tt.garbled)
			}
			if fe.Offset < 0 || fe.Offset > len(tt.msg) {
				t.Fatalf("offset %d outside the message of %d bytes", fe.Offset, len(tt.msg))
			}
		})
	}
}

// TestQuickfixPanicsOnXmlDataLenOverrun documents why the guard exists: quickfix
// v0.9.7 panics parsing the message the guard refuses.
func TestQuickfixPanicsOnXmlDataLenOverrun(t *testing.T) {
	msg := fixMsg("35=n", "49=C", "56=S", "212=500", "213=<a/>")
	if CheckFrame(msg) == nil {
		t.Fatal("CheckFrame accepts the message")
	}
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		_ = quickfix.ParseMessage(quickfix.NewMessage(), bytes.NewBuffer(bytes.Clone(msg)))
		return false
	}()
	if !panicked {
		t.Fatal("quickfix.ParseMessage no longer panics on an XmlDataLen overrun: the guard's reason to exist is gone, revisit guard.go")
	}
}

func TestFrameReader(t *testing.T) {
	logon := fixMsg(logonFields...)
	hb := fixMsg("35=0", "49=C", "56=S", "34=2")
	garbled := fixMsgWith("", -1, 1, "35=0", "49=C", "56=S", "34=3")
	tenMB := []byte("8=FIXT.1.1\x019=10485760\x0135=A\x01")
	tests := []struct {
		name  string
		in    []byte
		limit int
		want  []string // messages, then the error: "EOF", "unexpected EOF", "garbled", "malformed", "too large"
	}{
		{"two messages", cat(logon, hb), 0, []string{string(logon), string(hb), "EOF"}},
		{"garbled in between", cat(logon, garbled, hb), 0, []string{string(logon), "garbled", string(hb), "EOF"}},
		{"truncated", cat(logon, hb[:len(hb)-3]), 0, []string{string(logon), "unexpected EOF"}},
		{"truncated header", []byte("8=FIXT.1"), 0, []string{"unexpected EOF"}},
		{"garbage first", cat([]byte("xx"), logon), 0, []string{"malformed"}},
		{"garbage between", cat(logon, []byte("\r\n"), hb), 0, []string{string(logon), "malformed"}},
		{"10 MB claim", tenMB, 0, []string{"too large"}},
		{"over a small limit", logon, len(logon) - 1, []string{"too large"}},
		{"at a small limit", logon, len(logon), []string{string(logon), "EOF"}},
		{"endless BeginString", bytes.Repeat([]byte("8"), 1000), 0, []string{"malformed"}},
		{"endless BodyLength", cat([]byte("8=FIXT.1.1\x019="), bytes.Repeat([]byte("9"), 1000)), 0, []string{"malformed"}},
		{"xml overrun", cat(logon, fixMsg("35=n", "212=500", "213=<a/>")), 0, []string{string(logon), "malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(tt.in)), tt.limit)
			for i, want := range tt.want {
				msg, err := fr.Next()
				got := string(msg)
				var fe *FrameError
				switch {
				case err == io.EOF:
					got = "EOF"
				case err == io.ErrUnexpectedEOF:
					got = "unexpected EOF"
				case errors.Is(err, ErrMessageTooLarge):
					got = "too large"
				case errors.As(err, &fe) && fe.Garbled:
					got = "garbled"
				case errors.As(err, &fe):
					got = "malformed"
				case err != nil:
					got = err.Error()
				}
				if got != want {
					t.Fatalf("Next #%d = %q (%v), want %q", i, got, err, want)
				}
			}
		})
	}
}

// TestFrameReaderBoundsMemory checks that a claimed BodyLength costs memory only as its
// bytes arrive: a 1 MB claim followed by 10 bytes leaves a buffer of about one chunk.
func TestFrameReaderBoundsMemory(t *testing.T) {
	in := cat([]byte("8=FIXT.1.1\x019=1000000\x0135=A\x01"), bytes.Repeat([]byte("x"), 10))
	fr := NewFrameReader(bytes.NewReader(in), 2<<20)
	if _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("Next = %v, want unexpected EOF", err)
	}
	if c := cap(fr.buf); c > 128<<10 {
		t.Fatalf("buffer of %d bytes for 40 bytes received", c)
	}
}

func TestHasField(t *testing.T) {
	msg := fixMsg("35=A", "212=6", "213=\x0149=X\x01", "56=S")
	if err := CheckFrame(msg); err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[int]bool{35: true, 212: true, 213: true, 56: true, 49: false, 34: false} {
		if got := hasField(msg, tag); got != want {
			t.Errorf("hasField(%d) = %v, want %v", tag, got, want)
		}
	}
	if got := msgType(msg); got != "A" {
		t.Errorf("msgType = %q, want A", got)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// FuzzCheckFrame checks that CheckFrame and FrameReader never panic, that a message
// CheckFrame accepts is one quickfix v0.9.7 parses without a panic, and that the
// FrameReader returns only messages CheckFrame accepts.
func FuzzCheckFrame(f *testing.F) {
	f.Add(fixMsg(logonFields...))
	f.Add(fixMsg("35=n", "49=C", "56=S", "212=5", "213=<a/>"))
	f.Add(fixMsg("35=n", "49=C", "56=S", "212=4", "213=<a/>"))
	f.Add(fixMsg("35=n", "95=3", "96=a\x01b"))
	f.Add(fixMsg("35=V", "49=C", "56=S", "34=2", "262=r1", "263=0", "146=2", "55=SBER", "55=GAZP"))
	f.Add(fixMsgWith("", 9, -1, "35=0", "49=C"))
	f.Add(fixMsgWith("", -1, 3, "35=0"))
	f.Add(cat(fixMsg("35=0"), fixMsg("35=1", "112=x")))
	f.Add([]byte("8=FIXT.1.1\x019=10485760\x0135=A\x01"))
	f.Add(fixMsg("35=1", "49=C", "56=S", "34=", "112=x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckFrame(b)
		var fe *FrameError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("CheckFrame error %T, want *FrameError", err)
		}
		if err == nil {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("quickfix panics parsing or reading a message CheckFrame accepts: %v\n%q", p, b)
					}
				}()
				msg := quickfix.NewMessage()
				if quickfix.ParseMessage(msg, bytes.NewBuffer(bytes.Clone(b))) != nil {
					return
				}
				// The session reads header fields as integers, times and booleans
				// (MsgSeqNum, SendingTime, PossDupFlag, ...); an application reads
				// body fields. None of these reads may panic on what was accepted.
				for _, fm := range []*quickfix.FieldMap{&msg.Header.FieldMap, &msg.Body.FieldMap, &msg.Trailer.FieldMap} {
					for _, tg := range fm.Tags() {
						_, _ = fm.GetInt(tg)
						_, _ = fm.GetTime(tg)
						var v quickfix.FIXBoolean
						_ = fm.GetField(tg, &v)
					}
				}
			}()
		}
		fr := NewFrameReader(bytes.NewReader(b), 4096)
		for range 64 {
			msg, err := fr.Next()
			if err != nil {
				if errors.As(err, &fe) && fe.Garbled {
					continue
				}
				break
			}
			if err := CheckFrame(msg); err != nil {
				t.Fatalf("FrameReader returned %q, which CheckFrame refuses: %v", msg, err)
			}
		}
	})
}

// TestFrameReaderReady: ready reports a whole message buffered, not a part of one.
func TestFrameReaderReady(t *testing.T) {
	msg := []byte("8=FIXT.1.1\x019=5\x0135=0\x0110=241\x01")
	stream := append(append([]byte{}, msg...), msg[:12]...) // one message and a part of the next
	fr := NewFrameReader(bytes.NewReader(stream), 0)
	defer fr.Release()
	if fr.ready() {
		t.Fatal("ready before anything was read")
	}
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if fr.Buffered() == 0 || fr.ready() {
		t.Errorf("after the first message: buffered %d, ready %v; want a part of a message, not ready", fr.Buffered(), fr.ready())
	}
}
