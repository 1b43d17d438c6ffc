package fixsession

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sampleSettings = `# fastfeed's FIX roles, quickfix style
[DEFAULT]
BeginString=FIXT.1.1
DefaultApplVerID=9
HeartBtInt=5
FileLogPath=/var/log/fastfeed/fix

[SESSION]
ConnectionType=acceptor
SenderCompID=FFFEED
SocketAcceptHost=127.0.0.1
SocketAcceptPort=19871
FileStorePath=/var/lib/fastfeed/oms

[SESSION]
ConnectionType=initiator
SenderCompID=HANDLER1
TargetCompID=FFPUB
SocketConnectHost = 10.0.0.5
SocketConnectPort = 19870
ReconnectInterval=2
ResetOnLogon=Y
`

func TestReadSettings(t *testing.T) {
	st, err := ReadSettings("roles.cfg", strings.NewReader(sampleSettings))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2", len(st.Sessions))
	}
	acc := st.Acceptor(OMSCompID)
	if acc == nil || acc.Listen() != "127.0.0.1:19871" || acc.HeartBtInt != 5*time.Second || acc.Line != 8 ||
		acc.Persistence != (Persistence{FileStorePath: "/var/lib/fastfeed/oms", FileLogPath: "/var/log/fastfeed/fix"}) {
		t.Errorf("OMS acceptor %+v", acc)
	}
	// The file's only acceptor serves a role under another CompID too.
	if st.Acceptor(RecoveryCompID) != acc {
		t.Errorf("Acceptor(%s) is not the only acceptor", RecoveryCompID)
	}
	ini := st.Initiator(RecoveryCompID)
	if ini == nil || ini.Connect() != "10.0.0.5:19870" || ini.SenderCompID != "HANDLER1" || ini.ReconnectInterval != 2*time.Second ||
		!ini.Persistence.ResetOnLogon || ini.Persistence.FileLogPath != "/var/log/fastfeed/fix" || ini.Set["SocketConnectPort"] != 20 {
		t.Errorf("recovery initiator %+v", ini)
	}
}

// TestReadSettingsTLS: the quickfix TLS keys are read as given.
func TestReadSettingsTLS(t *testing.T) {
	st, err := ReadSettings("tls.cfg", strings.NewReader(`[DEFAULT]
SocketCAFile=ca.pem
SocketMinimumTLSVersion=TLS13
[SESSION]
SocketAcceptPort=19871
SocketCertificateFile=server.pem
SocketPrivateKeyFile=server.key
[SESSION]
SocketConnectPort=19871
SocketServerName=fastfeed.test
SocketUseSSL=Y
SocketInsecureSkipVerify=N
`))
	if err != nil {
		t.Fatal(err)
	}
	acc, ini := st.Acceptor(OMSCompID), st.Initiator(OMSCompID)
	if acc.CertificateFile != "server.pem" || acc.PrivateKeyFile != "server.key" || acc.CAFile != "ca.pem" || acc.MinTLSVersion() != tls.VersionTLS13 || acc.UseSSL {
		t.Errorf("acceptor %+v", acc)
	}
	if ini.CAFile != "ca.pem" || ini.ServerName != "fastfeed.test" || !ini.UseSSL || ini.CertificateFile != "" {
		t.Errorf("initiator %+v", ini)
	}
	if v := (&SessionSettings{}).MinTLSVersion(); v != 0 {
		t.Errorf("MinTLSVersion with no key: %#x", v)
	}
}

func TestReadSettingsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fix.cfg")
	if err := os.WriteFile(path, []byte(sampleSettings), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSettingsFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSettingsFile(path + ".missing"); err == nil || !strings.Contains(err.Error(), "fix.cfg.missing") {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		key, want  string
	}{
		{"unknown key", "[SESSION]\nSocketAcceptPort=1\nSocketAcceptProt=2\n", 3, "SocketAcceptProt", "unknown key"},
		{"quickfix only", "[DEFAULT]\nStartTime=08:00:00\n[SESSION]\n", 2, "StartTime", "does not support"},
		{"bad port", "[SESSION]\nSocketAcceptPort=99999\n", 2, "SocketAcceptPort", "want a port"},
		{"empty port", "[SESSION]\nSocketConnectPort=\n", 2, "SocketConnectPort", "want a port"},
		{"bad bool", "[SESSION]\nResetOnLogon=yes\n", 2, "ResetOnLogon", "want Y or N"},
		{"bad seconds", "[SESSION]\nHeartBtInt=10s\n", 2, "HeartBtInt", "whole seconds"},
		{"zero seconds", "[SESSION]\nHeartBtInt=0\n", 2, "HeartBtInt", "whole seconds"},
		{"begin string", "[SESSION]\nBeginString=FIX.4.4\n", 2, "BeginString", "FIXT.1.1"},
		{"persist", "[SESSION]\nPersistMessages=Y\n", 2, "PersistMessages", "resends"},
		{"twice", "[SESSION]\nHeartBtInt=5\n\nHeartBtInt=6\n", 4, "HeartBtInt", "first on line 2"},
		{"before section", "HeartBtInt=5\n[SESSION]\n", 1, "HeartBtInt", "before any"},
		{"not key value", "[SESSION]\njunk\n", 2, "", "not Key=Value"},
		{"unknown section", "[SESSIONS]\n", 1, "", "unknown section"},
		{"second default", "[DEFAULT]\n[DEFAULT]\n[SESSION]\n", 2, "", "second [DEFAULT]"},
		{"default late", "[SESSION]\n[DEFAULT]\n", 2, "", "after a [SESSION]"},
		{"no session", "[DEFAULT]\nHeartBtInt=5\n", 0, "", "no [SESSION]"},
		{"both ports", "[SESSION]\nSocketAcceptPort=1\nSocketConnectPort=2\n", 1, "", "say ConnectionType"},
		{"acceptor connects", "[SESSION]\nConnectionType=acceptor\nSocketConnectPort=2\n", 1, "", "acceptor with SocketConnectPort"},
		{"cert alone", "[SESSION]\nSocketCertificateFile=a.pem\n", 1, "", "go together"},
		{"tls version", "[SESSION]\nSocketMinimumTLSVersion=SSL3\n", 2, "SocketMinimumTLSVersion", "TLS12"},
		{"skip verify", "[SESSION]\nSocketConnectPort=1\nSocketInsecureSkipVerify=Y\n", 3, "SocketInsecureSkipVerify", "always verifies"},
		{"long line", "[SESSION]\nFileLogPath=" + strings.Repeat("x", 5000) + "\n", 2, "", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSettings("bad.cfg", strings.NewReader(tc.text))
			var se *SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("err %v, want a *SettingsError", err)
			}
			if se.File != "bad.cfg" || se.Line != tc.line || se.Key != tc.key || !strings.Contains(se.Error(), tc.want) {
				t.Errorf("err %q (line %d key %q), want line %d key %q and %q", se, se.Line, se.Key, tc.line, tc.key, tc.want)
			}
			if tc.line > 0 && !strings.HasPrefix(se.Error(), "bad.cfg:") {
				t.Errorf("err %q does not start with the file and line", se)
			}
		})
	}
}

func FuzzReadSettings(f *testing.F) {
	f.Add(sampleSettings)
	f.Add("[SESSION]\nSocketAcceptPort=1\n")
	f.Add("[DEFAULT]\n[SESSION]\nFileStorePath=\x00\n")
	f.Fuzz(func(t *testing.T, text string) {
		st, err := ReadSettings("fuzz.cfg", strings.NewReader(text))
		if err != nil {
			var se *SettingsError
			if !errors.As(err, &se) || se.File != "fuzz.cfg" {
				t.Fatalf("error %v is not a *SettingsError of the file", err)
			}
			return
		}
		if len(st.Sessions) == 0 {
			t.Fatal("no sessions and no error")
		}
		for _, s := range st.Sessions {
			if s.IsAcceptor() && s.IsInitiator() {
				t.Fatalf("session at line %d is both acceptor and initiator", s.Line)
			}
			if l := s.Listen(); l != "" {
				if _, _, err := splitHostPort(l); err != nil {
					t.Fatalf("Listen %q: %v", l, err)
				}
			}
		}
	})
}
