package roles

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/bus"
	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/testcerts"
	"fastfeed/md"
	"fastfeed/publisher"
)

// freePort returns a TCP port of 127.0.0.1 free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// emptySource is a bus.Source with no instrument: enough for a Logon.
type emptySource struct{}

type nopCancel struct{}

func (nopCancel) Cancel() {}

func (emptySource) Subscribe(func(*feed.Event), ...feed.Pattern) bus.Canceler { return nopCancel{} }
func (emptySource) Do(_ context.Context, fn func()) error                     { fn(); return nil }
func (emptySource) Dump() book.Dump                                           { return book.Dump{} }

// nopSink takes a recovery client's results and drops them.
type nopSink struct{}

func (nopSink) Retransmitted(string, uint32, *md.Message) {}
func (nopSink) Snapshots(string, []md.Snapshot)           {}
func (nopSink) Failed(string, bool, string)               {}

// TestFIXConfigTLSLogon: TLS configured by a quickfix settings file alone (no TLS flag),
// with client certificates and TLS 1.3 at least. The acceptors (pub's recovery service,
// and the OMS service of feed --serve-fix and gateway) take it from SocketCertificateFile,
// SocketPrivateKeyFile, SocketCAFile and SocketMinimumTLSVersion; the initiators (feed's
// recovery client, oms) from SocketCAFile, SocketServerName and their own certificate.
// Each initiator logs on over TLS; a client in clear is refused and counted; a flag
// given wins over the file.
func TestFIXConfigTLSLogon(t *testing.T) {
	certs, err := testcerts.New(t.TempDir(), "fixconfig")
	if err != nil {
		t.Fatal(err)
	}
	recPort, omsPort := freePort(t), freePort(t)
	path := writeFIXConfig(t, fmt.Sprintf(`[DEFAULT]
SocketCAFile=%[1]s
SocketMinimumTLSVersion=TLS13

[SESSION]
ConnectionType=acceptor
SenderCompID=FFPUB
SocketAcceptHost=127.0.0.1
SocketAcceptPort=%[2]d
SocketCertificateFile=%[3]s
SocketPrivateKeyFile=%[4]s

[SESSION]
ConnectionType=acceptor
SenderCompID=FFFEED
SocketAcceptHost=127.0.0.1
SocketAcceptPort=%[5]d
SocketCertificateFile=%[3]s
SocketPrivateKeyFile=%[4]s

[SESSION]
ConnectionType=initiator
SenderCompID=TLS-HANDLER
TargetCompID=FFPUB
SocketConnectHost=127.0.0.1
SocketConnectPort=%[2]d
SocketServerName=%[6]s
SocketCertificateFile=%[7]s
SocketPrivateKeyFile=%[8]s

[SESSION]
ConnectionType=initiator
SenderCompID=TLS-DESK
TargetCompID=FFFEED
SocketConnectHost=127.0.0.1
SocketConnectPort=%[5]d
SocketServerName=%[6]s
SocketCertificateFile=%[7]s
SocketPrivateKeyFile=%[8]s
`, certs.CA, recPort, certs.ServerCert, certs.ServerKey, omsPort, testcerts.ServerName, certs.ClientCert, certs.ClientKey))
	none := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// pub: the recovery service, as Pub wires it.
	po := FIXFileOptions{File: path, MaxRejects: 5, MaxMessage: 4096}
	ts, err := fast.LoadFile("../fixtures/templates.xml")
	if err != nil {
		t.Fatal(err)
	}
	ins, err := publisher.GenerateInstruments(2)
	if err != nil {
		t.Fatal(err)
	}
	pcfg := publisher.Config{Instruments: ins, Templates: ts, Rate: 1, Count: 1}
	pcfg.Recovery.Users = []publisher.User{{Username: "handler", Password: "handler-pw"}}
	var ro publisher.RecoveryOptions
	var pubTLS FIXServerTLS
	if err := po.applyPubFIX(none, &pcfg, &ro, &pubTLS); err != nil {
		t.Fatal(err)
	}
	if ro.TLS, err = pubTLS.Config(); err != nil {
		t.Fatal(err)
	}
	checkServerTLS(t, "pub", ro.TLS)
	p, err := publisher.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := publisher.NewRecoveryService(p, ro)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rec.Stop()

	// feed: its recovery client, as Feed wires it.
	fo := FeedOptions{FIXFile: FIXFileOptions{File: path}}
	fo.RecoveryTLS.prefix = "fix-connect-"
	rc, err := fo.applyRecoveryFIX(none)
	if err != nil {
		t.Fatal(err)
	}
	if fo.FixConnect != fmt.Sprintf("127.0.0.1:%d", recPort) || fo.RecoveryTLS.Server != testcerts.ServerName || fo.RecoveryTLS.MinVersion != tls.VersionTLS13 {
		t.Errorf("recovery client options: connect %q, TLS %+v", fo.FixConnect, fo.RecoveryTLS)
	}
	fo.Username, fo.Password = "handler", "handler-pw"
	client, err := fo.recoveryClient(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	client.Start(nopSink{})
	defer client.Close()
	for !client.LoggedOn() {
		if ctx.Err() != nil {
			t.Fatalf("the recovery client configured by %s did not log on over TLS: %+v", path, client.GuardStats())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// feed --serve-fix and gateway: the OMS service.
	bc := bus.Config{Users: []bus.User{{Username: "demo", Password: "demo-pw", Entitlements: []feed.Pattern{"*"}}}}
	oo := FIXFileOptions{File: path, MaxRejects: 5, MaxMessage: 4096}
	var omsTLS FIXServerTLS
	if err := oo.applyOMSService(none, "serve-fix", &bc, &omsTLS); err != nil {
		t.Fatal(err)
	}
	if bc.TLS, err = omsTLS.Config(); err != nil {
		t.Fatal(err)
	}
	checkServerTLS(t, "OMS service", bc.TLS)
	b, err := bus.NewFromSource(emptySource{}, bc)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if b.Addr() != fmt.Sprintf("127.0.0.1:%d", omsPort) {
		t.Errorf("OMS service on %s, want the file's port %d", b.Addr(), omsPort)
	}

	// oms: the client, as OMS wires it.
	desk := OMSOptions{FIXFile: FIXFileOptions{File: path}, Connect: fixsession.OMSListen, Username: "demo", Password: "demo-pw"}
	desk.TLS.prefix = "fix-"
	cc := bus.ClientConfig{}
	if err := desk.applyOMSClientFIX(none, &cc); err != nil {
		t.Fatal(err)
	}
	if cc.TLS, err = desk.TLS.Load(); err != nil || cc.TLS == nil || cc.TLS.MinVersion != tls.VersionTLS13 || len(cc.TLS.Cert) == 0 {
		t.Fatalf("oms client TLS %+v, %v", cc.TLS, err)
	}
	cc.Connect, cc.SenderCompID, cc.Username, cc.Password = desk.Connect, desk.CompID, desk.Username, desk.Password
	c, err := bus.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("the oms client configured by %s: %v", path, err)
	}
	defer c.Close()

	// The same client in clear is refused: the acceptor does take TLS only.
	plain, err := bus.NewClient(bus.ClientConfig{Connect: desk.Connect, SenderCompID: "TLS-DESK-PLAIN", Username: "demo", Password: "demo-pw"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	err = plain.Start(pctx)
	pcancel()
	plain.Close()
	if err == nil || !strings.Contains(err.Error(), "takes FIX over TLS only") {
		t.Errorf("a client in clear: %v; want it refused for not using TLS", err)
	}
	if st := b.FIXStats(); st.TLSRefused == 0 || st.TLSFailures != 0 || st.LogonsRefused != 0 {
		t.Errorf("OMS service FIX stats %+v: want the clear client refused (tls_refused), nothing else", st)
	}
	// A flag given wins over the file's key.
	var flagTLS FIXServerTLS
	flagTLS.CA = certs.ClientCert
	if err := oo.applyOMSService(map[string]bool{"fix-tls-ca": true}, "serve-fix", &bus.Config{}, &flagTLS); err != nil {
		t.Fatal(err)
	}
	if flagTLS.CA != certs.ClientCert || flagTLS.Cert != certs.ServerCert {
		t.Errorf("--fix-tls-ca given: options %+v, want the flag's CA and the file's certificate", flagTLS)
	}
}

// checkServerTLS checks an acceptor's TLS from the settings file: its certificate,
// client certificates required, TLS 1.3 at least.
func checkServerTLS(t *testing.T, who string, c *tls.Config) {
	t.Helper()
	if c == nil || len(c.Certificates) != 1 || c.ClientAuth != tls.RequireAndVerifyClientCert || c.MinVersion != tls.VersionTLS13 {
		t.Fatalf("%s TLS from the settings file: %+v", who, c)
	}
}
