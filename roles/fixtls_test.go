package roles

import (
	"flag"
	"io"
	"strings"
	"testing"

	"fastfeed/internal/testcerts"
)

// TestFIXTLSFlags: the service's TLS flags go together and load real files; a client's
// are off unless one is given.
func TestFIXTLSFlags(t *testing.T) {
	certs, err := testcerts.New(t.TempDir(), "flags")
	if err != nil {
		t.Fatal(err)
	}
	server := func(args ...string) error {
		var o FIXLimitOptions
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.register(fs, "test service")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := o.TLS.Config()
		if err == nil && len(args) > 0 && (cfg == nil || len(cfg.Certificates) != 1) {
			t.Errorf("%q: config %v", args, cfg)
		}
		return err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--fix-tls-cert", certs.ServerCert, "--fix-tls-key", certs.ServerKey}, ""},
		{[]string{"--fix-tls-cert", certs.ServerCert, "--fix-tls-key", certs.ServerKey, "--fix-tls-ca", certs.CA}, ""},
		{[]string{"--fix-tls-key", certs.ServerKey}, "go together"},
		{[]string{"--fix-tls-ca", certs.CA}, "go together"},
		{[]string{"--fix-tls-cert", certs.ServerCert, "--fix-tls-key", certs.ClientKey}, "private key does not match"},
		{[]string{"--fix-tls-cert", certs.ServerCert, "--fix-tls-key", certs.ServerKey, "--fix-tls-ca", certs.ServerKey}, "no PEM certificate"},
	} {
		if err := server(tc.args...); tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v; want %q", tc.args, err, tc.want)
		}
	}
	client := func(args ...string) (bool, error) {
		var o FIXClientTLS
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o.register(fs, "fix-", "test service")
		if err := fs.Parse(args); err != nil {
			return false, err
		}
		c, err := o.Load()
		return c != nil, err
	}
	for _, tc := range []struct {
		args []string
		on   bool
		want string
	}{
		{nil, false, ""},
		{[]string{"--fix-tls"}, true, ""},
		{[]string{"--fix-tls-ca", certs.CA}, true, ""},
		{[]string{"--fix-tls-server-name", "fix.test"}, true, ""},
		{[]string{"--fix-tls-cert", certs.ClientCert, "--fix-tls-key", certs.ClientKey}, true, ""},
		{[]string{"--fix-tls-cert", certs.ClientCert}, false, "both the certificate and the key"},
		{[]string{"--fix-tls-ca", certs.ClientKey}, false, "no PEM certificate"},
	} {
		on, err := client(tc.args...)
		if on != tc.on || tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: TLS %v, %v; want %v, %q", tc.args, on, err, tc.on, tc.want)
		}
	}
}
