package fixsession

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"fastfeed/internal/passhash"
	"fastfeed/internal/testcerts"
)

// BenchmarkHandshake is what a connection costs before its Logon: a TCP connect on
// loopback, and the same with a TLS handshake (ECDSA P-256, TLS 1.3 as Go negotiates it,
// and TLS 1.2), client and server on one machine.
func BenchmarkHandshake(b *testing.B) {
	certs, err := testcerts.New(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	srvCfg, err := ServerTLS(certs.ServerCert, certs.ServerKey, "")
	if err != nil {
		b.Fatal(err)
	}
	roots := newTLSFixture(b).pool(b, certs.CA)
	for _, bc := range []struct {
		name string
		srv  *tls.Config
		cli  *tls.Config
	}{
		{"tcp", nil, nil},
		{"tls1.3", srvCfg, &tls.Config{RootCAs: roots, ServerName: testcerts.ServerName}},
		{"tls1.2", srvCfg, &tls.Config{RootCAs: roots, ServerName: testcerts.ServerName, MaxVersion: tls.VersionTLS12}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						if bc.srv != nil {
							tc := tls.Server(c, bc.srv)
							if tc.Handshake() != nil {
								return
							}
							c = tc
						}
						_, _ = c.Write([]byte{1})
						_, _ = io.Copy(io.Discard, c)
					}()
				}
			}()
			var one [1]byte
			for b.Loop() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if bc.cli != nil {
					tc := tls.Client(c, bc.cli)
					if err := tc.Handshake(); err != nil {
						b.Fatal(err)
					}
					c = tc
				}
				if _, err := io.ReadFull(c, one[:]); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkRefusedLogon times a Logon with a wrong password through the guard, from
// connect to the Logout: in clear or over TLS, with the password stored in clear or as
// an argon2id hash. (A Logon that passes also waits for quickfix's session, which starts
// on the next whole second.)
func BenchmarkRefusedLogon(b *testing.B) {
	certs, err := testcerts.New(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	srvCfg, err := ServerTLS(certs.ServerCert, certs.ServerKey, "")
	if err != nil {
		b.Fatal(err)
	}
	roots := newTLSFixture(b).pool(b, certs.CA)
	hash, err := passhash.Hash([]byte(DemoPassword))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		tls    bool
		stored string
	}{
		{"tcp/clear", false, DemoPassword}, {"tls/clear", true, DemoPassword},
		{"tcp/argon2id", false, hash}, {"tls/argon2id", true, hash},
	} {
		b.Run(bc.name, func(b *testing.B) {
			users, err := passhash.NewUsers(map[string]string{DemoUsername: bc.stored})
			if err != nil {
				b.Fatal(err)
			}
			cfg := AcceptorConfig{Listen: "127.0.0.1:0", CompID: RecoveryCompID, Credentials: users.Check,
				Limits: Limits{MaxLogonFailures: 1 << 30}}
			if bc.tls {
				cfg.TLS = srvCfg
			}
			a, err := NewAcceptor(cfg, newRecorder())
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer a.Stop()
			logon := rawLogon("BENCH", "553="+DemoUsername, "554=wrong")
			for b.Loop() {
				c, err := net.Dial("tcp", a.Addr())
				if err != nil {
					b.Fatal(err)
				}
				if bc.tls {
					c = tls.Client(c, &tls.Config{RootCAs: roots, ServerName: testcerts.ServerName})
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(logon); err != nil {
					b.Fatal(err)
				}
				m, err := NewFrameReader(c, 0).Next()
				if err != nil || msgType(m) != "5" {
					b.Fatalf("answer %q, %v; want a Logout", m, err)
				}
				c.Close()
			}
		})
	}
}
