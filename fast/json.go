package fast

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"fastfeed/internal/decfmt"
)

// AppendJSON appends the fields of g as a JSON object, the generic view for tools (the
// decode command): integers as numbers, decimals as strings with the exact value in plain
// notation, strings as strings, byte vectors as hex strings, sequences as arrays of objects,
// groups as objects, and absent optional fields left out. A dynamic template reference
// becomes {"template":name,"id":N,"fields":{...}}.
func AppendJSON(dst []byte, g Group) []byte {
	dst = append(dst, '{')
	first := true
	for i, f := range g.fields {
		v := g.Value(i)
		if !v.Present {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, []byte(f.Name))
		dst = append(dst, ':')
		switch f.Type {
		case TypeUint32, TypeUint64:
			dst = strconv.AppendUint(dst, uint64(v.Int), 10)
		case TypeInt32, TypeInt64:
			dst = strconv.AppendInt(dst, v.Int, 10)
		case TypeDecimal:
			dst = append(dst, '"')
			dst = decfmt.Append(dst, v.Int, int(v.Exp))
			dst = append(dst, '"')
		case TypeASCII, TypeUnicode:
			dst = appendJSONString(dst, g.Bytes(i))
		case TypeBytes:
			dst = append(dst, '"')
			dst = hex.AppendEncode(dst, g.Bytes(i))
			dst = append(dst, '"')
		case TypeSequence:
			s := g.Seq(i)
			dst = append(dst, '[')
			for j := 0; j < s.Len(); j++ {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = AppendJSON(dst, s.Elem(j))
			}
			dst = append(dst, ']')
		case TypeGroup:
			sub, _ := g.Group(i)
			dst = AppendJSON(dst, sub)
		case TypeTemplateRef:
			sub, _ := g.Ref(i)
			dst = append(dst, `{"template":`...)
			dst = appendJSONString(dst, []byte(sub.tmpl.Name))
			dst = append(dst, `,"id":`...)
			dst = strconv.AppendUint(dst, uint64(sub.tmpl.ID), 10)
			dst = append(dst, `,"fields":`...)
			dst = AppendJSON(dst, sub)
			dst = append(dst, '}')
		}
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping quotes, backslashes and control
// characters, and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
