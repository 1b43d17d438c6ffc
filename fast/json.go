package fast

import (
	"encoding/hex"
	"strconv"

	"fastfeed/internal/decfmt"
	"fastfeed/internal/jsonstr"
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
		dst = jsonstr.Append(dst, f.Name)
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
			dst = jsonstr.Append(dst, string(g.Bytes(i))) // tools path: the copy is fine
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
			dst = jsonstr.Append(dst, sub.tmpl.Name)
			dst = append(dst, `,"id":`...)
			dst = strconv.AppendUint(dst, uint64(sub.tmpl.ID), 10)
			dst = append(dst, `,"fields":`...)
			dst = AppendJSON(dst, sub)
			dst = append(dst, '}')
		}
	}
	return append(dst, '}')
}
