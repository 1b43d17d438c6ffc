package fixsession

// Persistence of sessions across restarts: quickfix's file store and a file log of the
// messages, as quickfix users configure them with FileStorePath and FileLogPath.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/quickfix/config"
	"github.com/quickfixgo/quickfix/store/file"
)

// Persistence says where a session keeps its state and logs. The zero value keeps
// nothing: sequence numbers restart at 1 with every logon.
type Persistence struct {
	// FileStorePath, if set, is the directory of quickfix's file store: the session's
	// sequence numbers survive a restart of the process, and a client logs on with the
	// next ones (ResetOnLogon, ResetOnLogout and ResetOnDisconnect are then off unless
	// ResetOnLogon is set). Sent messages are still not kept for resends
	// (PersistMessages=N): a ResendRequest is answered with a gap fill, since recovery
	// in fastfeed is by ApplSeqNum.
	FileStorePath string
	// FileLogPath, if set, is a directory where every message in and out of each
	// session is appended, one line each, to <BeginString>-<Sender>-<Target>.messages.log
	// (the Password (554) hidden), and the session's events to ....event.log.
	FileLogPath string
	// ResetOnLogon, with FileStorePath, still resets the sequence numbers at each logon.
	ResetOnLogon bool
}

// Check reports a directory that cannot be made.
func (p Persistence) Check() error {
	for _, d := range []struct{ key, dir string }{{"FileStorePath", p.FileStorePath}, {"FileLogPath", p.FileLogPath}} {
		if d.dir == "" {
			continue
		}
		if err := os.MkdirAll(d.dir, 0o750); err != nil {
			return fmt.Errorf("%s: %w", d.key, err)
		}
	}
	return nil
}

// apply sets p on the quickfix settings s (after setBase).
func (p Persistence) apply(s *quickfix.SessionSettings) {
	if p.FileStorePath == "" {
		return
	}
	s.Set(config.FileStorePath, p.FileStorePath)
	if p.ResetOnLogon {
		return
	}
	s.Set(config.ResetOnLogon, "N")
	s.Set(config.ResetOnLogout, "N")
	s.Set(config.ResetOnDisconnect, "N")
}

// factory returns the quickfix store factory for p: the file store, or nil for memory.
func (p Persistence) factory(settings *quickfix.Settings) quickfix.MessageStoreFactory {
	if p.FileStorePath == "" {
		return nil
	}
	return file.NewStoreFactory(settings)
}

// fileLogs writes the messages and events of sessions to files in dir. It keeps one
// pair of files per session for its life (quickfix makes a dynamic session's log again
// at each logon) and closes them all in close.
type fileLogs struct {
	dir   string
	mu    sync.Mutex
	files map[string]*fileLog
}

func newFileLogs(dir string) *fileLogs { return &fileLogs{dir: dir, files: map[string]*fileLog{}} }

type fileLog struct {
	mu       sync.Mutex
	msgs, ev *os.File
	err      error // the first write error; later writes are skipped
}

func (l *fileLogs) open(name string) (*fileLog, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.files[name]; f != nil {
		return f, nil
	}
	if err := os.MkdirAll(l.dir, 0o750); err != nil {
		return nil, fmt.Errorf("fixsession: FileLogPath: %w", err)
	}
	const flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	msgs, err := os.OpenFile(filepath.Join(l.dir, name+".messages.log"), flags, 0o640)
	if err != nil {
		return nil, fmt.Errorf("fixsession: FileLogPath: %w", err)
	}
	ev, err := os.OpenFile(filepath.Join(l.dir, name+".event.log"), flags, 0o640)
	if err != nil {
		msgs.Close()
		return nil, fmt.Errorf("fixsession: FileLogPath: %w", err)
	}
	f := &fileLog{msgs: msgs, ev: ev}
	l.files[name] = f
	return f, nil
}

// close closes every file.
func (l *fileLogs) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.files {
		f.mu.Lock()
		f.msgs.Close()
		f.ev.Close()
		f.err = os.ErrClosed
		f.mu.Unlock()
		delete(l.files, k)
	}
}

// write appends one line: a UTC timestamp, the direction, the text.
func (f *fileLog) write(w *os.File, dir string, b []byte) {
	line := make([]byte, 0, len(b)+40)
	line = time.Now().UTC().AppendFormat(line, "2006-01-02T15:04:05.000000Z")
	line = append(line, ' ')
	line = append(line, dir...)
	line = append(line, ' ')
	line = append(line, printable(b)...)
	line = append(line, '\n')
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	if _, err := w.Write(line); err != nil {
		f.err = err
	}
}

