package fixsession

// The quickfix logs of a session: debug records on the app's logger, and the hooks that
// read its outgoing messages (flow, Logout texts).

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"

	"github.com/quickfixgo/quickfix"
)

// logFactory makes the quickfix logs: debug records on the app's logger, and the hook
// that catches Logout texts.
type logFactory struct{ app *app }

func (f logFactory) Create() (quickfix.Log, error) { return sessionLog{app: f.app}, nil }

func (f logFactory) CreateSessionLog(id quickfix.SessionID) (quickfix.Log, error) {
	return sessionLog{app: f.app, id: id, session: true, flow: f.app.flowOf(id)}, nil
}

type sessionLog struct {
	app     *app
	flow    *flow // nil for the non-session log
	id      quickfix.SessionID
	session bool
}

func (l sessionLog) OnIncoming(b []byte) {
	if l.session && msgTypeIs(b, '4') {
		l.app.setResending(l.id, false)
	}
	if l.session {
		if text, ok := logoutText(b); ok {
			l.app.setReason(l.id, text)
		}
	}
	l.debug("fix in", b)
}

func (l sessionLog) OnOutgoing(b []byte) {
	if l.session && msgTypeIs(b, '2') {
		l.app.setResending(l.id, true)
	}
	if l.flow != nil && !isAdmin(b) {
		l.flow.handed.Add(1)
		select {
		case l.flow.more <- struct{}{}:
		default:
		}
	}
	if l.session {
		// quickfix v0.9.7 hands a queued message to the connection's writer goroutine
		// with a non-blocking send and, while the writer is busy, retries in a loop that
		// never blocks. The hand-off readies the writer on this goroutine's P, where it
		// waits until the retrying loop is preempted: about 300 µs per message on this
		// project's machine, with the CPU otherwise idle. OnOutgoing runs on the session
		// goroutine right after a hand-off: yielding lets the writer write at once.
		runtime.Gosched()
	}
	if l.session && l.app.acceptor && isReject(b) {
		l.app.stats.sessionRejects.Add(1)
		l.app.rl.Warn("session reject", "fix message rejected", "session", l.id.String(),
			"ref_seq", field(b, 45), "ref_tag", field(b, 371), "reason", field(b, 373), "text", field(b, 58))
	}
	l.debug("fix out", b)
}

// isAdmin reports whether b, an outgoing message, is a session-level message (MsgType
// 0-5 or A), which Send does not count.
func isAdmin(b []byte) bool {
	i := bytes.Index(b, []byte("\x0135="))
	if i < 0 || i >= 32 || len(b) < i+6 || b[i+5] != 1 {
		return false
	}
	return isAdminType(b[i+4])
}

// isAdminType reports whether the one-character MsgType t is a session-level message.
func isAdminType(t byte) bool { return t >= '0' && t <= '5' || t == 'A' }

// isReject reports whether b, an outgoing message, is a session-level Reject (3).
func isReject(b []byte) bool {
	// MsgType is the third field: "8=FIXT.1.1|9=nn|35=3|".
	i := bytes.Index(b, []byte("\x0135="))
	return i >= 0 && i < 32 && bytes.HasPrefix(b[i+4:], []byte("3\x01"))
}

// field returns the value of the first field tag of a message, empty if none.
func field(b []byte, tag int) string {
	key := append([]byte{1}, strconv.Itoa(tag)...)
	key = append(key, '=')
	i := bytes.Index(b, key)
	if i < 0 {
		return ""
	}
	v := b[i+len(key):]
	if end := bytes.IndexByte(v, 1); end >= 0 {
		v = v[:end]
	}
	return string(v)
}

func (l sessionLog) OnEvent(s string) { l.debug("fix event", []byte(s)) }

func (l sessionLog) OnEventf(format string, a ...any) {
	// quickfix's initiator says "Failed to connect: %v" (the dial error) and retries:
	// kept for the Initiator's ConnectError.
	if l.session && strings.HasPrefix(format, "Failed to connect") && len(a) == 1 {
		l.app.connectFailed(fmt.Sprint(a[0]))
	}
	if l.app.logger.Enabled(context.Background(), slog.LevelDebug) {
		l.debug("fix event", fmt.Appendf(nil, format, a...))
	}
}

func (l sessionLog) debug(what string, b []byte) {
	if !l.app.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"text", string(printable(b))}
	if l.session {
		attrs = append(attrs, "session", l.id.String())
	}
	l.app.logger.Debug(what, attrs...)
}

// printable returns a copy of a FIX message (or text holding one) with SOH shown as '|'
// and the value of Password (554) hidden.
func printable(b []byte) []byte {
	out := bytes.ReplaceAll(b, []byte{1}, []byte{'|'})
	for i := 0; ; {
		j := bytes.Index(out[i:], []byte("|554="))
		if j < 0 {
			return out
		}
		start := i + j + len("|554=")
		end := bytes.IndexByte(out[start:], '|')
		if end < 0 {
			end = len(out) - start
		}
		out = append(out[:start], append([]byte("***"), out[start+end:]...)...)
		i = start
	}
}

// logoutText returns the Text (58) of a raw Logout (35=5), and false if b is no Logout.
func logoutText(b []byte) (string, bool) {
	if !bytes.Contains(b, []byte("\x0135=5\x01")) {
		return "", false
	}
	i := bytes.Index(b, []byte("\x0158="))
	if i < 0 {
		return "", true
	}
	text := b[i+len("\x0158="):]
	if end := bytes.IndexByte(text, 1); end >= 0 {
		text = text[:end]
	}
	return string(text), true
}
