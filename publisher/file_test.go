package publisher

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigFixture(t *testing.T) {
	var cfg Config
	if err := LoadConfig(filepath.Join("..", "fixtures", "pub.json"), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Templates = loadTemplates(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Instruments) < 5 || len(cfg.Recovery.Users) == 0 || cfg.Recovery.Users[0] != (User{"demo", "demo"}) {
		t.Errorf("fixture: %d instruments, users %v", len(cfg.Instruments), cfg.Recovery.Users)
	}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestParseConfig(t *testing.T) {
	const doc = `{
	  "instruments": [
	    {"symbol": "SBER", "tick": "0.01", "start_price": "285.40", "weight": 3, "currency": "RUB"},
	    {"symbol": "USD000UTSTOM", "tick": 0.0025, "price_exp": -4, "start_price": 91.235, "size_exp": -1}
	  ],
	  "port": 31000,
	  "groups": {"base": "239.192.0.0", "size": 65536},
	  "definitions": {"group": "239.191.0.0", "interval": "2s"},
	  "b_line": {"group_base": "239.193.0.0"},
	  "rate": 0, "seed": 42, "heartbeat": "250ms", "payload_limit": 1200, "status": false,
	  "depth": {"min": 3, "max": 12}, "linger": "1s", "count": 100, "duration": "3s",
	  "retention": {"datagrams": 5000, "bytes": 8388608, "max_request": 2000},
	  "recovery": {"listen": "127.0.0.1:9999", "comp_id": "PUB2", "users": [{"username": "demo", "password": "demo"}]}
	}`
	var cfg Config
	if err := ParseConfig([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	in := cfg.Instruments
	if len(in) != 2 || in[0].Tick != 1 || in[0].PriceExp != -2 || in[0].StartPrice != 28540 || in[0].Weight != 3 ||
		in[1].Tick != 25 || in[1].PriceExp != -4 || in[1].StartPrice != 912350 || in[1].SizeExp != -1 {
		t.Errorf("instruments %+v", in)
	}
	if cfg.Port != 31000 || cfg.Mapping.Base() != netip.MustParseAddr("239.192.0.0") || cfg.Mapping.Size() != 65536 ||
		cfg.DefinitionsGroup != netip.MustParseAddr("239.191.0.0") || cfg.DefinitionsInterval != 2*time.Second ||
		cfg.B.GroupBase != netip.MustParseAddr("239.193.0.0") || cfg.Rate != 0 || cfg.Seed != 42 ||
		cfg.Heartbeat != 250*time.Millisecond || cfg.PayloadLimit != 1200 || !cfg.NoStatus || cfg.MinDepth != 3 ||
		cfg.MaxDepth != 12 || cfg.Linger != time.Second || cfg.Count != 100 || cfg.Duration != 3*time.Second ||
		cfg.Retention != 5000 || cfg.RetentionBytes != 8<<20 || cfg.MaxRetransmit != 2000 ||
		cfg.Recovery.Listen != "127.0.0.1:9999" || cfg.Recovery.CompID != "PUB2" {
		t.Errorf("config %+v", cfg)
	}
	cfg.Templates = loadTemplates(t)
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defs := p.Channels()[len(p.Channels())-1]
	if !defs.Definitions || defs.Group.String() != "239.191.0.0:31000" || defs.B.String() != "239.192.255.255:31000" {
		t.Errorf("definitions channel %+v", defs)
	}
}

func TestParseConfigErrors(t *testing.T) {
	sber := `{"symbol": "SBER", "tick": "0.01", "start_price": "285.40"}`
	for _, tc := range []struct {
		doc, want string
	}{
		{``, "empty file"},
		{`{"port": 1,`, "not closed"},
		{`{"port": 1} {}`, "data after the JSON object"},
		{"{\n\"bogus\": 1}", `line 2: unknown key "bogus"`},
		{`{"instruments": [{"symbol": "SBER", "tick": "0.01", "start_price": "1", "extra": 1}]}`, `unknown key "extra"`},
		{"{\"port\":\n \"x\"}", "line 2: port: got string, want a uint16"},
		{`{"port": 70000}`, "port: got number 70000, want a uint16"},
		{`{"port": 0}`, "port: 0 is not a port"},
		{`{"rate": -5}`, "rate: -5"},
		{`{"heartbeat": "soon"}`, `time: invalid duration "soon"`},
		{`{"heartbeat": 5}`, "want a duration string"},
		{`{"groups": {"base": "10.0.0.1"}}`, "groups: mcast: group base 10.0.0.1 is not a multicast address"},
		{`{"groups": {"single": true, "size": 4}}`, "a single group has size 1"},
		{`{"definitions": {"group": "224.0.0.5"}}`, "definitions.group: 224.0.0.5 is in 224.0.0.0/24"},
		{`{"b_line": {}}`, "b_line: set port or group_base"},
		{`{"iface": "eth0"}`, `iface: "eth0" is not a unicast IPv4 address`},
		{`{"payload_limit": 100}`, "payload_limit: 100"},
		{`{"depth": {"min": 4, "max": 2}}`, "depth: min 4, max 2"},
		{`{"retention": {"bytes": 1000}}`, "retention.bytes: 1000"},
		{`{"recovery": {"users": [{"username": "a"}, {"username": "a"}]}}`, `recovery.users[1].username: "a" given twice`},
		{`{"recovery": {"tls_key": "k.pem"}}`, "recovery: tls_cert and tls_key go together"},
		{`{"recovery": {"tls_ca": "ca.pem"}}`, "tls_ca needs them"},
		{`{"recovery": {"max_logon_failures": -1}}`, "recovery.max_logon_failures: -1 is negative"},
		{`{"recovery": {"lockout": "-1s"}}`, "recovery.lockout: want a positive duration"},
		{`{"recovery": {"users": [{"username": "a", "password": "$argon2id$v=19$m=1,t=1,p=1$AA$AA"}]}}`, "recovery.users[0].password: passhash: argon2id m=1"},
		{`{"instruments": []}`, "instruments: empty list"},
		{`{"instruments": [` + sber + `, ` + sber + `]}`, "instruments[1] (SBER).symbol: duplicate of instruments[0]"},
		{`{"instruments": [{"tick": "0.01", "start_price": "1"}]}`, "instruments[0].symbol: missing"},
		{`{"instruments": [{"symbol": "X", "start_price": "1"}]}`, "instruments[0] (X).tick: missing"},
		{`{"instruments": [{"symbol": "X", "tick": "0.005", "price_exp": -2, "start_price": "1"}]}`, `instruments[0] (X).tick: "0.005" is not representable at price_exp -2`},
		{`{"instruments": [{"symbol": "X", "tick": "0.05", "start_price": "10.01"}]}`, "instruments[0] (X): start price 10.01 is not a multiple of the tick 0.05"},
		{`{"instruments": [{"symbol": "X", "tick": "0.01", "start_price": "0.2"}]}`, "only 20 ticks"},
		{`{"instruments": [{"symbol": "X", "tick": "-0.01", "start_price": "10"}]}`, "want a tick > 0"},
		{`{"instruments": [{"symbol": "X", "tick": "1e-2", "start_price": "10"}]}`, "not a plain decimal"},
		{`{"instruments": [{"symbol": "X", "tick": null, "start_price": "10"}]}`, "null"},
		{`{"instruments": [{"symbol": "X", "tick": "0.01", "start_price": "10", "weight": 0}]}`, "weight 0"},
		{`{"instruments": [{"symbol": "A B", "tick": "0.01", "start_price": "10"}]}`, "not printable ASCII"},
	} {
		var cfg Config
		err := ParseConfig([]byte(tc.doc), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant an error with %q", tc.doc, err, tc.want)
		}
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(path, []byte(`{"rate": "fast"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	err := LoadConfig(path, &cfg)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "rate") {
		t.Errorf("error %v does not name the file and the key", err)
	}
	if err := LoadConfig(filepath.Join(t.TempDir(), "missing.json"), &cfg); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseConfig: any input gives a config or an error, never a panic, and
// an accepted config passes or fails New cleanly.
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "fixtures", "pub.json")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"instruments": [{"symbol": "SBER", "tick": "0.01", "start_price": "285.40"}], "rate": 10}`))
	f.Add([]byte(`{"groups": {"base": "239.1.0.0", "size": 3, "single": false}, "b_line": {"port": 2}}`))
	f.Add([]byte(`{"instruments": [{"symbol": "X", "tick": 1e400, "start_price": "-1"}]}`))
	f.Add([]byte(`{"heartbeat": "1h", "depth": {"min": 1, "max": 1000}}`))
	f.Add([]byte(`{"recovery": {"tls_cert": "c", "tls_key": "k", "tls_ca": "ca", "max_logon_failures": 2, "lockout": "5s",` +
		` "users": [{"username": "a", "password": "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"}]}}`))
	ts := loadTemplates(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if err := ParseConfig(data, &cfg); err != nil {
			return
		}
		if len(cfg.Instruments) == 0 || len(cfg.Instruments) > 50 {
			return
		}
		cfg.Templates = ts
		cfg.Retention = min(cfg.Retention, 1000)
		cfg.RetentionBytes = MinRetentionBytes
		_, _ = New(cfg)
	})
}
