package jsonstr

import (
	"encoding/json"
	"testing"
)

func TestAppend(t *testing.T) {
	for _, s := range []string{"", "SBER", "a\"b\\c", "\n\r\t\x00\x1f\x7f", "é€😀", "SI-12.25", "<&>"} {
		enc := Append(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil || back != s {
			t.Errorf("Append(%q) = %s, decodes to %q, %v", s, enc, back, err)
		}
	}
	if got := string(Append(nil, "a\xffb")); got != `"a\ufffdb"` {
		t.Errorf("invalid UTF-8 written as %s", got)
	}
}
