package roles

import (
	"crypto/tls"
	"flag"
	"fmt"

	"fastfeed/internal/fixsession"
)

// FIXServerTLS are the flags of a FIX service's TLS, shared by pub, feed --serve-fix and
// gateway, and what --fix-config adds to them (fromSettings).
type FIXServerTLS struct {
	Cert, Key, CA string
	// MinVersion is SocketMinimumTLSVersion of --fix-config (0: TLS 1.2).
	MinVersion uint16
}

// fromSettings takes the TLS keys of an acceptor's --fix-config session for the flags
// not given (set): SocketCertificateFile with SocketPrivateKeyFile (unless --fix-tls-cert
// or --fix-tls-key is given), SocketCAFile (unless --fix-tls-ca is) and
// SocketMinimumTLSVersion. SocketServerName and SocketUseSSL are an initiator's, as in
// quickfix.
func (t *FIXServerTLS) fromSettings(s *fixsession.SessionSettings, set map[string]bool) {
	if s.CertificateFile != "" && !set["fix-tls-cert"] && !set["fix-tls-key"] {
		t.Cert, t.Key = s.CertificateFile, s.PrivateKeyFile
	}
	if s.CAFile != "" && !set["fix-tls-ca"] {
		t.CA = s.CAFile
	}
	t.MinVersion = s.MinTLSVersion()
}

func (t *FIXServerTLS) register(fs *flag.FlagSet, service string) {
	fs.StringVar(&t.Cert, "fix-tls-cert", "", fmt.Sprintf("PEM certificate `file` of the %s: with --fix-tls-key, it takes FIX over TLS 1.2+ only", service))
	fs.StringVar(&t.Key, "fix-tls-key", "", "PEM private key `file` of --fix-tls-cert")
	fs.StringVar(&t.CA, "fix-tls-ca", "", "PEM CA `file`: require client certificates signed by these CAs")
}

// Config returns the service's TLS configuration, nil if no flag is given.
func (t *FIXServerTLS) Config() (*tls.Config, error) {
	switch {
	case t.Cert == "" && t.Key == "" && t.CA == "":
		return nil, nil
	case t.Cert == "" || t.Key == "":
		return nil, usagef("--fix-tls-cert and --fix-tls-key go together (--fix-tls-ca needs them; in --fix-config SocketCertificateFile, SocketPrivateKeyFile and SocketCAFile)")
	}
	cfg, err := fixsession.ServerTLS(t.Cert, t.Key, t.CA)
	if err != nil {
		return nil, usagef("--fix-tls-cert: %v", err)
	}
	cfg.MinVersion = max(cfg.MinVersion, t.MinVersion)
	return cfg, nil
}

// FIXClientTLS are the flags of a FIX client's TLS; prefix names them ("fix-" gives
// --fix-tls, --fix-tls-ca, ...).
type FIXClientTLS struct {
	prefix     string
	On         bool
	CA, Server string
	Cert, Key  string
	// MinVersion is SocketMinimumTLSVersion of --fix-config (0: TLS 1.2).
	MinVersion uint16
}

// fromSettings takes the TLS keys of an initiator's --fix-config session for the flags
// not given (set): SocketCAFile, SocketServerName, SocketCertificateFile with
// SocketPrivateKeyFile, SocketMinimumTLSVersion, and SocketUseSSL=Y. As with the flags,
// any of them means TLS (quickfix would connect in clear with SocketCAFile alone: a
// TLS key is not ignored here).
func (t *FIXClientTLS) fromSettings(s *fixsession.SessionSettings, set map[string]bool) {
	p := t.prefix
	if s.CAFile != "" && !set[p+"tls-ca"] {
		t.CA = s.CAFile
	}
	if s.ServerName != "" && !set[p+"tls-server-name"] {
		t.Server = s.ServerName
	}
	if s.CertificateFile != "" && !set[p+"tls-cert"] && !set[p+"tls-key"] {
		t.Cert, t.Key = s.CertificateFile, s.PrivateKeyFile
	}
	t.MinVersion = s.MinTLSVersion()
	if s.UseSSL || t.MinVersion != 0 {
		t.On = true
	}
}

func (t *FIXClientTLS) register(fs *flag.FlagSet, prefix, service string) {
	t.prefix = prefix
	fs.BoolVar(&t.On, prefix+"tls", false, fmt.Sprintf("connect to the %s over TLS 1.2+ (implied by the other --%stls-* flags)", service, prefix))
	fs.StringVar(&t.CA, prefix+"tls-ca", "", "PEM CA `file` to verify the "+service+" by (default: the system's roots)")
	fs.StringVar(&t.Server, prefix+"tls-server-name", "", "`name` the "+service+"'s certificate must hold (default: the host connected to)")
	fs.StringVar(&t.Cert, prefix+"tls-cert", "", "PEM client certificate `file`, for a "+service+" that requires one")
	fs.StringVar(&t.Key, prefix+"tls-key", "", "PEM private key `file` of the client certificate")
}

// Load returns the client's TLS, nil for plain TCP.
func (t *FIXClientTLS) Load() (*fixsession.ClientTLS, error) {
	if !t.On && t.CA == "" && t.Server == "" && t.Cert == "" && t.Key == "" {
		return nil, nil
	}
	c, err := fixsession.LoadClientTLS(t.CA, t.Cert, t.Key, t.Server)
	if err != nil {
		return nil, usagef("--%stls-* (or the TLS keys of --fix-config): %v", t.prefix, err)
	}
	c.MinVersion = t.MinVersion
	return c, nil
}
