package natsbus

import (
	"fmt"
	"strconv"
	"strings"

	"fastfeed/feed"
)

// Subject prefixes (DESIGN.md, "Wire: NATS").
const (
	PrefixMD     = "md"     // incrementals and trades
	PrefixSnap   = "snap"   // full snapshots; the last-value cache stream captures snap.>
	PrefixStatus = "status" // status changes (stale, ready, trading status)
	// PrefixSnapRequest is where a consumer asks the publishers for a fresh snapshot of
	// one instrument (fastfeed's addition to the contract: no payload, no reply).
	PrefixSnapRequest = "snapreq"
)

// ChannelToken returns a channel name as one subject token: every '.' and ':' is
// written '-' ("G239.1.2.3:30001" -> "G239-1-2-3-30001"), and any other byte that
// cannot appear in a token (space, '*', '>', control bytes) is escaped like a symbol's.
func ChannelToken(channel string) string {
	if channel == "" {
		return "-"
	}
	return string(appendToken(nil, channel, true))
}

// SymbolToken returns a symbol as one subject token: every byte outside [A-Za-z0-9_-]
// is written '~' and two upper-case hex digits ("BRK.B" -> "BRK~2EB").
func SymbolToken(symbol string) string {
	if symbol == "" {
		return "~"
	}
	return string(appendToken(nil, symbol, false))
}

// AppendSubject appends prefix.channel-token.symbol-token to dst.
func AppendSubject(dst []byte, prefix, channel, symbol string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '.')
	if channel == "" {
		dst = append(dst, '-')
	} else {
		dst = appendToken(dst, channel, true)
	}
	dst = append(dst, '.')
	if symbol == "" {
		return append(dst, '~')
	}
	return appendToken(dst, symbol, false)
}

// Subject returns prefix.channel-token.symbol-token.
func Subject(prefix, channel, symbol string) string {
	return string(AppendSubject(nil, prefix, channel, symbol))
}

const hexDigits = "0123456789ABCDEF"

func plainByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func appendToken(dst []byte, s string, channel bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case plainByte(c):
			dst = append(dst, c)
		case channel && (c == '.' || c == ':'):
			dst = append(dst, '-')
		default:
			dst = append(dst, '~', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

// ParseSymbolToken reverses SymbolToken.
func ParseSymbolToken(tok string) (string, error) {
	if tok == "~" {
		return "", nil
	}
	if !strings.Contains(tok, "~") {
		for i := 0; i < len(tok); i++ {
			if !plainByte(tok[i]) {
				return "", fmt.Errorf("symbol token %q: byte %q at %d is neither escaped nor allowed", tok, tok[i], i)
			}
		}
		return tok, nil
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '~':
			if i+2 >= len(tok) {
				return "", fmt.Errorf("symbol token %q: '~' at %d without two hex digits", tok, i)
			}
			v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
			if err != nil || strings.ToUpper(tok[i+1:i+3]) != tok[i+1:i+3] {
				return "", fmt.Errorf("symbol token %q: '~%s' at %d is not two upper-case hex digits", tok, tok[i+1:i+3], i)
			}
			b = append(b, byte(v))
			i += 2
		case plainByte(c):
			b = append(b, c)
		default:
			return "", fmt.Errorf("symbol token %q: byte %q at %d is neither escaped nor allowed", tok, c, i)
		}
	}
	return string(b), nil
}

// ParseChannelToken returns the channel name a token most likely came from: a token of
// the default form "G<a>-<b>-<c>-<d>-<port>" is turned back into "G<a>.<b>.<c>.<d>:<port>";
// any other token is returned as it is (the mapping of '.' and ':' to '-' loses
// information; configured channel names should avoid both).
func ParseChannelToken(tok string) string {
	if len(tok) < 2 || tok[0] != 'G' {
		return tok
	}
	parts := strings.Split(tok[1:], "-")
	if len(parts) != 5 {
		return tok
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil || p == "" {
			return tok
		}
	}
	return "G" + parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3] + ":" + parts[4]
}

// SplitSubject splits a fastfeed subject into its prefix, channel name and symbol.
func SplitSubject(subject string) (prefix, channel, symbol string, err error) {
	i := strings.IndexByte(subject, '.')
	if i < 0 {
		return "", "", "", fmt.Errorf("subject %q: want prefix.channel.symbol", subject)
	}
	j := strings.IndexByte(subject[i+1:], '.')
	if j < 0 {
		return "", "", "", fmt.Errorf("subject %q: want prefix.channel.symbol", subject)
	}
	j += i + 1
	if strings.IndexByte(subject[j+1:], '.') >= 0 {
		return "", "", "", fmt.Errorf("subject %q: more than three tokens", subject)
	}
	symbol, err = ParseSymbolToken(subject[j+1:])
	if err != nil {
		return "", "", "", fmt.Errorf("subject %q: %w", subject, err)
	}
	return subject[:i], ParseChannelToken(subject[i+1 : j]), symbol, nil
}

// Filter returns the subject filter under prefix that covers pattern p (feed's
// patterns): an exact symbol "SBER" -> "md.*.SBER" (one-to-one), a channel
// "G239.1.2.3:30001" -> "md.G239-1-2-3-30001.*" (one-to-group), "*" -> "md.>"
// (one-to-many). A prefix "SB*" has no subject wildcard: exact is false and the filter
// is prefix.> (the caller filters by symbol, or resolves the prefix to symbols first).
func Filter(prefix string, p feed.Pattern) (filter string, exact bool) {
	s := string(p)
	switch {
	case s == "*":
		return prefix + ".>", true
	case strings.HasSuffix(s, "*"):
		return prefix + ".>", false
	case strings.HasPrefix(s, "G") && strings.Contains(s, ":"):
		return prefix + "." + ChannelToken(s) + ".*", true
	}
	return prefix + ".*." + SymbolToken(s), true
}
