package fixsession

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"
)

func TestParseLogon(t *testing.T) {
	for _, tt := range []struct {
		name    string
		msg     []byte
		want    logon
		refused string // a *logonRefusal with this reason
		err     string // another error
	}{
		{name: "good", msg: fixMsg(logonFields...), want: logon{sender: "CLIENT", target: "FFPUB", username: "demo", password: "demo"}},
		{name: "no credentials", msg: fixMsg("35=A", "49=C", "56=S", "34=1", "52=20260101-00:00:00", "98=0", "108=30"),
			want: logon{sender: "C", target: "S"}},
		{name: "repeated Username (the attack of issue 18)",
			msg:     fixMsg("35=A", "49=C", "56=S", "34=1", "52=20260101-00:00:00", "98=0", "108=30", "553=demo", "553=fx", "554=fx", "1137=9"),
			refused: "Logon (A) repeats Username (553)"},
		{name: "repeated Username after a Text",
			msg:     fixMsg("35=A", "49=C", "56=S", "34=1", "52=20260101-00:00:00", "58=x", "553=demo", "553=fx", "554=fx"),
			refused: "Logon (A) repeats Username (553)"},
		{name: "repeated Password", msg: fixMsg("35=A", "49=C", "56=S", "554=a", "553=u", "554=b"),
			refused: "Logon (A) repeats Password (554)"},
		{name: "repeated SenderCompID", msg: fixMsg("35=A", "49=C", "56=S", "49=D"), refused: "repeats SenderCompID (49)"},
		{name: "repeated other tag", msg: fixMsg("35=A", "49=C", "56=S", "108=30", "108=31"), refused: "repeats HeartBtInt (108)"},
		{name: "a Username inside XmlData is data, not a field", msg: fixMsg("35=A", "49=C", "56=S", "212=11", "213=\x01553=fx\x0158=", "553=demo"),
			want: logon{sender: "C", target: "S", username: "demo"}},
		{name: "not a Logon", msg: fixMsg("35=0", "49=C", "56=S"), err: `got MsgType "0"`},
		{name: "no TargetCompID", msg: fixMsg("35=A", "49=C"), err: "without TargetCompID (56)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckFrame(tt.msg); err != nil {
				t.Fatalf("test message does not pass CheckFrame: %v", err)
			}
			got, err := parseLogon(tt.msg)
			var rl *logonRefusal
			switch {
			case tt.refused != "":
				if !errors.As(err, &rl) || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("parseLogon error %v, want a refusal %q", err, tt.refused)
				}
			case tt.err != "":
				if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseLogon error %v, want %q", err, tt.err)
				}
			case err != nil:
				t.Fatalf("parseLogon: %v", err)
			case got != tt.want:
				t.Fatalf("parseLogon = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLogoutMessage(t *testing.T) {
	m := logoutMessage("FFFEED", logon{sender: "EVE"}, "Logon (A) repeats Username (553)\x01553=x")
	if err := CheckFrame(m); err != nil {
		t.Fatalf("the guard's Logout is malformed: %v\n%q", err, m)
	}
	msg := quickfix.NewMessage()
	if err := quickfix.ParseMessage(msg, bytes.NewBuffer(m)); err != nil {
		t.Fatal(err)
	}
	text, _ := msg.Body.GetString(tag.Text)
	target, _ := msg.Header.GetString(tag.TargetCompID)
	if !msg.IsMsgTypeOf("5") || target != "EVE" || text != "Logon (A) repeats Username (553) 553=x" {
		t.Fatalf("Logout %q: type 5, 56=EVE, text %q", m, text)
	}
}

// FuzzRepeatedField checks that the guard and quickfix read a Logon the same way: for
// any message that passes CheckFrame and that parseLogon accepts, quickfix v0.9.7 finds
// the same SenderCompID, TargetCompID, Username and Password; and that a message with a
// tag twice (outside data fields) is never accepted.
func FuzzRepeatedField(f *testing.F) {
	f.Add(fixMsg(logonFields...))
	f.Add(fixMsg("35=A", "49=C", "56=S", "34=1", "52=20260101-00:00:00", "98=0", "108=30", "553=demo", "553=fx", "554=fx", "1137=9"))
	f.Add(fixMsg("35=A", "49=C", "56=S", "58=x", "553=demo", "553=fx", "554=fx"))
	f.Add(fixMsg("35=A", "49=C", "56=S", "212=11", "213=\x01553=fx\x0158=", "553=demo", "554=demo"))
	f.Add(fixMsg("35=A", "49=C", "56=S", "95=3", "96=abc", "553=demo"))
	f.Add(fixMsg("35=A", "49=C", "56=S", "384=2", "372=V", "385=R", "372=W", "385=R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckFrame(b) != nil {
			return
		}
		l, err := parseLogon(b)
		tags := map[int]int{}
		eachField(b, func(tag int, _ []byte) bool { tags[tag]++; return true })
		repeated := false
		for _, n := range tags {
			repeated = repeated || n > 1
		}
		if err == nil && repeated {
			t.Fatalf("parseLogon accepted a message with a repeated tag: %q", b)
		}
		if err != nil {
			return
		}
		msg := quickfix.NewMessage()
		if quickfix.ParseMessage(msg, bytes.NewBuffer(bytes.Clone(b))) != nil {
			return // quickfix refuses it: nothing to disagree about
		}
		get := func(fm *quickfix.FieldMap, tg quickfix.Tag) string { v, _ := fm.GetString(tg); return v }
		q := logon{
			sender:   get(&msg.Header.FieldMap, tag.SenderCompID),
			target:   get(&msg.Header.FieldMap, tag.TargetCompID),
			username: get(&msg.Body.FieldMap, tag.Username),
			password: get(&msg.Body.FieldMap, tag.Password),
		}
		if q != l {
			t.Fatalf("the guard reads %+v, quickfix %+v, in %q", l, q, b)
		}
	})
}
