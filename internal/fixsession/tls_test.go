package fixsession

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/internal/testcerts"
)

// tlsFixture is a CA with its certificates, and another CA's, made for one test.
type tlsFixture struct {
	good, other testcerts.Set
}

func newTLSFixture(t testing.TB) tlsFixture {
	t.Helper()
	dir := t.TempDir()
	good, err := testcerts.New(dir, "good")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcerts.New(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	return tlsFixture{good, other}
}

func (f tlsFixture) pool(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// startTLSAcceptor starts an acceptor taking TLS only with f's server certificate,
// requiring client certificates of f's CA if clientCA.
func startTLSAcceptor(t *testing.T, f tlsFixture, clientCA bool, h Handler) *Acceptor {
	t.Helper()
	ca := ""
	if clientCA {
		ca = f.good.CA
	}
	cfg, err := ServerTLS(f.good.ServerCert, f.good.ServerKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAcceptor(AcceptorConfig{Listen: "127.0.0.1:0", CompID: RecoveryCompID,
		Credentials: StaticCredentials(DemoUsername, DemoPassword), TLS: cfg}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, "acceptor", a.Stop) })
	return a
}

// TestTLSLogon logs a quickfix initiator on over TLS with a client certificate, and
// carries a message each way.
func TestTLSLogon(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	srv, cli := newRecorder(), newRecorder()
	acc := startTLSAcceptor(t, f, true, srv)
	ct, err := LoadClientTLS(f.good.CA, f.good.ClientCert, f.good.ClientKey, testcerts.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	ini := startInitiator(t, context.Background(), InitiatorConfig{Connect: acc.Addr(), SenderCompID: "TLSCLIENT",
		Username: DemoUsername, Password: DemoPassword, TLS: ct}, cli)
	id := wait(t, srv.logons, "acceptor logon over TLS")
	wait(t, cli.logons, "initiator logon over TLS")
	req := quickfix.NewMessage()
	req.Header.SetString(tag.MsgType, "V")
	req.Body.SetString(tag.MDReqID, "tls-1")
	if err := ini.Send(req); err != nil {
		t.Fatal(err)
	}
	if in := wait(t, srv.msgs, "message at the acceptor"); in.id != id {
		t.Errorf("message on %v, want %v", in.id, id)
	} else if v, _ := in.msg.Body.GetString(tag.MDReqID); v != "tls-1" {
		t.Errorf("MDReqID %q, want tls-1", v)
	}
	back := quickfix.NewMessage()
	back.Header.SetString(tag.MsgType, "Y")
	back.Body.SetString(tag.MDReqID, "tls-2")
	if err := acc.Send(id, back); err != nil {
		t.Fatal(err)
	}
	if out := wait(t, cli.msgs, "message at the initiator"); func() string { v, _ := out.msg.Body.GetString(tag.MDReqID); return v }() != "tls-2" {
		t.Errorf("initiator got %v", out.msg)
	}
	if st := acc.Stats(); st.TLSRefused != 0 || st.TLSFailures != 0 || st.LogonsRefused != 0 {
		t.Errorf("stats %+v: want no refusal", st)
	}
	if _, err := LoadClientTLS(f.good.CA, f.good.ClientCert, "", ""); err == nil {
		t.Error("LoadClientTLS with a certificate and no key: no error")
	}
	if _, err := ServerTLS(f.good.ServerCert, f.good.ClientKey, ""); err == nil {
		t.Error("ServerTLS with a key not the certificate's: no error")
	}
}

// TestTLSRefused: on a TLS port, a Logon in clear is answered with a Logout saying why
// and counted; a client that does not trust the service's CA, or has no client
// certificate, or one of another CA, or offers TLS 1.1 at most, fails its handshake,
// counted; a good client then logs on.
func TestTLSRefused(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	acc := startTLSAcceptor(t, f, true, newRecorder())

	c := mustDial(t, acc.Addr(), 1)
	if _, err := c.Write(rawLogon("PLAIN", "553="+DemoUsername, "554="+DemoPassword)); err != nil {
		t.Fatal(err)
	}
	lo := readUntil(t, c, "5", 5*time.Second)
	if !strings.Contains(string(lo), "58="+reasonTLSRequired+"\x01") || !strings.Contains(string(lo), "56=PLAIN\x01") {
		t.Errorf("Logout %q: want the reason %q, to PLAIN", printable(lo), reasonTLSRequired)
	}
	closedByPeer(t, c, 5*time.Second)
	if st := acc.Stats(); st.TLSRefused != 1 || st.LogonsRefused != 0 {
		t.Errorf("after a Logon in clear: tls_refused %d, logons_refused %d; want 1, 0", st.TLSRefused, st.LogonsRefused)
	}

	goodCert, err := tls.LoadX509KeyPair(f.good.ClientCert, f.good.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := tls.LoadX509KeyPair(f.other.ClientCert, f.other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	goodRoots, otherRoots := f.pool(t, f.good.CA), f.pool(t, f.other.CA)
	cases := []struct {
		name string
		cfg  *tls.Config
	}{
		{"wrong CA", &tls.Config{RootCAs: otherRoots, Certificates: []tls.Certificate{goodCert}}},
		{"no client certificate", &tls.Config{RootCAs: goodRoots}},
		{"client certificate of another CA", &tls.Config{RootCAs: goodRoots, Certificates: []tls.Certificate{otherCert}}},
		{"TLS 1.1", &tls.Config{RootCAs: goodRoots, Certificates: []tls.Certificate{goodCert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
	}
	for i, tc := range cases {
		raw := mustDial(t, acc.Addr(), 2+i)
		tc.cfg.ServerName = testcerts.ServerName
		tcn := tls.Client(raw, tc.cfg)
		_ = tcn.SetDeadline(time.Now().Add(5 * time.Second))
		err := tcn.Handshake()
		if err == nil { // TLS 1.3: the server's verdict on the client certificate comes after
			_, _ = tcn.Write(rawLogon("TLSBAD", "553="+DemoUsername, "554="+DemoPassword))
			_, err = tcn.Read(make([]byte, 1))
		}
		if err == nil {
			t.Errorf("%s: the connection works", tc.name)
		}
		if !waitUntil(5*time.Second, func() bool { return acc.Stats().TLSFailures == uint64(i+1) }) {
			t.Errorf("%s: tls_failures %d, want %d", tc.name, acc.Stats().TLSFailures, i+1)
		}
	}
	raw := mustDial(t, acc.Addr(), 9)
	tcn := tls.Client(raw, &tls.Config{RootCAs: goodRoots, Certificates: []tls.Certificate{goodCert}, ServerName: testcerts.ServerName})
	if _, err := tcn.Write(rawLogon("TLSGOOD", "553="+DemoUsername, "554="+DemoPassword)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, tcn, "A", 10*time.Second)
	if st := acc.Stats(); st.TLSRefused != 1 || st.TLSFailures != uint64(len(cases)) || st.LogonsRefused != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestLockout: wrong passwords MaxLogonFailures times lock the username and the address
// out, the right password included, on another address too; after Lockout the right
// password logs on.
func TestLockout(t *testing.T) {
	t.Parallel()
	const failures, lockFor = 3, 1500 * time.Millisecond
	acc, logs := startGuarded(t, newRecorder(), Limits{MaxLogonFailures: failures, Lockout: lockFor})
	try := func(src int, user, pw string) string {
		t.Helper()
		c := mustDial(t, acc.Addr(), src)
		defer c.Close()
		if _, err := c.Write(rawLogon("LOCK", "553="+user, "554="+pw)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := NewFrameReader(c, 0).Next()
		if err != nil {
			t.Fatalf("no answer to a Logon: %v", err)
		}
		if msgType(m) == "A" {
			return "A"
		}
		_, text, _ := strings.Cut(string(m), "\x0158=")
		text, _, _ = strings.Cut(text, "\x01")
		return text
	}
	for i := range failures {
		if got := try(1, DemoUsername, "guess"); got != reasonBadCredentials {
			t.Fatalf("wrong password %d: %q, want %q", i+1, got, reasonBadCredentials)
		}
	}
	start := time.Now()
	if got := try(1, DemoUsername, DemoPassword); got != reasonLockedOut {
		t.Fatalf("right password after %d failures: %q, want %q", failures, got, reasonLockedOut)
	}
	if got := try(2, DemoUsername, DemoPassword); got != reasonLockedOut {
		t.Fatalf("right password from another address: %q, want %q (the username is locked)", got, reasonLockedOut)
	}
	if got := try(1, "other", "x"); got != reasonLockedOut {
		t.Fatalf("another username from the locked address: %q, want %q", got, reasonLockedOut)
	}
	st := acc.Stats()
	if st.LogonFailures != failures || st.Lockouts != 2 || st.LockedOut != 3 || st.LogonsRefused != failures+3 {
		t.Errorf("stats %+v: want logon_failures %d, lockouts 2 (username and address), locked_out 3", st, failures)
	}
	time.Sleep(time.Until(start.Add(lockFor + 100*time.Millisecond)))
	if got := try(1, DemoUsername, DemoPassword); got != "A" {
		t.Fatalf("right password after the lockout: %q, want a Logon", got)
	}
	for _, want := range []string{"fix logons locked out", "locked=\"username demo\"", "locked=\"address 127.0.0.3\"", "fix logon refused: locked out"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestLockoutRecords(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLockout(2, time.Minute)
	l.now = func() time.Time { return now }
	l.fail("u", "a1")
	now = now.Add(2 * time.Minute) // too old to count
	if got := l.fail("u", "a2"); len(got) != 0 || l.locked("u", "a2") != "" {
		t.Fatalf("a failure older than the lockout counted: %v", got)
	}
	if got := l.fail("u", "a2"); len(got) != 2 || l.locked("u", "zz") != "u:u" || l.locked("v", "a2") != "a:a2" {
		t.Fatalf("second failure in a row locked %v", got)
	}
	now = now.Add(time.Minute)
	if k := l.locked("u", "a2"); k != "" {
		t.Fatalf("still locked after the lockout: %q", k)
	}
	l.fail("w", "a3")
	l.pass("w", "a3")
	if got := l.fail("w", "a3"); len(got) != 0 {
		t.Fatalf("a logon that passed did not clear the failures: %v", got)
	}
}
