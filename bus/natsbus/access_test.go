package natsbus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"fastfeed/bus"
	"fastfeed/feed"
)

// TestGateway: bus's OMS FIX service fed from NATS (a gateway) serves FIX clients the
// same books, with the same entitlements, as the handler's own service would.
func TestGateway(t *testing.T) {
	c := startChain(t, chainConfig{instruments: 8, rate: 1000, count: 3000})
	src := c.consumer(t, ConsumerConfig{}, ConnConfig{})
	gw, err := bus.NewFromSource(src, bus.Config{Listen: "127.0.0.1:0", ChannelOf: src.ChannelOf, Logger: logger(), SlowLimit: time.Minute,
		Users: []bus.User{{Username: "alice", Password: "alice-pw", Entitlements: []feed.Pattern{"*"}},
			{Username: "bob", Password: "bob-pw", Entitlements: []feed.Pattern{"SBER", "G*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(c.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	c.publish()
	// The gateway knows the instruments once their first Ws have arrived.
	deadline := time.Now().Add(20 * time.Second)
	for src.Stats().Synchronised < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("gateway source never synchronised: %+v", src.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	clients := map[string]*bus.Client{}
	for _, u := range []string{"alice", "bob"} {
		cl, err := bus.NewClient(bus.ClientConfig{Connect: gw.Addr(), SenderCompID: strings.ToUpper(u), Username: u, Password: u + "-pw"})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Start(c.ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.Subscribe(u+"1", "*"); err != nil {
			t.Fatal(err)
		}
		clients[u] = cl
	}
	if err := clients["bob"].Subscribe("b2", "AAPL"); err != nil {
		t.Fatal(err)
	}
	c.waitData(t)
	bobSyms := func(s string) bool { return s == "SBER" || strings.HasPrefix(s, "G") }
	for u, keep := range map[string]func(string) bool{"alice": nil, "bob": bobSyms} {
		cl := clients[u]
		waitClientBooks(t, u+" via the gateway", cl, c.truth(t, keep), 20*time.Second)
		if rep := cl.Report(); rep.Books.Gaps != 0 || len(rep.Errors) != 0 {
			t.Errorf("%s: %+v", u, rep)
		}
	}
	rej := clients["bob"].Report().Rejects
	if len(rej) != 1 || rej[0].MDReqID != "b2" || !strings.Contains(rej[0].Text, "not entitled") {
		t.Errorf("bob's rejects: %+v", rej)
	}
}

// TestPermissions: with docs/nats-permissions.conf, a user entitled to SBER only gets
// SBER's book, is refused GAZP's subjects and cannot subscribe to everything; the feed
// and gateway users work.
func TestPermissions(t *testing.T) {
	conf, err := filepath.Abs("../../docs/nats-permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := startChain(t, chainConfig{instruments: 8, rate: 1000, count: 2000,
		server: ServerConfig{ConfigFile: conf, Listen: "127.0.0.1:0", StoreDir: t.TempDir()},
		conn:   ConnConfig{User: "feed", Password: "feed-pw"}})
	gw := c.consumer(t, ConsumerConfig{}, ConnConfig{User: "gateway", Password: "gateway-pw"})
	sber := c.consumer(t, ConsumerConfig{Patterns: []feed.Pattern{"SBER", "GAZP"}},
		ConnConfig{User: "sber", Password: "sber-pw", InboxPrefix: "_INBOX_sber"})
	// The same user asking for everything gets nothing.
	nc, err := ConnConfig{URL: c.url, User: "sber", Password: "sber-pw", InboxPrefix: "_INBOX_sber"}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	errs := make(chan error, 16)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	all, err := nc.SubscribeSync("md.>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (ConnConfig{URL: c.url, User: "sber", Password: "wrong"}).Connect(); err == nil {
		t.Error("a wrong password connected")
	}
	c.publish()
	c.waitData(t)
	waitBooks(t, "gateway user", gw, c.truth(t, nil))
	waitBooks(t, "sber user", sber, c.truth(t, func(s string) bool { return s == "SBER" }))
	if st := sber.Stats(); st.Permission == 0 || st.Instruments != 1 {
		t.Errorf("sber user: the GAZP subscription was not refused: %+v", st)
	}
	if n, _, _ := all.Pending(); n != 0 {
		t.Errorf("a subscription to md.> by the sber user received %d messages", n)
	}
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("md.> by the sber user: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("md.> by the sber user: no permission error")
	}
}

// TestTLSAndNKey: publisher and consumer connect over TLS (a CA given to the client)
// and authenticate with nkeys; the books arrive whole.
func TestTLSAndNKey(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	var users []string
	seeds := map[string]string{}
	for _, name := range []string{"pub", "sub"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seeds[name] = filepath.Join(dir, name+".nk")
		if err := os.WriteFile(seeds[name], seed, 0o600); err != nil {
			t.Fatal(err)
		}
		users = append(users, fmt.Sprintf("{nkey: %q}", pk))
	}
	conf := filepath.Join(dir, "server.conf")
	body := fmt.Sprintf("tls {\n cert_file: %q\n key_file: %q\n}\nauthorization {\n users: [%s]\n}\n", cert, key, strings.Join(users, ", "))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	srvCfg := ServerConfig{ConfigFile: conf, Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js")}
	c := startChain(t, chainConfig{instruments: 4, rate: 1000, count: 1000, server: srvCfg,
		conn: ConnConfig{TLSCA: ca, NKeySeedFile: seeds["pub"]}})
	if st, err := c.nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
		t.Errorf("publisher not on TLS: %v", err)
	}
	cons := c.consumer(t, ConsumerConfig{}, ConnConfig{TLSCA: ca, NKeySeedFile: seeds["sub"]})
	c.publish()
	c.waitData(t)
	waitBooks(t, "consumer", cons, c.truth(t, nil))
	if _, err := (ConnConfig{URL: c.url, NKeySeedFile: seeds["sub"]}).Connect(); err == nil {
		t.Error("connected without the CA")
	}
	other, _ := nkeys.CreateUser()
	seed, _ := other.Seed()
	stranger := filepath.Join(dir, "stranger.nk")
	if err := os.WriteFile(stranger, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (ConnConfig{URL: c.url, TLSCA: ca, NKeySeedFile: stranger}).Connect(); err == nil {
		t.Error("an unknown nkey connected")
	}
	if _, err := (ConnConfig{NKeySeedFile: "x", CredsFile: "y", URL: "nats://127.0.0.1:1"}).Connect(); err == nil ||
		!strings.Contains(err.Error(), "not both") {
		t.Errorf("nkey and creds together: %v", err)
	}
}

// writeCerts writes a CA and a server certificate for 127.0.0.1.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastfeed test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{ca, "CERTIFICATE", caDER}, {cert, "CERTIFICATE", srvDER}, {key, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestGatewayEarlySubscriber: OMS clients subscribe to a gateway before any instrument
// has reached it over NATS (a gateway restarted before the open). Their wildcard
// requests are held and served as the instruments arrive, entitlements applied; a
// snapshot-only request matching nothing is still refused.
func TestGatewayEarlySubscriber(t *testing.T) {
	srv, nc := embeddedConn(t)
	src, err := NewConsumer(ConsumerConfig{Conn: nc, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Stop)
	gw, err := bus.NewFromSource(src, bus.Config{Listen: "127.0.0.1:0", ChannelOf: src.ChannelOf, Logger: logger(), SlowLimit: time.Minute,
		HoldWildcards: true,
		Users: []bus.User{{Username: "alice", Password: "alice-pw", Entitlements: []feed.Pattern{"*"}},
			{Username: "bob", Password: "bob-pw", Entitlements: []feed.Pattern{"SBER", "G*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	clients := map[string]*bus.Client{}
	for u, pattern := range map[string]string{"alice": "*", "bob": "G*"} {
		cl, err := bus.NewClient(bus.ClientConfig{Connect: gw.Addr(), SenderCompID: strings.ToUpper(u), Username: u, Password: u + "-pw"})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.Subscribe(u+"1", pattern); err != nil {
			t.Fatal(err)
		}
		clients[u] = cl
	}
	if err := clients["alice"].Snapshot("a2", "ZZ*"); err != nil {
		t.Fatal(err)
	}
	// Only now does a feed publish on this NATS.
	c := startChainOn(t, chainConfig{instruments: 8, rate: 1000, count: 2000, conn: ConnConfig{URL: srv.URL()}}, nil)
	c.publish()
	c.waitData(t)
	for u, keep := range map[string]func(string) bool{"alice": nil, "bob": func(s string) bool { return strings.HasPrefix(s, "G") }} {
		waitClientBooks(t, u+", subscribed before the instruments existed,", clients[u], c.truth(t, keep), 30*time.Second)
	}
	if rej := clients["bob"].Report().Rejects; len(rej) != 0 {
		t.Errorf("bob's held request was rejected: %+v", rej)
	}
	rej := clients["alice"].Report().Rejects
	if len(rej) != 1 || rej[0].MDReqID != "a2" || !strings.Contains(rej[0].Text, "no instrument matches") {
		t.Errorf("alice's rejects: %+v, want only a2's snapshot of nothing", rej)
	}
}
