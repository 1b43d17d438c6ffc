package bus

import (
	"context"
	"strings"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/feed"
	"fastfeed/internal/fixsession"
	"fastfeed/internal/passhash"
	"fastfeed/internal/testcerts"
)

// TestOMSOverTLS: the OMS service takes TLS only, with client certificates required and
// the user's password stored as an argon2id hash. A client over TLS rebuilds books equal
// to the handler's; a client in clear is refused with the reason and counted.
func TestOMSOverTLS(t *testing.T) {
	certs, err := testcerts.New(t.TempDir(), "oms")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := passhash.Hash([]byte("alice-pw"))
	if err != nil {
		t.Fatal(err)
	}
	m := startMarket(t, 6, 500, 800, Config{
		Users:   []User{{Username: "alice", Password: hash, Entitlements: []feed.Pattern{"*"}}},
		TLSCert: certs.ServerCert, TLSKey: certs.ServerKey, TLSCA: certs.CA,
		SlowLimit: time.Minute, // a loaded machine (-race) must not make the client a slow consumer
	})
	ct, err := fixsession.LoadClientTLS(certs.CA, certs.ClientCert, certs.ClientKey, testcerts.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{Connect: m.b.Addr(), SenderCompID: "ALICE-TLS", Username: "alice", Password: "alice-pw", TLS: ct})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(m.ctx, 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Subscribe("all", "*"); err != nil {
		t.Fatal(err)
	}

	plain, err := NewClient(ClientConfig{Connect: m.b.Addr(), SenderCompID: "ALICE-PLAIN", Username: "alice", Password: "alice-pw"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(m.ctx, 3*time.Second)
	err = plain.Start(pctx)
	pcancel()
	plain.Close()
	if err == nil {
		t.Fatal("a client in clear logged on to the TLS port")
	}
	if r := plain.Report(); !strings.Contains(r.Logout, "TLS") {
		t.Errorf("clear client's logout reason %q: want it to name TLS", r.Logout)
	}

	m.publish()
	select {
	case <-m.p.DataDone():
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	waitBooks(t, c, func() book.Dump { return m.dump(t) })
	st := m.b.FIXStats()
	if st.TLSRefused == 0 || st.TLSFailures != 0 || st.LogonsRefused != 0 {
		t.Errorf("FIX stats %+v: want the clear client refused (tls_refused), no other refusal", st)
	}
}
