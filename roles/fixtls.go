package roles

import (
	"crypto/tls"
	"flag"
	"fmt"

	"fastfeed/internal/fixsession"
)

// FIXServerTLS are the flags of a FIX service's TLS, shared by pub and feed --serve-fix.
type FIXServerTLS struct {
	Cert, Key, CA string
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
		return nil, usagef("--fix-tls-cert and --fix-tls-key go together (--fix-tls-ca needs them)")
	}
	cfg, err := fixsession.ServerTLS(t.Cert, t.Key, t.CA)
	if err != nil {
		return nil, usagef("--fix-tls-cert: %v", err)
	}
	return cfg, nil
}

// FIXClientTLS are the flags of a FIX client's TLS; prefix names them ("fix-" gives
// --fix-tls, --fix-tls-ca, ...).
type FIXClientTLS struct {
	prefix     string
	On         bool
	CA, Server string
	Cert, Key  string
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
		return nil, usagef("--%stls-*: %v", t.prefix, err)
	}
	return c, nil
}
