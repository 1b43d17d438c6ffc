package fastgen

import (
	"strconv"
	"strings"
	"unicode"
)

// goName turns a template or field name into an exported Go identifier.
func goName(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		switch {
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if up {
				b.WriteRune(unicode.ToUpper(r))
				up = false
			} else {
				b.WriteRune(r)
			}
		default:
			up = true
		}
	}
	n := b.String()
	if n == "" || !unicode.IsLetter(rune(n[0])) {
		n = "X" + n
	}
	return n
}

// namer hands out unique identifiers within one scope.
type namer map[string]bool

func (u namer) take(base string) string {
	n := base
	for i := 2; u[n]; i++ {
		n = base + strconv.Itoa(i)
	}
	u[n] = true
	return n
}
