package fixsession

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// logon is what the guard reads from a connection's first message, a Logon (A).
type logon struct {
	sender, target     string // SenderCompID (49), TargetCompID (56)
	username, password string // Username (553), Password (554); empty if absent
}

// fieldNames names the tags a refusal of a Logon mentions most.
var fieldNames = map[int]string{
	8: "BeginString", 34: "MsgSeqNum", 35: "MsgType", 49: "SenderCompID", 52: "SendingTime",
	56: "TargetCompID", 58: "Text", 98: "EncryptMethod", 108: "HeartBtInt", 141: "ResetSeqNumFlag",
	553: "Username", 554: "Password", 1137: "DefaultApplVerID",
}

func tagName(tag int) string {
	if n, ok := fieldNames[tag]; ok {
		return fmt.Sprintf("%s (%d)", n, tag)
	}
	return fmt.Sprintf("tag %d", tag)
}

// parseLogon reads msg, a connection's first message that passed CheckFrame: it must be
// a Logon (A) naming both CompIDs, and no tag may appear twice (a *logonRefusal). A repeated tag is what
// lets two parsers disagree about a message: quickfix v0.9.7 keeps the last of two
// Usernames (553) where a scan for the first finds the other, so one Logon could be
// authenticated as one user and entitled as another. Refusing it leaves one reading.
func parseLogon(msg []byte) (logon, error) {
	var l logon
	if t := msgType(msg); t != "A" {
		return l, fmt.Errorf("first message must be a Logon (A), got MsgType %q", t)
	}
	seen := make(map[int]bool, 16)
	var bad error
	eachField(msg, func(tag int, v []byte) bool {
		if seen[tag] {
			bad = &logonRefusal{fmt.Sprintf("Logon (A) repeats %s", tagName(tag))}
			return false
		}
		seen[tag] = true
		switch tag {
		case 49:
			l.sender = string(v)
		case 56:
			l.target = string(v)
		case 553:
			l.username = string(v)
		case 554:
			l.password = string(v)
		}
		return true
	})
	if bad != nil {
		return l, bad
	}
	for _, tag := range []int{49, 56} {
		if !seen[tag] {
			return l, fmt.Errorf("first message: Logon (A) without %s", tagName(tag))
		}
	}
	return l, nil
}

// eachField calls fn with every field of msg, a message that passed CheckFrame, from
// BeginString to CheckSum, until fn returns false; the value of a data field is taken
// whole by its length, as quickfix takes it.
func eachField(msg []byte, fn func(tag int, v []byte) bool) {
	end := len(msg)
	dataLen := -1 // the length of the data field that comes next, -1 if none
	for i := 0; i < end; {
		tag, vstart, ok := parseTag(msg, i, end)
		if !ok {
			return
		}
		var vend int
		if dataLen >= 0 {
			vend, dataLen = vstart+dataLen, -1
		} else {
			vend = vstart + bytes.IndexByte(msg[vstart:end], soh)
			if _, isLen := dataFields[tag]; isLen {
				dataLen, _, _ = parseCount(msg, vstart)
			}
		}
		if vend < vstart || vend >= end || !fn(tag, msg[vstart:vend]) {
			return
		}
		i = vend + 1
	}
}

// logonRefusal is a Logon refused with a Logout (5) whose Text (58) is its reason.
type logonRefusal struct{ reason string }

func (e *logonRefusal) Error() string { return e.reason }

// logoutMessage returns a Logout (5) from compID to the client l with reason as its Text
// (58), for a Logon the guard refuses before quickfix sees it.
func logoutMessage(compID string, l logon, reason string) []byte {
	var body bytes.Buffer
	body.WriteString("35=5\x01")
	body.WriteString("49=" + sanitize(compID) + "\x01")
	if l.sender != "" {
		body.WriteString("56=" + sanitize(l.sender) + "\x01")
	}
	body.WriteString("34=1\x01")
	body.WriteString("52=" + time.Now().UTC().Format("20060102-15:04:05.000") + "\x01")
	body.WriteString("58=" + sanitize(reason) + "\x01")
	var b bytes.Buffer
	b.WriteString("8=" + BeginString + "\x01")
	b.WriteString("9=" + strconv.Itoa(body.Len()) + "\x01")
	b.Write(body.Bytes())
	sum := 0
	for _, c := range b.Bytes() {
		sum += int(c)
	}
	fmt.Fprintf(&b, "10=%03d\x01", sum%256)
	return b.Bytes()
}

// sanitize keeps a value one field: no SOH, at most 256 bytes.
func sanitize(s string) string {
	if len(s) > 256 {
		s = s[:256]
	}
	return string(bytes.ReplaceAll([]byte(s), []byte{soh}, []byte{' '}))
}
