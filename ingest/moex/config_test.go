package moex

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
)

const conformanceConfig = "../../../shared/conformance/moex-config/asts_config_test.xml"

func TestParseConformanceConfig(t *testing.T) {
	c, err := LoadConfig(conformanceConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Markets) != 2 || c.Markets[0].ID != "CURR" || c.Markets[1].ID != "FOND" {
		t.Fatalf("markets %+v", c.Markets)
	}
	m, _ := c.Market("CURR")
	for _, tc := range []struct {
		id   string
		kind Kind
		a, b string
	}{
		{"MSR", Incremental, "239.192.112.7:9027", "239.192.112.135:9227"},
		{"MSS", Snapshot, "239.192.112.8:9028", "239.192.112.136:9228"},
		{"OLR", Incremental, "239.192.112.1:9021", "239.192.112.129:9221"},
		{"OLS", Snapshot, "239.192.112.2:9022", "239.192.112.130:9222"},
		{"TLR", Incremental, "239.192.112.5:9025", "239.192.112.133:9225"},
	} {
		cn, ok := m.Connection(tc.id)
		if !ok {
			t.Fatalf("no %s", tc.id)
		}
		a, _ := cn.Line("A")
		b, _ := cn.Line("B")
		if cn.Kind != tc.kind || a.Group.String() != tc.a || b.Group.String() != tc.b ||
			a.Src != netip.MustParseAddr("10.50.129.200") {
			t.Errorf("%s: %+v", tc.id, cn)
		}
	}
	for _, id := range []string{"IDF", "ISF", "H"} {
		if _, ok := m.Connection(id); !ok {
			t.Errorf("no %s", id)
		}
	}
	h, _ := m.Connection("H")
	if h.Kind != Historical || h.Protocol != "TCP/IP" || h.Addr.String() != "1.1.7.200:20000" {
		t.Errorf("H: %+v", h)
	}
}

func TestParseConfigErrors(t *testing.T) {
	good, err := os.ReadFile(conformanceConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"bad ip", "<ip>239.192.112.7</ip>", "<ip>239.192.112</ip>", `channel 1 ("CURR"): connection 1 ("MSR"): feed "A": <ip> "239.192.112"`},
		{"unicast", "<ip>239.192.112.7</ip>", "<ip>10.0.0.1</ip>", "not a multicast group"},
		{"bad port", "<port>9027</port>", "<port>99999</port>", `<port> "99999"`},
		{"bad src", "<src-ip>10.50.129.200</src-ip>", "<src-ip>x</src-ip>", `<src-ip> "x"`},
		{"bad type", ">I</type>", ">Q</type>", `<type> "Q"`},
		{"dup feed", `<feed id="B">`, `<feed id="A">`, `feed "A" given twice`},
		{"no id", `<channel id="CURR"`, `<channel id=""`, "no id attribute"},
		{"truncated", "</configuration>", "", "moex: config: XML syntax error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(string(good), tc.old, tc.new, 1)
			_, err := ParseConfig(strings.NewReader(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseConfig(strings.NewReader(`<configuration/>`)); err == nil {
		t.Error("empty config accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	good, err := os.ReadFile(conformanceConfig)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`<configuration><channel id="X"><connections><connection id="H"><type>H</type><ip>1.2.3.4</ip><port>1</port></connection></connections></channel></configuration>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, m := range c.Markets {
			if m.ID == "" || len(m.Connections) == 0 {
				t.Fatalf("accepted market %+v", m)
			}
			for _, cn := range m.Connections {
				for _, l := range cn.Lines {
					if !l.Group.Addr().IsMulticast() {
						t.Fatalf("accepted line %+v", l)
					}
				}
			}
		}
	})
}
