package fixsession

import (
	"fmt"
	"time"
)

// Defaults of Limits.
const (
	DefaultMaxConnections          = 1000
	DefaultMaxConnectionsPerSource = 64
	DefaultMaxLogonSize            = 4096
	DefaultAcceptorLogonTimeout    = 5 * time.Second
	DefaultMaxGarbledBeforeLogon   = 3
	// DefaultLogLinesPerSecond bounds the lines each cause of the guard's warnings
	// (a malformed message, a refused connection, ...) writes per second.
	DefaultLogLinesPerSecond = 32
	// DefaultMaxLogonFailures failed logons in a row lock a username and an address
	// out for DefaultLockout.
	DefaultMaxLogonFailures = 5
	DefaultLockout          = time.Minute
)

// fdsPerConnection is what a logged-on client costs an Acceptor in file descriptors:
// its connection, the guard's connection to quickfix and quickfix's end of it.
const fdsPerConnection = 3

// fdReserve is kept out of the connection budget for the process's other files.
const fdReserve = 64

// Limits bounds what an Acceptor gives clients, above all those that have not logged
// on. Every zero field takes its default.
type Limits struct {
	// MaxConnections bounds the client connections open at once; a connection beyond it
	// is closed as soon as it is accepted. The default is DefaultMaxConnections, lowered
	// so that that many logged-on clients fit in the process's file-descriptor limit
	// (RLIMIT_NOFILE) with room to spare.
	MaxConnections int
	// MaxConnectionsPerSource bounds the connections open at once from one IP address.
	MaxConnectionsPerSource int
	// MaxLogonSize bounds a connection's first message, its Logon, framing included: a
	// BodyLength announcing more closes the connection before the body is read.
	MaxLogonSize int
	// LogonTimeout bounds the time from accepting a connection to having read its Logon.
	LogonTimeout time.Duration
	// MaxGarbledBeforeLogon: a connection's garbled message (a wrong CheckSum) before
	// its Logon that is the MaxGarbledBeforeLogon-th closes it. (Any other malformed
	// message closes a connection at once.)
	MaxGarbledBeforeLogon int
	// LogLinesPerSecond bounds the warnings about clients, per cause and second; the
	// others are counted (AcceptorStats.LogSuppressed).
	LogLinesPerSecond int
	// MaxLogonFailures failed logons in a row, naming one username or from one address,
	// lock that username and that address out: their Logons are refused without a
	// password check until Lockout has passed since the last failure (lockout.go).
	MaxLogonFailures int
	// Lockout is how long a locked-out username or address stays locked.
	Lockout time.Duration
}

// Check reports a limit out of range: negative, or a MaxLogonSize too small for a Logon.
func (l *Limits) Check() error {
	switch {
	case l.MaxConnections < 0, l.MaxConnectionsPerSource < 0, l.MaxLogonSize < 0,
		l.LogonTimeout < 0, l.MaxGarbledBeforeLogon < 0, l.LogLinesPerSecond < 0,
		l.MaxLogonFailures < 0, l.Lockout < 0:
		return fmt.Errorf("negative limit in %+v", *l)
	case l.MaxLogonSize > 0 && l.MaxLogonSize < 128:
		return fmt.Errorf("MaxLogonSize %d: a Logon needs at least 128 bytes", l.MaxLogonSize)
	}
	return nil
}

// withDefaults returns l with its zero fields set; fdLimit is the process's file
// descriptor limit, 0 if unknown.
func (l Limits) withDefaults(fdLimit int) Limits {
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
		if fdLimit > 0 {
			l.MaxConnections = min(l.MaxConnections, max(16, (fdLimit-fdReserve)/fdsPerConnection))
		}
	}
	if l.MaxConnectionsPerSource == 0 {
		l.MaxConnectionsPerSource = min(DefaultMaxConnectionsPerSource, l.MaxConnections)
	}
	if l.MaxLogonSize == 0 {
		l.MaxLogonSize = DefaultMaxLogonSize
	}
	if l.LogonTimeout == 0 {
		l.LogonTimeout = DefaultAcceptorLogonTimeout
	}
	if l.MaxGarbledBeforeLogon == 0 {
		l.MaxGarbledBeforeLogon = DefaultMaxGarbledBeforeLogon
	}
	if l.LogLinesPerSecond == 0 {
		l.LogLinesPerSecond = DefaultLogLinesPerSecond
	}
	if l.MaxLogonFailures == 0 {
		l.MaxLogonFailures = DefaultMaxLogonFailures
	}
	if l.Lockout == 0 {
		l.Lockout = DefaultLockout
	}
	return l
}
