package roles

import (
	"flag"
	"fmt"
	"time"

	"fastfeed/internal/fixsession"
)

// FIXLimitOptions are the flags bounding a FIX service's connections and what comes
// before a Logon (fixsession.Limits), shared by pub and feed --serve-fix.
type FIXLimitOptions struct {
	MaxConns, MaxPerSource, MaxLogonSize, MaxLogonFailures int
	LogonTimeout, Lockout                                  time.Duration
	TLS                                                    FIXServerTLS
}

// fixLimitFlags are the names of FIXLimitOptions' flags.
var fixLimitFlags = []string{"fix-max-connections", "fix-max-connections-per-source", "fix-max-logon-size", "fix-logon-timeout",
	"fix-max-logon-failures", "fix-lockout", "fix-tls-cert", "fix-tls-key", "fix-tls-ca"}

func (l *FIXLimitOptions) register(fs *flag.FlagSet, service string) {
	fs.IntVar(&l.MaxConns, "fix-max-connections", 0, fmt.Sprintf("most `connections` open at once to the %s (0: %d, lowered to fit the open-file limit)",
		service, fixsession.DefaultMaxConnections))
	fs.IntVar(&l.MaxPerSource, "fix-max-connections-per-source", fixsession.DefaultMaxConnectionsPerSource,
		fmt.Sprintf("most `connections` open at once to the %s from one IP address", service))
	fs.IntVar(&l.MaxLogonSize, "fix-max-logon-size", fixsession.DefaultMaxLogonSize, "most `bytes` of a connection's first message, its Logon")
	fs.DurationVar(&l.LogonTimeout, "fix-logon-timeout", fixsession.DefaultAcceptorLogonTimeout, "close a connection that has not sent its Logon after `D`")
	fs.IntVar(&l.MaxLogonFailures, "fix-max-logon-failures", fixsession.DefaultMaxLogonFailures,
		"`N` failed logons in a row lock the username and the address out for --fix-lockout")
	fs.DurationVar(&l.Lockout, "fix-lockout", fixsession.DefaultLockout, "how long a locked-out username or address is refused (`D`)")
	l.TLS.register(fs, service)
}

// Apply puts the flags given (in set) into dst, checking them.
func (l *FIXLimitOptions) Apply(dst *fixsession.Limits, set map[string]bool) error {
	for _, f := range []struct {
		name string
		v    int
		dst  *int
	}{
		{"fix-max-connections", l.MaxConns, &dst.MaxConnections},
		{"fix-max-connections-per-source", l.MaxPerSource, &dst.MaxConnectionsPerSource},
		{"fix-max-logon-size", l.MaxLogonSize, &dst.MaxLogonSize},
		{"fix-max-logon-failures", l.MaxLogonFailures, &dst.MaxLogonFailures},
	} {
		if !set[f.name] {
			continue
		}
		if f.v < 1 {
			return usagef("--%s %d: want at least 1", f.name, f.v)
		}
		*f.dst = f.v
	}
	if set["fix-logon-timeout"] {
		if l.LogonTimeout <= 0 {
			return usagef("--fix-logon-timeout %v: want a positive duration", l.LogonTimeout)
		}
		dst.LogonTimeout = l.LogonTimeout
	}
	if set["fix-lockout"] {
		if l.Lockout <= 0 {
			return usagef("--fix-lockout %v: want a positive duration", l.Lockout)
		}
		dst.Lockout = l.Lockout
	}
	if err := dst.Check(); err != nil {
		return usagef("--fix-max-logon-size: %v", err)
	}
	return nil
}