// fileName is the name of session id's log files.
func fileName(id quickfix.SessionID) string {
	r := strings.NewReplacer("/", "_", "\\", "_", "..", "_", "\x00", "_")
	return r.Replace(id.BeginString + "-" + id.SenderCompID + "-" + id.TargetCompID)
}

// teeFactory gives quickfix the app's logs and, when files is set, the file logs.
type teeFactory struct {
	logFactory
	files *fileLogs
}

func (t teeFactory) Create() (quickfix.Log, error) {
	l, err := t.logFactory.Create()
	if err != nil || t.files == nil {
		return l, err
	}
	f, err := t.files.open("GLOBAL")
	if err != nil {
		return nil, err
	}
	return teeLog{Log: l, f: f}, nil
}

func (t teeFactory) CreateSessionLog(id quickfix.SessionID) (quickfix.Log, error) {
	l, err := t.logFactory.CreateSessionLog(id)
	if err != nil || t.files == nil {
		return l, err
	}
	f, err := t.files.open(fileName(id))
	if err != nil {
		return nil, err
	}
	return teeLog{Log: l, f: f}, nil
}

type teeLog struct {
	quickfix.Log
	f *fileLog
}

func (t teeLog) OnIncoming(b []byte) { t.f.write(t.f.msgs, "in", b); t.Log.OnIncoming(b) }
func (t teeLog) OnOutgoing(b []byte) { t.f.write(t.f.msgs, "out", b); t.Log.OnOutgoing(b) }
func (t teeLog) OnEvent(s string)    { t.f.write(t.f.ev, "event", []byte(s)); t.Log.OnEvent(s) }
func (t teeLog) OnEventf(format string, a ...any) {
	t.f.write(t.f.ev, "event", bytes.TrimSpace(fmt.Appendf(nil, format, a...)))
	t.Log.OnEventf(format, a...)
}

// newLogFactory returns the quickfix log factory of a, with file logs when p asks.
func newLogFactory(a *app, p Persistence) (teeFactory, *fileLogs) {
	t := teeFactory{logFactory: logFactory{a}}
	if p.FileLogPath != "" {
		t.files = newFileLogs(p.FileLogPath)
	}
	return t, t.files
}

// persistentLogoutWait bounds the wait of Stop for the clients' answers to its Logouts,
// with a file store.
const persistentLogoutWait = 2 * time.Second

// logoutAll sends every logged-on session a Logout and waits up to d for the answers.
// quickfix v0.9.7 stops a session without waiting for the answer to its Logout: with a
// file store, the client's answer would be missing from the store, and the client's next
// Logon would find a gap that quickfix fills with a resend exchange, during which
// quickfix v0.9.7 can lose an application message the client sends at once.
func (a *Acceptor) logoutAll(d time.Duration) {
	ids := a.app.sessions()
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		a.app.logout(id, "service stopping")
	}
	deadline := time.Now().Add(d)
	for len(a.app.sessions()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// msgTypeIs reports whether b, a raw message, has the one-character MsgType t.
func msgTypeIs(b []byte, t byte) bool {
	i := bytes.Index(b, []byte("\x0135="))
	return i >= 0 && i < 32 && len(b) > i+5 && b[i+4] == t && b[i+5] == 1
}

// setResending records that session id sent a ResendRequest (2) whose answer has not
// come yet (on), or that a SequenceReset (4) came (off).
func (a *app) setResending(id quickfix.SessionID, on bool) {
	a.mu.Lock()
	if on {
		a.resend[id] = true
	} else {
		delete(a.resend, id)
	}
	a.mu.Unlock()
}

// Resending reports whether the session has asked the acceptor to resend messages (a
// gap in its sequence numbers, as after a restart on a file store) and has not yet
// received the answer. An application message the acceptor sends meanwhile may fall in
// the range the acceptor fills with a gap fill (it keeps no messages for resends), and
// quickfix v0.9.7 may drop one that arrives while the gap is open: a client that
// subscribes after a logon waits until this is false.
func (i *Initiator) Resending() bool {
	i.app.mu.Lock()
	defer i.app.mu.Unlock()
	return i.app.resend[i.id]
}
