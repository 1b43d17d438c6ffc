package fixsession

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// TLS of an Acceptor is terminated by its guard (guard.go), so quickfix behind it
// stays plain on loopback: the guard reads a connection's first byte within
// Limits.LogonTimeout; a TLS handshake record (0x16) goes on to the handshake, bounded
// by the same deadline; anything else is refused (AcceptorStats.TLSRefused), a FIX
// Logon answered first, in clear, with a Logout saying that the port takes TLS. An
// Initiator's TLS is quickfix's own (SocketUseSSL and its settings).

// ServerTLS returns the TLS configuration of an Acceptor: the certificate and key in
// PEM files, TLS 1.2 at least, and, if caFile is not empty, client certificates
// required and verified against the CAs in it.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("fixsession: TLS: a certificate and a key are both required")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("fixsession: TLS: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("fixsession: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("fixsession: TLS CA: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ClientTLS configures an Initiator's TLS (quickfix's SocketUseSSL, SocketCABytes,
// SocketServerName, SocketCertificateBytes, SocketPrivateKeyBytes, and
// SocketMinimumTLSVersion TLS12).
type ClientTLS struct {
	// CA is PEM certificates to verify the service by; empty: the system's roots.
	CA []byte
	// ServerName is the name the service's certificate must hold; empty: the host of
	// InitiatorConfig.Connect.
	ServerName string
	// Cert and Key, PEM, are the client certificate for a service that requires one.
	Cert, Key []byte
	// MinVersion is the least TLS version taken (tls.VersionTLS12 or tls.VersionTLS13);
	// 0 or lower means TLS 1.2. quickfix's own TLS (InitiatorConfig.GuardOff) takes
	// TLS 1.2 at most here.
	MinVersion uint16
}

// LoadClientTLS reads the files of a ClientTLS; empty names are left out.
func LoadClientTLS(caFile, certFile, keyFile, serverName string) (*ClientTLS, error) {
	c := &ClientTLS{ServerName: serverName}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("fixsession: TLS client certificate: give both the certificate and the key")
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{caFile, &c.CA}, {certFile, &c.Cert}, {keyFile, &c.Key}} {
		if f.name == "" {
			continue
		}
		b, err := os.ReadFile(f.name)
		if err != nil {
			return nil, fmt.Errorf("fixsession: TLS: %w", err)
		}
		*f.dst = b
	}
	return c, c.check()
}

// check parses c's PEM blocks, so that a bad one fails before quickfix starts.
func (c *ClientTLS) check() error {
	if len(c.CA) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.CA) {
		return errors.New("fixsession: TLS CA: no PEM certificate")
	}
	if len(c.Cert) > 0 || len(c.Key) > 0 {
		if _, err := tls.X509KeyPair(c.Cert, c.Key); err != nil {
			return fmt.Errorf("fixsession: TLS client certificate: %w", err)
		}
	}
	return nil
}

// tlsHandshakeRecord is the first byte of a TLS connection: a handshake record.
const tlsHandshakeRecord = 0x16

// reasonTLSRequired is the Text (58) of the Logout answering a Logon in clear on a TLS
// port.
const reasonTLSRequired = "this port takes FIX over TLS only"

// startTLS reads client's first byte and, if it begins a TLS handshake, completes the
// handshake within Limits.LogonTimeout. Anything else is counted and refused; a
// connection in clear that sent a FIX Logon is answered with a Logout first. It returns
// the TLS connection, nil if client is to be closed.
func (g *guard) startTLS(client net.Conn, remote string) net.Conn {
	_ = client.SetDeadline(time.Now().Add(g.limits.LogonTimeout))
	var first [1]byte
	if _, err := io.ReadFull(client, first[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			g.app.stats.logonTimeouts.Add(1)
			g.rl.Warn("logon timeout", "fix connection closed: no TLS handshake in time", "remote", remote, "timeout", g.limits.LogonTimeout)
		}
		return nil
	}
	pc := &prefixConn{Conn: client, prefix: first[:]}
	if first[0] != tlsHandshakeRecord {
		g.app.stats.tlsRefused.Add(1)
		g.rl.Warn("tls refused", "fix connection refused: not TLS on a TLS port", "remote", remote, "first_byte", fmt.Sprintf("%#02x", first[0]))
		if first[0] == '8' { // 8=FIX...: a Logon in clear; answer it so the client knows why
			fr := NewFrameReader(pc, g.limits.MaxLogonSize)
			defer fr.Release()
			if msg, err := fr.Next(); err == nil {
				lg, _ := parseLogon(msg)
				_, _ = client.Write(logoutMessage(g.compID, lg, reasonTLSRequired))
			}
		}
		return nil
	}
	tc := tls.Server(pc, g.tls)
	if err := tc.Handshake(); err != nil {
		g.app.stats.tlsFailures.Add(1)
		g.rl.Warn("tls handshake", "fix connection refused: TLS handshake failed", "remote", remote, "error", err)
		return nil
	}
	_ = client.SetDeadline(time.Time{})
	return tc
}

// prefixConn is a connection whose first bytes, already read, are prefix.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
