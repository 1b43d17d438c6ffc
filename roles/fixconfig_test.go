package roles

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastfeed/bus"
	"fastfeed/internal/fixsession"
	"fastfeed/publisher"
)

func writeFIXConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fix.cfg")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const rolesFIXConfig = `[DEFAULT]
FileLogPath=/tmp/ff-log
HeartBtInt=7
HeartBtIntOverride=Y

# the publisher's recovery service
[SESSION]
ConnectionType=acceptor
SenderCompID=MYPUB
SocketAcceptPort=19870
FileStorePath=/tmp/ff-pub

# the handler's OMS service
[SESSION]
ConnectionType=acceptor
SenderCompID=FFFEED
SocketAcceptHost=127.0.0.1
SocketAcceptPort=19871

# the handler's recovery client
[SESSION]
ConnectionType=initiator
SenderCompID=HANDLER7
TargetCompID=MYPUB
SocketConnectHost=127.0.0.1
SocketConnectPort=19870
ReconnectInterval=3

# an oms client
[SESSION]
ConnectionType=initiator
SenderCompID=DESK1
TargetCompID=FFFEED
SocketConnectPort=19871
FileStorePath=/tmp/ff-oms
`

// TestFIXConfigRoles: each role takes its session of one quickfix settings file, and
// flags given win over it.
func TestFIXConfigRoles(t *testing.T) {
	path := writeFIXConfig(t, rolesFIXConfig)

	// pub: the acceptor whose SenderCompID is the recovery service's CompID (MYPUB in
	// its config); with two acceptors in the file, the CompID must match.
	po := FIXFileOptions{File: path, PerSecond: 10, MaxRejects: 5, MaxMessage: 4096, ReadPerSecond: 40}
	cfg := publisher.Config{}
	cfg.Recovery.CompID = "MYPUB"
	var ro publisher.RecoveryOptions
	if err := po.applyPubFIX(map[string]bool{}, &cfg, &ro, &FIXServerTLS{}); err != nil {
		t.Fatal(err)
	}
	if cfg.Recovery.Listen != "127.0.0.1:19870" || ro.HeartBtInt != 7*time.Second || ro.Persistence.FileStorePath != "/tmp/ff-pub" ||
		ro.Persistence.FileLogPath != "/tmp/ff-log" || ro.RequestLimits != (fixsession.RequestLimits{PerSecond: 10, MaxRejects: 5, ReadPerSecond: 40}) || ro.MaxMessageSize != 4096 {
		t.Errorf("pub: listen %q, options %+v", cfg.Recovery.Listen, ro)
	}
	cfg.Recovery.Listen = "127.0.0.1:1"
	if err := po.applyPubFIX(map[string]bool{"fix-listen": true}, &cfg, &ro, &FIXServerTLS{}); err != nil || cfg.Recovery.Listen != "127.0.0.1:1" {
		t.Errorf("pub: --fix-listen given lost to the file: %q, %v", cfg.Recovery.Listen, err)
	}

	// feed: the recovery client is the initiator whose TargetCompID is FFPUB, or the
	// file's only initiator: with two, neither targeting FFPUB, there is none.
	fo := FeedOptions{FIXFile: FIXFileOptions{File: path, MaxRejects: 1, MaxMessage: 4096, MaxSubscriptions: 3}}
	if _, err := fo.applyRecoveryFIX(map[string]bool{}); err != nil || fo.FixConnect != "" {
		t.Errorf("feed took initiator %q (%v) for the recovery client: neither initiator targets %s", fo.FixConnect, err, fixsession.RecoveryCompID)
	}
	bc := bus.Config{}
	if err := fo.applyOMSServiceFIX(map[string]bool{}, &bc); err != nil {
		t.Fatal(err)
	}
	if bc.Listen != "127.0.0.1:19871" || bc.CompID != "FFFEED" || bc.HeartBtInt != 7*time.Second || bc.MaxSubscriptions != 3 ||
		bc.Persistence.FileLogPath != "/tmp/ff-log" {
		t.Errorf("feed OMS service: %+v", bc)
	}

	// oms: the initiator targeting FFFEED.
	oo := OMSOptions{FIXFile: FIXFileOptions{File: path}, Connect: fixsession.OMSListen}
	var cc bus.ClientConfig
	if err := oo.applyOMSClientFIX(map[string]bool{}, &cc); err != nil {
		t.Fatal(err)
	}
	if oo.Connect != "127.0.0.1:19871" || oo.CompID != "DESK1" || cc.Persistence.FileStorePath != "/tmp/ff-oms" || cc.HeartBtInt != 7*time.Second {
		t.Errorf("oms: connect %q compid %q, %+v", oo.Connect, oo.CompID, cc)
	}
	oo = OMSOptions{FIXFile: FIXFileOptions{File: path}, Connect: "127.0.0.1:2", CompID: "FLAG"}
	if err := oo.applyOMSClientFIX(map[string]bool{"connect": true, "comp-id": true}, &cc); err != nil || oo.Connect != "127.0.0.1:2" || oo.CompID != "FLAG" {
		t.Errorf("oms: flags given lost to the file: %q %q, %v", oo.Connect, oo.CompID, err)
	}
}

// TestFIXConfigFeedRecovery: a file with one initiator gives the feed its recovery
// client.
func TestFIXConfigFeedRecovery(t *testing.T) {
	path := writeFIXConfig(t, "[SESSION]\nSenderCompID=H1\nTargetCompID=FFPUB\nSocketConnectPort=19870\nReconnectInterval=2\nFileStorePath=/tmp/h1\n")
	fo := FeedOptions{FIXFile: FIXFileOptions{File: path}}
	rc, err := fo.applyRecoveryFIX(map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if fo.FixConnect != "127.0.0.1:19870" || fo.CompID != "H1" || rc.ReconnectInterval != 2*time.Second || rc.Persistence.FileStorePath != "/tmp/h1" {
		t.Errorf("recovery client: connect %q compid %q, %+v", fo.FixConnect, fo.CompID, rc)
	}
}

// TestFIXConfigErrors: a bad settings file stops a role with its file, line and key.
func TestFIXConfigErrors(t *testing.T) {
	bad := writeFIXConfig(t, "[SESSION]\nSocketAcceptPort=19870\nSocketAcceptProt=1\n")
	tls := writeFIXConfig(t, "[SESSION]\nSocketAcceptPort=19870\nSocketCertificateFile=c.pem\nSocketPrivateKeyFile=k.pem\n")
	skip := writeFIXConfig(t, "[SESSION]\nSocketConnectPort=19871\nSocketInsecureSkipVerify=Y\n")
	initiatorOnly := writeFIXConfig(t, "[SESSION]\nTargetCompID=FFPUB\nSocketConnectPort=19870\n")
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
		args []string
		want string
	}{
		{"pub unknown key", Pub, []string{"--fix-config", bad}, bad + ":3: SocketAcceptProt: unknown key"},
		{"oms unknown key", OMS, []string{"--fix-config", bad}, bad + ":3: SocketAcceptProt: unknown key"},
		{"gateway unknown key", Gateway, []string{"--nats", "nats://127.0.0.1:1", "--fix-config", bad}, bad + ":3: SocketAcceptProt: unknown key"},
		{"gateway tls files missing", Gateway, []string{"--nats", "nats://127.0.0.1:1", "--fix-config", tls}, "--fix-tls-cert: fixsession: TLS: open c.pem"},
		{"gateway bad rate", Gateway, []string{"--nats", "nats://127.0.0.1:1", "--fix-max-subscriptions", "-1"}, "must not be negative"},
		{"feed unknown key", Feed, []string{"--all", "--fix-config", bad}, bad + ":3: SocketAcceptProt: unknown key"},
		{"pub tls files missing", Pub, []string{"--fix-config", tls}, "--fix-tls-cert: fixsession: TLS: open c.pem: no such file"},
		{"oms skip verify", OMS, []string{"--fix-config", skip}, skip + ":3: SocketInsecureSkipVerify: \"Y\": fastfeed always verifies"},
		{"pub no acceptor", Pub, []string{"--fix-config", initiatorOnly}, "no acceptor [SESSION] for the recovery service"},
		{"oms no initiator", OMS, []string{"--fix-config", tls}, "no initiator [SESSION] for the OMS service"},
		{"pub missing file", Pub, []string{"--fix-config", bad + ".missing"}, "no such file"},
		{"pub bad rate", Pub, []string{"--fix-max-requests-per-second", "-1"}, "must not be negative"},
		{"feed bad read pace", Feed, []string{"--all", "--serve-fix", "127.0.0.1:0", "--fix-read-per-second", "-5"}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := tc.run(ctx, tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
