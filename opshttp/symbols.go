package opshttp

import (
	"fmt"
	"strings"
)

// maxSymbolLen is the longest symbol accepted (FIX Symbol (55) values are short; MOEX's
// longest are 12 characters).
const maxSymbolLen = 32

// ParseSymbolList parses a comma-separated list of symbols ("SBER,GAZP"), as the page and
// the API take it: spaces around a symbol are dropped, a repeated symbol counts once, an
// empty string is the empty list. A symbol is 1..32 characters of letters, digits and
// . _ - + / : @ #. More than max symbols is an error.
func ParseSymbolList(s string, max int) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		sym := strings.TrimSpace(part)
		if err := checkSymbol(sym); err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		if seen[sym] {
			continue
		}
		if len(out) == max {
			return nil, fmt.Errorf("more than %d symbols", max)
		}
		seen[sym] = true
		out = append(out, sym)
	}
	return out, nil
}

// checkSymbol reports why s is not a symbol.
func checkSymbol(s string) error {
	if s == "" {
		return fmt.Errorf("empty symbol")
	}
	if len(s) > maxSymbolLen {
		return fmt.Errorf("symbol %.40q... longer than %d characters", s, maxSymbolLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("._-+/:@#", c) >= 0:
		default:
			return fmt.Errorf("symbol %q: character %q at %d is not allowed (letters, digits and . _ - + / : @ #)", s, c, i)
		}
	}
	return nil
}
